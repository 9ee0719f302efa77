"""Sphinx extension: mark each language's markdown cells so the website can toggle them.

Chapters keep both languages in one notebook. A prose passage is two markdown cells,
English first, tagged ``lang-en`` and ``lang-zh`` in the cell metadata (JupyterLab shows
both cells as ordinary markdown; nothing of this mechanism is visible there).

myst-nb renders a markdown cell straight into the document (it does not wrap cells, so
that headings can open sections). This extension wraps myst-nb's markdown-cell renderer:
every block-level node that a tagged cell produces gets the CSS class ``lang-en`` or
``lang-zh`` (a heading's title gets it too, its section does not). ``_assets/gsbook-lang.js``
then shows English, 中文 or both, and remembers the choice across pages.

Citations. In a notebook a citation is an ordinary markdown link to the references page,
``[Tang et al., 2024](../references.md#tang2024dreamgaussian)``, so JupyterLab shows clean
text. On the website (``source-read``) each such link becomes sphinxcontrib-bibtex's
``{cite:p}`key``` role, which links to the bibliography built from ``references.bib``.
"""

from __future__ import annotations

import json
import re

from docutils import nodes

LANG_TAGS = {"lang-en": "lang-en", "lang-zh": "lang-zh"}


def _cell_lang(token) -> str | None:
    tags = (token.meta.get("metadata") or {}).get("tags") or []
    found = [LANG_TAGS[t] for t in tags if t in LANG_TAGS]
    if len(found) > 1:
        raise ValueError(f"markdown cell {token.meta.get('index')} has both language tags: {tags}")
    return found[0] if found else None


def _wrap(original):
    def render_nb_cell_markdown(self, token):
        lang = _cell_lang(token)
        if lang is None:
            return original(self, token)
        before = {id(n) for n in self.document.findall()}
        original(self, token)
        new = [n for n in self.document.findall() if id(n) not in before]
        new_ids = {id(n) for n in new}
        for node in new:
            if isinstance(node, nodes.section) or not isinstance(node, nodes.Element):
                continue
            parent = node.parent
            if parent is None or id(parent) not in new_ids or isinstance(parent, nodes.section):
                node["classes"].append(lang)
        return None

    render_nb_cell_markdown.__wrapped__ = original
    return render_nb_cell_markdown


_LINK = r"\[[^\]]*\]\((?:\.\./)?references\.md#[A-Za-z0-9_:\-]+\)"
CITE_LINK = re.compile(r"\[[^\]]*\]\((?:\.\./)?references\.md#([A-Za-z0-9_:\-]+)\)")
CITE_GROUP = re.compile(r"\(\s*(%s(?:\s*;\s*%s)*)\s*\)" % (_LINK, _LINK))


def cite_links_to_roles(text: str) -> str:
    """``([A](../references.md#a); [B](../references.md#b))`` → ``{cite:p}`a,b```.

    A link outside parentheses becomes ``{cite:p}`key``` too; the label is the bibtex style's job.
    """
    text = CITE_GROUP.sub(lambda m: "{cite:p}`%s`" % ",".join(CITE_LINK.findall(m.group(1))), text)
    return CITE_LINK.sub(lambda m: "{cite:p}`%s`" % m.group(1), text)


def _source_read(app, docname, source):
    path = app.env.doc2path(docname)
    if not str(path).endswith(".ipynb"):
        return
    nb = json.loads(source[0])
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        new = cite_links_to_roles(text)
        if new != text:
            cell["source"] = new
            changed = True
    if changed:
        source[0] = json.dumps(nb)


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    """Drop repeated <script> entries (jupyter-book registers some inline config scripts twice,
    and a second ``const`` declaration is a JavaScript error on every page)."""
    seen, unique = set(), []
    for js in context.get("script_files", []):
        key = (str(getattr(js, "filename", js) or ""),  # inline scripts: None or ""
               tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("source-read", _source_read)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    from myst_nb.core.render import MditRenderMixin

    if not hasattr(MditRenderMixin.render_nb_cell_markdown, "__wrapped__"):
        MditRenderMixin.render_nb_cell_markdown = _wrap(MditRenderMixin.render_nb_cell_markdown)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
