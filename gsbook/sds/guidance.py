"""Classifier-free guidance (Ho & Salimans 2022), as score distillation uses it (§1).

    ε̂(x_t, t, y) = ε(x_t, t, ∅) + s · (ε(x_t, t, y) − ε(x_t, t, ∅))

The combination itself is :func:`gsbook.diffusion.guide` (the samplers use it too); this
module adds the prior call. The conditional and unconditional predictions come from **one**
batched call of the prior
(``[uncond; cond]`` stacked along the batch, the order DreamGaussian and diffusers use).
DreamFusion uses a very large scale (``s = 100``) for SDS; sampling uses ~7.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gsbook.diffusion import guide
from gsbook.sds.prior import DiffusionPrior, PromptEmbeddings

__all__ = ["GuidedNoise", "classifier_free_guidance"]


@dataclass
class GuidedNoise:
    """``eps`` = guided ``ε̂``; ``eps_uncond``, ``eps_cond`` the two halves; all ``[B, C, h, w]``."""

    eps: Tensor
    eps_uncond: Tensor
    eps_cond: Tensor


@torch.no_grad()
def classifier_free_guidance(prior: DiffusionPrior, x_t: Tensor, t: Tensor,
                             embeddings: PromptEmbeddings, guidance_scale: float) -> GuidedNoise:
    """Guided noise for ``x_t [B, C, h, w]`` at timesteps ``t [B]`` with one prior call.

    ``embeddings`` must have ``B`` rows (see :meth:`PromptEmbeddings.for_batch`).
    """
    b = x_t.shape[0]
    if len(embeddings) != b or t.shape != (b,):
        raise ValueError(f"classifier_free_guidance: x_t has batch {b}, t {tuple(t.shape)}, "
                         f"embeddings {len(embeddings)} rows")
    eps = prior.predict_noise(torch.cat([x_t, x_t]), torch.cat([t, t]),
                              torch.cat([embeddings.uncond, embeddings.cond]))
    if eps.shape != (2 * b,) + tuple(x_t.shape[1:]):
        raise ValueError(f"prior.predict_noise returned {tuple(eps.shape)}, expected "
                         f"{(2 * b,) + tuple(x_t.shape[1:])}")
    eps = eps.float()
    eps_u, eps_c = eps[:b], eps[b:]
    return GuidedNoise(guide(eps_u, eps_c, guidance_scale), eps_u, eps_c)
