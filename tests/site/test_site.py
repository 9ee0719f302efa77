"""The built website, in headless Chromium with no network: pages, maths, language toggle, figures.

Run alone with ``pytest tests/site`` (builds the book in the ci profile first, ~3 minutes
on 2 cores) or against a built site with ``GSBOOK_SITE_DIR=_build/html pytest tests/site``.
"""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.site, pytest.mark.slow, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = [c["file"] for part in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]
            for c in part["chapters"] if c["file"].startswith("chapters/")]


def visible(page, selector: str) -> list[bool]:
    """For each element matching ``selector``: is it rendered (has a layout box)?"""
    return page.eval_on_selector_all(selector, "els => els.map(e => e.getClientRects().length > 0)")


def goto(page, url: str):
    # Pages weigh up to ~1.3 MB of inline figures: give a slow, busy machine room (Playwright's
    # default is 30 s) rather than fail on the clock.
    page.goto(url, wait_until="load", timeout=120_000)
    # MathJax (deferred, so loaded by now on pages with maths) typesets after load: wait for it.
    page.evaluate("""async () => {
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
    }""")


def test_chapter_list_matches_the_essay():
    assert len(CHAPTERS) == 8
    assert [Path(c).name[:2] for c in CHAPTERS] == [f"{i:02d}" for i in range(8)]


@pytest.mark.parametrize("doc", ["intro", "references", *CHAPTERS])
def test_every_page_exists(base_url, doc):
    with urllib.request.urlopen(f"{base_url}/{doc}.html") as r:
        assert r.status == 200
        body = r.read().decode("utf-8")
    if doc.startswith("chapters/"):
        number = int(Path(doc).name[:2])
        assert re.search(rf"§{number}\b", body), f"{doc} has no §{number} heading"
        assert 'class="lang-en' in body and 'class="lang-zh' in body, f"{doc} lacks one language"


@pytest.mark.parametrize("doc", CHAPTERS)
def test_maths_is_typeset_and_nothing_is_fetched_from_the_network(page, base_url, doc, external_requests):
    goto(page, f"{base_url}/{doc}.html?lang=both")
    text = page.eval_on_selector_all("main .lang-en, main .lang-zh", "els => els.map(e => e.innerText).join('\\n')")
    assert "$$" not in text, f"raw display maths left on {doc}"
    assert not re.search(r"(?<!\\)\$[^$\s][^$]*\$", text.replace("\\$", "")), f"raw inline maths on {doc}"
    assert "\\(" not in text and "\\[" not in text, f"untypeset MathJax delimiters on {doc}"
    n_math = page.eval_on_selector_all("main .math, main span.math", "e => e.length")
    n_typeset = page.eval_on_selector_all("main mjx-container", "e => e.length")
    assert n_typeset >= n_math, f"{doc}: {n_math} maths nodes but {n_typeset} typeset"
    if doc.endswith(("00_setup", "01_sds", "04_trellis")):
        assert n_typeset > 0, f"{doc} should show typeset maths"
    assert not page.js_errors, page.js_errors
    assert external_requests == [], f"the site tried to reach the network: {external_requests[:5]}"


def test_offline_libraries_are_served_by_the_site(page, base_url):
    loaded: list[str] = []
    page.on("response", lambda r: loaded.append(r.url) if r.ok else None)
    goto(page, f"{base_url}/chapters/01_sds.html")
    names = [u.split("?")[0].rsplit("/", 2)[-2:] for u in loaded]
    for lib in (["mathjax", "tex-mml-chtml.js"], ["requirejs", "require.js"], ["html-manager", "embed-amd.js"]):
        assert lib in names, f"{'/'.join(lib)} was not loaded from the site"
    assert all(u.startswith(base_url) or u.startswith("data:") for u in loaded)
    # the widget manager really runs (require.js defined the AMD loader and embed-amd registered)
    assert page.evaluate("typeof window.require === 'function' && typeof window.define === 'function'")


def test_language_toggle_hides_and_shows_each_language(page, base_url, artifacts):
    goto(page, f"{base_url}/chapters/00_setup.html")
    assert page.locator(".gsbook-lang-toggle button").count() == 3

    page.click(".gsbook-lang-toggle button[data-lang=en]")
    assert all(visible(page, "main .lang-en")) and not any(visible(page, "main .lang-zh"))
    page.screenshot(path=str(artifacts / "00_setup-en.png"), full_page=False)

    page.click(".gsbook-lang-toggle button[data-lang=zh]")
    assert all(visible(page, "main .lang-zh")) and not any(visible(page, "main .lang-en"))
    page.screenshot(path=str(artifacts / "00_setup-zh.png"), full_page=False)

    # the choice is remembered on the next page
    goto(page, f"{base_url}/chapters/06_era.html")
    assert page.evaluate("document.documentElement.getAttribute('data-gsbook-lang')") == "zh"
    assert not any(visible(page, "main .lang-en")) and all(visible(page, "main .lang-zh"))

    page.click(".gsbook-lang-toggle button[data-lang=both]")
    goto(page, f"{base_url}/chapters/00_setup.html")
    assert all(visible(page, "main .lang-en")) and all(visible(page, "main .lang-zh"))
    page.screenshot(path=str(artifacts / "00_setup-both.png"), full_page=False)
    page.screenshot(path=str(artifacts / "00_setup-both-full.png"), full_page=True)


def test_static_sds_figure_controls_change_the_frame(page, base_url, artifacts):
    goto(page, f"{base_url}/chapters/01_sds.html")
    fig = page.locator(".gsbook-player[data-figure=sds_loop][data-denoiser=l2]")
    assert fig.count() == 1, "the static SDS figure is missing (or the live widget was shown instead)"
    fig.scroll_into_view_if_needed()
    frames = int(fig.get_attribute("data-frames"))
    assert frames > 51

    def state():
        return (int(fig.get_attribute("data-iteration")), fig.locator("img.gsbook-frame").get_attribute("src"),
                fig.locator(".gsbook-readout").inner_text(), fig.locator("svg circle").first.get_attribute("cx"))

    it0, src0, text0, cx0 = state()
    assert it0 == 0 and text0.startswith("iter 0 · loss =")
    fig.screenshot(path=str(artifacts / "01_sds-figure-iter0.png"))

    fig.locator("[data-action=step]").click()
    it1, src1, text1, cx1 = state()
    assert it1 == 1 and src1 != src0 and text1.startswith("iter 1 ·") and cx1 != cx0

    fig.locator("[data-action=run50]").click()
    page.wait_for_function(f"() => document.querySelector('#{fig.get_attribute('id')}')"
                           ".getAttribute('data-iteration') === '51'", timeout=20_000)
    it51, src51, text51, _ = state()
    loss = lambda s: float(s.rsplit("=", 1)[1])
    assert it51 == 51 and src51 != src1 and loss(text51) < loss(text0)
    fig.screenshot(path=str(artifacts / "01_sds-figure-iter51.png"))

    fig.locator("[data-action=reset]").click()
    assert state()[0] == 0 and state()[1] == src0
    assert not page.js_errors, page.js_errors


def test_static_sds_figure_with_the_real_prior(page, base_url, artifacts):
    goto(page, f"{base_url}/chapters/01_sds.html")
    fig = page.locator(".gsbook-player[data-figure=sds_loop][data-denoiser=prior]")
    assert fig.count() == 1, "the real-prior SDS figure is missing"
    fig.scroll_into_view_if_needed()
    readout = fig.locator(".gsbook-readout")
    src0 = fig.locator("img.gsbook-frame").get_attribute("src")
    assert readout.inner_text().startswith("iter 0 ·")
    fig.locator("[data-action=step]").click()
    assert fig.get_attribute("data-iteration") == "1"
    assert fig.locator("img.gsbook-frame").get_attribute("src") != src0
    text = readout.inner_text()
    assert text.startswith("iter 1 ·") and "|g| =" in text and "t =" in text
    fig.screenshot(path=str(artifacts / "01_sds-prior-figure-iter1.png"))
    assert not page.js_errors, page.js_errors


def test_era_timeline_filters_by_strategy(page, base_url, artifacts):
    goto(page, f"{base_url}/chapters/06_era.html")
    era = page.locator(".gsbook-era")
    assert era.count() == 1
    rows = era.locator("tbody tr")
    total = rows.count()
    assert total >= 13
    n_opt = era.locator("tbody tr[data-strategy=optimisation]").count()
    assert 0 < n_opt < total
    era.scroll_into_view_if_needed()
    era.screenshot(path=str(artifacts / "06_era-timeline.png"))

    era.locator("input[value=optimisation]").uncheck()
    assert not any(visible(page, ".gsbook-era tbody tr[data-strategy=optimisation]"))
    assert not any(visible(page, ".gsbook-era svg g[data-strategy=optimisation]"))
    assert sum(visible(page, ".gsbook-era tbody tr")) == total - n_opt
    assert era.locator(".gsbook-era-count").inner_text() == f"{total - n_opt} / {total}"

    era.locator("input[value=optimisation]").check()
    assert sum(visible(page, ".gsbook-era tbody tr")) == total


def test_embedded_widget_runs_without_a_kernel(page, base_url, artifacts):
    """§1's noising figure is plain ipywidgets + jslink: the site's widget manager draws it
    from the embedded state, and the slider changes the picture with no kernel."""
    goto(page, f"{base_url}/chapters/01_sds.html")
    fig = page.locator(".gsbook-noising")
    fig.wait_for(timeout=30_000)
    fig.scroll_into_view_if_needed()

    def shown_src():
        return page.evaluate("""() => [...document.querySelectorAll('.gsbook-noising img')]
            .filter(e => e.getClientRects().length > 0).map(e => e.src)""")

    before = shown_src()
    assert len(before) == 1
    handle = fig.locator(".noUi-handle, .widget-slider input").first
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("(b) => [...document.querySelectorAll('.gsbook-noising img')]"
                           ".filter(e => e.getClientRects().length > 0).map(e => e.src)[0] !== b", arg=before[0],
                           timeout=10_000)
    after = shown_src()
    assert len(after) == 1 and after != before
    assert "t = 350 ·" in fig.inner_text()           # the fourth of timesteps [20, 100, 200, 350, …]
    fig.screenshot(path=str(artifacts / "01_sds-noising-widget.png"))
    assert not page.js_errors, page.js_errors


def test_static_convergence_figure_plays_and_counts_densification(page, base_url, artifacts, external_requests):
    """§2's Figure 2: 200 random Gaussians under real SDS; the N counter jumps when densified."""
    goto(page, f"{base_url}/chapters/02_dreamgaussian.html")
    fig = page.locator(".gsbook-player[data-figure=convergence]")
    assert fig.count() == 1, "the static convergence figure is missing (or the live widget was shown instead)"
    fig.scroll_into_view_if_needed()
    steps, frames = int(fig.get_attribute("data-steps")), int(fig.get_attribute("data-frames"))
    assert steps >= 100 and 100 <= frames <= steps + 1
    for chart in ("n", "loss"):                     # the curves, densification marked, a marker each
        assert fig.locator(f"svg[data-chart={chart}] .gsbook-curve").count() == 1
        assert fig.locator(f"svg[data-chart={chart}] .gsbook-densify").count() >= 1
        assert fig.locator(f"svg circle[data-marker={chart}]").count() == 1
    img, counter, readout = fig.locator("img.gsbook-frame"), fig.locator(".gsbook-n"), fig.locator(".gsbook-readout")

    def state():
        return (int(fig.get_attribute("data-iteration")), img.get_attribute("src"), counter.inner_text(),
                readout.inner_text(), fig.locator("circle[data-marker=n]").get_attribute("cx"))

    it0, src0, n0, text0, cx0 = state()
    assert it0 == 0 and n0 == "200" and text0 == "iter 0 · N = 200 · t = – · loss = –"
    fig.screenshot(path=str(artifacts / "02_dreamgaussian-convergence-iter0.png"))

    fig.locator("[data-action=step]").click()
    it1, src1, _, text1, cx1 = state()
    assert it1 >= 1 and src1 != src0 and text1.startswith(f"iter {it1} · N = ") and cx1 != cx0

    # across the first densification (step 100): the counter's N changes and it says by how much
    iterations = page.evaluate("(id) => JSON.parse(document.querySelector('#' + id + ' script.gsbook-data')"
                               ".textContent).iterations", fig.get_attribute("id"))
    before = max(i for i, k in enumerate(iterations) if k < 100)
    slider = fig.locator("input[type=range]")
    slider.fill(str(before))
    slider.dispatch_event("input")
    assert int(fig.get_attribute("data-iteration")) == iterations[before]
    n_before = counter.inner_text()
    fig.locator("[data-action=step]").click()
    assert int(fig.get_attribute("data-iteration")) == 100
    n_after = counter.inner_text()
    assert n_after != n_before, "N did not change across the densification step"
    assert fig.locator(".gsbook-dn").inner_text().endswith("at step 100")
    assert readout.inner_text().startswith(f"iter 100 · N = {n_after} ·")
    fig.screenshot(path=str(artifacts / "02_dreamgaussian-convergence-densified.png"))

    # play runs on its own, pause stops it, reset goes back to the random Gaussians
    fig.locator("[data-action=reset]").click()
    fig.locator("[data-action=play]").click()
    fid = fig.get_attribute("id")
    page.wait_for_function(f"() => +document.getElementById('{fid}').getAttribute('data-iteration') >= 20",
                           timeout=20_000)
    fig.locator("[data-action=play]").click()       # pause
    paused = fig.get_attribute("data-iteration")
    page.wait_for_timeout(300)
    assert fig.get_attribute("data-iteration") == paused
    fig.locator("[data-action=play]").click()
    page.wait_for_function(f"() => +document.getElementById('{fid}').getAttribute('data-iteration') === {steps}",
                           timeout=60_000)
    assert counter.inner_text() != "200"
    fig.screenshot(path=str(artifacts / "02_dreamgaussian-convergence-end.png"))
    fig.locator("[data-action=reset]").click()
    assert state()[:3] == (0, src0, "200")
    assert not page.js_errors, page.js_errors
    assert external_requests == [], f"the figure tried to reach the network: {external_requests[:5]}"


def test_static_four_views_figure_switches_views_and_orbits(page, base_url, artifacts, external_requests):
    """§3's Figure 3: four input views (ground truth or the prior's), LGM's real attention, an orbit."""
    goto(page, f"{base_url}/chapters/03_lgm_grm.html")
    fig = page.locator(".gsbook-player[data-figure=four_views]")
    assert fig.count() == 1, "the static Figure 3 is missing (or the live widget was shown instead)"
    fig.scroll_into_view_if_needed()
    assert fig.get_attribute("data-sources") == "2" and int(fig.get_attribute("data-frames")) >= 12
    assert fig.get_attribute("data-count") == "4096"
    assert "4,096" in fig.locator(".gsbook-count").inner_text()
    views, attention, frame = (fig.locator(f"img.{c}") for c in ("gsbook-views", "gsbook-attention", "gsbook-frame"))
    assert all(img.get_attribute("src").startswith("data:image/png;base64,") for img in (views, attention, frame))
    assert fig.get_attribute("data-source").startswith("ground truth")
    fig.screenshot(path=str(artifacts / "03_lgm_grm-figure3-ground-truth.png"))

    frame0 = frame.get_attribute("src")
    slider = fig.locator("input[type=range]")
    slider.fill("3")
    slider.dispatch_event("input")
    assert fig.get_attribute("data-azimuth") == "3" and frame.get_attribute("src") != frame0
    assert fig.locator(".gsbook-azimuth").inner_text().endswith("°")

    views0, attention0 = views.get_attribute("src"), attention.get_attribute("src")
    fig.locator("button[data-source='1']").click()
    assert fig.get_attribute("data-source").startswith("multi-view prior")
    assert views.get_attribute("src") != views0 and attention.get_attribute("src") != attention0
    assert fig.get_attribute("data-azimuth") == "3", "switching the views keeps the orbit angle"
    fig.screenshot(path=str(artifacts / "03_lgm_grm-figure3-prior.png"))
    # This browser has no WebGL (conftest): the page's 3D viewer says so in its frame, quietly.
    assert "WebGL" in page.locator(".gsbook-splat-viewer .gsbook-splat-status").inner_text()
    assert not page.js_errors, page.js_errors
    assert external_requests == [], f"the figure tried to reach the network: {external_requests[:5]}"


def test_static_flow_steps_figure_walks_both_stages(page, base_url, artifacts, external_requests):
    """§4's flow, step by step: stage 1's structure frames, then stage 2's Gaussians, with no kernel."""
    goto(page, f"{base_url}/chapters/04_trellis.html")
    fig = page.locator(".gsbook-player[data-figure=flow_steps]")
    assert fig.count() == 1, "the static flow-steps figure is missing (or the live widget was shown instead)"
    fig.scroll_into_view_if_needed()
    frames, split = int(fig.get_attribute("data-frames")), int(fig.get_attribute("data-split"))
    assert 0 < split < frames, "frames of both stages"
    frame, readout = fig.locator("img.gsbook-frame"), fig.locator(".gsbook-readout")
    src0 = frame.get_attribute("src")
    assert src0.startswith("data:image/png;base64,") and "t = 1.00" in readout.inner_text()
    assert fig.get_attribute("data-stage") == "1"
    fig.screenshot(path=str(artifacts / "04_trellis-flow-steps-start.png"))

    fig.locator("[data-action=step]").click()
    assert fig.get_attribute("data-frame") == "1" and frame.get_attribute("src") != src0

    slider = fig.locator("input[type=range]")
    slider.fill(str(frames - 1))
    slider.dispatch_event("input")
    assert fig.get_attribute("data-stage") == "2" and "t = 0.00" in readout.inner_text()
    assert frame.get_attribute("src") not in (src0,)
    fig.screenshot(path=str(artifacts / "04_trellis-flow-steps-end.png"))

    fig.locator("[data-action=reset]").click()
    assert fig.get_attribute("data-frame") == "0" and frame.get_attribute("src") == src0
    assert not page.js_errors, page.js_errors
    assert external_requests == [], f"the figure tried to reach the network: {external_requests[:5]}"


def test_chapter_3_viewer_shows_the_lamp_and_turns_with_the_mouse(webgl_browser, base_url, artifacts, drag_across):
    """§3's 3D viewer on the built page: the WebGL renderer is served by the site (no network), the
    lamp LGM reads out of its four views shows in its colour, and a drag turns it."""
    import io

    import numpy as np
    from PIL import Image

    context = webgl_browser.new_context(viewport={"width": 1100, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    blocked, errors = [], []
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith((base_url + "/", "blob:", "data:"))
               else (blocked.append(r.request.url), r.abort()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base_url}/chapters/03_lgm_grm.html")
    viewer = page.locator(".gsbook-splat-viewer")
    assert viewer.count() == 1, "§3's 3D viewer is missing from the page"
    viewer.scroll_into_view_if_needed()
    page.wait_for_function("() => ['ready', 'error'].includes(document.querySelector('.gsbook-splat-viewer')"
                           ".dataset.state)", timeout=60_000)
    assert viewer.get_attribute("data-state") == "ready", viewer.inner_text()

    def picture() -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(viewer.locator("canvas").screenshot())).convert("RGB")).astype(int)

    blue = lambda image: ((image[..., 2] > image[..., 0] + 40) & (image[..., 2] > 80)).mean()  # noqa: E731
    deadline = time.monotonic() + 20
    before = picture()
    while blue(before) < 0.005 and time.monotonic() < deadline:      # the first depth sort runs in a worker
        page.wait_for_timeout(250)
        before = picture()
    Image.fromarray(before.astype(np.uint8)).save(artifacts / "03_lgm_grm-viewer.png")
    assert blue(before) > 0.005, "the blue lamp shade does not show"
    inside = before[3:-3, 3:-3]                  # the page may show a sliver of the canvas' frame at its edge
    corners = np.concatenate([inside[:6, :6], inside[:6, -6:], inside[-6:, :6], inside[-6:, -6:]])
    assert corners.min() >= 235, "the corners are not the white background"
    drag_across(page, ".gsbook-splat-viewer", steps=8, settle_ms=800)
    after = picture()
    Image.fromarray(after.astype(np.uint8)).save(artifacts / "03_lgm_grm-viewer-dragged.png")
    assert np.abs(after - before).mean() > 1.0, "a drag did not change the picture"
    assert blocked == [] and errors == [], (blocked, errors)
    context.close()
