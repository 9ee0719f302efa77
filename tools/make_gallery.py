"""The site's gallery: every generator's results on the same prompts, one click from a 3D viewer.

    python benchmarks/harness.py --assets out/harness/assets --out out/harness   # the results (cpu: an hour or so)
    python tools/make_gallery.py --assets out/harness/assets                     # → _assets/gallery/ + gallery.md
    python tools/make_gallery.py                                                 # gallery.md again, from the manifest

``--assets DIR`` reads what ``benchmarks/harness.py --assets DIR`` writes: one ``gsbook
generate`` output folder per generator and prompt, ``DIR/<generator key>/<prompt words>/``
(``gaussians.splat``, ``turntable.png``, ``result.json``; :func:`gsbook.generate.write_result`).
For each it copies into ``_assets/gallery/`` (committed; Sphinx serves it as ``_static/gallery/``):

* ``<key>/<prompt-words>.splat``, the Gaussians as they are (32 bytes each), which the page's
  viewer loads by URL;
* ``<key>/<prompt-words>.jpg``, a thumbnail: the first row of ``turntable.png`` (the Gaussians
  from the 8 azimuths the judge reads), tiles at most 64 px, as one strip. The grid shows its first
  tile and turns through the others while the pointer rests on it;

and writes ``_assets/gallery/gallery.json``, the manifest: per asset the prompt, the generator
(its key, and its English and Chinese labels from :data:`gsbook.harness.CONTENDERS`), the number
of primitives, the judge's category / colour / part-colour scores over the 8 views, the seconds
(``generate`` is wall time less model loading, as §5's ratios use; ``total`` also counts loading,
judging and writing), seed and profile; and, once, where the results come from: profile,
hardware, threads, date and command of the harness run (from ``harness.json`` beside ``DIR``,
or ``--harness``), and the command that rebuilt the gallery.

The page. ``gallery.md`` is written by hand except for one block, the ``{raw} html`` fence that
starts with the marker comment :data:`MARKER`: this tool writes it from the manifest. It holds the
3D viewer (:func:`gsbook.viewer.viewer_html`, the same snippet and start-up code as every viewer
in the book, opening on the first asset at the book's camera) and the grid as plain HTML (rows:
prompts, columns: generators; each thumbnail a button carrying its ``.splat`` URL and captions).
The grid is generated here rather than drawn in the browser from ``gallery.json`` so that the
page shows its pictures and numbers with no script at all, and so that the viewer snippet comes
from :mod:`gsbook.viewer` itself rather than from a second copy in JavaScript. ``_assets/gallery.js``
(hand-written, small) only makes the buttons load their scene into the one viewer: browsers allow
about 16 WebGL contexts per page, so not one viewer per asset. Without a manifest the block says
how to make one, and the page still builds.

Because the block embeds the viewer's start-up code, it must be rewritten when
:mod:`gsbook.viewer` changes: ``python tools/make_gallery.py`` (no ``--assets``: from the committed
manifest, in a second) does it, ``--check`` says whether it is needed (``tests/test_book_tools.py``
runs it). ``--prompts N`` keeps the first N prompts, ``--only KEY`` some generators (repeatable),
to keep the committed folder small (``--max-mb``, default 5, is checked).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gsbook.harness import CONTENDERS  # noqa: E402
from gsbook.viewer import ViewerCamera, viewer_html  # noqa: E402

OUT = ROOT / "_assets" / "gallery"
PAGE = ROOT / "gallery.md"
MANIFEST = "gallery.json"
STATIC = "_static/gallery/"          # where the site serves OUT (gallery.md sits at the site's root)
MARKER = "<!-- gsbook-gallery: written by tools/make_gallery.py from _assets/gallery/gallery.json; do not edit -->"
TILE = 64                            # thumbnail tiles: at most this many pixels a side
THUMB = 100                          # … shown this large in the grid (CSS pixels)
VIEWER_HEIGHT = 380
FENCE = re.compile(r"```\{raw\} html\n" + re.escape(MARKER) + r".*?\n```", re.S)


class GalleryError(ValueError):
    """The assets folder, the page or the manifest is not what this tool expects."""


# ============================================================================== reading the harness' folders
def _words(prompt: str) -> str:
    return "-".join(prompt.split())


def _contender(key: str) -> tuple[str, str]:
    c = CONTENDERS.get(key)
    return (c.label or key, c.label_zh or c.label or key) if c else (key, key)


def _harness_header(assets: Path, harness: Path | None) -> dict:
    path = harness or assets.parent / "harness.json"
    if not path.is_file():
        if harness is not None:
            raise GalleryError(f"--harness {harness}: no such file")
        return {}
    record = json.loads(path.read_text(encoding="utf-8"))
    return {k: record.get(k) for k in ("profile", "hardware", "threads", "date", "command", "prompts")}


def find_assets(assets: Path, prompts: int | None = None, only: list[str] | None = None,
                order: list[str] | None = None) -> list[tuple[str, str, Path]]:
    """``[(prompt, key, folder)]`` of every result under ``assets``, prompts in ``order`` (the
    harness' own; else as found), generators in :data:`CONTENDERS`' order (others after, by name)."""
    if not assets.is_dir():
        raise GalleryError(f"--assets {assets}: no such folder (benchmarks/harness.py --assets DIR writes it)")
    found = []
    for result in sorted(assets.glob("*/*/result.json")):
        folder = result.parent
        key = folder.parent.name
        if only and key not in only:
            continue
        prompt = json.loads(result.read_text(encoding="utf-8"))["prompt"]
        if _words(prompt) != folder.name:
            raise GalleryError(f"{folder}: its result.json is for {prompt!r}, not for the folder's prompt")
        missing = [n for n in ("gaussians.splat", "turntable.png") if not (folder / n).is_file()]
        if missing:
            raise GalleryError(f"{folder}: {', '.join(missing)} missing (a gsbook generate folder holds them)")
        found.append((prompt, key, folder))
    if not found:
        raise GalleryError(f"--assets {assets}: no DIR/<generator>/<prompt words>/result.json in it")
    seen = list(dict.fromkeys(p for p, _, _ in found))
    order = [p for p in (order or []) if p in seen] + [p for p in seen if p not in (order or [])]
    keep = order[:prompts] if prompts else order
    rank = {k: i for i, k in enumerate(CONTENDERS)}
    found = [f for f in found if f[0] in keep]
    return sorted(found, key=lambda f: (keep.index(f[0]), rank.get(f[1], len(rank)), f[1]))


def thumbnail(turntable: Path, target: Path, views: int, rows: int) -> tuple[int, int]:
    """The first row of ``turntable`` (``views`` tiles side by side, ``rows`` rows), tiles scaled
    down to at most :data:`TILE` pixels, saved to ``target``; returns its ``(width, height)``."""
    from PIL import Image

    image = Image.open(turntable).convert("RGB")
    tile = image.height // max(rows, 1)
    if image.width != views * tile:
        raise GalleryError(f"{turntable}: {image.size} is not {views} square views a row")
    strip = image.crop((0, 0, image.width, tile))
    if tile > TILE:
        strip = strip.resize((views * TILE, TILE), Image.LANCZOS)
    strip.save(target, quality=90, optimize=True)     # JPEG: a quarter of the PNG's bytes, no visible loss at this size
    return strip.size


def build(assets: Path, out: Path = OUT, *, harness: Path | None = None, prompts: int | None = None,
          only: list[str] | None = None, command: str = "") -> dict:
    """Copy every result's ``.splat`` and thumbnail from ``assets`` into ``out`` (emptied first)
    and write ``out/gallery.json``; returns the manifest."""
    assets, out = Path(assets), Path(out)
    header = _harness_header(assets, harness)
    entries = find_assets(assets, prompts, only, header.get("prompts"))
    if out.exists():
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise GalleryError(f"{out} holds files but no {MANIFEST}: not a gallery folder, left alone")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    items = []
    for prompt, key, folder in entries:
        result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        (out / key).mkdir(exist_ok=True)
        splat, thumb = f"{key}/{_words(prompt)}.splat", f"{key}/{_words(prompt)}.jpg"
        shutil.copyfile(folder / "gaussians.splat", out / splat)
        turn = result.get("turntable", {})
        size = thumbnail(folder / "turntable.png", out / thumb, int(turn.get("views", 8)), len(turn.get("rows", [0])))
        seconds = result.get("seconds", {})
        label, label_zh = _contender(key)
        scores = result["judge"]["gaussians"]["scores"]
        generate = seconds.get("total", 0.0) - sum(seconds.get(k, 0.0) for k in ("load", "judge", "write"))
        items.append({
            "prompt": prompt, "key": key, "method": result.get("method", key), "label": label, "label_zh": label_zh,
            "splat": splat, "thumbnail": thumb, "thumbnail_views": int(turn.get("views", 8)),
            "thumbnail_size": list(size),
            "primitives": int(result["counts"]["gaussians"]), "bytes": (out / splat).stat().st_size,
            "judge": {k: scores[k] for k in ("category", "colour", "part_colour", "n") if k in scores},
            "seconds": {"generate": round(generate, 3), "load": round(seconds.get("load", 0.0), 3),
                        "total": round(seconds.get("total", 0.0), 3)},
            "profile": result.get("profile"), "device": result.get("device"), "seed": result.get("seed"),
        })
    profiles = sorted({i["profile"] for i in items if i["profile"]})
    manifest = {
        "what": "every generator's results on the same prompts (tools/make_gallery.py)",
        "source": {"profile": header.get("profile") or ", ".join(profiles) or None,
                   "hardware": header.get("hardware"), "threads": header.get("threads"),
                   "date": header.get("date"), "command": header.get("command")},
        "command": command or f"python tools/make_gallery.py --assets {assets}",
        "made": dt.date.today().isoformat(),
        "prompts": list(dict.fromkeys(i["prompt"] for i in items)),
        "generators": [{"key": k, "label": _contender(k)[0], "label_zh": _contender(k)[1]}
                       for k in dict.fromkeys(i["key"] for i in items)],
        "items": items,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def folder_bytes(out: Path = OUT) -> int:
    return sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())


# ============================================================================== the page
STYLE = f"""<style>
.gsbook-gallery-now {{ margin: .2em 0 .4em; font-size: .92em; min-height: 1.4em }}
.gsbook-gallery-now span {{ display: block }}
.gsbook-gallery-grid {{ border-collapse: collapse; margin: 1em 0 .5em; width: auto; }}
.gsbook-gallery-grid th, .gsbook-gallery-grid td {{ border: none; padding: 2px 4px; vertical-align: top;
  text-align: center; background: none }}
.gsbook-gallery-grid thead th {{ font-size: .8em; font-weight: 600; line-height: 1.25; width: {THUMB + 12}px;
  vertical-align: bottom }}
.gsbook-gallery-grid thead th span {{ display: block }}
.gsbook-gallery-grid thead th .lang-zh {{ font-weight: normal; color: #555; word-break: keep-all }}
html[data-gsbook-lang="zh"] .gsbook-gallery-grid thead th .lang-zh {{ font-weight: 600; color: inherit }}
.gsbook-gallery-grid th.gsbook-gallery-prompt {{ text-align: left; font-size: .88em; font-weight: 600;
  padding: .7em 4px .15em; border-bottom: 1px solid #e3e3e3 }}
.gsbook-gallery-item {{ display: block; margin: 0 auto; padding: 3px; border: 2px solid transparent;
  border-radius: 6px; background: #fff; cursor: pointer; font: inherit; color: inherit }}
.gsbook-gallery-item:hover {{ border-color: #c9d6e8 }}
.gsbook-gallery-item[aria-pressed="true"] {{ border-color: #2f6db5 }}
.gsbook-gallery-item:focus-visible {{ outline: 2px solid #2f6db5; outline-offset: 1px }}
.gsbook-gallery-thumb {{ display: block; width: {THUMB}px; height: {THUMB}px; overflow: hidden; margin: 0 auto }}
.gsbook-gallery-thumb img {{ display: block; height: {THUMB}px; width: auto; max-width: none; margin: 0 }}
.gsbook-gallery-item:hover .gsbook-gallery-thumb img {{ animation: gsbook-gallery-turn var(--turn, 2.4s)
  steps(var(--views, 8), jump-none) infinite }}
@keyframes gsbook-gallery-turn {{ to {{ transform: translateX(calc(-1px * {THUMB} * (var(--views, 8) - 1))) }} }}
.gsbook-gallery-score {{ display: block; font-size: .78em; line-height: 1.3; color: #333; white-space: nowrap;
  font-variant-numeric: tabular-nums }}
.gsbook-gallery-score + .gsbook-gallery-score {{ color: #666 }}
.gsbook-gallery-none {{ color: #999 }}
.gsbook-gallery-source {{ font-size: .82em; color: #555 }}
.gsbook-gallery-source span {{ display: block; overflow-wrap: anywhere }}
</style>"""


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 100 else f"{s:,.0f} s"


def _captions(item: dict) -> tuple[str, str]:
    j, s = item["judge"], item["seconds"]["generate"]
    en = (f"{item['prompt']} · {item['label']} · {item['primitives']:,} Gaussians · the judge reads category "
          f"{_pct(j['category'])}, colour {_pct(j['colour'])} of {j.get('n', 8)} views · {_seconds(s)} "
          f"({item['profile']} profile)")
    zh = (f"{item['prompt']} · {item['label_zh']} · {item['primitives']:,} 个高斯 · 评判模型在 {j.get('n', 8)} 个视角中"
          f"读出品类 {_pct(j['category'])}、颜色 {_pct(j['colour'])} · {_seconds(s)}（{item['profile']} 档位）")
    return en, zh


def _bilingual(en: str, zh: str, tag: str = "span") -> str:
    if en == zh:
        return f"<{tag}>{html.escape(en)}</{tag}>"
    return f'<{tag} class="lang-en">{html.escape(en)}</{tag}><{tag} class="lang-zh">{html.escape(zh)}</{tag}>'


def _short(label: str) -> str:
    """The grid's column heading: the label less its bracketed remark ("LGM (text → …)" → "LGM")."""
    return re.sub(r"\s*[(（].*[)）]\s*$", "", label) or label


def _button(item: dict, first: bool) -> str:
    en, zh = _captions(item)
    j = item["judge"]
    attrs = {"type": "button", "class": "gsbook-gallery-item", "data-splat": STATIC + item["splat"],
             "data-en": en, "data-zh": zh, "title": en, "aria-pressed": "true" if first else "false",
             "style": f"--views:{item.get('thumbnail_views', 8)}"}
    a = " ".join(f'{k}="{html.escape(str(v))}"' for k, v in attrs.items())
    alt = f"{item['prompt']}, {item['label']}"
    return (f'<button {a}><span class="gsbook-gallery-thumb"><img src="{STATIC}{html.escape(item["thumbnail"])}" '
            f'alt="{html.escape(alt)}" loading="lazy" width="{THUMB * item.get("thumbnail_views", 8)}" '
            f'height="{THUMB}"></span>'
            f'<span class="gsbook-gallery-score">{_pct(j["category"])} / {_pct(j["colour"])}</span>'
            f'<span class="gsbook-gallery-score">{_seconds(item["seconds"]["generate"])}</span></button>')


def render_block(manifest: dict | None) -> str:
    """The page's generated block (without its fence): the viewer, the grid and the sources; or,
    with no manifest, a note saying how to make one."""
    if not manifest or not manifest.get("items"):
        note = ("No gallery yet: run benchmarks/harness.py --assets DIR, then tools/make_gallery.py --assets DIR.",
                "还没有作品集：先运行 benchmarks/harness.py --assets DIR，再运行 tools/make_gallery.py --assets DIR。")
        return f'{MARKER}\n<div class="gsbook-gallery gsbook-gallery-empty"><p>{_bilingual(*note)}</p></div>'
    items = manifest["items"]
    first = items[0]
    keys = [g["key"] for g in manifest["generators"]]
    by = {(i["prompt"], i["key"]): i for i in items}
    en, zh = _captions(first)
    viewer = viewer_html(url=STATIC + first["splat"], library="site", width="100%", height=VIEWER_HEIGHT,
                         camera=ViewerCamera(), element_id="gsbook-gallery-viewer").strip()
    head = "".join(f"<th>{_bilingual(_short(g['label']), _short(g['label_zh']))}</th>" for g in manifest["generators"])
    body = []
    for prompt in manifest["prompts"]:
        body.append(f'<tr><th class="gsbook-gallery-prompt" colspan="{len(keys)}" scope="colgroup">'
                    f"{html.escape(prompt)}</th></tr>")
        cells = [f"<td>{_button(by[prompt, k], by[prompt, k] is first)}</td>" if (prompt, k) in by
                 else '<td class="gsbook-gallery-none">—</td>' for k in keys]
        body.append("<tr>" + "".join(cells) + "</tr>")
    src = manifest.get("source", {})
    where = src.get("hardware") or "hardware not recorded"          # gsbook.recipes.hardware(): CPU, threads, torch
    where_zh = src.get("hardware") or "未记录硬件"
    harness = src.get("command") or "python benchmarks/harness.py --assets DIR"
    source_en = (f"Results: {src.get('profile') or '?'} profile, {where}, {src.get('date') or '?'}: "
                 f"{harness}. Gallery: {manifest['command']}.")
    source_zh = (f"结果：{src.get('profile') or '?'} 档位，{where_zh}，{src.get('date') or '?'}："
                 f"{harness}。作品集：{manifest['command']}。")
    lines = [
        MARKER,
        STYLE,
        '<div class="gsbook-gallery">',
        f'<p class="gsbook-gallery-now" aria-live="polite">{_bilingual(en, zh)}</p>',
        viewer,
        '<table class="gsbook-gallery-grid">',
        f"<thead><tr>{head}</tr></thead>",
        "<tbody>", *body, "</tbody>",
        "</table>",
        f'<p class="gsbook-gallery-source">{_bilingual(source_en, source_zh)}</p>',
        "</div>",
        f'<script src="{STATIC.rsplit("gallery/", 1)[0]}gallery.js"></script>',
    ]
    text = "\n".join(line for part in lines for line in part.splitlines() if line.strip())
    if "```" in text:
        raise GalleryError("the generated block would close its own fence")
    return text


def write_page(manifest: dict | None, page: Path = PAGE) -> bool:
    """Put :func:`render_block` into ``page``'s generated fence; returns whether the page changed."""
    text = Path(page).read_text(encoding="utf-8")
    if len(FENCE.findall(text)) != 1:
        raise GalleryError(f"{page}: expected one ```{{raw}} html fence starting with the marker {MARKER!r}")
    new = FENCE.sub(lambda _: "```{raw} html\n" + render_block(manifest) + "\n```", text)
    if new != text:
        Path(page).write_text(new, encoding="utf-8")
    return new != text


def read_manifest(out: Path = OUT) -> dict | None:
    path = Path(out) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def is_current(page: Path = PAGE, out: Path = OUT) -> bool:
    """Whether ``page``'s block is what the manifest in ``out`` (and the viewer's code) gives now."""
    text = Path(page).read_text(encoding="utf-8")
    return ("```{raw} html\n" + render_block(read_manifest(out)) + "\n```") in text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="See the module docstring: python -m pydoc tools/make_gallery.py")
    ap.add_argument("--assets", type=Path, help="benchmarks/harness.py --assets DIR (without it: rewrite the page "
                                                "from the committed manifest)")
    ap.add_argument("--harness", type=Path, help="the run's harness.json (default: DIR/../harness.json)")
    ap.add_argument("--prompts", type=int, help="keep the first N prompts")
    ap.add_argument("--only", action="append", help="keep these generators (repeatable)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--page", type=Path, default=PAGE)
    ap.add_argument("--max-mb", type=float, default=5.0, help="fail when the folder grows past this (MB)")
    ap.add_argument("--check", action="store_true", help="only say whether the page is current (exit 1 if not)")
    a = ap.parse_args(argv)
    try:
        if a.check:
            ok = is_current(a.page, a.out)
            print(f"{a.page}: {'current' if ok else 'stale: run python tools/make_gallery.py'}")
            return 0 if ok else 1
        if not a.page.is_file():
            raise GalleryError(f"--page {a.page}: no such page")
        if a.assets is not None:
            opts = [f"--assets {shlex.quote(str(a.assets))}"] + (
                [f"--harness {shlex.quote(str(a.harness))}"] if a.harness else []) + (
                [f"--prompts {a.prompts}"] if a.prompts else []) + [f"--only {k}" for k in a.only or []] + (
                [f"--max-mb {a.max_mb:g}"] if a.max_mb != ap.get_default("max_mb") else [])
            manifest = build(a.assets, a.out, harness=a.harness, prompts=a.prompts, only=a.only,
                             command="python tools/make_gallery.py " + " ".join(opts))
            size = folder_bytes(a.out)
            print(f"{a.out}: {len(manifest['items'])} results ({len(manifest['prompts'])} prompts × "
                  f"{len(manifest['generators'])} generators), {size / 1e6:.2f} MB")
            if size > a.max_mb * 1e6:
                raise GalleryError(f"{a.out} is {size / 1e6:.2f} MB, over --max-mb {a.max_mb:g}: keep fewer "
                                   "--prompts or --only some generators")
        else:
            manifest = read_manifest(a.out)
        changed = write_page(manifest, a.page)
        print(f"{a.page}: {'rewritten' if changed else 'unchanged'}")
    except GalleryError as e:
        print(f"[make_gallery] {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
