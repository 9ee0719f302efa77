"""The book's execution cache (tools/notebooks.py), its use by tools/build_book.py and by the
root conftest (nbval's runs stored for the website). Fast: one 2-cell notebook is executed."""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gsbook import config as gsconfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402
import notebooks  # noqa: E402

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def tiny_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.cells = [
        new_markdown_cell("# §9 tiny · 小"),
        new_code_cell("import os\nx = 6 * 7", metadata={"tags": ["keep-me"], "nbgrader": {"grade": False}}),
        new_code_cell("print(os.environ['GSBOOK_PROFILE'], x)\nx"),
    ]
    return nb


def copy_library(dst: Path) -> Path:
    for folder in ("gsbook", "widgets"):
        shutil.copytree(ROOT / folder, dst / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def test_fingerprint_changes_with_the_library_and_only_then(tmp_path):
    root = copy_library(tmp_path / "repo")
    fp = notebooks.fingerprint(root)
    assert fp == notebooks.fingerprint(root), "the fingerprint is not stable"
    assert len(fp) == 12 and int(fp, 16) >= 0
    (root / "gsbook" / "__pycache__").mkdir(exist_ok=True)
    (root / "gsbook" / "__pycache__" / "junk.py").write_text("# not library code")
    (root / "chapters").mkdir()
    (root / "chapters" / "x.ipynb").write_text("{}")  # notebooks are hashed by jupyter-cache, not here
    assert notebooks.fingerprint(root) == fp
    cfg = root / "gsbook" / "config.py"
    cfg.write_text(cfg.read_text() + "\n# a changed line\n")
    assert notebooks.fingerprint(root) != fp
    widget = sorted((root / "widgets").glob("*.py"))[0]
    before = notebooks.fingerprint(root)
    widget.write_text(widget.read_text() + "\n")
    assert notebooks.fingerprint(root) != before
    weights = sorted((root / "gsbook" / "weights").iterdir())[0]
    before = notebooks.fingerprint(root)
    weights.write_bytes(weights.read_bytes() + b"\0")
    assert notebooks.fingerprint(root) != before


def test_cache_dir_is_per_profile_and_fingerprint_and_prunes_old_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("GSBOOK_CACHE", str(tmp_path))
    base = tmp_path / "notebooks"
    (base / "ci-0123456789ab").mkdir(parents=True)
    (base / "cpu-0123456789ab").mkdir()
    here = notebooks.cache_dir("ci", "abcdefabcdef")
    assert here == base / "ci-abcdefabcdef"
    assert not (base / "ci-0123456789ab").exists(), "the older ci cache was kept"
    assert (base / "cpu-0123456789ab").exists(), "another profile's cache was pruned"
    with pytest.raises(ValueError):
        notebooks.cache_dir("laptop", "abc")


def test_execute_store_and_match_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("GSBOOK_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.ipynb"
    source = tiny_notebook()
    nbformat.write(source, path)
    source = nbformat.read(path, as_version=4)
    lines: list[str] = []
    run = notebooks.execute(path, "ci", log=lines.append)
    assert len(run.cell_seconds) == 2 and lines[0].startswith("[tiny] cell 1/2 ·") and "x = 6 * 7" not in lines[1]
    assert "print(os.environ" in lines[1]
    out = run.nb.cells[2].outputs
    assert out[0].text == "ci 42\n" and out[1].data["text/plain"] == "42"
    assert [c.get("execution_count") for c in run.nb.cells if c.cell_type == "code"] == [1, 2]
    assert [c.metadata for c in run.nb.cells] == [c.metadata for c in source.cells]

    folder = notebooks.store(source, run.nb, profile="ci", executed_by="nbclient", cell_seconds=run.cell_seconds,
                             uri=str(path), doc="tiny", fp="feedfeedfeed")
    assert folder == tmp_path / "cache" / "notebooks" / "ci-feedfeedfeed"
    record = get_cache(str(folder)).match_cache_notebook(source)  # what myst-nb's cache mode does
    assert record.data["executed_by"] == "nbclient" and record.data["profile"] == "ci"
    assert len(record.data["cell_seconds"]) == 2 and record.data["machine"]
    _, merged = get_cache(str(folder)).merge_match_into_notebook(source)
    assert merged.cells[2].outputs[0].text == "ci 42\n"
    assert [c.metadata for c in merged.cells] == [c.metadata for c in source.cells]

    changed = copy.deepcopy(source)
    changed.cells[2].source += "\n1"
    with pytest.raises(KeyError):
        get_cache(str(folder)).match_cache_notebook(changed)
    assert notebooks.lookup(changed, folder) is None
    assert notebooks.lookup(source, folder)["executed_by"] == "nbclient"
    retagged = copy.deepcopy(source)
    retagged.cells[1].metadata["tags"].append("another")
    assert notebooks.lookup(retagged, folder) is None, "cell metadata is part of the match"


def test_a_failing_cell_names_the_chapter_the_cell_and_its_source(tmp_path):
    nb = tiny_notebook()
    nb.cells[2].source = "y = 1\nraise ValueError('broken on purpose')"
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(notebooks.ChapterFailed) as err:
        notebooks.execute(path, "ci", log=None)
    msg = str(err.value)
    assert msg.startswith("[bad] cell 2/2 raised an error: y = 1") and "broken on purpose" in msg


def test_store_refuses_a_notebook_that_is_not_a_run_of_its_source(tmp_path):
    source = tiny_notebook()
    other = copy.deepcopy(source)
    other.cells[1].source = "x = 0"
    with pytest.raises(ValueError, match="does not match"):
        notebooks.store(source, other, profile="ci", executed_by="nbval", cell_seconds=[0, 0], uri="t.ipynb",
                        folder=tmp_path)


def test_assembled_notebook_from_nbval_outputs_keeps_cell_metadata(tmp_path):
    """The root conftest builds the executed notebook from nbval's outputs with this helper."""
    source = tiny_notebook()
    nbval_outputs = {  # as nbval's IPyNbCell.test_outputs holds them
        0: [],
        1: [nbformat.NotebookNode(output_type="stream", name="stdout", text="ci 42\n"),
            nbformat.NotebookNode(output_type="execute_result", metadata={}, data={"text/plain": "42"},
                                  execution_count=None)],
    }
    state = {"version_major": 2, "version_minor": 0, "state": {"abc": {
        "model_name": "IntSliderModel", "model_module": "@jupyter-widgets/controls",
        "model_module_version": "2.0.0", "state": {"value": 3}}}}
    nb = notebooks.assemble(source, nbval_outputs, widget_state=state,
                            language_info={"name": "python", "version": "3.11"})
    assert [c.metadata for c in nb.cells] == [c.metadata for c in source.cells]
    assert [c.source for c in nb.cells] == [c.source for c in source.cells]
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2]
    assert nb.cells[2].outputs[1].execution_count == 2
    assert nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]["abc"]["state"]["value"] == 3
    nbformat.validate(nb)
    # and it is stored where myst-nb finds it
    folder = notebooks.store(source, nb, profile="ci", executed_by="nbval", cell_seconds=[0.1, 0.2],
                             uri=str(tmp_path / "tiny.ipynb"), folder=tmp_path / "c")
    assert get_cache(str(folder)).match_cache_notebook(source).data["executed_by"] == "nbval"
    assert source.cells[1].get("execution_count") is None, "the source was modified"


def load_root_conftest():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gsbook_root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_root_conftest_reads_widget_state_from_a_running_nbval_kernel(tmp_path):
    """What the conftest does after a chapter's last cell, before nbval stops the kernel."""
    from nbval.kernel import RunningKernel

    conftest = load_root_conftest()
    kernel = RunningKernel("python3", cwd=str(tmp_path))
    try:
        assert conftest._kernel_widget_state(kernel) is None  # no ipywidgets imported: no state
        msg_id = kernel.execute_cell_input("import ipywidgets as W\ns = W.IntSlider(value=3)\n"
                                           "gone = W.IntSlider(value=4); gone.close()", allow_stdin=False)
        kernel.await_reply(msg_id, timeout=60)
        state = conftest._kernel_widget_state(kernel)
        info = conftest._kernel_language_info(kernel)
        assert kernel.is_alive()
    finally:
        kernel.stop()
    models = [m for m in state["state"].values() if m["model_name"] == "IntSliderModel"]
    assert [m["state"]["value"] for m in models] == [3], "live widgets only (closed ones are gone)"
    assert state["version_major"] == 2 and info["name"] == "python"
    nb = notebooks.assemble(tiny_notebook(), {}, widget_state=state, language_info=info)
    nbformat.validate(nb)


@pytest.mark.parametrize("profile", gsconfig.PROFILES)
def test_build_book_timeout_is_gsbook_configs(profile, tmp_path):
    assert build_book.cell_timeout(profile) == gsconfig.cell_timeout(profile)
    cfg = build_book.write_config(profile, tmp_path, cache=tmp_path / "c")
    import yaml

    execute = yaml.safe_load(cfg.read_text())["execute"]
    assert execute["timeout"] == gsconfig.cell_timeout(profile)
    assert execute["execute_notebooks"] == "cache" and execute["cache"] == str(tmp_path / "c")


def test_no_timeout_numbers_outside_gsbook_config():
    for path in ("run.sh", "tools/build_book.py", "tools/notebooks.py", "conftest.py", "_config.yml"):
        text = (ROOT / path).read_text()
        for n in gsconfig.CELL_TIMEOUT_S.values():
            assert f"timeout={n}" not in text.replace(" ", "") and f"timeout:{n}" not in text.replace(" ", ""), \
                f"{path} repeats a cell timeout ({n} s); they live in gsbook/config.py"


def test_chapters_come_from_the_toc():
    assert notebooks.chapters()[0] == "chapters/00_setup" and len(notebooks.chapters()) == 8


# --------------------------------------------------------------------------- the gallery (tools/make_gallery.py)
def fake_harness_assets(root: Path) -> Path:
    """What ``benchmarks/harness.py --assets DIR`` writes, in miniature: 2 generators × 2 prompts,
    each folder with gaussians.splat (gsbook's own writer), turntable.png (a row of 8 views of the
    Gaussians, a second row of the mesh for DreamGaussian) and result.json; harness.json beside DIR."""
    import json

    from PIL import Image

    from gsbook.io import save_splat
    from gsbook.world import make_asset

    assets = root / "assets"
    for key, method, rows in (("trellis", "trellis", 1), ("dreamgaussian", "dreamgaussian", 2)):
        for n, prompt in enumerate(("a blue box", "a pink cone")):
            folder = assets / key / "-".join(prompt.split())
            folder.mkdir(parents=True)
            g = make_asset(prompt, seed=n).gaussians()
            save_splat(folder / "gaussians.splat", g[:50 + 10 * n])          # small: 50 / 60 Gaussians
            Image.new("RGB", (8 * 96, 96 * rows), (255, 255, 255)).save(folder / "turntable.png")
            (folder / "result.json").write_text(json.dumps({
                "method": method, "prompt": prompt, "seed": 0, "profile": "ci", "device": "cpu",
                "seconds": {"load": 0.5, "run": 2.0 + n, "judge": 0.1, "write": 0.2, "total": 2.8 + n},
                "counts": {"gaussians": 50 + 10 * n},
                "turntable": {"views": 8, "width": 96, "height": 96, "rows": ["gaussians", "mesh"][:rows]},
                "judge": {"gaussians": {"scores": {"category": 0.75, "colour": 1.0, "part_colour": 1.0, "all": 0.75,
                                                   "n": 8}}}}))
    (root / "harness.json").write_text(json.dumps({
        "profile": "ci", "hardware": "a test machine", "threads": 2, "date": "2026-01-02",
        "command": "python benchmarks/harness.py --assets DIR", "prompts": ["a pink cone", "a blue box"], "rows": []}))
    return assets


def test_make_gallery_copies_each_result_and_writes_the_manifest_and_the_page(tmp_path):
    import json

    from PIL import Image

    import make_gallery

    assets = fake_harness_assets(tmp_path)
    page = tmp_path / "gallery.md"
    page.write_text("# Gallery · 作品集\n\ntext\n\n```{raw} html\n" + make_gallery.MARKER + "\n```\n\nmore text\n",
                    encoding="utf-8")
    out = tmp_path / "site" / "gallery"
    assert make_gallery.main(["--assets", str(assets), "--out", str(out), "--page", str(page)]) == 0

    manifest = json.loads((out / "gallery.json").read_text(encoding="utf-8"))
    assert manifest == make_gallery.read_manifest(out)
    assert manifest["prompts"] == ["a pink cone", "a blue box"], "the harness' prompt order"
    assert [g["key"] for g in manifest["generators"]] == ["dreamgaussian", "trellis"], "CONTENDERS' order"
    assert manifest["generators"][0] == {"key": "dreamgaussian", "label": "DreamGaussian, both stages",
                                         "label_zh": "DreamGaussian 两个阶段"}
    assert manifest["source"] == {"profile": "ci", "hardware": "a test machine", "threads": 2, "date": "2026-01-02",
                                  "command": "python benchmarks/harness.py --assets DIR"}
    assert manifest["command"].startswith("python tools/make_gallery.py --assets ")
    items = manifest["items"]
    assert [(i["prompt"], i["key"]) for i in items] == [("a pink cone", "dreamgaussian"), ("a pink cone", "trellis"),
                                                         ("a blue box", "dreamgaussian"), ("a blue box", "trellis")]
    cone = items[1]
    assert cone["splat"] == "trellis/a-pink-cone.splat" and cone["primitives"] == 60
    assert cone["judge"] == {"category": 0.75, "colour": 1.0, "part_colour": 1.0, "n": 8}
    assert cone["seconds"] == {"generate": 3.0, "load": 0.5, "total": 3.8}       # wall less loading
    assert cone["label_zh"] == "Trellis" and cone["profile"] == "ci"
    for item in items:
        src = assets / item["key"] / "-".join(item["prompt"].split())
        assert (out / item["splat"]).read_bytes() == (src / "gaussians.splat").read_bytes()
        assert item["bytes"] == 32 * item["primitives"]
        thumb = Image.open(out / item["thumbnail"])
        assert thumb.size == (8 * make_gallery.TILE, make_gallery.TILE), "the first row, tiles scaled to 64 px"
    assert sorted(p.name for p in out.iterdir()) == ["dreamgaussian", "gallery.json", "trellis"]

    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Gallery · 作品集\n\ntext\n\n```{raw} html\n") and text.endswith("```\n\nmore text\n")
    assert 'id="gsbook-gallery-viewer"' in text and text.count('class="gsbook-splat-viewer"') == 1, "one viewer"
    assert '"url":"_static/gallery/dreamgaussian/a-pink-cone.splat"' in text, "it opens on the first result"
    assert text.count('data-splat="_static/gallery/') == 4 and "_static/gallery.js" in text
    assert 'class="lang-en"' in text and 'class="lang-zh"' in text and "a test machine" in text
    assert make_gallery.is_current(page, out)
    assert make_gallery.main(["--out", str(out), "--page", str(page)]) == 0 and page.read_text(encoding="utf-8") == text

    # fewer prompts; a folder that is not a gallery is left alone; no manifest: the page still has its block
    assert make_gallery.main(["--assets", str(assets), "--out", str(out), "--page", str(page), "--prompts", "1"]) == 0
    assert make_gallery.read_manifest(out)["prompts"] == ["a pink cone"]
    assert not (out / "trellis" / "a-blue-box.splat").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    assert make_gallery.main(["--assets", str(assets), "--out", str(tmp_path / "other"), "--page", str(page)]) == 2
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"
    make_gallery.write_page(None, page)
    assert "No gallery yet" in page.read_text(encoding="utf-8") and make_gallery.FENCE.search(page.read_text())


def test_the_committed_gallery_page_is_current():
    """gallery.md's generated block embeds the viewer's start-up code (gsbook.viewer): a change there
    needs ``python tools/make_gallery.py``, which rewrites the block from the committed manifest."""
    import make_gallery

    manifest = make_gallery.read_manifest()
    assert manifest is None or all((make_gallery.OUT / i[k]).is_file() for i in manifest["items"]
                                   for k in ("splat", "thumbnail"))
    assert make_gallery.is_current(), "gallery.md is stale: run python tools/make_gallery.py"
