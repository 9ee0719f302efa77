"""Rectified flow (gsbook.flow): the path, its velocity, the Euler sampler, the loss."""

from __future__ import annotations

import pytest
import torch

from gsbook.flow import (SIGMA_MIN, euler_sample, flow_loss, interpolate, logit_normal_timesteps,
                         velocity_target)


def test_the_path_runs_from_data_to_noise():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    assert torch.allclose(interpolate(x0, eps, torch.zeros(3)), x0, atol=1e-4)
    assert torch.allclose(interpolate(x0, eps, torch.ones(3)), eps, atol=1e-4)
    mid = interpolate(x0, eps, torch.full((3,), 0.5), sigma_min=0.0)
    assert torch.allclose(mid, 0.5 * (x0 + eps))


def test_the_velocity_is_the_derivative_of_the_path():
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 6, generator=g), torch.randn(2, 6, generator=g)
    t, h = torch.tensor([0.3, 0.8], dtype=torch.float64), 1e-6
    x0, eps = x0.double(), eps.double()
    numeric = (interpolate(x0, eps, t + h) - interpolate(x0, eps, t - h)) / (2 * h)
    assert torch.allclose(numeric, velocity_target(x0, eps), atol=1e-8)


def exact_velocity(centre: torch.Tensor):
    """The ideal velocity field when the data is the single point ``centre``."""
    def v(x_t, t):
        tt = t.view(-1, *([1] * (x_t.dim() - 1)))
        eps = (x_t - (1 - tt) * centre) / (SIGMA_MIN + (1 - SIGMA_MIN) * tt)
        return (1 - SIGMA_MIN) * eps - centre
    return v


@pytest.mark.parametrize("steps", [1, 5])
def test_euler_on_a_straight_flow_lands_on_the_data(steps):
    centre = torch.tensor([[1.5, -2.0, 0.25]])
    noise = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    out = euler_sample(exact_velocity(centre), noise, steps)
    assert torch.allclose(out, centre.expand(4, 3), atol=1e-4)


def test_guidance_one_is_the_conditional_model_and_zero_the_unconditional():
    def model(x, t, shift):
        return x * 0 + shift
    noise = torch.zeros(2, 3)
    cond, uncond = (torch.tensor(1.0),), (torch.tensor(-1.0),)
    plain = euler_sample(model, noise, 4, cond=cond)
    assert torch.allclose(euler_sample(model, noise, 4, cond=cond, uncond=uncond, guidance=1.0), plain)
    assert torch.allclose(euler_sample(model, noise, 4, cond=uncond), euler_sample(model, noise, 4, cond=cond,
                                                                                 uncond=uncond, guidance=0.0))
    # x runs from t = 1 to 0: dx = −v dt summed over the path = −v, guided: v̂ = −1 + 3·2 = 5
    assert torch.allclose(euler_sample(model, noise, 4, cond=cond, uncond=uncond, guidance=3.0),
                          torch.full((2, 3), -5.0))


def test_logit_normal_times_centre_on_sigmoid_of_the_mean():
    t = logit_normal_timesteps(20000, mean=1.0, std=1.0, generator=torch.Generator().manual_seed(3))
    assert 0 < float(t.min()) and float(t.max()) < 1
    assert abs(float(t.median()) - float(torch.sigmoid(torch.tensor(1.0)))) < 0.01
    with pytest.raises(ValueError, match="std"):
        logit_normal_timesteps(2, std=0.0)


def test_the_loss_is_zero_for_the_exact_field_and_trains_a_model():
    centre = torch.tensor([[0.5, -0.5]])
    x0 = centre.expand(64, 2)
    exact = flow_loss(exact_velocity(centre), x0, generator=torch.Generator().manual_seed(4))
    assert float(exact) < 1e-6
    w = torch.zeros(2, requires_grad=True)
    loss = flow_loss(lambda x, t: x * 0 + w, x0, generator=torch.Generator().manual_seed(4))
    loss.backward()
    assert float(loss.detach()) > 0.1 and w.grad.abs().sum() > 0


def test_times_outside_the_path_are_refused():
    with pytest.raises(ValueError, match="0 = data"):
        interpolate(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="\\[B\\]"):
        interpolate(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.5]))


def mixture_velocity(means: torch.Tensor, s: float):
    """The exact marginal velocity E[ε − x₀ | x_t] of the straight path (σ_min = 0) when x₀ is an
    equal mixture of N(μ_k, s² I): per component, x_t ~ N((1 − t) μ_k, σ_t² I) with
    σ_t² = (1 − t)² s² + t², and the posterior means of x₀ and ε are linear in x_t."""
    def v(x, t):
        t = t.view(-1, 1, 1)
        centred = x[:, None] - (1 - t) * means[None]                          # [B, K, D]
        var = (1 - t) ** 2 * s ** 2 + t ** 2
        logw = -(centred ** 2).sum(-1, keepdim=True) / (2 * var)
        w = torch.softmax(logw, dim=1)
        x0 = means[None] + (1 - t) * s ** 2 / var * centred
        eps = t / var * centred
        return (w * (eps - x0)).sum(1)
    return v


def test_euler_carries_noise_to_a_two_gaussian_target_in_few_steps():
    means, s = torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), 0.3
    noise = torch.randn(4000, 2, generator=torch.Generator().manual_seed(5))
    for steps, tolerance in ((10, 0.12), (50, 0.04)):         # Euler's error shrinks with the step
        x = euler_sample(mixture_velocity(means, s), noise, steps)
        right = x[:, 0] > 0
        assert abs(right.float().mean() - 0.5) < 0.04, "both modes, in equal shares"
        for k, side in enumerate((~right, right)):
            assert torch.allclose(x[side].mean(0), means[k], atol=tolerance)
            assert torch.allclose(x[side].std(0), torch.full((2,), s), atol=tolerance)
    one = euler_sample(mixture_velocity(means, s), noise, 1)
    assert one[:, 0].abs().mean() < 1.0, "one step lands near the average of the two modes, not on them"
