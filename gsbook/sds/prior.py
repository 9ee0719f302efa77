"""The prior protocol: what score distillation needs from a diffusion model (taught in §1).

Score distillation (DreamFusion, Poole et al. 2022, arXiv:2209.14988) treats a frozen
diffusion model as a *critic*: it never samples, it only answers "which noise do you see
in this noisy image?". This module names the five things SDS and ISM ask of such a model,
so that the book's own small prior (``gsbook.diffusion``), the analytic
:class:`~gsbook.sds.oracle.OraclePrior` and Stable Diffusion
(:class:`~gsbook.sds.stable_diffusion.StableDiffusionPrior`) are interchangeable.

Noise schedule (DDPM, Ho et al. 2020), read from a diffusers scheduler's ``alphas_cumprod``
``ᾱ`` (shape ``[T]``)::

    x_t = α_t x + σ_t ε,      α_t = sqrt(ᾱ_t),   σ_t = sqrt(1 - ᾱ_t),   t ∈ {0, …, T-1}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor

__all__ = [
    "PromptEmbeddings",
    "DiffusionPrior",
    "alpha_sigma",
    "add_noise",
    "check_timesteps",
    "scheduler_alphas_cumprod",
]


@dataclass
class PromptEmbeddings:
    """Conditional and unconditional embeddings for classifier-free guidance.

    ``cond`` and ``uncond`` have the same shape ``[B, ...]``: row ``i`` of ``uncond`` is the
    negative (or empty) prompt paired with prompt ``i``. What a row *is* depends on the prior:
    CLIP token features ``[B, 77, D]`` for Stable Diffusion, target images ``[B, C, H, W]``
    for the oracle prior.
    """

    cond: Tensor
    uncond: Tensor

    def __post_init__(self) -> None:
        if self.cond.shape != self.uncond.shape:
            raise ValueError(
                f"PromptEmbeddings: cond {tuple(self.cond.shape)} and uncond "
                f"{tuple(self.uncond.shape)} must have the same shape"
            )

    def __len__(self) -> int:
        return self.cond.shape[0]

    def for_batch(self, batch: int) -> PromptEmbeddings:
        """Rows for a batch of ``batch`` views: one prompt is repeated, ``batch`` prompts kept."""
        n = len(self)
        if n == batch:
            return self
        if n == 1:
            rep = (batch,) + (1,) * (self.cond.dim() - 1)
            return PromptEmbeddings(self.cond.repeat(rep), self.uncond.repeat(rep))
        raise ValueError(f"{n} prompt embeddings for a batch of {batch} views: give 1 or {batch}")


@runtime_checkable
class DiffusionPrior(Protocol):
    """A frozen ε-prediction diffusion model, as score distillation sees it.

    Attributes:
        alphas_cumprod: ``[T]`` float tensor ``ᾱ_t`` (from a diffusers scheduler).
        num_train_timesteps: ``T``.
        image_size: ``(H, W)`` that renders are resized to (bilinear) before
            :meth:`encode_images`, e.g. ``(512, 512)`` for Stable Diffusion 2.1-base.
    """

    alphas_cumprod: Tensor
    num_train_timesteps: int
    image_size: tuple[int, int]

    def encode_prompts(self, prompts: Sequence[str],
                       negative: Sequence[str] | None = None) -> PromptEmbeddings:
        """Embeddings for ``prompts`` (cond) and ``negative`` (uncond; default: empty prompts)."""
        ...

    def encode_images(self, rgb: Tensor) -> Tensor:
        """``rgb [B, 3, H, W]`` in [0, 1] → model-space ``x [B, C, h, w]``, differentiably.

        Identity for a pixel-space prior; VAE latents (times the VAE's ``scaling_factor``)
        for a latent diffusion model."""
        ...

    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Tensor) -> Tensor:
        """``ε_φ(x_t, t, y)``: ``x_t [N, C, h, w]``, integer ``t [N]``, ``embeddings [N, ...]``
        → ``[N, C, h, w]``. Called without gradients by SDS."""
        ...


def check_timesteps(t: Tensor, num_train_timesteps: int, batch: int | None = None) -> Tensor:
    """Validate integer timesteps ``t [B]`` in ``[0, T)``; return them as ``long``."""
    if t.dim() != 1:
        raise ValueError(f"timesteps must have shape [B], got {tuple(t.shape)}")
    if batch is not None and t.shape[0] != batch:
        raise ValueError(f"{t.shape[0]} timesteps for a batch of {batch}")
    if t.is_floating_point():
        raise TypeError("timesteps are integer indices into alphas_cumprod, got a float tensor; "
                        "convert fractions with gsbook.sds.schedules.timestep_range")
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


def scheduler_alphas_cumprod(scheduler=None, num_train_timesteps: int = 1000) -> Tensor:
    """``alphas_cumprod [T]`` of a diffusers scheduler (default: a ``DDPMScheduler`` with
    Stable Diffusion's schedule, ``scaled_linear`` β from 0.00085 to 0.012 over 1000 steps)."""
    if scheduler is None:
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_start=0.00085,
                                  beta_end=0.012, beta_schedule="scaled_linear")
    return scheduler.alphas_cumprod.detach().clone().float()
