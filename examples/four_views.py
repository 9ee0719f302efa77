"""Render a coloured object from 4 orbit views and save a PNG.

    python examples/four_views.py [out.png]

The object is made of three trimesh primitives — a blue box, a red ball on it and a
yellow cone on the ball — turned into flat surface Gaussians with
``gsbook.gaussians.from_mesh``, then rendered with ``gsbook.render.render``.
"""

from __future__ import annotations

import sys
import time

import matplotlib
import numpy as np
import torch
import trimesh

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gsbook.cameras import orbit  # noqa: E402
from gsbook.gaussians import Gaussians, from_mesh  # noqa: E402
from gsbook.render import render  # noqa: E402


def coloured_object(n_per_part: int = 4000) -> Gaussians:
    parts = [
        (trimesh.creation.box(extents=(0.6, 0.3, 0.45)).apply_translation((0, -0.35, 0)), (0.15, 0.3, 0.85)),
        (trimesh.creation.icosphere(subdivisions=3, radius=0.22).apply_translation((0, 0.02, 0)), (0.85, 0.1, 0.1)),
        (trimesh.creation.cone(radius=0.14, height=0.3).apply_transform(
            trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0))).apply_translation((0, 0.2, 0)),
         (0.95, 0.8, 0.1)),
    ]
    gen = torch.Generator().manual_seed(0)
    scenes = []
    for mesh, rgb in parts:
        v = torch.tensor(mesh.vertices, dtype=torch.float32)
        f = torch.tensor(mesh.faces, dtype=torch.long)
        colours = torch.tensor(rgb).expand(len(f), 3)
        scenes.append(from_mesh(v, f, n_per_part, rgb=colours, opacity=0.95, thickness=0.1, generator=gen))
    return Gaussians.cat(scenes)


def main(path: str = "four_views.png") -> None:
    scene = coloured_object()
    cams = orbit(20.0, [0.0, 90.0, 180.0, 270.0], radius=1.8, width=256, height=256)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = render(scene, cams, background=1.0)
    elapsed = time.perf_counter() - t0
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for ax, img, az in zip(axes, out.image, (0, 90, 180, 270)):
        ax.imshow(img.clamp(0, 1).numpy())
        ax.set_title(f"azimuth {az}°, elevation 20°")
        ax.axis("off")
    fig.suptitle(f"{len(scene):,} Gaussians, 4 views at 256², rendered in {elapsed * 1000:.0f} ms on the CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
