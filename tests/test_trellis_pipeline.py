"""TRELLIS end to end (gsbook.methods.trellis.pipeline) on small untrained networks: the plumbing of
caption → structure → SLat → Gaussians, and what the two edits promise (structure kept, region
outside the edit kept, latents held exactly), plus the samplers' new hooks."""

from __future__ import annotations

import pytest
import torch

from gsbook.flow import euler_sample
from gsbook.methods.trellis import (SLatFlow, SLatFlowConfig, SLatVAE, SLatVAEConfig, StructureFlow,
                                    StructureFlowConfig, StructureVAE, StructureVAEConfig, TrellisConfig,
                                    TrellisModels, edit_appearance, edit_region, sample_slat, shell_coords,
                                    structure_grid, top_region_mask, trellis_text_to_3d)
from gsbook.methods.trellis.pipeline import TrellisResult

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models() -> TrellisModels:
    torch.manual_seed(0)
    ss_vae = StructureVAE(StructureVAEConfig(widths=(16, 32), encoder_blocks=1, decoder_blocks=1, fine_blocks=1))
    ss_flow = StructureFlow(StructureFlowConfig(width=64, depth=1, heads=2))
    slat_vae = SLatVAE(SLatVAEConfig(width=32, heads=2, encoder_depth=1, decoder_depth=1))
    slat_flow = SLatFlow(SLatFlowConfig(width=32, io_width=16, depth=1, heads=2))
    # an untrained flow predicts v = 0 (zero-initialised output): give it a random head
    for flow in (ss_flow, slat_flow):
        for p in flow.parameters():
            if p.abs().sum() == 0:
                torch.nn.init.normal_(p, std=0.02)
    return TrellisModels(ss_vae.eval(), ss_flow.eval(), slat_vae.eval(), slat_flow.eval())


@pytest.fixture(scope="module")
def lamp(models) -> TrellisResult:
    """A real structure (the decoder of an untrained VAE may draw nothing) with a drawn SLat."""
    occupancy = structure_grid("a red lamp", 32, seed=2)
    coords = shell_coords(occupancy)
    slat = sample_slat(models.slat_flow, [coords], ["a red lamp"], steps=3, generator=torch.Generator().manual_seed(0))[0]
    return TrellisResult("a red lamp", occupancy, coords, slat, None)


def test_text_to_3d_returns_a_consistent_result_or_says_the_structure_is_empty(models):
    try:
        result = trellis_text_to_3d(models, "a red ball", TrellisConfig(steps=2))
    except RuntimeError as error:                  # an untrained decoder may occupy nothing
        assert "empty structure" in str(error)
        return
    assert result.occupancy.shape == (32, 32, 32) and result.occupancy.dtype == torch.bool
    assert torch.equal(result.coords, shell_coords(result.occupancy))
    assert result.slat.shape == (len(result.coords), 8)
    assert result.gaussians.n == len(result.coords) * models.slat_vae.config.gaussians_per_voxel
    assert set(result.seconds) == {"structure", "slat", "decode"}


def test_the_same_seed_gives_the_same_object(models, lamp):
    a = edit_appearance(models, lamp, "a blue lamp", TrellisConfig(steps=2, seed=3))
    b = edit_appearance(models, lamp, "a blue lamp", TrellisConfig(steps=2, seed=3))
    assert torch.equal(a.slat, b.slat)


def test_appearance_edit_keeps_the_structure_and_redraws_the_latent(models, lamp):
    edited = edit_appearance(models, lamp, "a purple lamp", TrellisConfig(steps=3))
    assert torch.equal(edited.occupancy, lamp.occupancy) and torch.equal(edited.coords, lamp.coords)
    assert edited.caption == "a purple lamp"
    assert not torch.allclose(edited.slat, lamp.slat)
    assert edited.gaussians.n == lamp.coords.shape[0] * models.slat_vae.config.gaussians_per_voxel


def test_region_edit_holds_every_voxel_and_latent_outside_the_region(models, lamp):
    region = top_region_mask(32)
    edited = edit_region(models, lamp, region=region, config=TrellisConfig(steps=3))
    assert torch.equal(edited.occupancy[~region], lamp.occupancy[~region])
    # every voxel active before and after, outside the region, keeps its latent exactly
    old = {tuple(c): z for c, z in zip(lamp.coords.tolist(), lamp.slat)}
    held = [(tuple(c), z) for c, z in zip(edited.coords.tolist(), edited.slat)
            if tuple(c) in old and not region[tuple(c)]]
    assert len(held) > 0.5 * len(lamp.coords)
    assert all(torch.equal(z, old[c]) for c, z in held)
    # inside the region, the latents are drawn anew
    inside = [(tuple(c), z) for c, z in zip(edited.coords.tolist(), edited.slat) if region[tuple(c)] and tuple(c) in old]
    assert inside and not all(torch.allclose(z, old[c]) for c, z in inside)


def test_region_edit_checks_the_region(models, lamp):
    with pytest.raises(ValueError, match="region must be bool"):
        edit_region(models, lamp, region=torch.zeros(16, 16, 16, dtype=torch.bool))


def test_sample_slat_checks_the_edit_arguments(models, lamp):
    with pytest.raises(ValueError, match="both known"):
        sample_slat(models.slat_flow, [lamp.coords], ["a red lamp"], known=[lamp.slat])
    with pytest.raises(ValueError, match="known must be"):
        sample_slat(models.slat_flow, [lamp.coords], ["a red lamp"], known=[lamp.slat[:-1]],
                    keep=[torch.ones(len(lamp.coords), dtype=torch.bool)])


def test_euler_callback_sees_every_step_before_it_is_taken():
    seen = []
    x1 = torch.randn(4, 2)
    out = euler_sample(lambda x, t: torch.ones_like(x), x1, steps=4,
                       callback=lambda i, t, x, v: seen.append((i, float(t[0]), x.clone())))
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    assert [s[1] for s in seen] == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert torch.allclose(seen[0][2], x1) and torch.allclose(out, x1 - 1.0)


def test_config_checks_its_values():
    with pytest.raises(ValueError, match="steps"):
        TrellisConfig(steps=0)
    with pytest.raises(ValueError, match="profile"):
        TrellisConfig.for_profile("laptop")
    assert TrellisConfig(steps=7).stage2_steps == 7 and TrellisConfig(steps=7, slat_steps=2).stage2_steps == 2
