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
    assert set(buttons) == {"step · 单步", "run 50 · 50 步", "reset · 重置"} and "iter 0 ·" in readout.value
    first = image.value
    buttons["step · 单步"].click()
    assert loop.iteration == 1 and "iter 1 ·" in readout.value and image.value != first
    buttons["run 50 · 50 步"].click()
    assert loop.iteration == 51 and "iter 51 ·" in readout.value
    buttons["reset · 重置"].click()
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
    assert set(buttons) == {"step · 单步", "run 50 · 50 步", "reset · 重置"} and "iter 0 · t = – · |g| = –" in readout.value
    first = image.value
    buttons["step · 单步"].click()
    assert run.iteration == 1 and "iter 1 · t = " in readout.value and "|g| = " in readout.value
    assert f"t = {run.history[0]['t']} ·" in readout.value and image.value != first
    buttons["reset · 重置"].click()
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


# --- Figure 2: SDS-driven convergence (§2), DreamGaussian's stage 1 with densification --------

from dataclasses import replace  # noqa: E402

from gsbook.methods.dreamgaussian import DreamGaussian, DreamGaussianConfig  # noqa: E402
from widgets import convergence  # noqa: E402


@pytest.fixture(scope="module")
def conv_config():
    """16² views for the tiny prior; every seen Gaussian densified and none pruned, so that N
    surely changes at each densification step (and only there)."""
    return DreamGaussianConfig(resolution=16, grow_grad2d=0.0, prune_scale=100.0, prune_opacity=0.0)


@pytest.fixture(scope="module")
def conv_fig(tiny_prior, conv_config):
    return convergence.figure(prior=tiny_prior, prompt=PROMPT, n=12, steps=5, densify_every=2, seed=0, size=16,
                              config=conv_config, caption="200 <random> Gaussians", progress=False)


def conv_data(page: str) -> dict:
    return json.loads(re.search(r'class="gsbook-data">(.*?)</script>', page, re.S).group(1))


def test_convergence_records_every_step_and_n_changes_only_when_densifying(conv_fig):
    rec = conv_fig.record
    assert len(rec["n"]) == 6 and len(rec["t"]) == len(rec["loss"]) == len(rec["grad_norm"]) == 5
    assert rec["n"][0] == 12 and rec["n"][1:] == [h["n"] for h in conv_fig.run.history]
    assert rec["loss"] == [h["loss"] for h in conv_fig.run.history] and all(v > 0 for v in rec["loss"])
    assert rec["t"] == sorted(rec["t"], reverse=True)                       # annealed
    assert rec["densify"] == [2, 4]
    assert conv_fig.jumps == [2, 4] and rec["n"][4] > rec["n"][2] > rec["n"][1]
    c = conv_fig.run.config
    assert (c.n_init, c.steps, c.densify_every, c.seed, c.resolution) == (12, 5, 2, 0, 16)
    assert rec["iterations"] == [0, 1, 2, 3, 4, 5] and len(rec["frames"]) == 6
    assert all(f.startswith(b"\x89PNG") for f in rec["frames"]) and rec["frames"][0] != rec["frames"][-1]
    assert rec["readouts"][0] == "iter 0 · N = 12 · t = – · loss = –"
    assert rec["readouts"][3] == f"iter 3 · N = {rec['n'][3]} · t = {rec['t'][2]} · loss = {rec['loss'][2]:.4g}"


def test_convergence_long_runs_embed_every_kth_frame(tiny_prior, conv_config):
    assert convergence.frame_stride(120) == 1 and convergence.frame_stride(300) == 2
    assert convergence.frame_stride(500) == 4
    run = DreamGaussian(tiny_prior, PROMPT, convergence.figure_config(8, 5, 2, 0, conv_config))
    rec = convergence.precompute(run, 5, size=12, every=2, progress=False)
    assert rec["iterations"] == [0, 2, 4, 5] and len(rec["frames"]) == 4
    assert len(rec["n"]) == 6 and len(rec["loss"]) == 5                     # the curves keep every step
    with pytest.raises(ValueError, match="from its start"):
        convergence.precompute(run, 1, progress=False)


def test_convergence_static_player_is_self_contained(conv_fig):
    page = conv_fig._repr_mimebundle_()["text/html"]
    assert 'data-figure="convergence"' in page and 'data-frames="6"' in page and 'data-iteration="0"' in page
    for action in ("play", "step", "reset"):
        assert f'data-action="{action}"' in page
    assert 'type="range"' in page and 'max="5"' in page
    assert "http://" not in page and "https://" not in page and "<script src" not in page
    assert "200 &lt;random&gt; Gaussians" in page and "<random>" not in page      # escaped
    data = conv_data(page)
    assert len(data["frames"]) == len(data["readouts"]) == len(data["n"]) == len(data["badges"]) == 6
    assert data["iterations"] == [0, 1, 2, 3, 4, 5] and data["n"] == conv_fig.n
    assert data["readouts"] == conv_fig.record["readouts"]
    # the counter flashes at the densification frames, not before the first
    assert data["badges"][:2] == ["", ""]
    assert data["badges"][2] == f"+{conv_fig.n[2] - conv_fig.n[1]} at step 2"
    assert data["badges"][4].endswith("at step 4")
    # the curves: N(step) and the loss, densification steps dashed, a marker per chart and frame
    assert 'data-chart="n"' in page and 'data-chart="loss"' in page
    assert page.count('class="gsbook-densify"') == 4                        # steps 2 and 4, two charts
    assert page.count('data-marker="n"') == page.count('data-marker="loss"') == 1
    assert len(data["marks"]["n"]) == len(data["marks"]["loss"]) == 6 and data["marks"]["loss"][0] is None
    ys = [y for _, y in data["marks"]["n"]]
    assert ys[2] < ys[1] and ys[4] < ys[3]                                  # N rises: the marker goes up
    assert 'class="gsbook-n"' in page and ">12<" in page
    with pytest.raises(ValueError):
        convergence.static_html({**conv_fig.record, "readouts": conv_fig.record["readouts"][:-1]})


def test_convergence_summary(conv_fig):
    bundle = conv_fig._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    n = conv_fig.n
    assert bundle["text/plain"] == (f"Convergence figure ({PROMPT!r}): 6 frames over 5 steps, N 12 → {n[-1]} "
                                    f"(max {max(n)}), 2 densification jumps (at step 2, 4)")


def test_convergence_live_widget_steps_in_the_kernel_and_resets(conv_fig):
    import ipywidgets as W

    box = conv_fig.widget
    controls = box.children[0].children
    buttons = {w.description: w for w in controls if isinstance(w, W.Button)}
    play = next(w for w in controls if isinstance(w, W.Play))
    readout, (image, side) = box.children[1], box.children[2].children
    counter, curves = side.children
    assert set(buttons) == {"step · 单步", "reset · 重置"} and play.max == 5 and play is box.play
    run = box.state["run"]
    assert run.iteration == 0 and "iter 0 · N = 12 ·" in readout.value
    first = image.value
    buttons["step · 单步"].click()
    assert play.value == 1 and run.iteration == 1 and image.value != first
    assert "iter 1 · N = " in readout.value and f"t = {run.history[0]['t']} ·" in readout.value
    assert "at step" not in counter.value
    play.value = 3                                  # what the Play widget's ticks do: steps run in the kernel
    assert run.iteration == 3 and "iter 3 ·" in readout.value
    assert f">{run.history[2]['n']}<" in counter.value and "at step 2" in counter.value
    assert 'data-chart="n"' in curves.value and 'data-chart="loss"' in curves.value
    assert [h["n"] for h in run.history] == conv_fig.n[1:4]               # the same seed: the same run
    third = image.value
    play.value = 1                                  # back: a kept frame, nothing recomputed
    assert run.iteration == 3 and "iter 1 ·" in readout.value
    play.value = 3
    assert image.value == third
    buttons["reset · 重置"].click()
    assert play.value == 0 and box.state["run"] is not run and box.state["run"].iteration == 0
    assert image.value == first and "iter 0 ·" in readout.value


def test_convergence_text_helpers():
    n = [10, 10, 14, 14, 14, 20]
    assert convergence.badge(n, 1, 3) == "" and convergence.badge(n, 2, 3) == "+4 at step 2"
    assert convergence.badge(n, 4, 3) == "+4 at step 2" and convergence.badge(n, 5, 3) == "+6 at step 5"
    assert convergence.badge([10, 8], 1, 3) == "−2 at step 1"
    assert convergence.badge(n, 4, 2) == ""
    assert convergence.jumps(n) == [2, 5]
    assert convergence.readout(2, n, [900, 800], [1.0, 0.123456]) == "iter 2 · N = 14 · t = 800 · loss = 0.1235"
    assert "+4 at step 2" in convergence.counter_html(14, "+4 at step 2")
    svg = convergence.curves_svg(n, [1.0, 10.0, 100.0, 0.01, 0.1], 5, [2, 4], marker=0, t=[900, 1, 1, 1, 20])
    assert svg.count("<svg") == 2 and "t 900 → 20" in svg and 'visibility="hidden"' in svg
    with pytest.raises(ValueError):
        convergence.curves_svg(n, [1.0], 5, [])


def test_convergence_config_keeps_sparse_gaussians_from_the_size_pruning(conv_config):
    from gsbook.methods import prune_size

    c = convergence.figure_config(200, 120, 100, 3)
    assert (c.n_init, c.steps, c.densify_every, c.seed) == (200, 120, 100, 3)
    # the pruning size follows the initial spacing (prune_size), so 200 Gaussians are not pruned at once
    assert prune_size(c) == pytest.approx(prune_size(DreamGaussianConfig()) * (5000 / 200) ** (1 / 3))
    given = convergence.figure_config(200, 7, 3, 1, conv_config)           # a given config is kept as it is
    assert given.prune_scale == conv_config.prune_scale and given.resolution == 16 and given.n_init == 200
    assert convergence.densify_steps(c) == [100] and convergence.densify_steps(c, 300) == [100, 200, 300]
    assert convergence.densify_steps(replace(c, densify_until=200), 300) == [100]


# --- Figure 3: 4 views → Gaussians (§3), LGM's attention and an orbit ---------------------
from widgets import four_views  # noqa: E402


@pytest.fixture(scope="module")
def four_fig():
    from gsbook.methods.lgm import LGM, LGMConfig
    torch.manual_seed(0)
    model = LGM(LGMConfig(down_channels=(16, 16, 32, 32), up_channels=(32, 32, 16))).eval()
    views = four_views.ground_truth_views("a blue lamp with a grey base", seed=0)
    sources = four_views.precompute(model, {"ground truth": views, "flipped": views.flip(2)}, azimuths=4)
    return four_views.FourViewsFigure(model, sources, 4, caption="cap")


def test_four_views_attention_is_a_distribution_over_the_four_views(four_fig):
    s = four_fig.sources[0]
    g = 64 // 8                                             # three halvings to the middle block
    assert s.attention.shape == (4, g, g) and torch.allclose(s.attention.sum(), torch.tensor(1.0), atol=1e-5)
    assert (s.attention > 0).all()                          # softmax: every view gets some weight
    row, col = s.query
    ink = (s.views[0] < 0.97).any(-1)
    assert ink[row * 8:(row + 1) * 8, col * 8:(col + 1) * 8].any()   # the query token sits on the object
    assert s.gaussians.n == four_fig.count == 4096


def test_four_views_static_player_is_self_contained(four_fig):
    page = four_fig.html
    assert 'data-figure="four_views"' in page and 'data-sources="2"' in page and 'data-frames="4"' in page
    assert "predicting <b class=\"gsbook-count\">4,096</b> Gaussians" in page
    assert "4 views × 8×8 tokens = 256 tokens" in page
    data = json.loads(re.search(r'<script type="application/json" class="gsbook-data">(.*?)</script>', page,
                                re.S).group(1))
    assert [s["name"] for s in data["sources"]] == ["ground truth", "flipped"]
    assert all(len(s["frames"]) == 4 for s in data["sources"])
    assert data["sources"][0]["frames"][0] != data["sources"][0]["frames"][1]     # the orbit turns
    assert "http" not in page.replace("http://www.w3.org", "")
    with pytest.raises(ValueError, match="same number of orbit frames"):
        four_views.static_html([four_fig.sources[0], four_views.Source("x", *[getattr(four_fig.sources[0], k) for k in
                               ("views", "gaussians", "attention", "query")], frames=[])], 4096, "t")


def test_four_views_live_widget_switches_source_and_orbits(four_fig):
    box = four_fig.widget
    first = box.frame.value
    box.slider.value = 90
    turned = box.frame.value
    assert turned != first
    box.pick.value = "flipped"
    assert box.frame.value != turned
    bundle = four_fig._repr_mimebundle_()
    assert bundle["text/html"] == four_fig.html and "4,096 Gaussians" in bundle["text/plain"]
