"""Independent checks of ShapeWorld's ground truth (taught in §0; run by tests and benchmarks).

* :func:`mesh_silhouette` rasterises a triangle mesh's coverage, supersampled —
  a silhouette that shares no code with the Gaussians or the ray caster;
* :func:`silhouette_iou` scores two silhouettes;
* :func:`winding_inside` asks a closed mesh whether points are inside (generalised
  winding number), to check occupancy against the mesh rather than against the SDF.
"""

from __future__ import annotations

import numpy as np
import torch


def project_points(points: np.ndarray, cameras) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``[C, V, 2]`` and camera z ``[C, V]`` of world ``points [V, 3]``."""
    viewmats = cameras.viewmats.double().numpy()
    Ks = cameras.Ks.double().numpy()
    cam = np.einsum("cij,vj->cvi", viewmats[:, :3, :3], points) + viewmats[:, None, :3, 3]
    pix = np.einsum("cij,cvj->cvi", Ks, cam)
    return pix[..., :2] / pix[..., 2:3], cam[..., 2]


def mesh_silhouette(mesh, cameras, ss: int = 4) -> torch.Tensor:
    """Coverage ``[C, H, W]`` in [0, 1] of a mesh's triangles: the fraction of ``ss × ss``
    sample points per pixel that fall inside some projected triangle.

    Each triangle is tested against the sample points in its bounding box with edge
    functions (the rasterisation rule of every GPU), all triangles at once.
    """
    C, H, W = len(cameras), cameras.height, cameras.width
    pix, z = project_points(np.asarray(mesh.vertices, dtype=np.float64), cameras)
    if (z <= 0).any():
        raise ValueError("mesh_silhouette needs the whole mesh in front of every camera")
    faces = np.asarray(mesh.faces)
    out = np.zeros((C, H * ss, W * ss), dtype=bool)
    for c in range(C):
        tri = pix[c][faces] * ss - 0.5                  # sample (i, j) sits at (i + 0.5) / ss
        lo = np.clip(np.ceil(tri.min(axis=1)), 0, [W * ss - 1, H * ss - 1]).astype(np.int64)
        hi = np.clip(np.floor(tri.max(axis=1)), -1, [W * ss - 1, H * ss - 1]).astype(np.int64)
        nx, ny = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0), np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
        count = nx * ny
        t = np.repeat(np.arange(len(tri)), count)
        k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        x = lo[t, 0] + k % np.maximum(nx[t], 1)
        y = lo[t, 1] + k // np.maximum(nx[t], 1)
        a, b, cc = tri[t, 0], tri[t, 1], tri[t, 2]

        def edge(p, q):
            return (q[:, 0] - p[:, 0]) * (y - p[:, 1]) - (q[:, 1] - p[:, 1]) * (x - p[:, 0])
        e0, e1, e2 = edge(a, b), edge(b, cc), edge(cc, a)
        inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
        out[c, y[inside], x[inside]] = True
    cover = out.reshape(C, H, ss, W, ss).mean(axis=(2, 4))
    return torch.from_numpy(cover).float()


def silhouette_iou(a: torch.Tensor, b: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-view IoU ``[C]`` of two coverage maps ``[C, H, W]`` thresholded at ``threshold``."""
    sa, sb = a > threshold, b > threshold
    inter = (sa & sb).flatten(1).sum(1).float()
    union = (sa | sb).flatten(1).sum(1).float()
    return inter / union.clamp_min(1)


def winding_inside(mesh, points: np.ndarray, chunk: int = 256) -> np.ndarray:
    """``[M]`` bool: is each point inside the closed ``mesh``? (winding number > 1/2).

    The generalised winding number sums the solid angles of all triangles seen from the
    point (Van Oosterom–Strackee); it is 1 inside a closed, outward-oriented mesh and 0
    outside, with no ray-casting corner cases.
    """
    tri = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)]    # [F, 3, 3]
    result = np.zeros(len(points), dtype=bool)
    for s in range(0, len(points), chunk):
        r = tri[None] - points[s:s + chunk, None, None, :]                       # [m, F, 3, 3]
        a, b, c = r[:, :, 0], r[:, :, 1], r[:, :, 2]
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = np.einsum("mfi,mfi->mf", a, np.cross(b, c))
        denom = (la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb)
        winding = np.arctan2(det, denom).sum(axis=1) / (2 * np.pi)
        result[s:s + chunk] = winding > 0.5
    return result


def gaussian_silhouette(gaussians, cameras, supersample: int = 4, eps2d: float = 0.0, **kwargs) -> torch.Tensor:
    """Alpha ``[C, H, W]`` of Gaussians rendered with :func:`gsbook.render.rasterize` at
    ``supersample ×`` the cameras' resolution and box-filtered down: an anti-aliased render.

    Why: the rasteriser's low-pass (``eps2d`` = 0.3 px², gsplat's "classic" mode) widens
    every splat, and where dozens of flat discs stack up along a silhouette the widening
    adds up to about a pixel — at 64² as wide as a chair leg. Rendering 4× finer with no
    low-pass and averaging (the box filter does the anti-aliasing instead) measures the
    Gaussians' shape rather than the filter's.
    """
    from ..render import rasterize
    K = cameras.Ks.clone()
    K[:, :2] *= supersample
    W, H = cameras.width * supersample, cameras.height * supersample
    with torch.no_grad():
        _, alpha, _ = rasterize(gaussians.means, gaussians.unit_quats, gaussians.scales, gaussians.opacities,
                                gaussians.rgb, cameras.viewmats, K, W, H, eps2d=eps2d, **kwargs)
    alpha = alpha[..., 0].reshape(len(cameras), cameras.height, supersample, cameras.width, supersample)
    return alpha.mean(dim=(2, 4))
