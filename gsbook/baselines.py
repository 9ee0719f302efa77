"""The representations 3DGS is compared with in §0: a small NeRF, a voxel grid, a hard mesh rasterizer.

§0 argues that 3D generation chose Gaussians because they are *explicit*, *differentiable*
and *cheap to render in the inner loop*. These baselines let the chapter measure that claim
instead of asserting it:

* :class:`TinyNeRF` — an MLP field (positional encoding → density, colour), rendered by
  :func:`volume_render` with ``n_samples`` MLP queries per ray (as NeRF and DreamFusion);
* :class:`VoxelGrid` — a dense density/colour grid, trilinearly sampled along the same rays
  (as Plenoxels): explicit, differentiable, but still ray-marched and ``R³`` in memory;
* :func:`hard_rasterize_triangle` — a mesh's classic z-buffer coverage test, whose image is a
  step function of the vertex positions, so its gradient is zero almost everywhere.

Rays come from :func:`gsbook.cameras.pixel_rays` (the book's one camera convention:
world→camera ``viewmats`` in the OpenCV sense and pixel intrinsics ``Ks``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["positional_encoding", "TinyNeRF", "VoxelGrid", "volume_render",
           "hard_rasterize_triangle"]


def positional_encoding(x: Tensor, n_freqs: int) -> Tensor:
    """NeRF's encoding ``[x, sin(2^k π x), cos(2^k π x)]``: ``[..., 3] → [..., 3 + 6 n_freqs]``."""
    freqs = (2.0 ** torch.arange(n_freqs, dtype=x.dtype, device=x.device)) * math.pi
    xf = x[..., None] * freqs                                # [..., 3, F]
    return torch.cat([x, torch.sin(xf).flatten(-2), torch.cos(xf).flatten(-2)], dim=-1)


class TinyNeRF(nn.Module):
    """A small NeRF-style MLP: position → (density ≥ 0, colour in [0, 1]). No view dependence."""

    def __init__(self, hidden: int = 64, layers: int = 4, n_freqs: int = 6):
        super().__init__()
        self.n_freqs = n_freqs
        dims = [3 + 6 * n_freqs] + [hidden] * layers
        self.trunk = nn.Sequential(*[m for a, b in zip(dims[:-1], dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
        self.head = nn.Linear(hidden, 4)

    def raw(self, x: Tensor) -> Tensor:
        """The MLP's outputs before activation, ``[..., 3] → [..., 4]`` (density logit, colour logits),
        for fields that change the activation (e.g. DreamFusion's density bias,
        :class:`gsbook.methods.DreamFusionNeRF`)."""
        return self.head(self.trunk(positional_encoding(x, self.n_freqs)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.raw(x)
        return F.softplus(out[..., 0]), torch.sigmoid(out[..., 1:])


class VoxelGrid(nn.Module):
    """A dense ``R³`` grid of density and colour over ``[-bound, bound]³``, trilinearly sampled."""

    def __init__(self, resolution: int = 64, bound: float = 1.0):
        super().__init__()
        self.bound = bound
        self.density = nn.Parameter(torch.zeros(1, 1, resolution, resolution, resolution))
        self.color = nn.Parameter(torch.zeros(1, 3, resolution, resolution, resolution))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shape = x.shape[:-1]
        g = (x / self.bound).reshape(1, -1, 1, 1, 3)         # grid_sample wants (x, y, z) in [-1, 1]
        dens = F.grid_sample(self.density, g, align_corners=True).reshape(*shape)
        col = F.grid_sample(self.color, g, align_corners=True).reshape(3, -1).T.reshape(*shape, 3)
        return F.softplus(dens), torch.sigmoid(col)


def volume_render(field: nn.Module, origins: Tensor, dirs: Tensor, n_samples: int, near: float = 1.5,
                  far: float = 3.5, background: float = 1.0) -> Tensor:
    """NeRF's quadrature: ``n_samples`` field queries per ray, alpha-composited. Returns ``[..., 3]``."""
    t = torch.linspace(near, far, n_samples, dtype=dirs.dtype, device=dirs.device)
    pts = origins[..., None, :] + dirs[..., None, :] * t[:, None]          # [..., S, 3]
    sigma, rgb = field(pts)
    delta = (far - near) / n_samples
    alpha = 1.0 - torch.exp(-sigma * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1.0 - alpha[..., :-1] + 1e-10], -1), -1)
    w = alpha * trans
    return (w[..., None] * rgb).sum(-2) + (1.0 - w.sum(-1, keepdim=True)) * background


def hard_rasterize_triangle(vertices: Tensor, width: int, height: int) -> Tensor:
    """Coverage ``[H, W]`` of one 2D triangle (pixels), by the classic inside test.

    The image is a step function of ``vertices``: backpropagating through it gives zero
    gradient (PyTorch's comparison ops are not differentiable), which is why mesh pipelines
    need soft rasterizers or other tricks before SDS can move a mesh's vertices.
    """
    if vertices.shape != (3, 2):
        raise ValueError(f"vertices must be [3, 2], got {tuple(vertices.shape)}")
    v, u = torch.meshgrid(torch.arange(height, dtype=vertices.dtype) + 0.5,
                          torch.arange(width, dtype=vertices.dtype) + 0.5, indexing="ij")
    p = torch.stack([u, v], -1)

    def edge(a, b):
        return (b[0] - a[0]) * (p[..., 1] - a[1]) - (b[1] - a[1]) * (p[..., 0] - a[0])

    e0, e1, e2 = edge(vertices[0], vertices[1]), edge(vertices[1], vertices[2]), edge(vertices[2], vertices[0])
    inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
    # Multiplying by a function of the vertices keeps the graph connected, so autograd runs and
    # reports the true derivative of the hard test: zero wherever it is defined.
    return inside.to(vertices.dtype) + 0.0 * vertices.sum()
