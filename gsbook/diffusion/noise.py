"""The noise maths every diffusion model in the book shares (taught in §1).

DDPM (Ho et al. 2020) noises an image ``x`` to timestep ``t ∈ {0, …, T−1}`` in one jump,
with the cumulative product ``ᾱ_t`` of a noise schedule (``alphas_cumprod [T]``, read from a
diffusers scheduler)::

    x_t = α_t x + σ_t ε,      α_t = sqrt(ᾱ_t),   σ_t = sqrt(1 − ᾱ_t),   ε ~ N(0, I)

An ε-prediction model ``ε̂(x_t, t, y)`` guesses the noise; from the guess follow the clean
image ``x̂_0 = (x_t − σ_t ε̂) / α_t`` and DDIM's deterministic move to any other timestep
(:func:`ddim_step`). Classifier-free guidance (Ho & Salimans 2022) extrapolates from the
unconditional guess toward the conditional one (:func:`guide`).

Everything here is a pure function of tensors, so the samplers (:mod:`.sampling`), the
training recipes and score distillation (:mod:`gsbook.sds`) use one copy of it.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["alpha_sigma", "add_noise", "check_timesteps", "predicted_x0", "ddim_step", "guide",
           "scheduler_alphas_cumprod"]


def check_timesteps(t: Tensor, num_train_timesteps: int, batch: int | None = None) -> Tensor:
    """Validate integer timesteps ``t [B]`` in ``[0, T)``; return them as ``long``."""
    if t.dim() != 1:
        raise ValueError(f"timesteps must have shape [B], got {tuple(t.shape)}")
    if batch is not None and t.shape[0] != batch:
        raise ValueError(f"{t.shape[0]} timesteps for a batch of {batch}")
    if t.is_floating_point():
        raise TypeError("timesteps are integer indices into alphas_cumprod, got a float tensor; "
                        "convert fractions with gsbook.sds.timestep_range")
    if (t < 0).any() or (t >= num_train_timesteps).any():
        raise ValueError(f"timesteps must lie in [0, {num_train_timesteps - 1}], got "
                         f"min {int(t.min())}, max {int(t.max())}")
    return t.long()


def alpha_sigma(alphas_cumprod: Tensor, t: Tensor, ndim: int = 4) -> tuple[Tensor, Tensor]:
    """``(α_t, σ_t)`` for timesteps ``t [B]``, shaped ``[B, 1, …, 1]`` (``ndim`` dims) to broadcast."""
    abar = alphas_cumprod.to(t.device)[t].float()
    shape = (-1,) + (1,) * (ndim - 1)
    return abar.sqrt().view(shape), (1.0 - abar).sqrt().view(shape)


def add_noise(x: Tensor, noise: Tensor, t: Tensor, alphas_cumprod: Tensor) -> Tensor:
    """Forward process ``x_t = α_t x + σ_t ε`` (same as diffusers' ``scheduler.add_noise``)."""
    if noise.shape != x.shape:
        raise ValueError(f"noise {tuple(noise.shape)} must match x {tuple(x.shape)}")
    a, s = alpha_sigma(alphas_cumprod, t, x.dim())
    return a * x + s * noise


def predicted_x0(x_t: Tensor, eps: Tensor, t: Tensor, alphas_cumprod: Tensor) -> Tensor:
    """The clean image the noise guess implies: ``x̂_0 = (x_t − σ_t ε̂) / α_t``."""
    a, s = alpha_sigma(alphas_cumprod, t, x_t.dim())
    return (x_t - s * eps) / a


def ddim_step(x_a: Tensor, eps: Tensor, a: Tensor, b: Tensor, alphas_cumprod: Tensor) -> Tensor:
    """Deterministic DDIM (η = 0) move from timesteps ``a [B]`` to ``b [B]`` with prediction ``eps``
    (Song et al. 2021): ``x_b = α_b x̂_0 + σ_b ε̂``. ``b > a`` inverts (adds noise along the
    ODE), ``b < a`` denoises."""
    al_b, si_b = alpha_sigma(alphas_cumprod, b, x_a.dim())
    return al_b * predicted_x0(x_a, eps, a, alphas_cumprod) + si_b * eps


def guide(eps_uncond: Tensor, eps_cond: Tensor, scale: float | Tensor) -> Tensor:
    """Classifier-free guidance: ``ε̂ = ε(∅) + s · (ε(y) − ε(∅))``. ``s = 1`` is the plain
    conditional model, ``s = 0`` the unconditional one; a tensor ``scale`` broadcasts (one per row)."""
    return eps_uncond + scale * (eps_cond - eps_uncond)


def scheduler_alphas_cumprod(scheduler=None, num_train_timesteps: int = 1000) -> Tensor:
    """``alphas_cumprod [T]`` of a diffusers scheduler (default: a ``DDPMScheduler`` with
    Stable Diffusion's schedule, ``scaled_linear`` β from 0.00085 to 0.012 over 1000 steps)."""
    if scheduler is None:
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_start=0.00085,
                                  beta_end=0.012, beta_schedule="scaled_linear")
    return scheduler.alphas_cumprod.detach().clone().float()
