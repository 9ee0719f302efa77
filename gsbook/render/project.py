"""EWA projection of 3D Gaussians onto image planes (taught in §0).

A 3D Gaussian with mean μ and covariance Σ, seen by a pinhole camera, is approximated
on the image by a 2D Gaussian: its mean is the projected centre, and its covariance is
``J W Σ Wᵀ Jᵀ`` where ``W`` is the camera rotation and ``J`` the Jacobian of the
perspective map at the centre (Zwicker et al., "EWA splatting"). A low-pass filter adds
``eps2d`` (0.3 px², gsplat's default) to the diagonal so that no splat is thinner than
about a pixel.

This follows gsplat's reference semantics line by line (the Jacobian is evaluated at a
centre clamped to 1.3× the field of view; radii are the 3.33σ extents per axis; a
Gaussian is dropped — radius 0 — when it is behind the near plane, beyond the far
plane, or entirely off-screen), and ``tests/test_render.py`` checks it against
``gsplat.cuda._torch_impl._fully_fused_projection``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Projection(NamedTuple):
    """Per-camera 2D footprints of N Gaussians seen by C cameras."""

    means2d: Tensor   # [C, N, 2] projected centres, pixels
    conics: Tensor    # [C, N, 3] inverse 2D covariance (a, b, c): [[a, b], [b, c]]
    depths: Tensor    # [C, N] camera-space z
    radii: Tensor     # [C, N, 2] int32 extents in x and y (0: not visible)
    covars2d: Tensor  # [C, N, 2, 2] 2D covariance after the low-pass filter
    compensations: Tensor  # [C, N] √(det Σ₂ / det(Σ₂ + eps2d·I)): opacity factor for "antialiased"


def world_to_camera(means: Tensor, covars: Tensor, viewmats: Tensor) -> tuple[Tensor, Tensor]:
    """``means [N,3]``, ``covars [N,3,3]``, ``viewmats [C,4,4]`` → camera-space ``[C,N,3]``, ``[C,N,3,3]``."""
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]
    covars_c = torch.einsum("cij,njk,clk->cnil", R, covars, R)
    return means_c, covars_c


def perspective_jacobian(means_c: Tensor, Ks: Tensor, width: int, height: int) -> Tensor:
    """Jacobian ``[C, N, 2, 3]`` of the pinhole projection at camera-space centres ``[C, N, 3]``.

    Far off-screen centres would give huge Jacobians; like gsplat we evaluate it at the
    centre clamped to 1.3× the image's field of view.
    """
    tx, ty, tz = means_c.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    tx = tz * torch.clamp(tx / tz, min=-lim_x_neg, max=lim_x_pos)
    ty = tz * torch.clamp(ty / tz, min=-lim_y_neg, max=lim_y_pos)
    zero = torch.zeros_like(tz)
    J = torch.stack([fx / tz, zero, -fx * tx / tz**2,
                     zero, fy / tz, -fy * ty / tz**2], dim=-1)
    return J.reshape(means_c.shape[:-1] + (2, 3))


def project(means: Tensor, covars: Tensor, viewmats: Tensor, Ks: Tensor, width: int, height: int,
            eps2d: float = 0.3, near_plane: float = 0.01, far_plane: float = 1e10) -> Projection:
    """Project N Gaussians (``means [N,3]``, world ``covars [N,3,3]``) into C cameras.

    Returns a :class:`Projection`; differentiable in every floating input.
    """
    means_c, covars_c = world_to_camera(means, covars, viewmats)
    J = perspective_jacobian(means_c, Ks, width, height)
    cov2d = J @ covars_c @ J.transpose(-1, -2)
    det_unfiltered = cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]
    cov2d = cov2d + eps2d * torch.eye(2, dtype=means.dtype, device=means.device)
    means2d = torch.einsum("cij,cnj->cni", Ks[:, :2, :3], means_c) / means_c[..., 2:3]
    det = (cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]).clamp_min(1e-10)
    conics = torch.stack([cov2d[..., 1, 1] / det,
                          -(cov2d[..., 0, 1] + cov2d[..., 1, 0]) / 2 / det,
                          cov2d[..., 0, 0] / det], dim=-1)
    depths = means_c[..., 2]
    radii = radii_of(means2d.detach(), cov2d.detach(), det.detach(), depths.detach(),
                     width, height, near_plane, far_plane)
    # The low-pass filter spreads each splat's opacity over a larger ellipse; scaling the
    # opacity by the ratio of areas keeps its total "ink" (Mip-Splatting; gsplat's
    # rasterize_mode="antialiased").
    compensations = torch.sqrt((det_unfiltered / det).clamp_min(0))
    return Projection(means2d, conics, depths, radii, cov2d, compensations)


@torch.no_grad()
def radii_of(means2d: Tensor, cov2d: Tensor, det: Tensor, depths: Tensor, width: int, height: int,
             near_plane: float, far_plane: float) -> Tensor:
    """Integer 3.33σ extents ``[C, N, 2]``, zero for Gaussians that cannot be seen."""
    radius = torch.ceil(3.33 * torch.sqrt(torch.stack([cov2d[..., 0, 0], cov2d[..., 1, 1]], -1)))
    valid = (det > 0) & (depths > near_plane) & (depths < far_plane)
    inside = ((means2d[..., 0] + radius[..., 0] > 0) & (means2d[..., 0] - radius[..., 0] < width)
              & (means2d[..., 1] + radius[..., 1] > 0) & (means2d[..., 1] - radius[..., 1] < height))
    radius = torch.where((valid & inside)[..., None], radius, torch.zeros_like(radius))
    return radius.int()
