"""The prior protocol: what score distillation needs from a diffusion model (taught in §1).

Score distillation (DreamFusion, Poole et al. 2022, arXiv:2209.14988) treats a frozen
diffusion model as a *critic*: it never samples, it only answers "which noise do you see
in this noisy image?". This module names the five things SDS and ISM ask of such a model,
so that the book's own small prior (``gsbook.diffusion``), the analytic
:class:`~gsbook.sds.oracle.OraclePrior` and Stable Diffusion
(:class:`~gsbook.sds.stable_diffusion.StableDiffusionPrior`) are interchangeable.

The noise maths itself (``x_t = α_t x + σ_t ε``, ``ᾱ`` read from a diffusers scheduler,
DDIM steps, classifier-free guidance) lives one layer down, in :mod:`gsbook.diffusion.noise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor

__all__ = ["PromptEmbeddings", "DiffusionPrior", "CountingPrior"]


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

    def decode_images(self, x: Tensor) -> Tensor:
        """Model space ``x [B, C, h, w]`` → ``rgb [B, 3, H, W]`` in [0, 1] (the inverse of
        :meth:`encode_images`; the VAE decoder for a latent model)."""
        ...

    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Tensor) -> Tensor:
        """``ε_φ(x_t, t, y)``: ``x_t [N, C, h, w]``, integer ``t [N]``, ``embeddings [N, ...]``
        → ``[N, C, h, w]``. Called without gradients by SDS."""
        ...


class CountingPrior:
    """Any :class:`DiffusionPrior`, counting what score distillation asks of it.

    ``batches`` lists the batch size of every ``predict_noise`` call; ``calls`` (network
    evaluations) and ``images`` (images they covered: a CFG call on ``B`` renders covers ``2B``)
    sum it up. These are what an algorithm costs whatever the machine, so the chapters compare
    methods on them and show the seconds beside.
    """

    def __init__(self, prior: DiffusionPrior) -> None:
        self.prior = prior
        self.batches: list[int] = []

    def __getattr__(self, name: str):
        if name == "prior":                     # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.prior, name)        # alphas_cumprod, image_size, encode_prompts, …

    @property
    def calls(self) -> int:
        return len(self.batches)

    @property
    def images(self) -> int:
        return sum(self.batches)

    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Tensor) -> Tensor:
        self.batches.append(int(x_t.shape[0]))
        return self.prior.predict_noise(x_t, t, embeddings)

    def reset(self) -> None:
        self.batches = []
