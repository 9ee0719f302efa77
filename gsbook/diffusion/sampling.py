"""Sampling the book's 2D prior with classifier-free guidance (§1): DDPM or DDIM.

Classifier-free guidance (Ho & Salimans 2022) runs the model twice per step, with the
caption and with the empty caption, and extrapolates::

    ε̂ = ε_φ(x_t, t, "") + s · (ε_φ(x_t, t, y) − ε_φ(x_t, t, ""))

The loop is a diffusers scheduler. The default is DDPM's ancestral sampler (Ho et al.
2020), which adds fresh noise at every step; :class:`~diffusers.DDIMScheduler` (Song et al.
2021) is deterministic given the starting noise and needs fewer steps. How the prior
configures each (clipping, the first timestep) is explained in
:meth:`TextToImagePrior.make_scheduler`; the model card, `gsbook/weights/prior2d.md`,
measures both.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .noise import guide
from .prior2d import EMPTY_CAPTION, TextToImagePrior, caption_features

__all__ = ["guided_noise", "sample"]


def guided_noise(model: TextToImagePrior, x_t: Tensor, t: Tensor, tokens: Tensor, mask: Tensor,
                 guidance: float) -> Tensor:
    """CFG noise ``[B, 3, S, S]`` from one batched call. ``tokens [2B, L, D]`` and ``mask [2B, L]``
    hold the unconditional rows first, then the conditional ones."""
    B = x_t.shape[0]
    t = t.reshape(-1).expand(B) if t.numel() == 1 else t
    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), tokens, mask)
    return guide(eps[:B], eps[B:], guidance)


@torch.no_grad()
def sample(model: TextToImagePrior, captions: list[str], steps: int = 100, guidance: float = 3.0,
           sampler: str = "ddpm", eta: float = 0.0, generator: torch.Generator | None = None, batch: int = 100,
           progress: bool = False) -> Tensor:
    """Images ``[B, 3, S, S]`` in [0, 1] for ``captions`` (one image per caption).

    Args:
        steps: denoising steps (out of the model's 1000).
        guidance: CFG scale ``s``; 1 is the plain conditional model, 0 the unconditional one.
        sampler: ``"ddpm"`` (ancestral, the default) or ``"ddim"`` (deterministic for ``eta=0``).
        eta: DDIM's η (ignored by DDPM).
        generator: seeds the starting noise and the noise added along the way.
        batch: images per model call (memory).
    """
    from tqdm.auto import tqdm

    if isinstance(captions, str):
        captions = [captions]
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"unknown sampler {sampler!r}; choose 'ddpm' or 'ddim'")
    device = next(model.parameters()).device
    S = model.config.image_size
    tokens, mask = caption_features([EMPTY_CAPTION] + list(captions))
    tokens, mask = tokens.to(device), mask.to(device)
    out = []
    total = (len(captions) + batch - 1) // batch * steps
    bar = tqdm(total=total, desc="sampling", disable=not progress)
    for start in range(0, len(captions), batch):
        rows = torch.arange(start, min(start + batch, len(captions))) + 1
        n = len(rows)
        tok = torch.cat([tokens[[0] * n], tokens[rows]])
        msk = torch.cat([mask[[0] * n], mask[rows]])
        scheduler = model.make_scheduler(sampler)
        scheduler.set_timesteps(steps)
        x = torch.randn(n, 3, S, S, generator=generator).to(device)
        for t in scheduler.timesteps:
            eps = guided_noise(model, x, t.reshape(1).to(device), tok, msk, guidance)
            extra = {"eta": eta} if sampler == "ddim" else {}
            x = scheduler.step(eps, t, x, generator=generator, **extra).prev_sample
            bar.update(1)
        out.append(((x + 1) / 2).clamp(0, 1).cpu())
    bar.close()
    return torch.cat(out)
