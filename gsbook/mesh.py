"""Meshes from volumes: marching cubes on a sampled grid (taught in §0; DreamGaussian's stage 2 in §2).

A mesh is extracted from any scalar field sampled on a regular grid — ShapeWorld's signed
distance, or the opacity density of a cloud of Gaussians — as the level set
``{field = level}``, by marching cubes (Lorensen & Cline 1987; scikit-image's implementation).
A border of "outside" values around the grid closes the surface wherever the object touches
the grid's edge, so the mesh is always watertight.
"""

from __future__ import annotations

import numpy as np

__all__ = ["level_set_mesh"]


def level_set_mesh(volume: np.ndarray, level: float, spacing: float, origin: np.ndarray | tuple[float, float, float],
                   outside: float, vertex_colors: np.ndarray | None = None):
    """The watertight ``trimesh.Trimesh`` of ``{volume = level}``.

    Args:
        volume: ``[X, Y, Z]`` field samples at ``origin + spacing · (i, j, k)``.
        level: the iso-value (0 for a signed distance; a density threshold for Gaussians).
        spacing: grid step (world units).
        origin: world position of sample ``(0, 0, 0)``.
        outside: a value of the field outside the object (e.g. ``1.0`` for a signed distance,
            ``0.0`` for a density); one layer of it is padded around the grid.
        vertex_colors: ``[V, 3|4]`` uint8 colours, when the caller knows them in advance (rare:
            the vertices are only known after extraction; set ``mesh.visual`` afterwards).
    """
    import trimesh
    from skimage.measure import marching_cubes

    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise ValueError(f"volume must be a 3-D grid with at least 2 samples per axis, got {volume.shape}")
    if not np.isfinite(volume).all():
        raise ValueError("volume contains NaN or Inf")
    padded = np.pad(volume, 1, constant_values=np.float32(outside))
    if not (padded.min() < level < padded.max()):
        raise ValueError(f"the field never crosses level {level} (range {padded.min():.3g} … {padded.max():.3g}): "
                         "no surface to extract")
    verts, faces, _, _ = marching_cubes(padded, level=level, spacing=(spacing,) * 3)
    verts = verts + np.asarray(origin, dtype=np.float64) - spacing     # undo the one-sample pad
    return trimesh.Trimesh(verts, faces, vertex_colors=vertex_colors, process=False)
