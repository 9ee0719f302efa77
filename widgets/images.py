"""Static pictures for the chapters: rows and grids of small images with labels.

Generated images in this book are tiny (32² to 64²); these helpers enlarge them with
nearest-neighbour sampling (so pixels stay pixels) and put a label above each, returning a
PIL image that Jupyter shows inline and the website embeds as PNG.
"""

from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image, ImageDraw

from gsbook.images import to_pil

__all__ = ["image_grid"]


def image_grid(images: Sequence[torch.Tensor] | torch.Tensor, labels: Sequence[str] | None = None,
               ncol: int | None = None, size: int = 96, row_labels: Sequence[str] | None = None,
               label_chars: int = 18) -> Image.Image:
    """Images (a list, ``[B, H, W, 3]`` or ``[B, 3, H, W]``) in a grid, each ``size`` pixels wide.

    Args:
        labels: one short text above each image (wrapped to two lines of ``label_chars``).
        ncol: images per row (default: all in one row).
        row_labels: one text at the left of each row.
    """
    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    ncol = ncol or len(images)
    nrow = (len(images) + ncol - 1) // ncol
    tiles = [to_pil(im, size) for im in images]
    th = max(t.height for t in tiles)
    top = 26 if labels is not None else 0
    left = 7 * max((len(r) for r in row_labels), default=0) + 8 if row_labels else 0
    gap = 4
    canvas = Image.new("RGB", (left + ncol * (size + gap), nrow * (th + top + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        x, y = left + c * (size + gap), r * (th + top + gap)
        canvas.paste(tile, (x, y + top))
        if labels is not None:
            text = labels[i]
            lines = [text[:label_chars], text[label_chars:2 * label_chars]]
            draw.text((x + 1, y), lines[0], fill=(30, 30, 30))
            if lines[1]:
                draw.text((x + 1, y + 12), lines[1], fill=(30, 30, 30))
    if row_labels:
        for r, text in enumerate(row_labels[:nrow]):
            draw.text((2, r * (th + top + gap) + top + th // 2 - 6), text, fill=(30, 30, 30))
    return canvas
