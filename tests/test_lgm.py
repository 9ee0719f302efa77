"""LGM (§3): inputs, the asymmetric U-Net, its Gaussians, its loss, saving, training."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from gsbook.cameras import Cameras, plucker_rays
from gsbook.gaussians import Gaussians
from gsbook.methods import LGM, LGMConfig, lgm_activate, lgm_decode, lgm_loss
from gsbook.methods.lgm import IMAGENET_MEAN, IMAGENET_STD
from multiview_targets import assert_checkpoint_round_trip, cams, overfit, target_views as _target


def tiny(**changes) -> LGMConfig:
    """32² in → 16² out (1,024 Gaussians), ~0.2 M parameters: the size tests can train."""
    settings = dict(input_size=32, down_channels=(16, 32, 32), down_attention=(False, True, True),
                    up_channels=(32, 32), up_attention=(True, False), norm_groups=4, attention_heads=2)
    return LGMConfig(**(settings | changes))



def test_default_config_is_small_and_asymmetric():
    cfg = LGMConfig()
    assert (cfg.input_size, cfg.output_size, cfg.n_gaussians) == (64, 32, 4096)
    n = sum(p.numel() for p in LGM(cfg).parameters())
    assert 1e6 <= n <= 3e6, n
    assert LGMConfig.paper().output_size == 64          # LGM: 256² views → 64² splats per view


def test_prepare_inputs_is_rgb_then_plucker():
    torch.manual_seed(0)
    B, size = 2, 16
    images = torch.rand(B, 4, size, size, 3)
    shared = cams(size)
    rays = plucker_rays(shared)                           # [4, H, W, 6]
    for normalize in (True, False):
        model = LGM(tiny(input_size=16, normalize_rgb=normalize))
        x = model.prepare_inputs(images, shared)
        assert x.shape == (B, 4, 9, size, size)
        rgb = images
        if normalize:
            rgb = (images - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
        torch.testing.assert_close(x[:, :, :3], rgb.permute(0, 1, 4, 2, 3))
        for b in range(B):
            torch.testing.assert_close(x[b, :, 3:], rays.permute(0, 3, 1, 2))
    # One camera set per object (object-major): each object gets its own rays.
    per_object = Cameras.cat([cams(size, 0.0), cams(size, 30.0)])
    x = LGM(tiny(input_size=16)).prepare_inputs(images, per_object)
    torch.testing.assert_close(x[1, :, 3:], plucker_rays(per_object[4:]).permute(0, 3, 1, 2))
    assert not torch.allclose(x[0, :, 3:], x[1, :, 3:])
    with pytest.raises(ValueError):
        LGM(tiny(input_size=16)).prepare_inputs(images, cams(32))  # wrong image size


def test_outputs_have_lgm_shapes_and_activation_ranges():
    torch.manual_seed(0)
    model = LGM(tiny())
    x = model.prepare_inputs(torch.rand(2, 4, 32, 32, 3), cams())
    raw = model(x)
    assert raw.shape == (2, 4, 14, 16, 16)
    # Large raw values reach every branch of the activations (clamp limits, tanh/sigmoid tails).
    raw = torch.cat([raw, 3 * torch.randn(1, 4, 14, 16, 16)])  # (|x| ≲ 15: sigmoid stays inside (0, 1) in float32)
    s = lgm_activate(raw)
    n = 4 * 16 * 16
    assert s.means.shape == (3, n, 3) and s.opacities.shape == (3, n) and s.quats.shape == (3, n, 4)
    assert s.means.abs().max() <= 1 and (s.means.abs() == 1).any()   # clamped, and the clamp bit
    assert ((s.opacities > 0) & (s.opacities < 1)).all()
    flat = raw.permute(0, 1, 3, 4, 2).reshape(3, n, 14)
    assert (s.scales > 0).all()
    torch.testing.assert_close(s.scales, 0.1 * F.softplus(flat[..., 4:7]))
    torch.testing.assert_close(s.quats.norm(dim=-1), torch.ones(3, n))
    assert ((s.rgb >= 0) & (s.rgb <= 1)).all()
    # Pixel-aligned order: Gaussian (view v, row i, column j) is entry v·h·w + i·w + j.
    torch.testing.assert_close(s.means[2, 1 * 256 + 3 * 16 + 5], flat[2, 1 * 256 + 3 * 16 + 5, :3].clamp(-1, 1))
    torch.testing.assert_close(s.means[2, 1 * 256 + 3 * 16 + 5], raw[2, 1, :3, 3, 5].clamp(-1, 1))

    # The book's container holds the same Gaussians in its raw parametrisation.
    gs = lgm_decode(raw)
    assert len(gs) == 3 and all(isinstance(g, Gaussians) and g.n == n for g in gs)
    for b, g in enumerate(gs):
        torch.testing.assert_close(g.means, s.means[b])
        torch.testing.assert_close(g.scales, s.scales[b])
        torch.testing.assert_close(g.opacities, s.opacities[b])
        torch.testing.assert_close(g.unit_quats, s.quats[b])
        torch.testing.assert_close(g.rgb, s.rgb[b])
        assert g.sh_degree == 0


@pytest.mark.parametrize("cross_view", [True, False])
def test_attention_mixes_views_only_when_cross_view(cross_view):
    torch.manual_seed(0)
    model = LGM(tiny(cross_view=cross_view)).eval()
    x = model.prepare_inputs(torch.rand(2, 4, 32, 32, 3), cams())
    changed = x.clone()
    changed[0, 3, :3] = torch.rand(3, 32, 32)               # object 0's view 3 (left) only
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert (a[0, 3] - b[0, 3]).abs().max() > 1e-3           # the changed view changes
    torch.testing.assert_close(a[1], b[1], atol=1e-6, rtol=0)  # objects never mix
    front = (a[0, 0] - b[0, 0]).abs().max()
    if cross_view:
        assert front > 1e-4, "view 3's pixels did not reach view 0: attention is not across views"
    else:
        assert front < 1e-6, "views mixed without cross-view attention"


def test_save_and_load_give_identical_outputs(tmp_path):
    assert_checkpoint_round_trip(LGM, tiny(cross_view=True, skip_scale=0.5), tmp_path)



def test_rendering_loss_reaches_every_parameter():
    torch.manual_seed(0)
    inputs, seen, supervision, images, alphas = _target(256)
    model = LGM(tiny())
    out = lgm_loss(model.gaussians(model.prepare_inputs(seen, inputs)), supervision, images, alphas)
    assert set(out) >= {"loss", "mse", "alpha", "perceptual"} and out["perceptual"] == 0
    out["loss"].backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


def test_perceptual_hook_is_added_with_its_weight():
    torch.manual_seed(0)
    inputs, seen, supervision, images, alphas = _target(256)
    model = LGM(tiny())
    gs = model.gaussians(model.prepare_inputs(seen, inputs))
    shapes = []

    def fake(pred, target):
        shapes.append(pred.shape)
        return (pred - target).abs().mean(dim=(1, 2, 3))   # one value per image, as LPIPS gives
    plain = lgm_loss(gs, supervision, images, alphas)
    with_p = lgm_loss(gs, supervision, images, alphas, perceptual=fake, perceptual_weight=2.0)
    assert shapes == [(6, 3, 32, 32)]
    torch.testing.assert_close(with_p["loss"], plain["loss"] + 2.0 * with_p["perceptual"])
    assert with_p["perceptual"] > 0


def test_one_batch_overfit_drops_the_loss_tenfold():
    torch.manual_seed(0)
    start = time.perf_counter()
    first, best = overfit(LGM(tiny()))
    drop = first / best
    print(f"LGM overfit: loss {first:.4f} → {best:.4f} ({drop:.1f}×) in {time.perf_counter() - start:.1f} s")
    assert drop >= 10, f"loss fell only {drop:.1f}× ({first:.4f} → {best:.4f})"
