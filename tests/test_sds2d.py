"""gsbook.methods.sds2d with the oracle critic: Figure 1's L2 stand-in, as one loop.

With ``OraclePrior(x*)`` the SDS gradient is exactly the L2 gradient toward ``x*`` scaled by
``w(t) α_t / σ_t``; ``ImageSDS`` driven by it pulls the image to the target.
"""

import math

import pytest
import torch

from gsbook.diffusion import alpha_sigma
from gsbook.methods import ImageSDS, ImageSDSConfig
from gsbook.sds import OraclePrior, score_distillation, target_image


def test_target_image_shape_and_range():
    img = target_image(40, 32)
    assert img.shape == (32, 40, 3)
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert len(torch.unique(img.reshape(-1, 3), dim=0)) == 3  # sky, sun, hill
    with pytest.raises(ValueError):
        target_image(4, 4)


@pytest.mark.parametrize("t", [50, 500, 950])
def test_oracle_sds_is_scaled_l2_and_the_noise_cancels(t):
    target = target_image(8, 8).permute(2, 0, 1)
    oracle = OraclePrior(target)
    emb = oracle.encode_prompts(["the target"])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 8, 8, generator=g)
    tt = torch.tensor([t])
    a, s = alpha_sigma(oracle.alphas_cumprod, tt)
    grads = [score_distillation(oracle, x, emb, t=tt, layout="BCHW", guidance_scale=1.0,
                                noise=torch.randn(1, 3, 8, 8, generator=g)).grad for _ in range(2)]
    expected = (1 - a**2) * (a / s) * (x - target)        # w(t) = σ_t² (DreamFusion) times (α/σ)(x − x*)
    for grad in grads:
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


def l2_run(size=24, n=12, seed=3, steps=25):
    target = target_image(size, size)
    config = ImageSDSConfig(steps=steps, n_gaussians=n, resolution=size, batch=1, guidance_scale=1.0,
                            schedule="uniform", seed=seed)
    return ImageSDS(OraclePrior(target.permute(2, 0, 1)), "the target", config), target


def test_the_l2_loop_reduces_the_loss_and_is_reproducible():
    (a, target), (b, _) = l2_run(), l2_run()
    start = a.mse(target)
    a.run()
    b.run()
    assert a.iteration == 25 and len(a.history) == 25
    assert a.mse(target) < 0.3 * start
    assert a.history == b.history and torch.equal(a.centres(), b.centres())
    assert not torch.equal(l2_run(seed=4)[0].centres(), l2_run(seed=3)[0].centres())


def test_steps_move_the_centres_and_keep_them_in_the_image():
    loop, target = l2_run(n=10, seed=0)
    before = loop.centres()
    loop.run(5)
    after = loop.centres()
    assert not torch.equal(before, after)
    assert (after >= 0).all() and (after <= 24).all()
    assert math.isfinite(loop.mse(target))


def test_reset_returns_to_the_same_start():
    loop, target = l2_run(n=5, seed=2)
    start, loss0 = loop.centres(), loop.mse(target)
    loop.run(3)
    loop.reset()
    assert loop.iteration == 0 and loop.history == [] and loop.mse(target) == loss0
    assert torch.equal(loop.centres(), start)


def test_mse_needs_an_image_of_the_run_s_size():
    loop, _ = l2_run()
    with pytest.raises(ValueError, match=r"target must be \[24, 24, 3\]"):
        loop.mse(torch.zeros(8, 8, 3))
