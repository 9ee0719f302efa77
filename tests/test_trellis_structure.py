"""TRELLIS stage 1 (gsbook.methods.trellis.structure) and its recipes (gsbook.recipes.trellis_structure):
occupancy and its shell, the structure VAE, the flow transformer, sampling and the sub-volume edit."""

from __future__ import annotations

import math

import pytest
import torch

from gsbook.flow import flow_loss
from gsbook.methods.trellis import (StructureFlow, StructureFlowConfig, StructureVAE, StructureVAEConfig, fold3d,
                                    occupied_fraction, sample_structure, sincos_3d_positions, structure_grid,
                                    structure_vae_loss, surface_voxels, top_region_mask, unfold3d, voxel_iou)
from gsbook.world import make_asset

SMALL_VAE = StructureVAEConfig(widths=(16, 32), encoder_blocks=1, decoder_blocks=1, fine_blocks=1)
SMALL_FLOW = StructureFlowConfig(width=64, depth=2, heads=2)


def _randomise_zero_layers(flow: StructureFlow, seed: int = 0) -> StructureFlow:
    """A fresh flow outputs exactly zero (adaLN-Zero); give its zero layers weights so that
    the tests see a velocity that depends on its inputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in flow.named_parameters():
            if "modulation" in name or name.startswith("final"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return flow


# ----------------------------------------------------------------------------- structure
def test_a_ball_fills_the_analytic_sphere_volume_at_every_resolution():
    ball = make_asset("a red ball", seed=3)
    _, lo, hi = ball.layout[0]
    r = float(hi[0] - lo[0]) / 2
    sphere = 4 / 3 * math.pi * r ** 3 / 8                      # the grid spans [-1, 1]³, volume 8
    for R, tolerance in ((16, 0.10), (32, 0.04), (64, 0.02)):
        occ = structure_grid(ball, R)
        assert occ.shape == (R, R, R) and occ.dtype == torch.bool
        assert float(occupied_fraction(occ)) == pytest.approx(sphere, rel=tolerance)
    # A shell one 6-neighbour step thick covers max(|nx|, |ny|, |nz|) · h of depth below each patch of
    # surface with normal n: about 0.83 voxels per h² of a sphere's area (that maximum's mean).
    h = 2 / 64
    shell = surface_voxels(structure_grid(ball, 64)).sum().item()
    assert 0.7 < shell / (4 * math.pi * r ** 2 / h ** 2) < 0.9


def test_a_prompt_and_its_asset_give_the_same_grid():
    assert torch.equal(structure_grid("a green mushroom", 16, seed=5), make_asset("a green mushroom", 5).occupancy(16))


def test_the_shell_of_a_solid_cube_is_all_but_its_centre():
    occ = torch.zeros(5, 5, 5, dtype=torch.bool)
    occ[1:4, 1:4, 1:4] = True
    shell = surface_voxels(occ)
    assert shell.sum() == 26 and not shell[2, 2, 2] and not (shell & ~occ).any()
    # At the border of the grid, outside counts as empty: a full grid's shell is its faces.
    full = surface_voxels(torch.ones(1, 4, 4, 4, dtype=torch.bool))
    assert full.shape == (1, 4, 4, 4) and full.sum() == 4 ** 3 - 2 ** 3


def test_most_of_space_is_empty():
    occ = torch.stack([structure_grid(p, 32, seed=s) for s, p in enumerate(["a red chair", "a blue lamp", "a tree"])])
    solid, shell = occupied_fraction(occ), occupied_fraction(surface_voxels(occ))
    assert solid.shape == (3,) and (solid < 0.25).all() and (shell < solid).all() and (shell > 0).all()


def test_iou_counts_overlap_and_treats_two_empty_grids_as_equal():
    a = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    b = a.clone()
    a[0, :2], b[0, 1:3] = True, True
    assert voxel_iou(a, b).tolist() == [pytest.approx(1 / 3), 1.0]


@pytest.mark.parametrize("bad", [torch.zeros(4, 4, 5, dtype=torch.bool), torch.zeros(4, 4, 4), torch.zeros(4, 4)])
def test_grids_must_be_cubic_and_bool(bad):
    with pytest.raises(ValueError):
        surface_voxels(bad)


def test_fold_and_unfold_are_inverse_and_move_blocks_to_channels():
    x = torch.randn(2, 3, 8, 8, 8)
    folded = fold3d(x, 2)
    assert folded.shape == (2, 24, 4, 4, 4)
    assert torch.equal(folded[0, :8, 0, 0, 0], x[0, 0, :2, :2, :2].reshape(-1))
    assert torch.equal(unfold3d(folded, 2), x)
    with pytest.raises(ValueError):
        fold3d(torch.zeros(1, 1, 6, 6, 5), 2)


# ----------------------------------------------------------------------------- VAE
def test_vae_shapes_and_errors():
    vae = StructureVAE(SMALL_VAE)
    occ = torch.stack([structure_grid("a red ball", 32), structure_grid("a blue chair", 32)])
    mean, logvar = vae.encode(occ)
    assert mean.shape == logvar.shape == (2, 8, 8, 8, 8) and vae.latent_shape == (8, 8, 8, 8)
    assert vae.decode(mean).shape == (2, 32, 32, 32)
    assert vae.reconstruct(occ).dtype == torch.bool
    with pytest.raises(ValueError, match=r"\[B, 32, 32, 32\]"):
        vae.encode(occ[:, :16])
    with pytest.raises(ValueError, match="bool"):
        vae.encode(occ.long())
    with pytest.raises(ValueError, match="latent"):
        vae.decode(torch.zeros(1, 4, 8, 8, 8))
    with pytest.raises(ValueError):
        StructureVAEConfig(resolution=30)


def test_vae_overfits_one_batch():
    # A 16³ model (latent 4³ × 8) of the same architecture: 8× cheaper than 32³ and it must fit exactly.
    torch.manual_seed(0)
    vae = StructureVAE(StructureVAEConfig(resolution=16, widths=(16, 32), decoder_blocks=1))
    occ = torch.stack([structure_grid("a red mushroom", 16, seed=1), structure_grid("a blue table", 16, seed=2)])
    opt = torch.optim.Adam(vae.parameters(), lr=5e-3)
    losses = []
    for step in range(120):
        loss, _ = structure_vae_loss(vae, occ, torch.Generator().manual_seed(step), kl_weight=1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 / 10
    assert voxel_iou(vae.eval().reconstruct(occ), occ).min() > 0.95


def test_vae_save_and_load_round_trip(tmp_path):
    from gsbook.zoo import load_model, read_config

    vae = StructureVAE(StructureVAEConfig(widths=(16, 32), latent_scale=0.7)).eval()
    vae.save_shipped({"steps": 0}, "# trellis_ss_vae\n", folder=tmp_path, half=False)
    back = StructureVAE.from_shipped(device="cpu", folder=tmp_path)
    assert back.config == vae.config and back.config.latent_scale == 0.7
    z = torch.randn(1, 8, 8, 8, 8)
    assert torch.equal(back.decode_latents(z), vae.decode_latents(z))
    assert isinstance(load_model("trellis_ss_vae", "cpu", folder=tmp_path), StructureVAE)
    assert read_config("trellis_ss_vae", tmp_path)["class"] == "gsbook.methods.trellis.structure:StructureVAE"


# ----------------------------------------------------------------------------- flow
def test_flow_output_shape_zero_start_and_errors():
    flow = StructureFlow(SMALL_FLOW)
    x, t = torch.randn(2, 8, 8, 8, 8), torch.rand(2)
    tokens, mask = torch.randn(2, 5, 384), torch.ones(2, 5, dtype=torch.bool)
    out = flow(x, t, tokens, mask)
    assert out.shape == x.shape and not out.any()              # adaLN-Zero: a fresh model predicts 0
    assert flow.config.tokens == 64
    with pytest.raises(ValueError, match="x_t"):
        flow(x[:, :4], t, tokens, mask)
    with pytest.raises(ValueError, match="t must be"):
        flow(x, t[:1], tokens, mask)
    with pytest.raises(ValueError, match="tokens"):
        flow(x, t, tokens[..., :100], mask)
    with pytest.raises(ValueError, match="mask"):
        flow(x, t, tokens, mask[:, :3])
    with pytest.raises(ValueError):
        StructureFlowConfig(patch=3)


def test_padding_tokens_do_not_change_the_velocity():
    flow = _randomise_zero_layers(StructureFlow(SMALL_FLOW)).eval()
    x, t = torch.randn(1, 8, 8, 8, 8), torch.rand(1)
    tokens, mask = torch.randn(1, 6, 384), torch.tensor([[True, True, True, True, False, False]])
    garbage = tokens.clone()
    garbage[:, 4:] = 100.0
    a, b = flow(x, t, tokens, mask), flow(x, t, garbage, mask)
    assert a.abs().mean() > 0 and torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, flow(x, t, tokens, torch.ones(1, 6, dtype=torch.bool)), atol=1e-5)


def test_positions_tell_tokens_apart():
    pos = sincos_3d_positions(4, 64)
    assert pos.shape == (64, 64)
    assert torch.cdist(pos, pos).add(torch.eye(64) * 1e3).min() > 0.1


def test_flow_loss_falls_when_overfitting_one_batch():
    torch.manual_seed(0)
    flow = StructureFlow(SMALL_FLOW)
    x0 = torch.randn(4, 8, 8, 8, 8, generator=torch.Generator().manual_seed(1))
    tokens, mask = torch.randn(4, 5, 384), torch.ones(4, 5, dtype=torch.bool)
    opt = torch.optim.Adam(flow.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        # The same times and noise every step: one fixed regression problem to fit.
        loss = flow_loss(flow, x0, tokens, mask, generator=torch.Generator().manual_seed(7))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 4


# ----------------------------------------------------------------------------- sampling and editing
@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return StructureVAE(SMALL_VAE).eval(), _randomise_zero_layers(StructureFlow(SMALL_FLOW)).eval()


def test_sampling_is_deterministic_given_a_generator(models):
    vae, flow = models
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = sample_structure(vae, flow, ["a red ball", "a blue chair"], steps=3, guidance=3.0, generator=gen())
    b = sample_structure(vae, flow, ["a red ball", "a blue chair"], steps=3, guidance=3.0, generator=gen())
    assert a.shape == (2, 32, 32, 32) and a.dtype == torch.bool and torch.equal(a, b)
    c = sample_structure(vae, flow, "a red ball", steps=3, guidance=1.0, generator=gen())
    assert c.shape == (1, 32, 32, 32)


def test_sampling_errors(models):
    vae, flow = models
    known = structure_grid("a red ball", 32)[None]
    with pytest.raises(ValueError, match="steps"):
        sample_structure(vae, flow, "a red ball", steps=0)
    with pytest.raises(ValueError, match="caption"):
        sample_structure(vae, flow, [])
    with pytest.raises(ValueError, match="both"):
        sample_structure(vae, flow, "a red ball", known=known)
    with pytest.raises(ValueError, match="known"):
        sample_structure(vae, flow, ["a", "b"], known=known, keep=~top_region_mask())
    with pytest.raises(ValueError, match="latent"):
        sample_structure(vae, StructureFlow(StructureFlowConfig(latent_resolution=4, width=64, depth=1)), "a red ball")


def test_sub_volume_edit_keeps_every_voxel_outside_the_region_and_holds_the_latent(models):
    vae, flow = models
    region = top_region_mask(32)
    assert region.sum() == 32 * 32 * 11 and region[:, 31].all() and not region[:, 20].any()
    known = structure_grid("a red lamp", 32, seed=2)[None]
    decoded = []
    original = vae.decode_latents

    def recording(z):
        decoded.append(z)
        return original(z)

    vae.decode_latents = recording
    try:
        edited = sample_structure(vae, flow, "a red lamp", steps=4, generator=torch.Generator().manual_seed(0),
                                  known=known, keep=~region)
    finally:
        del vae.decode_latents
    assert torch.equal(edited[:, ~region], known[:, ~region])
    assert not torch.equal(edited[:, region], known[:, region])   # the region was drawn anew
    # Latent cells whose 4³ voxels are all kept (y blocks 0-4: voxels 0-19) end at the known latent.
    z_known = vae.encode_latents(known)
    assert torch.allclose(decoded[0][:, :, :, :5], z_known[:, :, :, :5], atol=1e-6)
    assert not torch.allclose(decoded[0][:, :, :, 5:], z_known[:, :, :, 5:], atol=1e-3)


# ----------------------------------------------------------------------------- recipes
def test_recipes_run_end_to_end_in_the_ci_profile(tmp_path, monkeypatch):
    from gsbook.recipes.trellis_structure import (StructureFlowRecipe, StructureVAERecipe, augment_structure,
                                                  run_ss_flow_recipe, run_ss_vae_recipe, structure_data)
    from gsbook.train import RECIPES

    monkeypatch.setenv("GSBOOK_CACHE", str(tmp_path / "cache"))
    assert {"trellis_ss_vae", "trellis_ss_flow"} <= set(RECIPES)
    data = structure_data(6, "train", seed=1, progress=False)
    assert torch.equal(structure_data(6, "train", seed=1, progress=False).occupancy, data.occupancy)  # from the cache
    turned = augment_structure(data.occupancy, torch.Generator().manual_seed(0))
    assert torch.equal(turned.flatten(1).sum(1), data.occupancy.flatten(1).sum(1))

    vae = run_ss_vae_recipe(StructureVAERecipe.for_profile("ci", widths=(16, 32)), out=tmp_path, resume=False,
                            device="cpu")
    assert (tmp_path / "trellis_ss_vae.md").read_text().startswith("# trellis_ss_vae")
    assert StructureVAE.from_shipped("cpu", tmp_path).config.latent_scale == pytest.approx(vae.config.latent_scale,
                                                                                         rel=1e-6)
    run_ss_flow_recipe(StructureFlowRecipe.for_profile("ci", width=32, depth=1, heads=2), out=tmp_path,
                       resume=False, device="cpu")
    card = (tmp_path / "trellis_ss_flow.md").read_text()
    assert card.startswith("# trellis_ss_flow") and "held-out pairs" in card
    assert StructureFlow.from_shipped("cpu", tmp_path).config.width == 32
