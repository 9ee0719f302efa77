"""The chapters as source: structure, both languages, clean in JupyterLab, citations resolve.

(Executing them is nbval's job: ``pytest --nbval-lax chapters/``; see run.sh.)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "sphinxext"))
import gsbook_lang  # noqa: E402

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [c["file"] for part in TOC["parts"] for c in part["chapters"] if c["file"].startswith("chapters/")]
BIB_KEYS = set(re.findall(r"@\w+\{([^,]+),", (ROOT / "references.bib").read_text(encoding="utf-8")))
CJK = re.compile(r"[\u4e00-\u9fff]")
# MyST syntax that JupyterLab would show raw: directives, roles, colon fences
RAW_MYST = re.compile(r"```\{|^:::|\{[a-z:]+\}`", re.M)
CITE = re.compile(r"\]\(\.\./references\.md#([^)]+)\)")


def load(doc):
    return nbformat.read(ROOT / f"{doc}.ipynb", as_version=4)


def test_eight_chapters_in_essay_order():
    assert [Path(c).name for c in CHAPTERS] == [
        "00_setup", "01_sds", "02_dreamgaussian", "03_lgm_grm", "04_trellis", "05_numbers", "06_era", "07_open"]
    assert sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb")) == [Path(c).name for c in CHAPTERS]


@pytest.mark.parametrize("doc", CHAPTERS)
def test_committed_without_outputs(doc):
    for cell in load(doc).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{doc}: outputs committed"


@pytest.mark.parametrize("doc", CHAPTERS)
def test_every_passage_in_both_languages(doc):
    nb = load(doc)
    title = nb.cells[0].source
    n = int(Path(doc).name[:2])
    assert title.startswith(f"# §{n} ") and CJK.search(title), "first cell: a bilingual '# §N' title"
    md = [c for c in nb.cells if c.cell_type == "markdown"]
    i = 0
    while i < len(md):
        tags = md[i].metadata.get("tags", [])
        if "lang-en" in tags:
            assert i + 1 < len(md) and "lang-zh" in md[i + 1].metadata.get("tags", []), \
                f"{doc}: English passage without its Chinese pair: {md[i].source[:60]!r}"
            en, zh = md[i].source, md[i + 1].source
            assert not CJK.search(re.sub(r"·.*", "", en)), f"{doc}: Chinese inside an English cell"
            prose = re.sub(r"\$[^$]*\$|\]\([^)]*\)|`[^`]*`", "", zh)          # drop maths, link targets, code
            assert len(CJK.findall(prose)) > 0.2 * len(re.sub(r"\s", "", prose)), \
                f"{doc}: the Chinese cell is mostly not Chinese: {zh[:60]!r}"
            # same citations in both languages
            assert sorted(CITE.findall(en)) == sorted(CITE.findall(zh)), f"{doc}: citations differ"
            i += 2
        elif "lang-zh" in tags:
            pytest.fail(f"{doc}: Chinese passage without an English one before it: {md[i].source[:60]!r}")
        else:
            # untagged markdown cells are headings, written in both languages
            lines = [l for l in md[i].source.splitlines() if l.strip()]
            assert lines and all(l.startswith("#") for l in lines), \
                f"{doc}: untagged prose (tag it lang-en / lang-zh): {md[i].source[:60]!r}"
            assert all(CJK.search(l) and "·" in l for l in lines), f"{doc}: heading not bilingual: {lines}"
            i += 1


@pytest.mark.parametrize("doc", CHAPTERS)
def test_clean_in_jupyterlab_and_citations_resolve(doc):
    for cell in load(doc).cells:
        if cell.cell_type != "markdown":
            continue
        assert not RAW_MYST.search(cell.source), f"{doc}: MyST syntax would show raw in JupyterLab: {cell.source[:80]!r}"
        for key in CITE.findall(cell.source):
            assert key in BIB_KEYS, f"{doc}: cites {key}, which references.bib lacks"


def test_required_references_are_in_the_bibliography():
    for key in ["poole2023dreamfusion", "kerbl2023gaussians", "tang2024dreamgaussian", "yi2024gaussiandreamer",
                "liang2024luciddreamer", "wang2023prolificdreamer", "hong2024lrm", "tang2024lgm", "xu2024grm",
                "li2024instant3d", "shi2024mvdream", "liu2023zero1to3", "jun2023shape", "xiang2025trellis",
                "deitke2023objaverse", "ye2025gsplat", "ho2020ddpm", "song2021ddim", "liu2023rectifiedflow",
                "lipman2023flowmatching", "ho2022cfg"]:
        assert key in BIB_KEYS


def test_every_bibliography_entry_is_cited_somewhere():
    cited = set()
    for doc in CHAPTERS:
        for cell in load(doc).cells:
            cited |= set(CITE.findall(cell.source))
    uncited = BIB_KEYS - cited
    assert not uncited, f"entries nobody cites: {sorted(uncited)}"


def test_cite_links_become_bibtex_roles():
    text = "A ([X et al., 2024](../references.md#a2024); [Y, 2023](../references.md#b2023)) and [Z](../references.md#c)."
    assert gsbook_lang.cite_links_to_roles(text) == "A {cite:p}`a2024,b2023` and {cite:p}`c`."


GSBOOK_IMPORT = re.compile(r"^\s*(?:from\s+(gsbook[\w.]*)\s+import\s+(.+)|import\s+(gsbook[\w.]*)(.*))$", re.M)


@pytest.mark.parametrize("doc", CHAPTERS)
def test_chapters_import_gsbook_one_way(doc):
    """``from gsbook.<package> import Name``: no deep module paths, no renaming of gsbook's names."""
    for cell in load(doc).cells:
        if cell.cell_type != "code":
            continue
        for frm, names, plain, rest in GSBOOK_IMPORT.findall(cell.source):
            line = f"from {frm} import {names}" if frm else f"import {plain}{rest}"
            assert not plain, f"{doc}: `{line}`: import names from a gsbook package instead"
            assert frm.count(".") == 1, f"{doc}: `{line}`: import from the package (gsbook.X), not a module inside it"
            assert " as " not in names, f"{doc}: `{line}`: gsbook's public names are unique; no need to rename"
