"""Multi-step refinement of renders by a prior (img2img), as DreamGaussian's stage 2 uses it (§2).

SDS asks the prior for one noise prediction per step and turns it into a gradient. A
second way to use a frozen diffusion model as a critic is to let it *redraw* a render:
noise it to a small timestep and run the deterministic DDIM sampler (Song et al. 2021)
back to ``t = 0`` with classifier-free guidance, then pull the scene toward the redrawn
image with a plain MSE. This is SDEdit-style image-to-image (Meng et al. 2022), and it is
what DreamGaussian's ``main2.py`` does to sharpen the texture of its mesh (its
``guidance/sd_utils.py``: ``refine(pred_rgb, guidance_scale=100, steps=50, strength=0.8)``,
with ``strength`` rising from 0.8 to 0.95 over the refinement).

``strength`` is DreamGaussian's: the fraction of the ``steps``-step DDIM schedule that is
*skipped*, so 0.8 starts the redraw 80 % of the way down the schedule, at a small timestep
(about ``0.2 T``), and the render's layout and colours survive while its details are
redrawn. Each redraw costs ``steps × (1 − strength)`` prior calls, each a CFG pair.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gsbook.diffusion import add_noise, ddim_step, predicted_x0
from gsbook.sds.distill import draw_noise, prepare_images
from gsbook.sds.guidance import classifier_free_guidance
from gsbook.sds.prior import DiffusionPrior, PromptEmbeddings

__all__ = ["ddim_timesteps", "refine_images"]


def ddim_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """DDIM's ``steps`` timesteps, largest first, with diffusers' "leading" spacing:
    ``(steps − 1)·k, …, k, 0`` for ``k = T // steps`` (Stable Diffusion's DDIM scheduler)."""
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must lie in [1, {num_train_timesteps}], got {steps}")
    k = num_train_timesteps // steps
    return [k * i for i in reversed(range(steps))]


@torch.no_grad()
def refine_images(prior: DiffusionPrior, images: Tensor, embeddings: PromptEmbeddings, *, strength: float = 0.8,
                  steps: int = 50, guidance_scale: float = 100.0, generator: torch.Generator | None = None,
                  layout: str = "BHWC") -> Tensor:
    """The prior's redraw of ``images`` (renders in [0, 1], ``[B, H, W, 3]`` or ``[B, 3, H, W]``
    per ``layout``): noised to the timestep ``strength`` of the way down a ``steps``-step DDIM
    schedule, then denoised by DDIM with CFG. Returns ``[B, 3, h, w]`` in [0, 1] at the prior's
    resolution (``h, w = prior.image_size``); resize it to compare with the renders."""
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"strength is the fraction of the schedule skipped, in [0, 1), got {strength}")
    x = prepare_images(prior, images, layout).float()
    b = x.shape[0]
    emb = embeddings.for_batch(b)
    timesteps = ddim_timesteps(prior.num_train_timesteps, steps)[int(steps * strength):]
    t0 = torch.full((b,), timesteps[0], dtype=torch.long, device=x.device)
    x = add_noise(x, draw_noise(x.shape, generator, x.device), t0, prior.alphas_cumprod)
    for i, t in enumerate(timesteps):
        t_now = torch.full((b,), t, dtype=torch.long, device=x.device)
        eps = classifier_free_guidance(prior, x, t_now, emb, guidance_scale).eps
        if i + 1 < len(timesteps):
            x = ddim_step(x, eps, t_now, torch.full_like(t_now, timesteps[i + 1]), prior.alphas_cumprod)
        else:                                    # the last step lands on the clean image (ᾱ = 1)
            x = predicted_x0(x, eps, t_now, prior.alphas_cumprod)
    return prior.decode_images(x).clamp(0, 1)
