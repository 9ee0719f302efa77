"""gsbook.toy2d: the SDS identity with the ideal denoiser, and the loop's behaviour."""

import math

import pytest
import torch

from gsbook.toy2d import ToySDS, noise_schedule, oracle_sds_grad, target_image


def test_target_image_shape_and_range():
    img = target_image(40, 32)
    assert img.shape == (32, 40, 3)
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert len(torch.unique(img.reshape(-1, 3), dim=0)) == 3  # sky, sun, hill
    with pytest.raises(ValueError):
        target_image(4, 4)


def test_noise_schedule_is_variance_preserving():
    t = torch.linspace(0.01, 0.99, 50)
    a, s = noise_schedule(t)
    assert torch.allclose(a**2 + s**2, torch.ones_like(t), atol=1e-6)
    assert (a[1:] < a[:-1]).all()          # less signal as t grows


@pytest.mark.parametrize("t", [0.05, 0.5, 0.95])
def test_oracle_sds_is_scaled_l2(t):
    g = torch.Generator().manual_seed(0)
    x, target, eps = (torch.rand(8, 8, 3, generator=g) for _ in range(3))
    t = torch.tensor(t)
    a, s = noise_schedule(t)
    assert torch.allclose(oracle_sds_grad(x, target, t, eps), s * a * (x - target), atol=1e-5)
    assert torch.allclose(oracle_sds_grad(x, target, t, eps, weight="unit"), (a / s) * (x - target), atol=1e-4)
    # the noise cancels: the same gradient for any eps
    eps2 = torch.randn(8, 8, 3, generator=g)
    assert torch.allclose(oracle_sds_grad(x, target, t, eps), oracle_sds_grad(x, target, t, eps2), atol=1e-5)


def test_oracle_sds_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        oracle_sds_grad(torch.zeros(4, 4, 3), torch.zeros(4, 5, 3), torch.tensor(0.5), torch.zeros(4, 4, 3))


def test_loop_reduces_the_loss_and_is_reproducible():
    target = target_image(24, 24)
    a, b = ToySDS(target, n=12, seed=3), ToySDS(target, n=12, seed=3)
    a.run(25)
    b.run(25)
    assert a.iteration == 25 and len(a.loss_history) == 26
    assert a.loss_history[-1] < 0.5 * a.loss_history[0]
    assert a.loss_history == b.loss_history
    assert torch.equal(a.centres(), b.centres())
    c = ToySDS(target, n=12, seed=4)
    assert not torch.equal(ToySDS(target, n=12, seed=3).centres(), c.centres())


def test_step_moves_the_centres_and_keeps_them_in_the_image():
    loop = ToySDS(target_image(24, 24), n=10, seed=0)
    before = loop.centres()
    loop.run(5)
    after = loop.centres()
    assert not torch.equal(before, after)
    assert (after[:, 0] >= 0).all() and (after[:, 0] <= 24).all()
    assert (after[:, 1] >= 0).all() and (after[:, 1] <= 24).all()
    assert math.isfinite(loop.loss())


def test_bad_target_is_rejected():
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        ToySDS(torch.zeros(8, 8))


def test_reset_returns_to_the_same_start():
    loop = ToySDS(target_image(16, 16), n=5, seed=2)
    start, loss0 = loop.centres(), loop.loss_history[0]
    loop.run(3)
    loop.reset()
    assert loop.iteration == 0 and loop.loss_history == [loss0]
    assert torch.equal(loop.centres(), start)
    loop.run(3)
    assert loop.iteration == 3
