"""widgets: the SDS-loop figure's two renderings and the era timeline's data and markup."""

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from gsbook.toy2d import ToySDS, target_image
from widgets import era_timeline, sds_loop


@pytest.fixture(scope="module")
def record():
    return sds_loop.precompute(ToySDS(target_image(16, 16), n=6, seed=0), steps=4, progress=False)


def test_precompute_records_every_iteration(record):
    assert len(record["frames"]) == len(record["losses"]) == len(record["centres"]) == 5
    assert all(f.startswith(b"\x89PNG") for f in record["frames"])
    assert len(record["centres"][0]) == 6 and len(record["centres"][0][0]) == 2
    assert record["centres"][0] != record["centres"][-1]


def test_static_player_is_self_contained(record):
    html = sds_loop.static_html(record, caption="cap")
    for action in ("step", "run50", "play", "reset"):
        assert f'data-action="{action}"' in html
    assert "http://" not in html and "https://" not in html          # no network
    data = json.loads(re.search(r'class="gsbook-data">(.*?)</script>', html, re.S).group(1))
    assert len(data["frames"]) == 5 and data["losses"][0] == pytest.approx(record["losses"][0], abs=1e-6)
    assert html.count("<circle") == 6
    with pytest.raises(ValueError):
        sds_loop.static_html({**record, "losses": record["losses"][:-1]})


def test_draw_frame_is_a_png(record):
    loop = ToySDS(target_image(16, 16), n=3, seed=0)
    png = sds_loop.draw_frame(loop.render().detach(), loop.centres(), loop.target)
    assert png.startswith(b"\x89PNG")


def test_figure_bundle_carries_live_widget_and_static_player():
    fig = sds_loop.figure(width=16, height=16, n=4, steps=3)
    bundle = fig._repr_mimebundle_()
    assert "text/html" in bundle and "gsbook-player" in bundle["text/html"]
    assert "text/plain" in bundle
    assert len(fig.losses) == 4
    # the live loop starts from iteration 0 even though frames were precomputed
    assert fig.loop.iteration == 0


def test_era_entries_are_well_formed():
    names = [e.name for e in era_timeline.ERA]
    for must in ("DreamFusion", "Magic3D", "Zero-1-to-3", "ProlificDreamer", "MVDream", "DreamGaussian",
                 "GaussianDreamer", "LRM", "Instant3D", "LucidDreamer", "LGM", "GRM", "TRELLIS"):
        assert must in names
    assert len(set(names)) == len(names)
    bib = (Path(__file__).resolve().parents[1] / "references.bib").read_text(encoding="utf-8")
    for e in era_timeline.ERA:
        dt.date.fromisoformat(e.date)
        assert e.strategy in era_timeline.STRATEGIES
        assert "→" in e.io and e.venue and e.time
        assert e.seconds is None or e.seconds > 0
        assert f"{{{e.cite}," in bib, f"{e.name}: {e.cite} missing from references.bib"


def test_months_between():
    assert era_timeline.months_between("2022-09-29", "2024-12-02") == 27
    assert era_timeline.months_between("2024-01-31", "2024-02-01") == 1


def test_timeline_html_has_a_row_and_a_dot_per_entry():
    html = era_timeline.timeline_html()
    n = len(era_timeline.ERA)
    assert html.count("<tr data-strategy=") == n
    assert html.count('<g data-strategy=') == n
    assert html.count('type="checkbox"') == len(era_timeline.STRATEGIES)
    assert "https://" not in html


def test_live_widget_buttons_run_the_loop_in_python():
    import ipywidgets as W

    loop = ToySDS(target_image(16, 16), n=4, seed=0)
    box = sds_loop.live(loop)
    buttons = {w.description: w for w in box.children[0].children if isinstance(w, W.Button)}
    readout = next(w for w in box.children[0].children if isinstance(w, W.HTML))
    image = box.children[1]
    assert set(buttons) == {"step", "run 50", "reset"} and "iter 0 ·" in readout.value
    first = image.value
    buttons["step"].click()
    assert loop.iteration == 1 and "iter 1 ·" in readout.value and image.value != first
    buttons["run 50"].click()
    assert loop.iteration == 51 and "iter 51 ·" in readout.value
    buttons["reset"].click()
    assert loop.iteration == 0 and "iter 0 ·" in readout.value and image.value == first


def test_noising_figure_links_slider_and_pictures():
    import ipywidgets as W

    from widgets import noising

    ts = [0.1, 0.5, 0.9]
    x = target_image(8, 8)
    imgs = noising.noised(x, ts)
    assert len(imgs) == 3 and (imgs[0] - (2 * x - 1)).abs().mean() < (imgs[2] - (2 * x - 1)).abs().mean()
    box = noising.figure(x, ts)
    slider = next(w for w in box.children[0].children if isinstance(w, W.IntSlider))
    stack = box.children[1]
    assert isinstance(stack, W.Stack) and len(stack.children) == 3 and slider.max == 2
    assert any(l.source == (slider, "value") and l.target == (stack, "selected_index") for l in box.links)
