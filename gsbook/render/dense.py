"""The dense reference rasterizer: every pixel against every Gaussian (§0).

This is the compositing rule written as plainly as possible — sort the Gaussians by
depth, evaluate each one's α at every pixel, multiply transmittances with ``cumprod`` —
and left to autograd. It needs memory for pixels × Gaussians, so it is only for small
scenes: the tests use it as the ground truth for the fast renderer in :mod:`.compositing`,
and ``benchmarks/render.py`` uses it as the baseline.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .compositing import ALPHA_MAX, ALPHA_MIN, T_MIN


def composite_dense(means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor,
                    depths: Tensor, visible: Tensor, width: int, height: int,
                    backgrounds: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Same contract as :func:`.composite.composite`, with ``depths [I, N]`` giving the order."""
    images, alphas = [], []
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means2d.dtype, device=means2d.device) + 0.5,
                            torch.arange(width, dtype=means2d.dtype, device=means2d.device) + 0.5,
                            indexing="ij")
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)                # [P, 2]
    for i in range(opacities.shape[0]):
        order = torch.argsort(depths[i].detach(), stable=True)
        order = order[visible[i, order]]
        mean, conic = means2d[i, order], conics[i, order]
        d = pixels[:, None, :] - mean[None]                                      # [P, N, 2]
        sigma = (0.5 * (conic[:, 0] * d[..., 0] ** 2 + conic[:, 2] * d[..., 1] ** 2)
                 + conic[:, 1] * d[..., 0] * d[..., 1])
        raw = opacities[i, order] * torch.exp(-sigma)
        alpha = torch.where((raw >= ALPHA_MIN) & (sigma >= 0), raw.clamp(max=ALPHA_MAX),
                            torch.zeros_like(raw))
        t_after = torch.cumprod(1 - alpha, dim=1)
        keep = t_after > T_MIN                       # once a pixel is done, later pairs are out
        alpha = alpha * keep
        t_before = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
        weight = alpha * t_before                                                # [P, N]
        image = weight @ colors[i, order]
        t_final = torch.prod(1 - alpha, dim=1, keepdim=True)
        if backgrounds is not None:
            image = image + t_final * backgrounds[i]
        images.append(image.reshape(height, width, -1))
        alphas.append((1 - t_final).reshape(height, width, 1))
    return torch.stack(images), torch.stack(alphas)
