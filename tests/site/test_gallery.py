"""The gallery page (gallery.md, tools/make_gallery.py) on the built site, in the WebGL browser.

With no network (every request beyond the local server is blocked and listed): the page opens
its one 3D viewer on the first result of the manifest and shows that prompt's colour in the
viewer's middle; a drag turns it (the camera moves, the picture changes); a click on the thumbnail
of a result of a differently coloured prompt loads that .splat into the same viewer, and the colour
seen changes.
Screenshots: ``artifacts/site/gallery*.png``.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from gsbook.world import COLOUR_NAMES, colour_rgb

pytestmark = pytest.mark.slow

VIEWER = "#gsbook-gallery-viewer"


def prompt_colour(prompt: str) -> str:
    """The first ShapeWorld colour word of ``prompt`` (the object's main colour)."""
    return next(w for w in prompt.split() if w in COLOUR_NAMES)


def share(image: np.ndarray, colour: str, rival: str) -> float:
    """Of the pixels in the middle of ``image`` (the central half, each way), the share nearer to
    ``colour`` than to ``rival`` and to the white background (ShapeWorld's sRGB values: the
    generated objects are shades of their colour, not the colour itself)."""
    h, w = image.shape[:2]
    middle = image[h // 4:3 * h // 4, w // 4:3 * w // 4].reshape(-1, 3) / 255.0
    palette = np.stack([colour_rgb(colour), colour_rgb(rival), np.ones(3)])
    nearest = np.argmin(((middle[:, None, :] - palette[None]) ** 2).sum(-1), axis=1)
    return float((nearest == 0).mean())


@pytest.fixture()
def gallery_page(webgl_browser, base_url):
    context = webgl_browser.new_context(viewport={"width": 1100, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.blocked, page.errors = [], []
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith((base_url + "/", "blob:", "data:"))
               else (page.blocked.append(r.request.url), r.abort()))
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    context.close()


def test_gallery_shows_the_first_result_turns_with_a_drag_and_switches_on_a_click(gallery_page, base_url, site_html,
                                                                                  artifacts, drag_across):
    manifest_path = site_html / "_static" / "gallery" / "gallery.json"
    assert manifest_path.is_file(), "the site serves no _static/gallery/gallery.json (run tools/make_gallery.py)"
    items = json.loads(manifest_path.read_text(encoding="utf-8"))["items"]
    first = items[0]
    # Another result, of a prompt in another colour, that the judge reads in its colour (a result it
    # does not would prove nothing); the same generator when there is one, a one-colour prompt first.
    others = [i for i in items if prompt_colour(i["prompt"]) != prompt_colour(first["prompt"])
              and i["judge"]["colour"] >= 0.75]
    assert others, "the gallery has no second prompt in another colour that the judge reads"
    other = min(others, key=lambda i: (" with " in i["prompt"], i["key"] != first["key"], -i["judge"]["colour"]))
    colour, colour2 = prompt_colour(first["prompt"]), prompt_colour(other["prompt"])

    page = gallery_page
    page.goto(f"{base_url}/gallery.html")
    viewer = page.locator(VIEWER)
    assert viewer.count() == 1 and page.locator(".gsbook-splat-viewer").count() == 1, "one viewer on the page"
    buttons = page.locator(".gsbook-gallery-item")
    assert buttons.count() == len(items)
    page.wait_for_function(f"() => ['ready', 'error'].includes(document.querySelector('{VIEWER}').dataset.state)",
                           timeout=60_000)
    assert viewer.get_attribute("data-state") == "ready", viewer.inner_text()
    assert viewer.get_attribute("data-scene") == "_static/gallery/" + first["splat"]
    # every thumbnail arrived (lazy images: bring them into view first)
    page.evaluate("() => document.querySelectorAll('.gsbook-gallery-item img').forEach(i => i.loading = 'eager')")
    page.wait_for_function("() => [...document.querySelectorAll('.gsbook-gallery-item img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=15_000)

    def picture() -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(viewer.locator("canvas").screenshot())).convert("RGB"))

    def seen(colour: str, rival: str, least: float = 0.03, seconds: float = 20) -> np.ndarray:
        deadline, image = time.monotonic() + seconds, picture()
        while share(image, colour, rival) < least and time.monotonic() < deadline:   # the depth sort runs in a worker
            page.wait_for_timeout(250)
            image = picture()
        return image

    def whole_page(name: str) -> None:
        page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / name), full_page=True)

    before = seen(colour, colour2)
    whole_page("gallery.png")
    Image.fromarray(before).save(artifacts / "gallery-viewer.png")
    assert share(before, colour, colour2) >= 0.03, f"{first['prompt']!r} ({first['key']}): no {colour} in the middle"
    assert share(before, colour2, colour) < share(before, colour, colour2) / 4

    camera = f"document.querySelector('{VIEWER}').gsbookViewer.camera.position.toArray()"
    start = np.asarray(page.evaluate(camera))
    viewer.locator("canvas").scroll_into_view_if_needed()
    drag_across(page, VIEWER, dx=120, dy=30, steps=8, settle_ms=800)
    dragged = seen(colour, colour2)
    Image.fromarray(dragged).save(artifacts / "gallery-viewer-dragged.png")
    moved = np.asarray(page.evaluate(camera))
    assert np.linalg.norm(moved - start) > 0.3, "a drag did not move the camera"
    h, w = dragged.shape[:2]
    middle = (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
    assert np.abs(dragged[middle].astype(int) - before[middle].astype(int)).mean() > 1.5, \
        "a drag did not change the picture"

    button = page.locator(f'.gsbook-gallery-item[data-splat="_static/gallery/{other["splat"]}"]')
    button.click()
    assert button.get_attribute("aria-pressed") == "true"
    page.wait_for_function(f"s => {{ const e = document.querySelector('{VIEWER}'); "
                           "return (e.dataset.scene === s && e.dataset.state === 'ready') "
                           "|| e.dataset.state === 'error'; }",
                           arg="_static/gallery/" + other["splat"], timeout=30_000)
    assert viewer.get_attribute("data-state") == "ready", viewer.inner_text()
    after = seen(colour2, colour)
    Image.fromarray(after).save(artifacts / "gallery-viewer-clicked.png")
    assert share(after, colour2, colour) >= 0.03, f"after the click, no {colour2} of {other['prompt']!r}"
    assert share(after, colour, colour2) < share(after, colour2, colour) / 4, f"the first result's {colour} is still there"
    assert other["prompt"] in page.locator(".gsbook-gallery-now").inner_text()

    page.evaluate("() => window.gsbookSetLang('zh')")
    whole_page("gallery-zh.png")
    assert page.blocked == [] and page.errors == [], (page.blocked, page.errors)
