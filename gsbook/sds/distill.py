"""Score Distillation Sampling (SDS): DreamFusion's loss, as DreamGaussian runs it (§1, §2).

Poole et al., *DreamFusion: Text-to-3D using 2D Diffusion*, 2022 (arXiv:2209.14988), eq. 3:

    ∇_θ L_SDS = E_{t,ε}[ w(t) (ε̂_φ(x_t, t, y) − ε) ∂x/∂θ ],   x = render(θ),  x_t = α_t x + σ_t ε

One call of :func:`score_distillation`:

1. renders ``[B, H, W, 3]`` (``layout="BHWC"``, the renderer's ``[C, H, W, 3]``) or
   ``[B, 3, H, W]`` (``layout="BCHW"``) in [0, 1] are resized (bilinear) to
   ``prior.image_size`` and encoded by ``prior.encode_images`` — with gradients, so for
   Stable Diffusion they flow back through the VAE encoder;
2. timesteps ``t`` (given, or drawn by a :mod:`~gsbook.sds.schedules` schedule) and noise
   ``ε`` (given, or drawn with ``generator``) make ``x_t``;
3. the prior predicts the guided noise ε̂ with one batched CFG call (no gradients);
4. ``g = w(t) (ε̂ − ε)`` and the *stop-gradient* loss ``0.5 ‖x − sg(x − g)‖²`` make autograd
   deliver exactly ``∂loss/∂x = g`` (``reduction="sum"``) without differentiating the UNet.

``reduction``: ``"sum"`` (default; ``∂loss/∂x = g``), ``"batch_mean"`` (sum / B, as
DreamGaussian's ``train_step``; ``∂loss/∂x = g / B``) or ``"mean"`` (over all elements).
The loss *value* is ``0.5 ‖g‖²``: a diagnostic, not an objective that decreases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gsbook.diffusion import add_noise, check_timesteps
from gsbook.sds.guidance import classifier_free_guidance
from gsbook.sds.prior import DiffusionPrior, PromptEmbeddings
from gsbook.sds.schedules import TimestepSchedule, UniformSchedule
from gsbook.sds.weighting import sds_weight

__all__ = ["SDSOutput", "prepare_images", "stop_gradient_loss", "draw_noise", "sample_timesteps",
           "score_distillation"]

_REDUCTIONS = ("sum", "batch_mean", "mean")


@dataclass
class SDSOutput:
    """Everything one SDS step computed (model space ``[B, C, h, w]`` unless noted).

    ``loss`` (scalar, backpropagate it), ``grad`` = ``g``, ``t [B]``, ``x`` (encoded renders,
    in the graph), ``x_t``, ``noise`` ε, ``eps`` guided ε̂, ``eps_uncond``, ``eps_cond``,
    ``weight`` ``w(t) [B, 1, 1, 1]``.
    """

    loss: Tensor
    grad: Tensor
    t: Tensor
    x: Tensor
    x_t: Tensor
    noise: Tensor
    eps: Tensor
    eps_uncond: Tensor
    eps_cond: Tensor
    weight: Tensor


def prepare_images(prior: DiffusionPrior, images: Tensor, layout: str = "BHWC") -> Tensor:
    """Renders → ``[B, 3, H', W']`` at ``prior.image_size`` (bilinear) → ``prior.encode_images``."""
    if layout not in ("BHWC", "BCHW"):
        raise ValueError(f"layout must be 'BHWC' or 'BCHW', got {layout!r}")
    if images.dim() != 4:
        hint = " (a single render [H, W, 3]? add a batch dim: images[None])" if images.dim() == 3 else ""
        raise ValueError(f"images must be 4-D ({layout}), got shape {tuple(images.shape)}{hint}")
    rgb = images.permute(0, 3, 1, 2) if layout == "BHWC" else images
    if rgb.shape[1] != 3:
        raise ValueError(f"images must have 3 colour channels in layout {layout}, got shape "
                         f"{tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf: check the renderer's output")
    size = tuple(prior.image_size)
    if tuple(rgb.shape[-2:]) != size:
        rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
    return prior.encode_images(rgb)


def stop_gradient_loss(x: Tensor, grad: Tensor, reduction: str = "sum") -> Tensor:
    """``0.5 ‖x − sg(x − g)‖²`` reduced by ``reduction``; with ``"sum"``, ``∂/∂x = g`` exactly."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {list(_REDUCTIONS)}")
    if grad.shape != x.shape:
        raise ValueError(f"grad {tuple(grad.shape)} must match x {tuple(x.shape)}")
    target = (x - grad).detach()
    loss = 0.5 * (x.float() - target.float()).pow(2).sum()
    if reduction == "batch_mean":
        loss = loss / x.shape[0]
    elif reduction == "mean":
        loss = loss / x.numel()
    return loss


def draw_noise(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal ε of ``shape`` (float32) on ``device``, drawn with ``generator`` if given."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device).to(device)


def sample_timesteps(prior: DiffusionPrior, batch: int, t: Tensor | None,
                     schedule: TimestepSchedule | None, step: int,
                     generator: torch.Generator | None) -> Tensor:
    """Given ``t`` (validated), else ``schedule(step, batch)``, else uniform in [0.02, 0.98]."""
    if t is None:
        schedule = schedule or UniformSchedule(prior.num_train_timesteps)
        t = schedule(step, batch, generator=generator)
    return check_timesteps(torch.as_tensor(t).reshape(-1), prior.num_train_timesteps, batch)


def score_distillation(
    prior: DiffusionPrior,
    images: Tensor,
    embeddings: PromptEmbeddings,
    *,
    guidance_scale: float = 100.0,
    weighting: str = "sds",
    t: Tensor | None = None,
    schedule: TimestepSchedule | None = None,
    step: int = 0,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    layout: str = "BHWC",
    reduction: str = "sum",
) -> SDSOutput:
    """One SDS step on a batch of renders (see the module docstring).

    Args:
        prior: a :class:`~gsbook.sds.prior.DiffusionPrior`.
        images: renders in [0, 1], ``[B, H, W, 3]`` (``layout="BHWC"``) or ``[B, 3, H, W]``.
        embeddings: from ``prior.encode_prompts``; 1 row (shared) or ``B`` rows (e.g.
            view-dependent prompts).
        guidance_scale: CFG scale ``s`` (DreamFusion: 100).
        weighting: ``"sds"`` / ``"uniform"`` / ``"fantasia"`` / ``"lucid"`` (:mod:`~gsbook.sds.weighting`).
        t: integer timesteps ``[B]``; if None, drawn from ``schedule`` at ``step``.
        noise: ε, shaped like the encoded renders ``[B, C, h, w]``; if None, drawn with ``generator``.
        reduction: ``"sum"`` | ``"batch_mean"`` | ``"mean"``.
    """
    x = prepare_images(prior, images, layout)
    b = x.shape[0]
    emb = embeddings.for_batch(b)
    t = sample_timesteps(prior, b, t, schedule, step, generator).to(x.device)
    if noise is None:
        noise = draw_noise(x.shape, generator, x.device)
    elif noise.shape != x.shape:
        raise ValueError(f"noise must have the encoded shape {tuple(x.shape)}, got {tuple(noise.shape)}")
    noise = noise.to(x.device, torch.float32)
    with torch.no_grad():
        w = sds_weight(weighting, prior.alphas_cumprod, t, x.dim()).to(x.device)
        x_t = add_noise(x.detach().float(), noise, t, prior.alphas_cumprod)
        guided = classifier_free_guidance(prior, x_t, t, emb, guidance_scale)
        grad = (w * (guided.eps - noise)).to(x.dtype)
    loss = stop_gradient_loss(x, grad, reduction)
    return SDSOutput(loss, grad, t, x, x_t, noise, guided.eps, guided.eps_uncond,
                     guided.eps_cond, w)
