"""widgets.flow_steps (§4): Trellis' two flows walked step by step, on small untrained models.

The frames look random here (no weights), but the mechanics are what the chapter relies on:
one frame per kept Euler step of each stage, the right times, a static player that embeds
every frame with bilingual labels, and a live widget that swaps frames in the kernel."""

from __future__ import annotations

import base64
import json
import re

import pytest
import torch

from gsbook.methods import (SLatFlow, SLatFlowConfig, SLatVAE, SLatVAEConfig, StructureFlow, StructureFlowConfig,
                            StructureVAE, StructureVAEConfig, TrellisConfig, TrellisModels, structure_grid,
                            surface_voxels, trellis_text_to_3d, voxel_gaussians, voxel_normals)
from widgets import flow_steps

torch.set_num_threads(1)

STEPS, SIZE = 4, 32


@pytest.fixture(scope="module")
def models() -> TrellisModels:
    """Small random models, as in tests/test_trellis_pipeline.py, with the structure decoder's
    bias set so about 2 % of the voxels come out occupied: a random decoder otherwise fills
    most of the grid (or none of it), and stage 2 then runs on ~20,000 voxels (or none)."""
    torch.manual_seed(0)
    ss_vae = StructureVAE(StructureVAEConfig(widths=(16, 32), encoder_blocks=1, decoder_blocks=1, fine_blocks=1))
    ss_flow = StructureFlow(StructureFlowConfig(width=64, depth=1, heads=2))
    slat_vae = SLatVAE(SLatVAEConfig(width=32, heads=2, encoder_depth=1, decoder_depth=1))
    slat_flow = SLatFlow(SLatFlowConfig(width=32, io_width=16, depth=1, heads=2))
    for flow in (ss_flow, slat_flow):          # an untrained flow predicts v = 0: give it a random head
        for p in flow.parameters():
            if p.abs().sum() == 0:
                torch.nn.init.normal_(p, std=0.02)
    with torch.no_grad():
        logits = ss_vae.decode(torch.randn(1, *ss_vae.latent_shape))
        ss_vae.decoder_fine[-1].bias -= logits.quantile(0.98)
    return TrellisModels(ss_vae.eval(), ss_flow.eval(), slat_vae.eval(), slat_flow.eval())


@pytest.fixture(scope="module")
def frames(models) -> flow_steps.FlowFrames:
    return flow_steps.trellis_frames(models, "a red mushroom", steps=STEPS, seed=0, size=SIZE, progress=False)


@pytest.fixture(scope="module")
def fig(frames) -> flow_steps.FlowStepsFigure:
    return flow_steps.figure(*frames, caption="the flow's guesses · 流的猜测")


def payload(html: str) -> dict:
    return json.loads(re.search(r'class="gsbook-data">(.*?)</script>', html, re.S).group(1))


def test_one_frame_per_step_and_the_result_in_each_stage(frames):
    structure, gaussians, times, steps = frames
    assert steps == STEPS and len(structure) == len(gaussians) == STEPS + 1
    expected = [1 - i / STEPS for i in range(STEPS + 1)]
    assert times == pytest.approx(expected + expected)
    for im in structure + gaussians:
        assert im.shape == (SIZE, SIZE, 3) and im.dtype == torch.float32
        assert im.min() >= 0 and im.max() <= 1 and torch.isfinite(im).all()
    assert (structure[-1] < 0.95).any(), "the final structure draws something on the white background"
    assert (gaussians[-1] < 0.95).any(), "the final Gaussians draw something on the white background"


def test_the_figure_shows_the_same_object_as_the_pipeline(models, frames):
    """Same seeds as trellis_text_to_3d: the last structure frame is its occupancy, drawn."""
    result = trellis_text_to_3d(models, "a red mushroom", TrellisConfig(steps=STEPS, seed=0))
    drawn = flow_steps.render_occupancy(result.occupancy, flow_steps.view(SIZE))
    assert torch.allclose(drawn, frames.structure[-1], atol=1e-5)


def test_long_runs_keep_at_most_max_frames_per_stage():
    kept = flow_steps.kept_steps(25, 12)
    assert len(kept) == 12 and kept[0] == 0 and kept[-1] == 25 and kept == sorted(set(kept))
    assert flow_steps.kept_steps(4, 12) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        flow_steps.kept_steps(0)


def test_static_player_embeds_every_frame_and_the_bilingual_labels(fig, frames):
    html = fig.html
    n = len(frames.structure) + len(frames.gaussians)
    assert 'data-figure="flow_steps"' in html and f'data-frames="{n}"' in html
    assert f'data-split="{len(frames.structure)}"' in html
    for action in ("play", "step", "reset"):
        assert f'data-action="{action}"' in html
    assert "http://" not in html and "https://" not in html           # no network
    data = payload(html)
    assert len(data["frames"]) == len(data["labels"]) == n and data["split"] == len(frames.structure)
    assert all(base64.b64decode(f).startswith(b"\x89PNG") for f in data["frames"])
    assert data["labels"][0] == f"stage 1 · 阶段一: structure · 结构, step 0/{STEPS}, t = 1.00"
    assert data["labels"][len(frames.structure) - 1].endswith(f"step {STEPS}/{STEPS}, t = 0.00")
    assert data["labels"][len(frames.structure)].startswith("stage 2 · 阶段二: appearance · 外观, step 0/")
    assert data["labels"][-1] == f"stage 2 · 阶段二: appearance · 外观, step {STEPS}/{STEPS}, t = 0.00"
    for text in ("stage 1 · 阶段一", "stage 2 · 阶段二", "play · 播放", "流的猜测"):
        assert text in html


def test_bundle_carries_live_widget_and_static_player(fig):
    bundle = fig._repr_mimebundle_()
    assert "gsbook-player" in bundle["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith(f"Flow steps figure: {STEPS + 1} structure frames")


def test_live_widget_swaps_frames_in_the_kernel(fig):
    box = fig.widget
    first = box.image.value
    box.play.value = len(fig.frames) - 1
    assert box.image.value != first and "stage 2 · 阶段二" in box.line.value
    box.play.value = 0
    assert box.image.value == first and "stage 1 · 阶段一" in box.line.value


def test_figure_without_times_counts_frames_and_checks_its_input():
    white, grey = torch.ones(8, 8, 3), torch.full((8, 8, 3), 0.5)
    fig = flow_steps.figure([white, grey], [grey, white, grey])
    assert fig.readouts[0] == "stage 1 · 阶段一: structure · 结构, frame 1/2, t = 1.00"
    assert fig.readouts[-1] == "stage 2 · 阶段二: appearance · 外观, frame 3/3, t = 0.00"
    with pytest.raises(ValueError, match="one time per frame"):
        flow_steps.figure([white], [grey], times=[1.0])
    with pytest.raises(ValueError, match="frames_gaussians is empty"):
        flow_steps.figure([white], [])
    with pytest.raises(ValueError, match="one size"):
        flow_steps.figure([white], [torch.ones(4, 4, 3)])
    with pytest.raises(ValueError, match="NaN"):
        flow_steps.figure([white], [torch.full((8, 8, 3), float("nan"))])


def test_voxels_are_drawn_as_shaded_gaussians_and_empty_grids_as_white():
    occ = structure_grid("a red mushroom", 32, seed=1)
    g = voxel_gaussians(occ)
    assert g is not None and g.n == int(surface_voxels(occ).sum())
    image = flow_steps.render_occupancy(occ, flow_steps.view(SIZE))
    assert (image < 0.9).any()
    assert voxel_gaussians(torch.zeros(32, 32, 32, dtype=torch.bool)) is None
    assert torch.equal(flow_steps.render_occupancy(torch.zeros(32, 32, 32, dtype=torch.bool),
                                                   flow_steps.view(SIZE)), torch.ones(SIZE, SIZE, 3))
    # the top of a slab faces up
    slab = torch.zeros(4, 4, 4, dtype=torch.bool)
    slab[:, :2] = True
    top = torch.tensor([[1, 1, 1]])
    assert voxel_normals(slab, top).tolist() == [[0.0, 1.0, 0.0]]
