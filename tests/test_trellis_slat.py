"""TRELLIS stage 2 (gsbook.methods.trellis.slat): active voxels, features projected from renders,
sparse attention, the SLat VAE and its Gaussian decoder, the SLat flow, save/load, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gsbook.cameras import orbit, random_cameras
from gsbook.methods.trellis.slat import (SLatFlow, SLatFlowConfig, SLatVAE, SLatVAEConfig, coarsen, feature_cameras,
                                         pad_voxels, sample_slat, shell_coords, slat_flow_loss, slat_vae_loss,
                                         sparse_attention, voxel_centres, voxel_features, voxel_visibility)
from gsbook.methods.trellis.structure import surface_voxels
from gsbook.recipes.trellis_slat import SLatVAERecipe, load_slat_data, train_slat_vae
from gsbook.world import make_asset, render_asset
from gsbook.zoo import WeightsError

torch.set_num_threads(1)
SMALL = dict(width=32, heads=2, encoder_depth=1, decoder_depth=1)


@pytest.fixture(scope="module")
def mushroom():
    asset = make_asset("a red mushroom with a white stem", seed=0)
    return asset, shell_coords(asset.occupancy(32))


@pytest.fixture(scope="module")
def snowman():
    asset = make_asset("a blue snowman", seed=0)
    coords = shell_coords(asset.occupancy(32))
    return asset, coords, voxel_features(asset, coords)


# ----------------------------------------------------------------------------- structure
def test_shell_of_a_solid_cube_is_its_surface():
    occ = torch.zeros(8, 8, 8, dtype=torch.bool)
    occ[2:6, 2:6, 2:6] = True                    # 4³ solid → 4³ − 2³ = 56 surface voxels
    coords = shell_coords(occ)
    assert coords.shape == (56, 3) and coords.dtype == torch.long
    inner = {(3, 3, 3), (3, 3, 4), (3, 4, 3), (3, 4, 4), (4, 3, 3), (4, 3, 4), (4, 4, 3), (4, 4, 4)}
    assert not inner & {tuple(c) for c in coords.tolist()}


def test_shell_of_an_asset_hugs_its_surface(mushroom):
    asset, coords = mushroom
    occ = asset.occupancy(32)
    assert torch.equal(coords, torch.nonzero(surface_voxels(occ)))   # stage 1's definition
    assert occ[tuple(coords.T)].all()
    # A shell voxel's centre lies inside, within one voxel diagonal of the surface.
    sdf = torch.as_tensor(asset.sdf(voxel_centres(coords).double().numpy()))
    assert (sdf < 0).all() and (sdf > -(3 ** 0.5) * 2 / 32).all()
    assert 200 < len(coords) < int(occ.sum())


# ----------------------------------------------------------------------------- features
def test_a_voxel_on_the_red_cap_is_red_and_one_on_the_white_stem_is_white(mushroom):
    asset, coords = mushroom
    feats = voxel_features(asset, coords)
    assert feats.shape == (len(coords), 3) and torch.isfinite(feats).all()
    top = feats[coords[:, 1].argmax()]                # highest voxel: the cap
    bottom = feats[coords[:, 1].argmin()]             # lowest voxel: the stem's foot
    assert top[0] > 0.4 and top[0] > 2 * top[1] and top[0] > 2 * top[2]
    assert bottom.min() > 0.3 and bottom.max() - bottom.min() < 0.15


def test_an_occluded_voxel_takes_nothing_from_the_view_that_cannot_see_it():
    asset = make_asset("a red ball", seed=0)
    coords = shell_coords(asset.occupancy(32))
    cams = orbit(0.0, [0.0, 180.0], width=64, height=64, device="cpu")   # front (+z) and back (−z)
    renders = render_asset(asset, cams, ss=1)
    visible, _ = voxel_visibility(voxel_centres(coords), cams, renders["depth"], renders["alpha"], 2 / 32)
    front, back = coords[:, 2].argmax(), coords[:, 2].argmin()
    assert visible[0, front] and not visible[1, front]
    assert visible[1, back] and not visible[0, back]
    # Paint each view one flat colour: a voxel averages only the views that see it.
    painted = dict(renders, rgb=torch.stack([torch.tensor([0.0, 0.0, 1.0]).expand(64, 64, 3),
                                             torch.tensor([0.0, 1.0, 0.0]).expand(64, 64, 3)]))
    feats = voxel_features(asset, coords, cams, renders=painted)
    assert torch.allclose(feats[front], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.allclose(feats[back], torch.tensor([0.0, 1.0, 0.0]))


# ----------------------------------------------------------------------------- sparse attention
def test_sparse_attention_equals_dense_attention_on_each_object_alone():
    gen = torch.Generator().manual_seed(0)
    lengths = [7, 3, 12]
    qs, ks, vs = ([torch.randn(2, n, 8, generator=gen) for n in lengths] for _ in range(3))
    pad = lambda ts: pad_voxels([t.transpose(0, 1) for t in ts])[0].transpose(1, 2)  # noqa: E731  [B, H, L, D]
    q, k, v = pad(qs), pad(ks), pad(vs)
    _, mask = pad_voxels([torch.zeros(n) for n in lengths])
    # Garbage in the padding must not change anything.
    q, k, v = (torch.where(mask[:, None, :, None], t, torch.full_like(t, 1e4)) for t in (q, k, v))
    out = sparse_attention(q, k, v, mask)
    for b, n in enumerate(lengths):
        alone = F.scaled_dot_product_attention(qs[b][None], ks[b][None], vs[b][None])[0]
        assert torch.allclose(out[b, :, :n], alone, atol=1e-5)
        assert (out[b, :, n:] == 0).all()


def test_an_object_encodes_the_same_alone_and_in_a_padded_batch(mushroom, snowman):
    torch.manual_seed(0)
    model = SLatVAE(SLatVAEConfig(**SMALL)).eval()
    _, c1, f1 = snowman
    asset, c2 = mushroom
    f2 = torch.rand(len(c2), 3)
    feats, mask = pad_voxels([f1, f2])
    coords, _ = pad_voxels([c1, c2])
    both = model.encode(feats, coords, mask, sample=False).mean
    alone = model.encode(f1[None], c1[None], torch.ones(1, len(c1), dtype=torch.bool), sample=False).mean
    assert torch.allclose(both[0, :len(c1)], alone[0], atol=1e-5)
    assert (both[0, len(c1):] == 0).all()


# ----------------------------------------------------------------------------- the Gaussian decoder
def test_decoded_gaussians_stay_in_their_voxels_and_count_n_times_k(snowman):
    _, coords, feats = snowman
    cfg = SLatVAEConfig(**SMALL, gaussians_per_voxel=4)
    model = SLatVAE(cfg)
    torch.nn.init.normal_(model.decoder.out.weight, std=5.0)        # far from the zero start
    with torch.no_grad():
        g = model(feats[None], coords[None], torch.ones(1, len(coords), dtype=torch.bool))[0][0]
    N, K, h = len(coords), 4, 2 / 32
    assert g.n == N * K
    offsets = g.means.reshape(N, K, 3) - voxel_centres(coords)[:, None]
    assert offsets.abs().max() <= 0.75 * h + 1e-6                      # TRELLIS' reach: ±0.75 voxel
    assert offsets.abs().max() > 0.5 * h                               # and they do use it
    assert (g.scales >= 0.02 * h - 1e-7).all() and (g.scales <= h + 1e-7).all()
    assert ((g.rgb >= 0) & (g.rgb <= 1)).all() and torch.isfinite(g.opacity_logits).all()


def test_untrained_decoder_spreads_each_voxel_s_gaussians_inside_it(snowman):
    _, coords, feats = snowman
    model = SLatVAE(SLatVAEConfig(**SMALL))
    with torch.no_grad():
        g = model(feats[None], coords[None], torch.ones(1, len(coords), dtype=torch.bool), sample=False)[0][0]
    offsets = g.means.reshape(len(coords), model.config.gaussians_per_voxel, 3) - voxel_centres(coords)[:, None]
    assert offsets.abs().max() < 0.5 * 2 / 32                          # a Hammersley spread inside the voxel
    assert offsets[0].std(0).min() > 0.1 * 2 / 32


def test_the_vae_overfits_one_object(snowman):
    torch.manual_seed(0)
    asset, coords, feats = snowman
    cams = random_cameras(3, width=24, height=24, generator=torch.Generator().manual_seed(1), device="cpu")
    gt = render_asset(asset, cams)
    mask = torch.ones(1, len(coords), dtype=torch.bool)
    model = SLatVAE(SLatVAEConfig(width=32, heads=2, encoder_depth=1, decoder_depth=2))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        out = slat_vae_loss(model, feats[None], coords[None], mask, cams, gt["rgb"][None], gt["alpha"][None],
                            generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert out["images"].shape == (1, 3, 24, 24, 3) and out["kl"] > 0
    assert min(losses[-5:]) < losses[0] / 8                              # measured: ~20× in 40 steps


# ----------------------------------------------------------------------------- the SLat flow
def test_flow_is_a_velocity_model_over_the_voxels_that_ignores_padding(mushroom, snowman):
    torch.manual_seed(0)
    flow = SLatFlow(SLatFlowConfig(width=32, io_width=16, depth=1, heads=2))
    for p in flow.parameters():                                          # leave the zero start
        torch.nn.init.normal_(p, std=0.1)
    (_, c1, _), (_, c2) = snowman, mushroom
    coords, mask = pad_voxels([c1, c2])
    x = torch.randn(2, mask.shape[1], 8)
    tokens, tmask = torch.randn(2, 5, 384), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    t = torch.tensor([0.3, 0.7])
    v = flow(x, t, coords, mask, tokens, tmask)
    assert v.shape == x.shape and (v[0, len(c1):] == 0).all()
    alone = flow(x[:1, :len(c1)], t[:1], c1[None], mask[:1, :len(c1)], tokens[:1], tmask[:1])
    assert torch.allclose(v[0, :len(c1)], alone[0], atol=1e-5)
    parent, coarse, cmask = coarsen(coords, mask)
    assert torch.equal(coarse[1][parent[1][mask[1]]], c2 // 2) and cmask.sum(1)[1] < len(c2) / 2
    loss = slat_flow_loss(flow, x, coords, mask, tokens, tmask, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert loss > 0 and flow.out.weight.grad.abs().sum() > 0


def test_sample_slat_gives_latents_on_the_given_voxels(snowman, mushroom):
    flow = SLatFlow(SLatFlowConfig(width=32, io_width=16, depth=1, heads=2))
    flow.latent_mean.fill_(2.0)
    (_, c1, _), (_, c2) = snowman, mushroom
    z = sample_slat(flow, [c1, c2], ["a blue snowman", "a red mushroom"], steps=2,
                    generator=torch.Generator().manual_seed(0))
    assert [t.shape for t in z] == [(len(c1), 8), (len(c2), 8)]
    # An untrained flow predicts v = 0: the sample is the noise, moved to the stored mean.
    assert abs(float(torch.cat(z).mean()) - 2.0) < 0.1
    with pytest.raises(ValueError, match="one caption per object"):
        sample_slat(flow, [c1], ["a", "b"], steps=1)


def test_recipe_caches_its_data_trains_checkpoints_and_resumes_exactly(tmp_path):
    data = load_slat_data(3, "train", seed=5, views=4, view_size=16, feature_views=4, feature_size=32,
                          progress=False)
    assert len(data) == 3 and data.rgb.shape == (3, 4, 16, 16, 3) and data.feats[0].shape == (len(data.coords[0]), 3)
    again = load_slat_data(3, "train", seed=5, views=4, view_size=16, feature_views=4, feature_size=32,
                           progress=False)                                 # from the cache
    assert all(torch.equal(a, b) for a, b in zip(data.feats, again.feats))
    tiny = lambda steps: SLatVAERecipe.for_profile("ci", steps=steps, checkpoint_every=1, model=SMALL)  # noqa: E731
    first, report = train_slat_vae(tiny(2), data=data, progress=False, folder=tmp_path)
    assert report["steps"] == 2 and len(report["mse_every_100"]) == 1 and report["voxels"]["min"] > 0
    longer, _ = train_slat_vae(tiny(3), data=data, progress=False, folder=tmp_path)
    straight, _ = train_slat_vae(tiny(3), data=data, progress=False, folder=tmp_path / "fresh")
    for a, b in zip(longer.parameters(), straight.parameters()):
        torch.testing.assert_close(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), straight.parameters()))


# ----------------------------------------------------------------------------- save / load
def test_save_and_load_round_trip(tmp_path, snowman):
    _, coords, feats = snowman
    model = SLatVAE(SLatVAEConfig(**SMALL, gaussians_per_voxel=4)).eval()
    torch.nn.init.normal_(model.decoder.out.weight, std=0.1)
    model.save_shipped({"steps": 0}, "# test card\n", folder=tmp_path, half=False)
    loaded = SLatVAE.from_shipped(device="cpu", folder=tmp_path)
    assert loaded.config == model.config
    mask = torch.ones(1, len(coords), dtype=torch.bool)
    with torch.no_grad():
        a = model(feats[None], coords[None], mask, sample=False)[0][0]
        b = loaded(feats[None], coords[None], mask, sample=False)[0][0]
    assert torch.equal(a.means, b.means) and torch.equal(a.sh, b.sh)
    flow = SLatFlow(SLatFlowConfig(width=32, io_width=16, depth=1, heads=2))
    flow.latent_std.fill_(3.0)
    flow.save_shipped({"steps": 0}, "# test card\n", folder=tmp_path)
    assert torch.equal(SLatFlow.from_shipped(device="cpu", folder=tmp_path).latent_std, flow.latent_std)
    (tmp_path / "trellis_slat_vae.safetensors").write_bytes(b"broken")
    with pytest.raises(WeightsError, match="trellis_slat_vae"):
        SLatVAE.from_shipped(device="cpu", folder=tmp_path)


# ----------------------------------------------------------------------------- errors
def test_bad_input_gives_clear_errors(snowman):
    asset, coords, feats = snowman
    with pytest.raises(ValueError, match="bool"):
        shell_coords(torch.zeros(4, 4, 4))
    with pytest.raises(ValueError, match="cubic"):
        shell_coords(torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"lie in \[0, 32\)"):
        voxel_centres(torch.tensor([[0, 32, 1]]))
    with pytest.raises(ValueError, match="even"):
        feature_cameras(5)
    with pytest.raises(ValueError, match="judge"):
        voxel_features(asset, coords, judge_channels=4)
    with pytest.raises(ValueError, match="at least one active voxel"):
        sparse_attention(*(torch.randn(1, 1, 3, 4) for _ in range(3)), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one object"):
        pad_voxels([])
    model = SLatVAE(SLatVAEConfig(**SMALL))
    mask = torch.ones(1, len(coords), dtype=torch.bool)
    with pytest.raises(ValueError, match="features must be"):
        model.encode(feats[None, :, :2], coords[None], mask)
    with pytest.raises(ValueError, match="coords must be"):
        model.encode(feats[None], coords[None, :-1], mask)
    with pytest.raises(ValueError, match="NaN"):
        model.encode(torch.full_like(feats[None], float("nan")), coords[None], mask)
    with pytest.raises(ValueError, match="scale_range"):
        SLatVAEConfig(scale_range=(0.5, 1.0), init_scale=0.3)
    with pytest.raises(ValueError, match="unknown SLatVAEConfig keys"):
        SLatVAE.from_config({"widht": 64})
    flow = SLatFlow(SLatFlowConfig(width=32, io_width=16, depth=1, heads=2))
    with pytest.raises(ValueError, match="tokens must be"):
        flow(torch.randn(1, len(coords), 8), torch.rand(1), coords[None], mask, torch.randn(1, 4, 100),
             torch.ones(1, 4, dtype=torch.bool))
