"""The oracle prior: an exact denoiser for known target images (§1's toy figure).

If the "data distribution" were a single image ``x*``, the ideal ε-prediction would be

    ε̂(x_t, t) = (x_t − α_t x*) / σ_t,

and SDS would give ``ε̂ − ε = (α_t / σ_t)(x − x*)``: the L2 gradient toward ``x*``, scaled
by ``w(t) α_t / σ_t``. That is the stand-in the essay's figure uses ("we cheat and use the
L2 gradient"), written as a real :class:`~gsbook.sds.prior.DiffusionPrior` so the same SDS
code runs on it, on the book's trained prior and on Stable Diffusion.

The generalisation: one target per prompt (``targets={"a sun": img, ...}``) and an
*unconditional* target ``x*_∅`` (default: the mean of the targets). With guidance scale
``s`` the SDS gradient becomes

    ε̂ − ε = (α_t / σ_t) [ (x − x*_∅) + s (x*_∅ − x*_y) ],

whose fixed point ``x*_y + (s − 1)(x*_y − x*_∅)`` overshoots the target when ``s > 1``: the
toy version of the over-saturated colours that large CFG scales give real SDS.

:func:`target_image` is the essay's target for Figure 1 (a sun over a hill): with
``OraclePrior(target_image().permute(2, 0, 1))`` as the critic, :class:`gsbook.methods.ImageSDS`
is the figure's "L2 stand-in" loop.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from gsbook.diffusion import alpha_sigma, check_timesteps, scheduler_alphas_cumprod
from gsbook.sds.prior import PromptEmbeddings

__all__ = ["OraclePrior", "target_image"]

_VIEW_SUFFIXES = (", front view", ", side view", ", back view", ", overhead view")


def target_image(width: int = 48, height: int = 48) -> Tensor:
    """Figure 1's target ``[H, W, 3]`` in [0, 1]: a sun over a hill under a blue sky."""
    if width < 8 or height < 8:
        raise ValueError(f"target_image needs at least 8×8 pixels, got {width}×{height}")
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    u, v = xs / width, ys / height
    img = torch.empty(height, width, 3)
    img[:] = torch.tensor([0.55, 0.75, 0.95])                                   # sky
    sun = (u - 0.70) ** 2 + (v - 0.30) ** 2 < 0.14**2
    img[sun] = torch.tensor([1.0, 0.80, 0.15])
    hill = v > 0.72 - 0.25 * torch.exp(-((u - 0.30) ** 2) / 0.05)
    img[hill] = torch.tensor([0.20, 0.60, 0.25])
    return img


class OraclePrior:
    """Exact ε-prediction for known targets, in pixel space (``encode_images`` is identity).

    Args:
        targets: one image ``[C, H, W]`` (every prompt maps to it) or ``{prompt: [C, H, W]}``.
        uncond_target: ``[C, H, W]`` for the empty/negative prompt; default the mean target
            (so with one target, CFG changes nothing and SDS is exactly scaled L2).
        alphas_cumprod: ``[T]``; default Stable Diffusion's schedule via a diffusers scheduler.
    """

    def __init__(self, targets: Tensor | Mapping[str, Tensor], uncond_target: Tensor | None = None,
                 alphas_cumprod: Tensor | None = None):
        if isinstance(targets, Tensor):
            self._by_prompt: dict[str, Tensor] | None = None
            stack = targets[None]
        else:
            if not targets:
                raise ValueError("OraclePrior needs at least one target")
            self._by_prompt = {k: v.float() for k, v in targets.items()}
            stack = torch.stack(list(self._by_prompt.values()))
        if stack.dim() != 4:
            raise ValueError(f"OraclePrior targets must be [C, H, W] images, got {tuple(stack.shape[1:])}")
        self._targets = stack.float()
        self.uncond_target = (self._targets.mean(0) if uncond_target is None else uncond_target.float())
        if self.uncond_target.shape != self._targets.shape[1:]:
            raise ValueError(f"uncond_target {tuple(self.uncond_target.shape)} must match the "
                             f"targets {tuple(self._targets.shape[1:])}")
        self.alphas_cumprod = (scheduler_alphas_cumprod() if alphas_cumprod is None
                               else alphas_cumprod.detach().float())
        self.num_train_timesteps = int(self.alphas_cumprod.shape[0])
        self.image_size = (int(stack.shape[-2]), int(stack.shape[-1]))

    def target_for(self, prompt: str) -> Tensor:
        """``[C, H, W]`` target of ``prompt`` (a trailing ", front view" etc. is ignored)."""
        if self._by_prompt is None:
            return self._targets[0]
        key = prompt
        for suf in _VIEW_SUFFIXES:
            if key.endswith(suf):
                key = key[: -len(suf)]
        if key not in self._by_prompt:
            raise KeyError(f"OraclePrior has no target for prompt {prompt!r}; known prompts: "
                           f"{sorted(self._by_prompt)}")
        return self._by_prompt[key]

    def encode_prompts(self, prompts: Sequence[str],
                       negative: Sequence[str] | None = None) -> PromptEmbeddings:
        """Embeddings are the targets themselves: ``cond [B, C, H, W]``, ``uncond`` likewise.

        A negative prompt that names a known target uses it; any other uses ``uncond_target``."""
        if isinstance(prompts, str):
            prompts = [prompts]
        negative = [""] * len(prompts) if negative is None else list(negative)
        if len(negative) != len(prompts):
            raise ValueError(f"{len(negative)} negative prompts for {len(prompts)} prompts")
        cond = torch.stack([self.target_for(p) for p in prompts])
        known = self._by_prompt or {}
        uncond = torch.stack([known.get(n, self.uncond_target) for n in negative])
        return PromptEmbeddings(cond, uncond)

    def encode_images(self, rgb: Tensor) -> Tensor:
        """Identity: the oracle lives in pixel space. ``rgb [B, C, H, W]``."""
        return rgb

    def decode_images(self, x: Tensor) -> Tensor:
        """Identity (clamped to [0, 1]): the oracle lives in pixel space."""
        return x.clamp(0, 1)

    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Tensor) -> Tensor:
        """``ε̂ = (x_t − α_t x*) / σ_t`` with ``x* = embeddings [N, C, H, W]``."""
        t = check_timesteps(t, self.num_train_timesteps, x_t.shape[0])
        if embeddings.shape != x_t.shape:
            raise ValueError(f"OraclePrior: x_t {tuple(x_t.shape)} and target embeddings "
                             f"{tuple(embeddings.shape)} must match")
        a, s = alpha_sigma(self.alphas_cumprod, t, x_t.dim())
        return (x_t - a * embeddings.to(x_t)) / s
