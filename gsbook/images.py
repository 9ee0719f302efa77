"""Small image helpers every layer shares: uint8 and PNG conversion, grids, backgrounds.

The book's images are tiny (32² to 64²), so pictures enlarge them with nearest-neighbour
sampling (pixels stay pixels). Images are float tensors in [0, 1], either ``[H, W, 3]``
(the renderer's layout) or ``[3, H, W]`` (the networks'); every helper takes both.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["hwc", "to_uint8", "to_pil", "png_bytes", "grid", "save_grid", "over_background", "sharpness", "psnr", "ssim"]


def hwc(image: Tensor) -> Tensor:
    """``[H, W, 3]`` or ``[3, H, W]`` → ``[H, W, 3]`` (detached, float, on the CPU)."""
    image = image.detach().float().cpu()
    if image.dim() != 3:
        raise ValueError(f"an image is [H, W, 3] or [3, H, W], got {list(image.shape)}")
    if image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.permute(1, 2, 0)
    return image


def to_uint8(image: Tensor) -> np.ndarray:
    """An image in [0, 1] → ``uint8 [H, W, 3]`` (values clamped, rounded)."""
    return (hwc(image).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def to_pil(image: Tensor, size: int | None = None, scale: int | None = None):
    """An image in [0, 1] → PIL image, enlarged (nearest) to ``size`` pixels wide or ``scale``×."""
    from PIL import Image

    pil = Image.fromarray(to_uint8(image), mode="RGB")
    if scale is not None and scale != 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    if size is not None and size != pil.width:
        pil = pil.resize((size, round(size * pil.height / pil.width)), Image.NEAREST)
    return pil


def png_bytes(image: Tensor, scale: int = 1) -> bytes:
    """PNG file contents of an image in [0, 1], enlarged ``scale``× (nearest)."""
    buf = io.BytesIO()
    to_pil(image, scale=scale).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def grid(images: Sequence[Tensor] | Tensor, nrow: int = 8, pad: int = 2, pad_value: float = 0.5) -> Tensor:
    """Images (equal sizes, either layout) tiled ``nrow`` per row → ``[H', W', 3]``."""
    tiles = [hwc(im) for im in images]
    if not tiles:
        raise ValueError("grid needs at least one image")
    H, W, _ = tiles[0].shape
    if any(t.shape != tiles[0].shape for t in tiles):
        raise ValueError(f"grid needs images of one size, got {sorted({tuple(t.shape) for t in tiles})}")
    rows = (len(tiles) + nrow - 1) // nrow
    out = torch.full((rows * (H + pad) + pad, nrow * (W + pad) + pad, 3), pad_value)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, nrow)
        out[pad + r * (H + pad): pad + r * (H + pad) + H, pad + c * (W + pad): pad + c * (W + pad) + W] = tile
    return out


def save_grid(images: Sequence[Tensor] | Tensor, path: Path | str, nrow: int = 8, scale: int = 2) -> Path:
    """Write images as one PNG grid, ``nrow`` per row, enlarged ``scale``×; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(grid(images, nrow), scale))
    return path


def over_background(rgb_on_white: Tensor, alpha: Tensor, background: Tensor | float) -> Tensor:
    """Move renders made on white onto another background.

    ``rgb_on_white [B, H, W, 3]`` = ``α·c + (1 − α)·1``, so ``α·c + (1 − α)·b`` is
    ``rgb − (1 − α)(1 − b)``. ``alpha [B, H, W]``; ``background``: a number, ``[3]`` or
    ``[B, 3]`` (one colour per image) or ``[B, 1, 1, 1]``-broadcastable.
    """
    b = torch.as_tensor(background, dtype=rgb_on_white.dtype, device=rgb_on_white.device)
    if b.dim() == 2:
        b = b[:, None, None, :]
    return rgb_on_white - (1 - alpha[..., None]) * (1 - b)


def sharpness(images: Tensor, background: float = 1.0, tolerance: float = 0.03) -> float:
    """Mean absolute Laplacian of the grey level over the object's pixels (those farther than
    ``tolerance`` from the ``background`` grey): how much fine detail renders ``[B, H, W, 3]``
    hold. A blurred image scores lower than a sharp one of the same object."""
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"sharpness takes images [B, H, W, 3], got {list(images.shape)}")
    grey = images.detach().float().mean(-1)
    centre = grey[:, 1:-1, 1:-1]
    laplacian = 4 * centre - grey[:, :-2, 1:-1] - grey[:, 2:, 1:-1] - grey[:, 1:-1, :-2] - grey[:, 1:-1, 2:]
    mask = (centre - background).abs() > tolerance
    if not mask.any():
        raise ValueError("no object pixels: every pixel is the background")
    return float(laplacian.abs()[mask].mean())


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB of images in [0, 1], one per image: ``[B, ...] → [B]``.

    ``10 · log10(1 / MSE)``: 20 dB is an RMS error of 0.1 per channel, 30 dB of 0.03. The mean
    of per-image PSNRs (the convention of LGM's and GRM's tables) is what the book reports.
    """
    if pred.shape != target.shape:
        raise ValueError(f"psnr needs equal shapes, got {list(pred.shape)} and {list(target.shape)}")
    mse = (pred - target).square().flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


def ssim(pred: Tensor, target: Tensor, window: int = 7, sigma: float = 1.5) -> Tensor:
    """Structural similarity (Wang et al. 2004) of images ``[B, C, H, W]`` in [0, 1], one per image: ``[B]``.

    Local means, variances and covariance under a Gaussian window (σ = 1.5, as in the paper;
    7 pixels wide here, for the book's 32²–64² images), combined as
    ``(2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))`` with ``C1 = 0.01²``,
    ``C2 = 0.03²`` and averaged over the image. 1 means identical. Differentiable: ``1 − ssim``
    is 3DGS's D-SSIM term, which the book's reconstructors use as their perceptual loss.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"ssim needs two [B, C, H, W] images of one shape, got {list(pred.shape)} and "
                         f"{list(target.shape)}")
    C = pred.shape[1]
    x = torch.arange(window, dtype=pred.dtype, device=pred.device) - (window - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(C, 1, window, window)
    blur = lambda t: torch.nn.functional.conv2d(t, kernel, groups=C)   # noqa: E731  valid windows only
    mu_x, mu_y = blur(pred), blur(target)
    var_x = blur(pred * pred) - mu_x.square()
    var_y = blur(target * target) - mu_y.square()
    cov = blur(pred * target) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1)
