"""DreamFusion, the NeRF baseline (gsbook.methods.dreamfusion) and ``gsbook generate dreamfusion``.

The conversion is checked on an analytic field (a red ball in green-coloured but empty space);
the SDS loop with the oracle prior, which knows one target image, so "moves toward the prompt"
is a distance that must shrink; the command with the book's prior in the ``ci`` profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gsbook.generate as gen
from gsbook.cameras import orbit
from gsbook.io import load_ply, load_splat
from gsbook.methods import (DreamFusion, DreamFusionConfig, DreamFusionNeRF, dreamfusion_text_to_3d,
                            nerf_to_gaussians, render_nerf)
from gsbook.render import render
from gsbook.sds import OraclePrior

RED, GREEN = torch.tensor([0.9, 0.1, 0.1]), torch.tensor([0.1, 0.8, 0.1])


class Ball(nn.Module):
    """A field that is dense (``density``) and red inside ``radius``, and empty outside, where
    its colour is green: a conversion that let empty space through would show green."""

    def __init__(self, density: float = 40.0, radius: float = 0.4) -> None:
        super().__init__()
        self.density, self.radius = density, radius

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        inside = x.norm(dim=-1) < self.radius
        return inside.float() * self.density, torch.where(inside[..., None], RED, GREEN)


# ============================================================================== NeRF → Gaussians
def test_conversion_keeps_the_colour_where_dense_and_nothing_where_empty():
    ball, resolution = Ball(), 32
    g = nerf_to_gaussians(ball, resolution)
    side = 2.0 / resolution
    assert g.n > 0
    assert g.means.norm(dim=-1).max() < ball.radius + side                     # nothing out in empty space
    assert torch.allclose(g.rgb, RED.expand(g.n, 3), atol=1e-4)               # the field's colour, no green
    assert torch.allclose(g.scales, torch.full((g.n, 3), 0.5 * side))         # isotropic, half a cell
    expected_alpha = 1 - torch.exp(torch.tensor(-ball.density * side))
    assert torch.allclose(g.opacities, expected_alpha.expand(g.n), atol=1e-4)
    # the buried core (every cell within two of it at α ≥ 0.9) is dropped: fewer Gaussians than dense cells
    cells_inside = 4 / 3 * torch.pi * ball.radius ** 3 / side ** 3
    assert g.n < 0.95 * cells_inside
    assert nerf_to_gaussians(Ball(density=0.0), 16).n == 0                    # an empty field: no Gaussians


def test_the_gaussians_look_like_the_field_from_any_side():
    ball = Ball()
    g = nerf_to_gaussians(ball, 32)
    cams = orbit([20.0, -10.0, 45.0], [30.0, 200.0, 290.0], width=32, height=32, device="cpu")
    field_image = render_nerf(ball, cams, samples=128)
    splat_image = render(g, cams, background=1.0).image
    difference = (field_image - splat_image).abs().amax(-1)                     # [C, H, W]
    assert difference.mean() < 0.05
    # Where they differ much, it is at the silhouette: within 2 pixels of the field's rim (pixels with
    # both object and background in their 5 × 5 neighbourhood): the edge Gaussians' tails reach about
    # half a cell past the ball, a pixel or so here.
    covered = ((field_image - 1).abs().amax(-1) > 0.05).float()[:, None]
    rim = (F.max_pool2d(covered, 5, 1, 2) + F.max_pool2d(-covered, 5, 1, 2))[:, 0] > 0
    assert rim[difference > 0.25].all()
    assert rim.float().mean() < 0.3                                           # the rim is a thin ring, not the image
    red_pixels = (field_image - RED).abs().amax(-1) < 0.1
    assert red_pixels.float().mean() > 0.05 and (splat_image[red_pixels] - RED).abs().max() < 0.15


def test_the_density_bias_starts_a_ball_at_the_centre_and_the_field_counts_its_queries():
    nerf = DreamFusionNeRF(hidden=16, layers=2, density_bias=5.0, bias_radius=0.5)
    centre, far = nerf(torch.zeros(1, 3))[0], nerf(torch.tensor([[0.0, 0.0, 0.95]]))[0]
    assert centre > 3.0 and far < 0.1
    assert nerf.queries == 2
    nerf(torch.zeros(4, 5, 3))
    assert nerf.queries == 2 + 20


# ============================================================================== SDS on the NeRF
def target_disc(size: int) -> Tensor:
    """``[3, size, size]``: a blue disc on white, the oracle's one target image."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    disc = (xs - size / 2) ** 2 + (ys - size / 2) ** 2 < (0.3 * size) ** 2
    image = torch.ones(3, size, size)
    image[:, disc] = torch.tensor([0.1, 0.2, 0.9])[:, None]
    return image


def tiny(**changes) -> DreamFusionConfig:
    """One fixed camera (the oracle knows one view), white background, a small field."""
    return DreamFusionConfig(**{**dict(steps=40, resolution=16, samples=16, hidden=32, layers=2, lr=0.01,
                                       guidance_scale=1.0, elevation_range=(0.0, 0.0), azimuth_range=(0.0, 0.0),
                                       invert_background=0.0, grid_resolution=16), **changes})


def test_sds_on_the_nerf_moves_its_render_toward_the_target():
    target = target_disc(16)
    run = DreamFusion(OraclePrior(target), "a blue disc", tiny(), device="cpu")
    cams = orbit(0.0, 0.0, width=16, height=16, device="cpu")

    def distance() -> float:
        with torch.no_grad():
            return float((render_nerf(run.nerf, cams, 16)[0].permute(2, 0, 1) - target).square().mean())

    before = distance()
    run.run()
    after = distance()
    assert after < 0.5 * before, (before, after)
    assert len(run.history) == 40 and all(h["queries"] == 16 * 16 * 16 for h in run.history)


def test_a_run_counts_its_work_and_a_seed_repeats_it():
    config = tiny(steps=3)
    first = dreamfusion_text_to_3d("a blue disc", config, prior=OraclePrior(target_disc(16)))
    again = dreamfusion_text_to_3d("a blue disc", config, prior=OraclePrior(target_disc(16)))
    assert first.counts == {"steps": 3, "prior_calls": 3, "prior_images": 6, "rays_per_step": 256,
                            "mlp_queries_per_step": 256 * 16, "mlp_queries_optimise": 3 * 256 * 16,
                            "mlp_queries_convert": 16 ** 3, "gaussians": first.gaussians.n}
    assert set(first.seconds) == {"optimise", "convert"}
    assert torch.equal(first.gaussians.means, again.gaussians.means)
    for a, b in zip(first.nerf.parameters(), again.nerf.parameters()):
        assert torch.equal(a, b)


def test_bad_settings_are_refused_with_the_names():
    with pytest.raises(ValueError, match="samples"):
        DreamFusionConfig(samples=0)
    with pytest.raises(ValueError, match="near"):
        DreamFusionConfig(near=3.0, far=2.0)
    with pytest.raises(ValueError, match="profile"):
        DreamFusionConfig.for_profile("huge")
    assert DreamFusionConfig.for_profile("gpu").steps == 15_000                  # DreamFusion's own count
    assert DreamFusionConfig.for_profile("ci").steps < DreamFusionConfig.for_profile("cpu").steps


# ============================================================================== the command
def test_generate_dreamfusion_writes_the_common_files(tmp_path):
    out = tmp_path / "ball"
    gen.main(["dreamfusion", "a red ball", "--profile", "ci", "--steps", "5", "--device", "cpu", "--quiet",
              "--set", "grid_resolution=16", "--out", str(out)])
    assert {p.name for p in out.iterdir()} == {"gaussians.ply", "gaussians.splat", "turntable.png", "result.json"}
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "dreamfusion" and result["profile"] == "ci"
    assert result["config"]["steps"] == 5 and result["config"]["grid_resolution"] == 16
    counts = result["extra"]["counts"]
    assert counts["steps"] == counts["prior_calls"] == 5
    assert counts["mlp_queries_optimise"] == 5 * 32 * 32 * result["config"]["samples"]
    n = result["counts"]["gaussians"]
    assert n == counts["gaussians"] == load_ply(out / "gaussians.ply").n == load_splat(out / "gaussians.splat").n > 0
    assert (out / "gaussians.splat").stat().st_size == 32 * n
    assert len(result["extra"]["history"]["t"]) == 5
    assert len(result["judge"]["gaussians"]["readings"]) == 8


@pytest.mark.parametrize("argv, says", [
    (["dreamfusion", "a red banana"], ["'banana'"]),
    (["dreamfusion", "a red ball", "--steps", "0"], ["--steps", "≥ 1"]),
    (["dreamfusion", "a red ball", "--set", "samples=0"], ["samples"]),
    (["dreamfusion", "a red ball", "--set", "rays=3"], ["'rays'", "grid_resolution"]),
    (["dreamfusion", "a red ball", "--set", "steps=3"], ["--steps"]),
])
def test_generate_dreamfusion_refuses_bad_input_before_anything_runs(argv, says, tmp_path, capsys, monkeypatch):
    def boom(request, progress):
        raise AssertionError("the method ran despite bad input")

    method = gen.GENERATORS["dreamfusion"]
    monkeypatch.setitem(gen.GENERATORS, "dreamfusion", gen.Method(method.name, method.summary, boom,
                                                                  method.add_arguments, method.configure))
    with pytest.raises(SystemExit) as exit_:
        gen.main(argv + ["--profile", "ci", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("gsbook generate: error: "), err
    for word in says:
        assert word in err, f"{word!r} not in {err!r}"
    assert list(tmp_path.iterdir()) == []
