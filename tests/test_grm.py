"""GRM (§3): one token sequence over all views, depths along rays, LGM's Gaussians and loss, saving, training."""

from __future__ import annotations

import time

import pytest
import torch

from gsbook.cameras import pixel_rays
from gsbook.gaussians import Gaussians
from gsbook.methods import GRM, LGM, GRMConfig, LGMConfig, grm_box_depths, grm_rays, lgm_activate, lgm_decode, lgm_loss
from multiview_targets import assert_checkpoint_round_trip, cams, overfit, target_views as _target


def tiny(**changes) -> GRMConfig:
    """32² in, 8² patches → 4 × 4² = 64 tokens, two ×2 stages → 16² out (1,024 Gaussians): the size tests can train."""
    settings = dict(input_size=32, patch_size=8, width=64, depth=2, heads=2, upsample_stages=2, window=8)
    return GRMConfig(**(settings | changes))



def test_default_config_matches_lgm_in_size_and_gaussians():
    cfg = GRMConfig()
    assert (cfg.input_size, cfg.output_size, cfg.n_gaussians) == (64, 32, LGMConfig().n_gaussians)
    assert cfg.n_tokens == 4 * 8 * 8
    n = sum(p.numel() for p in GRM(cfg).parameters())
    assert 2e6 <= n <= 3e6, n
    assert GRMConfig.paper().n_tokens == 4 * 32 * 32 and GRMConfig.paper().output_size == 512


def test_inputs_are_lgms():
    torch.manual_seed(0)
    images = torch.rand(2, 4, 32, 32, 3)
    torch.testing.assert_close(GRM(tiny()).prepare_inputs(images, cams()),
                               LGM(LGMConfig(input_size=32, down_channels=(16, 32), down_attention=(False, True),
                                             up_channels=(32,), up_attention=(False,), norm_groups=4,
                                             attention_heads=2)).prepare_inputs(images, cams()))


@pytest.mark.parametrize("cross_view", [True, False])
def test_one_sequence_of_all_views_tokens(cross_view):
    torch.manual_seed(0)
    model = GRM(tiny(cross_view=cross_view)).eval()
    x = model.prepare_inputs(torch.rand(2, 4, 32, 32, 3), cams())
    with torch.no_grad():
        assert model.encode(x).shape == (2, 4 * (32 // 8) ** 2, 64)
        changed = x.clone()
        changed[0, 3, :3] = torch.rand(3, 32, 32)           # object 0's view 3 (left) only
        a, b = model(x), model(changed)
    assert (a[0, 3] - b[0, 3]).abs().max() > 1e-3           # the changed view changes
    torch.testing.assert_close(a[1], b[1], atol=1e-6, rtol=0)  # objects never mix
    front = (a[0, 0] - b[0, 0]).abs().max()
    if cross_view:
        assert front > 1e-4, "view 3's pixels did not reach view 0: attention is not across views"
    else:
        assert front < 1e-6, "views mixed without cross-view attention"


@pytest.mark.parametrize("elevation", [0.0, 30.0])
def test_outputs_are_lgm_shaped_and_gaussians_sit_on_their_rays(elevation):
    torch.manual_seed(0)
    model = GRM(tiny())
    x = model.prepare_inputs(torch.rand(2, 4, 32, 32, 3), cams(32, elevation))
    with torch.no_grad():
        model.head.bias[0] += 3.0 * torch.randn(())         # push depths off the middle of their chords
        raw = model(x)
    assert raw.shape == (2, 4, 14, 16, 16)
    s = lgm_activate(raw)
    n = 4 * 16 * 16
    assert s.means.shape == (2, n, 3) and s.opacities.shape == (2, n) and s.quats.shape == (2, n, 4)
    # The positions are inside LGM's box already: its clamp does not move them.
    torch.testing.assert_close(s.means, raw.permute(0, 1, 3, 4, 2).reshape(2, n, 14)[..., :3], atol=1e-6, rtol=0)
    assert ((s.opacities > 0) & (s.opacities < 1)).all() and (s.scales > 0).all()
    torch.testing.assert_close(s.quats.norm(dim=-1), torch.ones(2, n))
    assert ((s.rgb >= 0) & (s.rgb <= 1)).all()

    # Each Gaussian lies on the ray through its output pixel's centre (the true 16² camera rays) …
    origins, directions = pixel_rays(cams(16, elevation))                    # [4, 16, 16, 3] each
    means = raw.permute(0, 1, 3, 4, 2)[..., :3]                               # [2, 4, 16, 16, 3]
    off_ray = torch.linalg.cross(means - origins, directions.expand_as(means)).norm(dim=-1)
    assert off_ray.max() < 1e-3, off_ray.max()
    # … at a depth between where that ray enters and leaves the box.
    depth = ((means - origins) * directions).sum(-1)
    near, far = grm_box_depths(origins, directions)
    assert (far > near).all() and (far - near).mean() > 1                     # every ray crosses the box
    assert (depth >= near - 1e-4).all() and (depth <= far + 1e-4).all()
    assert depth.std() > 0.05                                                  # not one constant depth
    # The rays read back from the input are the cameras' own.
    o, d = grm_rays(x, 16)
    torch.testing.assert_close(o[1], origins[:, 0, 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(d[1], directions, atol=1e-4, rtol=0)

    gs = lgm_decode(raw)
    assert len(gs) == 2 and all(isinstance(g, Gaussians) and g.n == n for g in gs)
    torch.testing.assert_close(gs[1].means, s.means[1])


def test_save_and_load_give_identical_outputs(tmp_path):
    assert_checkpoint_round_trip(GRM, tiny(window=4, box=1.2), tmp_path)



def test_rendering_loss_reaches_every_parameter():
    torch.manual_seed(0)
    inputs, seen, supervision, images, alphas = _target(256)
    model = GRM(tiny())
    out = lgm_loss(model.gaussians(model.prepare_inputs(seen, inputs)), supervision, images, alphas)
    out["loss"].backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


def test_one_batch_overfit_drops_the_loss_tenfold():
    torch.manual_seed(0)
    start = time.perf_counter()
    first, best = overfit(GRM(tiny()))
    drop = first / best
    print(f"GRM overfit: loss {first:.4f} → {best:.4f} ({drop:.1f}×) in {time.perf_counter() - start:.1f} s")
    assert drop >= 10, f"loss fell only {drop:.1f}× ({first:.4f} → {best:.4f})"
