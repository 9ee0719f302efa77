"""widgets: the SDS-loop figure's two renderings and the era timeline's data and markup."""

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import torch

from gsbook.diffusion import Prior2DConfig, TextToImagePrior
from gsbook.methods import ImageSDS, ImageSDSConfig
from gsbook.sds import BookPrior, target_image
from widgets import era_timeline, sds_loop


def live_controls(box):
    """``(buttons by label, readout, image)`` of a :func:`sds_loop.live` widget."""
    import ipywidgets as W

    row = box.children[0].children
    buttons = {w.description: w for w in row if isinstance(w, W.Button)}
    return buttons, next(w for w in row if isinstance(w, W.HTML)), box.children[1]


@pytest.fixture(scope="module")
def record():
    return sds_loop.precompute(*sds_loop.l2_loop(16, n=6, seed=0), steps=4, progress=False)


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
    loop, panel = sds_loop.l2_loop(16, n=3, seed=0)
    png = sds_loop.draw_frame(loop.image(), loop.centres(), panel.side)
    assert png.startswith(b"\x89PNG")


def test_figure_bundle_carries_live_widget_and_static_player():
    fig = sds_loop.figure(width=16, height=16, n=4, steps=3)
    bundle = fig._repr_mimebundle_()
    assert "text/html" in bundle and "gsbook-player" in bundle["text/html"]
    assert "text/plain" in bundle
    assert len(fig.losses) == 4 and fig.losses[-1] < fig.losses[0]
    # the live loop starts from iteration 0 even though frames were precomputed
    assert fig.loop.iteration == 0 and isinstance(fig.loop, ImageSDS)
    assert fig.loop.mse(target_image(16, 16)) == pytest.approx(fig.losses[0])


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
    loop, panel = sds_loop.l2_loop(16, n=4, seed=0)
    box = sds_loop.live(loop, panel)
    buttons, readout, image = live_controls(box)
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

    ts = [100, 500, 900]
    x = target_image(8, 8)
    imgs = noising.noised(x, ts)
    assert len(imgs) == 3 and (imgs[0] - (2 * x - 1)).abs().mean() < (imgs[2] - (2 * x - 1)).abs().mean()
    box = noising.figure(x, ts)
    slider = next(w for w in box.children[0].children if isinstance(w, W.IntSlider))
    stack = box.children[1]
    assert isinstance(stack, W.Stack) and len(stack.children) == 3 and slider.max == 2
    assert any(l.source == (slider, "value") and l.target == (stack, "selected_index") for l in box.links)


# --- prior mode: the same figure with the book's text-to-image prior as the denoiser ---------

PROMPT = "a red mushroom with a white stem"


@pytest.fixture(scope="module")
def tiny_prior():
    """Random weights, a few thousand parameters: tests the plumbing, not the pictures."""
    torch.manual_seed(0)
    return BookPrior(TextToImagePrior(Prior2DConfig(channels=(16, 16, 16), norm_groups=8)))


@pytest.fixture(scope="module")
def tiny_config():
    return ImageSDSConfig(steps=3, n_gaussians=8, resolution=16, batch=1)


@pytest.fixture(scope="module")
def prior_fig(tiny_prior, tiny_config):
    return sds_loop.figure(n=5, steps=3, seed=1, denoiser="prior", prompt=PROMPT, prior=tiny_prior,
                           config=tiny_config)


def test_prior_figure_records_gradients_and_timesteps(prior_fig):
    assert prior_fig.mode == "prior" and prior_fig.losses is None
    assert len(prior_fig.grad_norms) == len(prior_fig.timesteps) == 3
    assert all(g > 0 for g in prior_fig.grad_norms)
    assert all(isinstance(t, int) and 0 <= t < 1000 for t in prior_fig.timesteps)
    # n, steps and seed reach the run's config; the rest comes from the given config
    c = prior_fig.loop.config
    assert (c.n_gaussians, c.steps, c.seed, c.resolution, c.batch) == (5, 3, 1, 16, 1)
    assert prior_fig.loop.iteration == 0 and len(prior_fig.record["centres"][0]) == 5
    plain = prior_fig._repr_mimebundle_()["text/plain"]
    assert PROMPT in plain and "4 precomputed frames" in plain and "|g|" in plain


def test_prior_static_player_shows_prompt_frames_and_gradient_readouts(prior_fig):
    page = prior_fig._repr_mimebundle_()["text/html"]
    assert 'data-figure="sds_loop"' in page and 'data-denoiser="prior"' in page and 'data-frames="4"' in page
    assert PROMPT in page and ">target<" not in page
    assert "http://" not in page and "https://" not in page
    data = json.loads(re.search(r'class="gsbook-data">(.*?)</script>', page, re.S).group(1))
    assert len(data["frames"]) == len(data["centres"]) == len(data["readouts"]) == 4
    assert "losses" not in data
    assert data["readouts"][0] == "iter 0 · t = – · |g| = –"
    for k, text in enumerate(data["readouts"][1:], start=1):
        assert text.startswith(f"iter {k} · t = {prior_fig.timesteps[k - 1]} · |g| = ")
        assert float(text.rsplit("=", 1)[1]) == pytest.approx(prior_fig.grad_norms[k - 1], rel=1e-3)
    assert 'class="gsbook-readout">iter 0 · t = – · |g| = –<' in page
    assert page.count("<circle") == 5


def test_prior_side_panel_is_the_seeded_sample(tiny_prior, tiny_config, prior_fig):
    a = sds_loop.prior_sample(tiny_prior, PROMPT, seed=3)
    assert a.shape == (32, 32, 3) and 0 <= float(a.min()) and float(a.max()) <= 1
    assert torch.equal(a, sds_loop.prior_sample(tiny_prior, PROMPT, seed=3))
    assert torch.equal(prior_fig.panel.side, sds_loop.prior_sample(tiny_prior, PROMPT, seed=1))
    assert PROMPT in prior_fig.panel.label and prior_fig.panel.mode == "prior"
    # a 32² sample beside a 16² render: drawn at the render's size, still one PNG
    loop = ImageSDS(tiny_prior, PROMPT, tiny_config)
    assert sds_loop.draw_frame(loop.image(), loop.centres(), a).startswith(b"\x89PNG")


def test_prior_live_widget_steps_and_resets(tiny_prior, tiny_config):
    run = ImageSDS(tiny_prior, PROMPT, tiny_config)
    box = sds_loop.live(run, sds_loop.Panel(torch.full((32, 32, 3), 0.5), PROMPT))
    buttons, readout, image = live_controls(box)
    assert set(buttons) == {"step", "run 50", "reset"} and "iter 0 · t = – · |g| = –" in readout.value
    first = image.value
    buttons["step"].click()
    assert run.iteration == 1 and "iter 1 · t = " in readout.value and "|g| = " in readout.value
    assert f"t = {run.history[0]['t']} ·" in readout.value and image.value != first
    buttons["reset"].click()
    assert run.iteration == 0 and "iter 0 ·" in readout.value and image.value == first


def test_prior_reset_gives_the_same_first_frame(tiny_prior, tiny_config):
    run = ImageSDS(tiny_prior, PROMPT, tiny_config)
    panel = sds_loop.Panel(torch.full((32, 32, 3), 0.5), PROMPT)
    before = sds_loop.precompute(run, panel, steps=2, progress=False)
    run.reset()
    after = sds_loop.precompute(run, panel, steps=2, progress=False)
    assert before["frames"] == after["frames"] and before["readouts"] == after["readouts"]
    assert before["frames"][0] != before["frames"][-1]


def test_figure_rejects_bad_denoiser_and_missing_prompt(tiny_prior, tiny_config):
    with pytest.raises(ValueError, match=r"unknown denoiser 'sd'.*'l2', 'prior'"):
        sds_loop.figure(denoiser="sd", steps=1)
    for prompt in (None, ""):
        with pytest.raises(ValueError, match="needs a prompt"):
            sds_loop.figure(steps=1, denoiser="prior", prompt=prompt, prior=tiny_prior, config=tiny_config)
    with pytest.raises(ValueError, match="only to denoiser='prior'"):
        sds_loop.figure(width=16, height=16, steps=1, prompt=PROMPT)
    with pytest.raises(ValueError, match="square"):
        sds_loop.figure(width=16, height=24, steps=1, denoiser="prior", prompt=PROMPT, prior=tiny_prior,
                        config=tiny_config)
    with pytest.raises(ValueError, match="square"):
        sds_loop.figure(width=16, height=24, steps=1)


def test_l2_record_reads_out_the_loss_to_the_target(record):
    assert record["mode"] == "l2" and record["side_label"] == "target"
    assert record["readouts"] == [f"iter {i} · loss = {v:.5f}" for i, v in enumerate(record["losses"])]
    assert "grad_norms" not in record


def test_prior_figure_width_sets_the_resolution(tiny_prior, tiny_config):
    fig = sds_loop.figure(width=12, n=3, steps=1, denoiser="prior", prompt=PROMPT, prior=tiny_prior,
                          config=tiny_config)
    assert fig.loop.config.resolution == 12 and (fig.record["width"], fig.record["height"]) == (12, 12)
