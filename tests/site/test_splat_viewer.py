"""The 3D viewer in a real browser: WebGL through SwiftShader, no network, no book build.

Three ways a reader meets the viewer, each a page made by the book's own code and served from a
temporary folder on 127.0.0.1 (``gsbook.viewer.serve_folder``), every other request blocked:

* a book page: the widget's website HTML (``widgets.splat_viewer``) in a page laid out as Sphinx
  lays one out (``<html data-content_root="../">``, the library in ``_static/splats/``);
* JupyterLab: the widget's ``application/javascript`` output run as JupyterLab runs it (``eval``
  with ``element`` in scope), from a folder that holds no JavaScript library at all;
* ``gsbook generate … --view``: the command itself, whose "web browser" is this test; its
  ``view.html`` shows the book's ``.splat``, the book's ``.ply`` and a ``.ply`` written by gsplat's
  exporter.

What is checked is the picture: the object's colour at the centre, the background in the
corners, the same silhouette as the book's own rasterizer draws from the same camera, and a
mouse drag that turns the camera. Screenshots land in ``artifacts/site/splat_viewer_*.png``.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gsbook.generate as gen
from gsbook.cameras import orbit
from gsbook.render import render
from gsbook.viewer import ViewerAssetsMissing, ViewerServer, library_files, serve_folder
from gsbook.world import colour_rgb, make_asset
from widgets.splat_viewer import splat_viewer

pytestmark = pytest.mark.slow

W, H = 360, 270                 # the widget's canvas in these tests (small: SwiftShader draws in software)
SPHINX_PAGE = """<!DOCTYPE html>
<html lang="en" data-content_root="../"><head><meta charset="utf-8"><title>a chapter</title>
<script src="../_static/documentation_options.js"></script></head>
<body style="margin:0"><main>{body}</main></body></html>
"""
LAB_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>a notebook output</title></head>
<body style="margin:0"><div id="output"></div>
<script>
// JupyterLab's javascript renderer: eval(code) with `element` (the output's node) in scope.
fetch("output.js").then(function (r) { return r.text(); }).then(function (code) {
  var element = document.getElementById("output");
  eval(code);
});
</script></body></html>
"""


@pytest.fixture(scope="module")
def library() -> dict[str, Path]:
    try:
        return library_files(fetch=True)
    except ViewerAssetsMissing as error:
        pytest.skip(f"the viewer's JavaScript is not here and could not be fetched from npm: {error}")


@pytest.fixture(scope="module")
def red_ball():
    return make_asset("a red ball", seed=0).gaussians()


@pytest.fixture()
def open_page(webgl_browser, library):
    """``open_page(url, selector)``: a fresh page at ``url`` once the viewer in ``selector`` is
    ready; requests beyond 127.0.0.1 are blocked and listed in ``page.blocked``, script errors in
    ``page.errors``, failed loads in ``page.failed``."""
    contexts = []

    def open_(url: str, selector: str, viewport: tuple[int, int] = (900, 800)):
        context = webgl_browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                            device_scale_factor=1)
        contexts.append(context)
        page = context.new_page()
        page.blocked, page.errors, page.failed = [], [], []

        def route(r):
            if r.request.url.startswith(("http://127.0.0.1:", "blob:", "data:")):
                r.continue_()
            else:
                page.blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
                and page.failed.append(f"{r.status} {r.url}"))
        page.goto(url)
        page.wait_for_function("s => { const e = document.querySelector(s); "
                               "return e && ['ready', 'error'].includes(e.dataset.state); }",
                               arg=selector, timeout=45_000)
        state, text = page.eval_on_selector(selector, "e => [e.dataset.state, "
                                                      "e.querySelector('.gsbook-splat-status').textContent]")
        assert state == "ready", f"the viewer at {url} says: {text} (errors: {page.errors})"
        return page

    yield open_
    for context in contexts:
        context.close()


def picture(page, selector: str) -> np.ndarray:
    """The viewer's canvas as it is on screen: ``[H, W, 3]`` uint8."""
    png = page.locator(f"{selector} canvas").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def drawn(page, selector: str, colour, timeout: float = 20.0) -> np.ndarray:
    """The picture, once the object shows at the centre in ``colour`` (the first depth sort runs in
    a worker, so the first frames may still be empty)."""
    deadline = time.monotonic() + timeout
    while True:
        image = picture(page, selector)
        if looks_like(centre(image), colour) or time.monotonic() > deadline:
            return image
        page.wait_for_timeout(200)


def centre(image: np.ndarray, half: int = 10) -> np.ndarray:
    """Median colour of the central ``(2·half+1)²`` pixels, in [0, 1]."""
    h, w = image.shape[:2]
    return np.median(image[h // 2 - half:h // 2 + half + 1, w // 2 - half:w // 2 + half + 1].reshape(-1, 3), 0) / 255


def looks_like(rgb: np.ndarray, colour) -> bool:
    """``rgb`` is a shade of ``colour`` (a ShapeWorld colour name): its strongest channel, clearly."""
    want = np.asarray(colour_rgb(colour))
    k = int(want.argmax())
    others = [c for c in range(3) if c != k]
    return rgb[k] > 0.3 and all(rgb[k] > 1.8 * rgb[c] for c in others)


def assert_object_on_white(image: np.ndarray, colour: str) -> None:
    assert looks_like(centre(image), colour), f"centre is {centre(image)}, not {colour}"
    inside = image[2:-2, 2:-2]              # a page at a fractional offset shows a sliver of the frame
    for corner in (inside[:8, :8], inside[:8, -8:], inside[-8:, :8], inside[-8:, -8:]):
        assert corner.min() >= 240, "a corner is not the white background"
    assert (image < 200).any(-1).mean() > 0.05, "the object covers almost nothing"


def silhouette(image: np.ndarray) -> np.ndarray:
    return (image < 235).any(-1)


def book_picture(gaussians, width: int, height: int) -> np.ndarray:
    """The book's rasterizer from the viewer's starting camera (elevation 20°, 2.5 units, 49.1°)."""
    cams = orbit(20.0, 0.0, 2.5, 49.1, width, height, device="cpu")
    with torch.no_grad():
        image = render(gaussians.to("cpu"), cams, background=1.0).image[0].clamp(0, 1)
    return (image.numpy() * 255).round().astype(np.uint8)


def save(image: np.ndarray, artifacts: Path, name: str) -> None:
    Image.fromarray(image).save(artifacts / f"splat_viewer_{name}.png")


def assert_clean(page) -> None:
    assert page.blocked == [], f"the viewer asked the network for {page.blocked}"
    assert page.errors == [] and page.failed == [], (page.errors, page.failed)


# ----------------------------------------------------------------------------------------------
def test_book_page_shows_the_object_as_the_book_draws_it_and_a_drag_turns_it(tmp_path, library, red_ball,
                                                                             open_page, artifacts, drag_across):
    site = tmp_path / "site"
    (site / "chapters").mkdir(parents=True)
    shutil.copytree(Path(library["splats/three.module.min.js"]).parent, site / "_static" / "splats")
    (site / "_static" / "documentation_options.js").write_text("// Sphinx's\n")
    html = splat_viewer(red_ball, width=W, height=H)._repr_mimebundle_()["text/html"]
    assert "../_static" not in html                  # no fixed path: the page finds _static/ itself
    (site / "chapters" / "page.html").write_text(SPHINX_PAGE.format(body=html), encoding="utf-8")

    with serve_folder(site) as server:
        page = open_page(server.url + "chapters/page.html", ".gsbook-splat-viewer")
        before = drawn(page, ".gsbook-splat-viewer", "red")
        save(before, artifacts, "book_page")
        assert before.shape == (H, W, 3)
        assert_object_on_white(before, "red")
        book = book_picture(red_ball, W, H)
        save(book, artifacts, "book_page_reference")
        ours, theirs = silhouette(before), silhouette(book)
        iou = (ours & theirs).sum() / (ours | theirs).sum()
        assert iou > 0.9, f"the viewer's silhouette differs from the book's rasterizer (IoU {iou:.3f})"
        both = ours & theirs
        colour_gap = np.abs(before[both].astype(float).mean(0) - book[both].astype(float).mean(0)).max()
        assert colour_gap < 25, f"mean colour differs from the book's render by {colour_gap:.1f}/255"

        camera = "document.querySelector('.gsbook-splat-viewer').gsbookViewer.camera.position.toArray()"
        start = np.asarray(page.evaluate(camera))
        assert np.allclose(start, [0, 2.5 * np.sin(np.radians(20)), 2.5 * np.cos(np.radians(20))], atol=1e-3)
        drag_across(page, ".gsbook-splat-viewer")
        after = drawn(page, ".gsbook-splat-viewer", "red")
        save(after, artifacts, "book_page_after_drag")
        moved = np.asarray(page.evaluate(camera))
        turned = np.degrees(np.arctan2(moved[0], moved[2]) - np.arctan2(start[0], start[2]))
        assert abs(turned) > 10, f"the drag turned the camera by {turned:.1f}° only"
        assert np.linalg.norm(moved) == pytest.approx(2.5, abs=0.05)     # orbiting, not zooming
        assert np.abs(after.astype(int) - before.astype(int)).mean() > 2, "the drag did not change the picture"
        assert_object_on_white(after, "red")
        assert_clean(page)


def test_jupyterlab_output_runs_from_memory_with_no_library_served(tmp_path, library, open_page, artifacts):
    green = make_asset("a green ball", seed=1).gaussians()
    bundle = splat_viewer(green, width=W, height=H)._repr_mimebundle_()
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "output.js").write_text(bundle["application/javascript"], encoding="utf-8")
    (folder / "lab.html").write_text(LAB_PAGE, encoding="utf-8")
    with serve_folder(folder) as server:
        page = open_page(server.url + "lab.html", "#output .gsbook-splat-viewer")
        image = drawn(page, "#output .gsbook-splat-viewer", "green")
        save(image, artifacts, "jupyterlab")
        assert_object_on_white(image, "green")
        assert_clean(page)


def test_generate_view_serves_a_page_that_shows_the_splat_and_both_plys(tmp_path, monkeypatch, library, red_ball,
                                                                        open_page, artifacts):
    """``gsbook generate ball … --view``: this test stands in for the reader's web browser."""
    def run(request, progress):
        return gen.Generated(red_ball, config={}, seconds={"make": 0.0})

    monkeypatch.setitem(gen.GENERATORS, "ball", gen.Method("ball", "a red ball, made in no time", run))
    out, opened, seen = tmp_path / "red-ball", [], {}
    blue_box = make_asset("a blue box", seed=2).gaussians()

    def reader(server: ViewerServer) -> None:       # instead of serving until Ctrl-C
        # A .ply written by gsplat's exporter, beside the command's own files.
        gsplat = pytest.importorskip("gsplat")
        gsplat.export_splats(**blue_box.params(), format="ply", save_to=str(out / "gsplat.ply"))
        for name, colour in (("", "red"), ("?file=gaussians.ply", "red"), ("?file=gsplat.ply", "blue")):
            # view.html's viewer fills the window's width and 75% of its height: a small window, a quick test
            page = open_page(server.url + "view.html" + name, "#gsbook-view", viewport=(480, 420))
            image = drawn(page, "#gsbook-view", colour)
            seen[name] = image
            save(image, artifacts, "generate_view" + (name.replace("?file=", "_").replace(".", "_") or "_splat"))
            assert_object_on_white(image, colour)
            assert_clean(page)
            page.context.close()                     # an open viewer keeps drawing: free the CPU for the next
        server.close()

    monkeypatch.setattr(ViewerServer, "wait", reader)
    monkeypatch.setattr(gen.webbrowser, "open", opened.append)
    assert gen.main(["ball", "a red ball", "--quiet", "--view", "--out", str(out)]) == out
    assert len(seen) == 3 and opened and opened[0].endswith("/view.html")
    # The book's .splat and .ply are the same object: the same picture, up to 8-bit colour.
    assert np.abs(seen[""].astype(int) - seen["?file=gaussians.ply"].astype(int)).mean() < 3
