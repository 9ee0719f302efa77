"""Rectified flow: straight paths from data to noise, and the velocity that walks them (§4).

Rectified flow (Liu et al. 2023) and flow matching (Lipman et al. 2023) replace DDPM's
noise schedule by a straight line between a data sample ``x₀`` and Gaussian noise ``ε``,
with time running from data (``t = 0``) to noise (``t = 1``) as in TRELLIS::

    x_t = (1 − t) x₀ + (σ_min + (1 − σ_min) t) ε,      target velocity  v = dx_t/dt = (1 − σ_min) ε − x₀

A network ``v_θ(x_t, t, y)`` learns that velocity by plain MSE (:func:`flow_loss`); a sample is
the ODE integrated backwards from noise, here with Euler steps (:func:`euler_sample`). Where
an ε-prediction model (:mod:`gsbook.diffusion`) needs hundreds of stochastic steps, a nearly
straight flow needs a few dozen deterministic ones — §4 measures how few.

TRELLIS draws training times from a logit-normal distribution, ``t = sigmoid(m + s·n)``,
``n ~ N(0, 1)``, which concentrates training on the middle of the path, where the velocity is
hardest to guess (:func:`logit_normal_timesteps`; TRELLIS' sparse-structure flow uses
``m = 1, s = 1`` and ``σ_min = 1e-5``). Classifier-free guidance is the same extrapolation as
for noise (:func:`gsbook.diffusion.guide`), applied to velocities.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import Tensor

from .diffusion import guide

__all__ = ["SIGMA_MIN", "VelocityModel", "interpolate", "velocity_target", "logit_normal_timesteps",
           "flow_loss", "euler_sample"]

SIGMA_MIN = 1e-5


class VelocityModel(Protocol):
    """``v_θ(x_t [B, ...], t [B] in [0, 1], *conditioning) → [B, ...]``: the velocity-prediction
    counterpart of an ε-prediction model."""

    def __call__(self, x_t: Tensor, t: Tensor, *conditioning) -> Tensor: ...


def _per_sample(t: Tensor, like: Tensor) -> Tensor:
    if t.dim() != 1 or t.shape[0] != like.shape[0]:
        raise ValueError(f"t must be [B] with B = {like.shape[0]}, got {list(t.shape)}")
    if not t.is_floating_point() or (t < 0).any() or (t > 1).any():
        raise ValueError("flow times are floats in [0, 1] (0 = data, 1 = noise)")
    return t.to(like.dtype).view((-1,) + (1,) * (like.dim() - 1))


def interpolate(x0: Tensor, noise: Tensor, t: Tensor, sigma_min: float = SIGMA_MIN) -> Tensor:
    """``x_t = (1 − t) x₀ + (σ_min + (1 − σ_min) t) ε`` for times ``t [B]`` in [0, 1]."""
    if noise.shape != x0.shape:
        raise ValueError(f"noise {list(noise.shape)} must match x0 {list(x0.shape)}")
    tt = _per_sample(t, x0)
    return (1 - tt) * x0 + (sigma_min + (1 - sigma_min) * tt) * noise


def velocity_target(x0: Tensor, noise: Tensor, sigma_min: float = SIGMA_MIN) -> Tensor:
    """The straight path's velocity ``dx_t/dt = (1 − σ_min) ε − x₀`` (the same at every t)."""
    return (1 - sigma_min) * noise - x0


def logit_normal_timesteps(batch: int, mean: float = 1.0, std: float = 1.0,
                           generator: torch.Generator | None = None) -> Tensor:
    """``[B]`` training times ``sigmoid(mean + std · n)``, ``n ~ N(0, 1)`` (TRELLIS: mean 1, std 1)."""
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    return torch.sigmoid(mean + std * torch.randn(batch, generator=generator))


def flow_loss(model: Callable[..., Tensor], x0: Tensor, *conditioning, generator: torch.Generator | None = None,
              mean: float = 1.0, std: float = 1.0, sigma_min: float = SIGMA_MIN) -> Tensor:
    """The rectified-flow objective: MSE between ``model(x_t, t, *conditioning)`` and the path's
    velocity, at logit-normal times. The draws come from the CPU ``generator`` wherever ``x0``
    lives, so a run is the same on every device."""
    t = logit_normal_timesteps(x0.shape[0], mean, std, generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    prediction = model(interpolate(x0, noise, t, sigma_min), t, *conditioning)
    return (prediction - velocity_target(x0, noise, sigma_min)).square().mean()


@torch.no_grad()
def euler_sample(model: Callable[..., Tensor], noise: Tensor, steps: int, cond: tuple = (),
                 uncond: tuple | None = None, guidance: float = 1.0,
                 callback: Callable[[int, Tensor, Tensor, Tensor], None] | None = None) -> Tensor:
    """Integrate ``dx/dt = v`` from ``t = 1`` (``noise``) to ``t = 0`` in ``steps`` Euler steps.

    With ``uncond`` given, each step evaluates the model on the conditional and the
    unconditional inputs and guides: ``v̂ = v(∅) + s (v(y) − v(∅))`` (one evaluation per step
    otherwise). ``callback(i, t [B], x_t, v)``, when given, sees every step before it is taken
    (``x_t − t·v`` is the step's guess of the clean sample: what §4's step-through figure
    decodes). Returns ``x₀``, shaped like ``noise``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    x = noise
    times = torch.linspace(1.0, 0.0, steps + 1, device=noise.device)
    for i, (t_now, t_next) in enumerate(zip(times[:-1], times[1:])):
        t = t_now.expand(x.shape[0])
        v = model(x, t, *cond)
        if uncond is not None:
            v = guide(model(x, t, *uncond), v, guidance)
        if callback is not None:
            callback(i, t, x, v)
        x = x + (t_next - t_now) * v
    return x
