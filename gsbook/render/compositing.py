"""Front-to-back alpha compositing of projected Gaussians, fast enough for a CPU (§0).

Each pixel's colour is ``C = Σᵢ cᵢ αᵢ Tᵢ + T_final · background`` over the Gaussians that
cover it, nearest first, where ``αᵢ = min(0.999, oᵢ exp(-½ dᵢᵀ Σᵢ⁻¹ dᵢ))`` and
``Tᵢ = Πⱼ<ᵢ (1 − αⱼ)`` is the light still passing. gsplat's rules are kept exactly:
pairs with ``α < 1/255`` are skipped, and a pixel stops at the Gaussian that would take
its transmittance to ``1e-4`` or below (that Gaussian is left out).

**How it stays fast without a CUDA kernel.** A GPU rasterizer gives each 16×16 tile of
pixels a thread block that walks the tile's depth-sorted Gaussians. On a CPU that walk is
a Python loop, which is slow. Instead we list *every* (pixel, Gaussian) pair whose α can
reach 1/255 — each Gaussian's footprint is culled to the pixels inside its ellipse, i.e.
tile culling with one-pixel tiles — sort the pairs by (pixel, depth), and compute all
transmittances at once with a *segmented cumulative sum* of ``log(1 − α)``. Memory is
proportional to the number of pairs, never to pixels × Gaussians.

The backward pass is written by hand (as in gsplat's CUDA kernel) instead of left to
autograd: the forward pass keeps only the pairs that contribute (in a dense scene most
pixels are opaque after a few layers), and the backward pass recomputes cheap quantities
for those and needs only one more segmented sum, for the colour that lies *behind* each
pair. Pairs are processed in chunks of whole pixels, which bounds peak memory.
``tests/test_render.py`` checks it with
``torch.autograd.gradcheck`` and against the dense reference in :mod:`.dense`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

ALPHA_MIN = 1.0 / 255.0   # pairs fainter than this are skipped
ALPHA_MAX = 0.999         # no single Gaussian is fully opaque
T_MIN = 1e-4              # a pixel is finished once its transmittance would fall to this
LOG_T_MIN = math.log(T_MIN)


class Pairs(NamedTuple):
    """(pixel, Gaussian) pairs sorted by pixel, then front to back.

    All three are ``[M]`` int64: ``gaussian`` indexes the flattened ``[I·N]`` per-image
    Gaussian arrays, ``pixel`` the flattened ``[I·H·W]`` pixels, and ``start`` is the
    position of the first pair of the same pixel (the segment start).
    """

    gaussian: Tensor
    pixel: Tensor
    start: Tensor


def segmented_cumsum(values: Tensor, start: Tensor) -> Tensor:
    """Inclusive cumulative sum within segments: ``out[i] = Σ values[start[i] .. i]``.

    ``values`` should be float64: the global running sum grows with the number of pairs,
    and subtracting two large float32 sums would lose the small per-pixel ones.
    """
    total = values.cumsum(0)
    return total - (total - values).index_select(0, start)


def footprint_extent(conics: Tensor, opacities: Tensor) -> Tensor:
    """Half-widths ``[..., 2]`` in pixels of the box holding every pixel where α ≥ 1/255.

    α = o·exp(−½ dᵀΣ⁻¹d) ≥ 1/255  ⇔  dᵀΣ⁻¹d ≤ 2 ln(255 o): an ellipse whose box has
    half-widths ``√(2 ln(255 o) · Σₓₓ)`` and ``√(2 ln(255 o) · Σᵧᵧ)``. Faint Gaussians get
    a smaller box than the fixed 3.33σ radius, which saves work but changes no pixel.
    """
    a, b, c = conics.unbind(-1)
    det = (a * c - b * b).clamp_min(1e-20)
    mahalanobis2 = 2 * torch.log((opacities / ALPHA_MIN).clamp_min(1.0))
    return torch.stack([torch.sqrt(mahalanobis2 * c / det), torch.sqrt(mahalanobis2 * a / det)], -1)


@torch.no_grad()
def list_pairs(means2d: Tensor, conics: Tensor, opacities: Tensor, order: Tensor, visible: Tensor,
               width: int, height: int, max_chunk: int = 1 << 23) -> Pairs:
    """Every (pixel, Gaussian) pair with α ≥ 1/255, sorted by pixel then ``order``.

    The pixels where α ≥ 1/255 form an ellipse. We walk it scanline by scanline: on the
    row through pixel centres at height ``y``, the condition σ(dx) ≤ ln(255 o) is a
    quadratic inequality in ``dx``, so the row's pixels are one interval found with the
    quadratic formula. Listing pairs is then a cumulative sum over interval lengths —
    no pixel outside the ellipse is ever touched. The threshold is widened by a hair so
    that rounding never drops a pixel; the compositor applies the exact test.

    Args:
        means2d: ``[I, N, 2]`` pixel-space centres; conics ``[I, N, 3]``; opacities ``[I, N]``.
        order: ``[I, N]`` int64 rank of each Gaussian in front-to-back order (0 = nearest).
        visible: ``[I, N]`` bool, False for Gaussians culled by the projection.
        max_chunk: most pairs generated at once, which bounds peak memory.
    """
    I, N = opacities.shape
    device = means2d.device
    empty = torch.zeros(0, dtype=torch.long, device=device)
    extent = footprint_extent(conics, opacities)
    row_lo = torch.ceil(means2d[..., 1] - extent[..., 1] - 0.5).clamp(0, height)
    row_hi = (torch.floor(means2d[..., 1] + extent[..., 1] - 0.5) + 1).clamp(0, height)
    rows = (row_hi - row_lo).clamp_min(0).long() * (visible & (opacities >= ALPHA_MIN))

    # Gaussians in front-to-back order (over all images at once: pairs of different images
    # never share a pixel), so that a stable sort by pixel keeps them front to back.
    flat = torch.argsort(order.reshape(-1), stable=True)
    flat = flat[rows.reshape(-1).index_select(0, flat) > 0]
    if flat.numel() == 0:
        return Pairs(empty, empty, empty)

    # One entry per (Gaussian, scanline).
    n_rows = rows.reshape(-1).index_select(0, flat)
    owner = flat.repeat_interleave(n_rows)                                   # [R]
    first_row = torch.repeat_interleave(n_rows.cumsum(0) - n_rows, n_rows)
    y = row_lo.reshape(-1).index_select(0, owner) + (torch.arange(len(owner), device=device) - first_row)
    mx, my = means2d.reshape(-1, 2).index_select(0, owner).unbind(-1)
    a, b, c = conics.reshape(-1, 3).index_select(0, owner).unbind(-1)
    limit = torch.log(opacities.reshape(-1).index_select(0, owner) / ALPHA_MIN) * (1 + 1e-4) + 1e-6
    dy = y + 0.5 - my
    # ½a·dx² + (b·dy)·dx + (½c·dy² − limit) ≤ 0   ⇔   dx ∈ [(−b·dy − √disc)/a, (−b·dy + √disc)/a]
    disc = (b * b - a * c) * dy * dy + 2 * a * limit
    root = torch.sqrt(disc.clamp_min(0))
    x_lo = torch.ceil(mx + (-b * dy - root) / a - 0.5).clamp(0, width)
    x_hi = (torch.floor(mx + (-b * dy + root) / a - 0.5) + 1).clamp(0, width)
    span = ((x_hi - x_lo).clamp_min(0) * (disc >= 0)).long()                # pixels on the row
    image = owner // N
    row_start = (image * height + y.long()) * width + x_lo.long()            # first pixel's index

    keep = span > 0
    span, row_start, owner = span[keep], row_start[keep], owner[keep]
    # Expand spans to pairs, chunk by chunk: pixel = row_start + position within the span.
    pixels, gaussians = [], []
    ends = span.cumsum(0)
    first = 0
    while first < len(span):
        chunk_start = int(ends[first - 1]) if first else 0
        last = max(int(torch.searchsorted(ends, chunk_start + max_chunk, right=True)), first + 1)
        s = span[first:last]
        offset = torch.repeat_interleave(row_start[first:last] - (ends[first:last] - s - chunk_start), s)
        pixels.append(offset + torch.arange(len(offset), device=device))
        gaussians.append(owner[first:last].repeat_interleave(s))
        first = last
    pixel = pixels[0] if len(pixels) == 1 else torch.cat(pixels)
    gaussian = gaussians[0] if len(gaussians) == 1 else torch.cat(gaussians)

    pixel, perm = torch.sort(pixel.int(), stable=True)
    gaussian = gaussian.index_select(0, perm)
    pixel = pixel.long()
    per_pixel = torch.bincount(pixel, minlength=I * height * width)
    start = (per_pixel.cumsum(0) - per_pixel).index_select(0, pixel)
    return Pairs(gaussian, pixel, start)


def pixel_centres(pixel: Tensor, width: int, height: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``(x + ½, y + ½)``, each ``[M]``, of flattened pixel indices ``[M]``."""
    local = pixel % (width * height)
    row = torch.div(local, width, rounding_mode="floor")
    return (local - row * width).to(dtype) + 0.5, row.to(dtype) + 0.5


def pixel_chunks(pixel: Tensor, n_pixels: int, max_pairs: int) -> list[tuple[int, int]]:
    """Split the pixel-sorted pairs into ranges of at most ``max_pairs`` (unless one pixel alone
    has more) that never cut a pixel's run in two, so each range composites on its own."""
    ends = torch.bincount(pixel, minlength=n_pixels).cumsum(0)           # pair index after each pixel
    total = int(ends[-1]) if len(ends) else 0
    chunks, first = [], 0
    while first < total:
        last = int(ends[max(int(torch.searchsorted(ends, first + max_pairs, right=True)) - 1, 0)])
        if last <= first:                                                # one huge pixel
            last = int(ends[int(torch.searchsorted(ends, first, right=True))])
        chunks.append((first, last))
        first = last
    return chunks


def _pair_geometry(geom: Tensor, g: Tensor, p: Tensor, width: int, height: int):
    """Per-pair offsets and exponent. ``geom [6, I·N]`` holds rows (x, y, a, b, c, o); gathering
    whole rows keeps every per-pair quantity a contiguous ``[m]`` vector."""
    x, y, a, b, c, o = geom.index_select(1, g)
    px, py = pixel_centres(p, width, height, geom.dtype)
    dx, dy = px - x, py - y
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    return dx, dy, a, b, c, o, sigma


class CompositeFunction(torch.autograd.Function):
    """Autograd wrapper: Gaussians' 2D footprints and colours → images, with a hand-written backward.

    Inputs are column-major — ``geom [6, I·N]`` and ``colors [D, I·N]`` — because gathering
    rows of a transposed table gives contiguous per-pair vectors, which PyTorch's CPU
    kernels process several times faster than strided columns. Pairs are handled in
    chunks of whole pixels so that peak memory stays bounded however many pairs there are.
    """

    CHUNK = 1 << 21

    @staticmethod
    def forward(ctx, geom: Tensor, colors: Tensor, backgrounds: Tensor | None, pairs: Pairs,
                n_images: int, width: int, height: int):
        P, D = n_images * height * width, colors.shape[0]
        image = torch.zeros(D, P, dtype=colors.dtype, device=colors.device)
        log_t_final = torch.zeros(P, dtype=torch.float64, device=colors.device)
        # Only pairs that contribute are kept for the backward pass: in a dense scene most
        # pixels are finished after a few layers, and everything behind has zero weight.
        kept: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
        for lo, hi in pixel_chunks(pairs.pixel, P, CompositeFunction.CHUNK):
            g, p = pairs.gaussian[lo:hi], pairs.pixel[lo:hi]
            *_, o, sigma = _pair_geometry(geom, g, p, width, height)
            raw = o * torch.exp(-sigma)
            # Pairs listed by a hair's margin that fail the exact test count as α = 0.
            alpha = torch.where(raw >= ALPHA_MIN, raw.clamp(max=ALPHA_MAX), torch.zeros_like(raw))
            log1m = torch.log1p(-alpha).double()
            log_t_after = segmented_cumsum(log1m, pairs.start[lo:hi] - lo)
            keep = ((log_t_after > LOG_T_MIN) & (alpha > 0)).nonzero()[:, 0]   # the pair that ends a pixel is out
            g, p, alpha = g.index_select(0, keep), p.index_select(0, keep), alpha.index_select(0, keep)
            log1m = log1m.index_select(0, keep)
            T = torch.exp(log_t_after.index_select(0, keep) - log1m).to(geom.dtype)
            image.index_add_(1, p, colors.index_select(1, g) * (alpha * T))
            log_t_final.scatter_add_(0, p, log1m)
            kept.append((g, p, alpha, T))
        t_final = torch.exp(log_t_final).to(colors.dtype)
        if backgrounds is not None:
            image = image + t_final * backgrounds.T.repeat_interleave(height * width, dim=1)
        g, p, alpha, T = (_cat([k[i] for k in kept], geom) for i in range(4))
        ctx.save_for_backward(geom, colors, backgrounds, g.long(), p.long(), alpha, T, t_final, image)
        ctx.shape = (n_images, width, height)
        ctx.has_background = backgrounds is not None
        return (image.T.contiguous().reshape(n_images, height, width, D),
                (1 - t_final).reshape(n_images, height, width, 1))

    @staticmethod
    def backward(ctx, grad_image: Tensor, grad_alpha: Tensor):
        geom, colors, backgrounds, gaussian, pixel, alpha_all, T_all, t_final, image = ctx.saved_tensors
        n_images, width, height = ctx.shape
        P, D = n_images * height * width, colors.shape[0]
        grad_image = grad_image.reshape(-1, D).T.contiguous()                 # [D, P]
        # Per pixel: gC·C (C includes the background) and gA·T_final, gathered per pair below.
        total = (grad_image * image).sum(0).double()
        alpha_term = grad_alpha.reshape(-1) * t_final
        grad_geom = torch.zeros_like(geom)
        grad_colors = torch.zeros_like(colors)
        # The kept pairs of a pixel are a prefix of its run, so runs are still contiguous.
        per_pixel = torch.bincount(pixel, minlength=P)
        start = (per_pixel.cumsum(0) - per_pixel).index_select(0, pixel)
        for lo, hi in pixel_chunks(pixel, P, CompositeFunction.CHUNK):
            g, p = gaussian[lo:hi], pixel[lo:hi]
            alpha, T = alpha_all[lo:hi], T_all[lo:hi]
            gC = grad_image.index_select(1, p)                               # [D, m]
            weight = alpha * T
            grad_colors.index_add_(1, g, gC * weight)

            # dL/dα_i = gC·(c_i T_i) − gC·S_i / (1 − α_i) + gA · T_final / (1 − α_i),
            # where S_i = Σ_{j>i} w_j c_j + T_final·background is what lies behind pair i.
            gc_dot = (gC * colors.index_select(1, g)).sum(0)
            behind = total.index_select(0, p) - segmented_cumsum((weight * gc_dot).double(), start[lo:hi] - lo)
            grad_a = T * gc_dot + (alpha_term.index_select(0, p) - behind.to(alpha.dtype)) / (1 - alpha)

            # Through α = min(0.999, o·e^{−σ}): zero where clamped.
            dx, dy, a, b, c, o, sigma = _pair_geometry(geom, g, p, width, height)
            vis = torch.exp(-sigma)
            grad_a = grad_a * (o * vis < ALPHA_MAX)
            grad_sigma = -alpha * grad_a
            for row, value in enumerate((
                    -grad_sigma * (a * dx + b * dy),      # ∂σ/∂x = −(a dx + b dy)
                    -grad_sigma * (b * dx + c * dy),      # ∂σ/∂y = −(b dx + c dy)
                    grad_sigma * 0.5 * dx * dx,
                    grad_sigma * dx * dy,
                    grad_sigma * 0.5 * dy * dy,
                    grad_a * vis)):                       # ∂α/∂o
                grad_geom[row].scatter_add_(0, g, value)
        grad_bg = None
        if ctx.has_background and ctx.needs_input_grad[2]:
            grad_bg = (grad_image * t_final).reshape(D, n_images, -1).sum(-1).T
        return grad_geom, grad_colors, grad_bg, None, None, None, None


def _cat(parts: list[Tensor], like: Tensor) -> Tensor:
    if not parts:
        return like.new_zeros(0)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def composite(means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor, order: Tensor,
              visible: Tensor, width: int, height: int,
              backgrounds: Tensor | None = None, stats: dict | None = None) -> tuple[Tensor, Tensor]:
    """Composite I images of N projected Gaussians, front to back.

    Args:
        means2d: ``[I, N, 2]``; conics ``[I, N, 3]``; opacities ``[I, N]``; colors ``[I, N, D]``.
        order: ``[I, N]`` front-to-back rank of each Gaussian (0 = nearest).
        visible: ``[I, N]`` bool.
        backgrounds: ``[I, D]`` colour seen where the Gaussians let light through.
        stats: if given, ``stats["n_pairs"]`` is set to the number of (pixel, Gaussian) pairs
            listed: the rasterizer's work, which grows with the pixels each Gaussian covers and
            never with pixels × Gaussians.

    Returns:
        ``colors [I, H, W, D]`` and ``alphas [I, H, W, 1]``, differentiable with respect to
        means2d, conics, opacities, colors and backgrounds.
    """
    I, N = opacities.shape
    pairs = list_pairs(means2d.detach(), conics.detach(), opacities.detach(), order, visible,
                       width, height)
    if stats is not None:
        stats["n_pairs"] = int(pairs.gaussian.numel())
    geom = torch.cat([means2d, conics, opacities[..., None]], dim=-1).reshape(I * N, 6).T.contiguous()
    return CompositeFunction.apply(geom, colors.reshape(I * N, -1).T.contiguous(), backgrounds, pairs,
                                   I, width, height)


def depth_order(depths: Tensor) -> Tensor:
    """``[I, N]`` depths → front-to-back rank of each Gaussian within its image."""
    order = torch.argsort(depths.detach(), dim=-1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(depths.shape[-1], device=depths.device).expand_as(order))
    return rank
