"""gsbook.viewer without a browser: the camera, the scene it carries, the snippet, the page beside
its files, the local server, and where the JavaScript comes from (``tests/site/test_splat_viewer.py``
drives the same pages in Chromium).

A fake vendor folder (``GSBOOK_VENDOR``) stands in for ``_vendor/`` so that nothing here needs npm."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from gsbook.cameras import orbit
from gsbook.gaussians import Gaussians, init_ball
from gsbook.io import save_ply, save_splat, splat_bytes
from gsbook.viewer import (LIBRARY_FILES, VIEW_PAGE, ViewerAssetsMissing, ViewerCamera, library_files, scene_payload,
                           serve_folder, viewer_html, write_viewer_page)

ROOT = Path(__file__).resolve().parents[1]


def ball(n: int = 64, seed: int = 0) -> Gaussians:
    return init_ball(n, 0.4, generator=torch.Generator().manual_seed(seed), device="cpu")


@pytest.fixture()
def fake_vendor(tmp_path, monkeypatch) -> Path:
    """A vendor folder with stand-in files (their contents name them)."""
    vendor = tmp_path / "vendor"
    for name in LIBRARY_FILES + ("splats/LICENSE.gaussian-splats-3d.txt", "splats/LICENSE.three.txt"):
        (vendor / name).parent.mkdir(parents=True, exist_ok=True)
        (vendor / name).write_text(f"// stand-in for {name}\n")
    monkeypatch.setenv("GSBOOK_VENDOR", str(vendor))
    return vendor


def options(html: str) -> dict:
    return json.loads(re.search(r'class="gsbook-splat-options">(.*?)</script>', html, re.S).group(1))


def inline_bytes(html: str) -> bytes:
    return base64.b64decode(re.search(r'class="gsbook-splat-data">(.*?)</script>', html, re.S).group(1))


# ============================================================================== the camera
@pytest.mark.parametrize("elevation, azimuth", [(20.0, 0.0), (35.0, 120.0), (-10.0, 270.0)])
def test_camera_starts_where_the_books_orbit_camera_sits(elevation, azimuth):
    cam = orbit(elevation, azimuth, 2.5, 49.1, 64, 64, device="cpu")
    R, t = cam.viewmats[0, :3, :3], cam.viewmats[0, :3, 3]
    centre = -(R.T @ t)                                   # world→camera inverted: the camera centre
    got = ViewerCamera(elevation, azimuth).position()
    assert torch.allclose(torch.tensor(got), centre, atol=1e-5)
    moved = ViewerCamera(elevation, azimuth, target=(0.0, 0.5, 0.0)).to_json()
    assert moved["position"][1] == pytest.approx(got[1] + 0.5) and moved["target"] == [0.0, 0.5, 0.0]
    assert moved["fovy"] == 49.1 and moved["up"] == [0.0, 1.0, 0.0]


def test_camera_refuses_impossible_settings():
    with pytest.raises(ValueError, match="radius"):
        ViewerCamera(radius=0).position()
    with pytest.raises(ValueError, match="fovy"):
        ViewerCamera(fovy=200).position()


# ============================================================================== the scene
def test_payload_of_gaussians_is_the_splat_file(tmp_path):
    g = ball()
    data, fmt, count = scene_payload(g)
    save_splat(tmp_path / "g.splat", g)
    assert fmt == "splat" and count == 64 and data == (tmp_path / "g.splat").read_bytes() == splat_bytes(g)
    assert scene_payload(tmp_path / "g.splat") == (data, "splat", 64)
    assert scene_payload(data) == (data, "splat", 64)


def test_payload_of_a_ply_is_the_file_and_its_header_count(tmp_path):
    save_ply(tmp_path / "g.ply", ball(37))
    raw = (tmp_path / "g.ply").read_bytes()
    assert scene_payload(tmp_path / "g.ply") == (raw, "ply", 37)
    assert scene_payload(raw, format="ply") == (raw, "ply", 37)


def test_payload_refuses_what_no_viewer_reads(tmp_path):
    empty = Gaussians(torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 1, 3))
    with pytest.raises(ValueError, match="no Gaussians"):
        scene_payload(empty)
    (tmp_path / "g.glb").write_bytes(b"glTF")
    with pytest.raises(ValueError, match=r"\.splat and \.ply"):
        scene_payload(tmp_path / "g.glb")
    (tmp_path / "fake.ply").write_bytes(b"not a ply at all")
    with pytest.raises(ValueError, match="not a 3DGS .ply"):
        scene_payload(tmp_path / "fake.ply")
    with pytest.raises(ValueError, match="32-byte"):
        scene_payload(b"x" * 33)
    with pytest.raises(ValueError, match="format"):
        scene_payload(b"x" * 32, format="glb")


# ============================================================================== the snippet
def test_snippet_carries_the_scene_and_the_books_camera_and_no_network():
    g = ball()
    html = viewer_html(g, width=320, height=240, element_id="v1", caption="a <ball>")
    opts = options(html)
    assert opts["library"] == "site" and opts["format"] == "splat" and "url" not in opts
    assert opts["camera"] == ViewerCamera().to_json()
    assert inline_bytes(html) == splat_bytes(g)
    assert 'id="v1"' in html and 'data-count="64"' in html and "64 Gaussians" in html
    assert "a &lt;ball&gt;" in html                          # the caption is escaped
    assert "width:320px" in html and "height:240px" in html
    assert "gsbookStartSplatViewer(document.getElementById(\"v1\"))" in html
    assert "http://" not in html and "https://" not in html   # everything from the page or the site
    assert "sharedMemoryForWorkers: false" in html           # no cross-origin isolation needed


def test_snippet_reads_a_url_or_leaves_the_start_to_the_page():
    html = viewer_html(url="gaussians.ply", library="viewer/", width="100%", height="75vh", allow_query=True)
    opts = options(html)
    assert opts == {**opts, "url": "gaussians.ply", "format": "ply", "library": "viewer/", "query": True}
    assert 'class="gsbook-splat-data"' not in html and "width:100%" in html and "height:75vh" in html
    live = viewer_html(ball(), library="global", script=False)
    assert options(live)["library"] == "global" and "<script>" not in live


@pytest.mark.parametrize("kwargs, says", [
    ({}, "not both or neither"),
    ({"scene": b"x" * 32, "url": "a.splat"}, "not both or neither"),
    ({"url": "scene.glb"}, ".splat and .ply"),
    ({"url": "a.splat", "library": "lib"}, "ending in '/'"),
    ({"url": "a.splat", "width": 8}, "at least 16"),
    ({"url": "a.splat", "height": "50%; color: red"}, "CSS length"),
    ({"url": "a.splat", "background": "red;x"}, "CSS colour"),
])
def test_snippet_refuses_bad_settings(kwargs, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        viewer_html(**kwargs)


# ============================================================================== the JavaScript files
def test_library_files_name_the_command_that_fetches_them(tmp_path, monkeypatch):
    monkeypatch.setenv("GSBOOK_VENDOR", str(tmp_path / "empty"))
    with pytest.raises(ViewerAssetsMissing) as error:
        library_files(fetch=True)                      # GSBOOK_VENDOR set: never fetched behind the reader's back
    assert "tools/fetch_assets.py" in str(error.value) and str(tmp_path / "empty") in str(error.value)
    assert "gaussian-splats-3d.module.js" in str(error.value)


def test_library_files_found_in_the_vendor_folder(fake_vendor):
    files = library_files()
    assert set(files) >= set(LIBRARY_FILES) and all(p.is_file() for p in files.values())
    assert files["splats/three.module.min.js"] == fake_vendor / "splats" / "three.module.min.js"


def test_fetch_assets_lists_the_viewer_and_its_licences_and_checks_its_patch(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import fetch_assets

    assert set(LIBRARY_FILES) <= set(fetch_assets.REQUIRED)
    assert {"splats/LICENSE.gaussian-splats-3d.txt", "splats/LICENSE.three.txt"} <= set(fetch_assets.REQUIRED)
    edits = fetch_assets.PATCHES["splats/gaussian-splats-3d.module.js"]
    module = tmp_path / "m.js"
    module.write_text("import * as THREE from 'three';\nimport { Ray } from 'three';\n"
                      "//# sourceMappingURL=gaussian-splats-3d.module.js.map")
    fetch_assets.patch(module, edits)
    assert module.read_text().count("from './three.module.min.js';") == 2 and "sourceMappingURL" not in module.read_text()
    with pytest.raises(SystemExit, match="expected 2"):     # a changed upstream file stops the fetch
        fetch_assets.patch(module, edits)
    sys.modules.pop("fetch_assets", None)


def test_fetch_assets_swaps_in_a_complete_fetch_and_keeps_the_old_files_when_one_fails(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import fetch_assets

    vendor = tmp_path / "_vendor"
    (vendor / "splats").mkdir(parents=True)
    (vendor / "splats" / "old.js").write_text("the files there were")
    monkeypatch.setattr(fetch_assets, "VENDOR", vendor)

    def offline(spec, folder, npm):
        raise OSError(f"no network for {spec}")

    monkeypatch.setattr(fetch_assets, "download", offline)
    with pytest.raises(OSError, match="no network"):
        fetch_assets.fetch(force=True)
    assert (vendor / "splats" / "old.js").read_text() == "the files there were", "a failed fetch emptied _vendor/"
    assert not (tmp_path / "_vendor.partial").exists()

    def complete(folder, npm):
        for name in fetch_assets.REQUIRED:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(name)
        (folder / "VERSIONS.json").write_text("{}")
        return {"three": "0.170.0"}

    monkeypatch.setattr(fetch_assets, "_gather", complete)
    assert fetch_assets.fetch(force=True) == vendor and fetch_assets.have_all()
    assert not (vendor / "splats" / "old.js").exists() and not (tmp_path / "_vendor.partial").exists()
    sys.modules.pop("fetch_assets", None)


# ============================================================================== the page and the server
def test_page_is_written_beside_its_files_with_the_javascript(tmp_path, fake_vendor):
    g = ball()
    save_splat(tmp_path / "gaussians.splat", g)
    save_ply(tmp_path / "gaussians.ply", g)
    page = write_viewer_page(tmp_path, title="a <red> ball", caption="64 Gaussians")
    assert page == tmp_path / VIEW_PAGE
    text = page.read_text()
    assert "<title>a &lt;red&gt; ball</title>" in text
    assert options(text)["url"] == "gaussians.splat" and options(text)["library"] == "viewer/"
    assert f'href="{VIEW_PAGE}?file=gaussians.ply"' in text                 # the other scene, one click away
    for name in LIBRARY_FILES + ("splats/LICENSE.three.txt",):
        copied = tmp_path / "viewer" / Path(name).name
        assert copied.read_bytes() == (fake_vendor / name).read_bytes()


def test_page_refuses_a_missing_scene_or_library(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="gaussians.splat"):
        write_viewer_page(tmp_path)
    with pytest.raises(ValueError, match="file name"):
        write_viewer_page(tmp_path, "../elsewhere.splat")
    save_splat(tmp_path / "gaussians.splat", ball())
    monkeypatch.setenv("GSBOOK_VENDOR", str(tmp_path / "nothing"))
    with pytest.raises(ViewerAssetsMissing):
        write_viewer_page(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaussians.splat"]   # nothing half-written


def test_server_serves_the_folder_on_localhost_until_closed(tmp_path):
    (tmp_path / "m.js").write_text("export const x = 1;\n")
    save_splat(tmp_path / "g.splat", ball())
    with serve_folder(tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "m.js", timeout=10) as r:
            # a module script is only run when served as JavaScript
            assert r.read() == b"export const x = 1;\n" and r.headers["Content-Type"].startswith("text/javascript")
        with urllib.request.urlopen(server.url + "g.splat", timeout=10) as r:
            assert r.read() == (tmp_path / "g.splat").read_bytes()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "m.js", timeout=5)
    with pytest.raises(FileNotFoundError):
        serve_folder(tmp_path / "missing")


# ============================================================================== the notebook widget
def live_parts(js: str) -> tuple[dict, str]:
    """The library sources and the snippet that a widget's JupyterLab output carries."""
    sources = json.loads(re.search(r"sources = (\{.*?\}), version", js, re.S).group(1))
    snippet = json.loads(re.search(r"element\.innerHTML = (\".*?\");\n", js, re.S).group(1))
    return sources, snippet


def test_widget_bundle_is_static_html_for_the_site_and_javascript_for_jupyterlab(fake_vendor):
    from widgets.splat_viewer import splat_viewer

    g = ball(50)
    bundle = splat_viewer(g, width=300, height=200, caption="fifty")._repr_mimebundle_()
    assert set(bundle) == {"text/html", "application/javascript", "text/plain"}
    assert options(bundle["text/html"])["library"] == "site" and inline_bytes(bundle["text/html"]) == splat_bytes(g)
    assert "50 Gaussians" in bundle["text/plain"]
    sources, snippet = live_parts(bundle["application/javascript"])
    for key, name in (("viewer", "splats/gaussian-splats-3d.module.js"), ("three", "splats/three.module.min.js")):
        assert gzip.decompress(base64.b64decode(sources[key])) == (fake_vendor / name).read_bytes()
    assert options(snippet)["library"] == "global" and inline_bytes(snippet) == splat_bytes(g)
    assert "<script>" not in snippet and "fifty" in snippet
    assert "http://" not in bundle["application/javascript"]


def test_widget_without_the_library_still_gives_the_site_its_html(tmp_path, monkeypatch):
    from widgets.splat_viewer import splat_viewer

    monkeypatch.setenv("GSBOOK_VENDOR", str(tmp_path / "none"))
    bundle = splat_viewer(ball())._repr_mimebundle_()
    assert "application/javascript" not in bundle and "gsbook-splat-options" in bundle["text/html"]


def test_widget_shows_a_ply_file_as_it_is(tmp_path, fake_vendor):
    from widgets.splat_viewer import splat_viewer

    save_ply(tmp_path / "g.ply", ball(40))
    viewer = splat_viewer(tmp_path / "g.ply")
    assert viewer.format == "ply" and viewer.count == 40
    assert inline_bytes(viewer.html) == (tmp_path / "g.ply").read_bytes()
    with pytest.raises(ValueError, match=r"\.splat and \.ply"):
        splat_viewer(tmp_path / "g.txt")


def test_the_javascript_parses(tmp_path, fake_vendor):
    """Every script the viewer writes is valid JavaScript (``node --check``)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    from widgets.splat_viewer import splat_viewer

    bundle = splat_viewer(ball())._repr_mimebundle_()
    scripts = {"live.js": bundle["application/javascript"],
               "page.js": re.search(r"<script>(.*)</script>\s*$", bundle["text/html"], re.S).group(1)}
    for name, code in scripts.items():
        (tmp_path / name).write_text(code)
        done = subprocess.run([node, "--check", str(tmp_path / name)], capture_output=True, text=True)
        assert done.returncode == 0, f"{name}: {done.stderr}"


def test_library_files_fetch_them_once_with_the_books_tool(tmp_path, monkeypatch):
    """Missing files are fetched by running tools/fetch_assets.py (here a stand-in script in a
    stand-in checkout); a fetch that fails passes its reason on."""
    import gsbook.viewer as viewer

    monkeypatch.delenv("GSBOOK_VENDOR", raising=False)
    monkeypatch.setattr(viewer, "ROOT", tmp_path)
    (tmp_path / "tools").mkdir()
    names = list(LIBRARY_FILES) + ["splats/LICENSE.gaussian-splats-3d.txt", "splats/LICENSE.three.txt"]
    script = tmp_path / "tools" / "fetch_assets.py"
    script.write_text("import sys\nprint('the npm registry cannot be reached')\nsys.exit(1)\n")
    with pytest.raises(ViewerAssetsMissing, match="cannot be reached"):
        library_files(fetch=True)
    script.write_text("from pathlib import Path\nroot = Path(__file__).resolve().parents[1] / '_vendor'\n"
                      f"for name in {names!r}:\n"
                      "    (root / name).parent.mkdir(parents=True, exist_ok=True)\n"
                      "    (root / name).write_text('// fetched')\n")
    said = []
    files = library_files(fetch=True, log=said.append)
    assert all(files[name].read_text() == "// fetched" for name in names)
    assert len(said) == 1 and "tools/fetch_assets.py" in said[0]
    assert library_files(fetch=True, log=said.append) == files and len(said) == 1     # once
