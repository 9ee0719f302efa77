"""The ShapeWorld gallery: every category in several colours, four views each (shown in §0)."""

from __future__ import annotations

import numpy as np

from .asset import make_asset
from .captions import ObjectSpec
from .categories import CATEGORIES, CATEGORY_NAMES
from .colours import COLOUR_NAMES
from .raycast import render_asset


def gallery_specs(colours_per_category: int = 2) -> list[list[ObjectSpec]]:
    """One row per category; colours cycle through the palette so that every colour shows up.
    Multi-part objects get a part colour that differs from the main one."""
    rows, k = [], 0
    for name in CATEGORY_NAMES:
        row = []
        for _ in range(colours_per_category):
            colour = COLOUR_NAMES[k % len(COLOUR_NAMES)]
            part = None
            if CATEGORIES[name].part:
                part = CATEGORIES[name].default_part_colour
                if part == colour:
                    part = COLOUR_NAMES[(k + 4) % len(COLOUR_NAMES)]
            row.append(ObjectSpec(name, colour, part))
            k += 1
        rows.append(row)
    return rows


def gallery_images(colours_per_category: int = 2, views: int = 4, resolution: int = 96,
                   elevation: float = 20.0, seed: int = 0, background: float = 1.0):
    """Renders for the gallery.

    Returns ``(images, captions)``: ``images [rows, colours_per_category, views, H, W, 3]`` float
    in [0, 1] and the matching captions ``[rows][colours_per_category]``. Views are spread
    evenly in azimuth (starting at 30°) at ``elevation`` degrees; each asset has its own seed,
    so the objects differ in proportions, size and turn as well as colour.
    """
    from ..cameras import orbit
    az = 30.0 + np.arange(views) * 360.0 / views
    cams = orbit(elevation, az.tolist(), width=resolution, height=resolution)
    specs = gallery_specs(colours_per_category)
    images = np.zeros((len(specs), colours_per_category, views, resolution, resolution, 3), dtype=np.float32)
    captions = []
    for r, row in enumerate(specs):
        captions.append([])
        for c, spec in enumerate(row):
            obj = make_asset(spec, seed + 101 * r + c)
            images[r, c] = render_asset(obj, cams, background=background)["rgb"].numpy()
            captions[-1].append(obj.caption)
    return images, captions


def gallery_figure(colours_per_category: int = 2, views: int = 4, resolution: int = 128,
                   elevation: float = 20.0, seed: int = 0):
    """A matplotlib figure of :func:`gallery_images`, each asset's views side by side under its caption."""
    import matplotlib.pyplot as plt
    images, captions = gallery_images(colours_per_category, views, resolution, elevation, seed)
    rows, cols = images.shape[0], images.shape[1]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * views * 0.9, rows * 1.05), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            strip = np.concatenate(list(images[r, c]), axis=1)
            ax = axes[r, c]
            ax.imshow(strip, interpolation="antialiased")
            ax.set_title(captions[r][c], fontsize=8, pad=2)
            ax.axis("off")
    fig.tight_layout(pad=0.3, h_pad=0.4, w_pad=0.8)
    return fig
