"""Static pictures for the chapters: rows and grids of small images with labels.

Generated images in this book are tiny (32² to 64²); these helpers enlarge them with
nearest-neighbour sampling (so pixels stay pixels) and put a label above each, returning a
PIL image that Jupyter shows inline and the website embeds as PNG. Labels are drawn with the
font the chapters' plots use (WenQuanYi Micro Hei, which has both scripts; see
``chapters/matplotlibrc``), so "truth · 真值" reads the same in a grid as in a plot.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from gsbook.images import to_pil

__all__ = ["image_grid", "label_font"]

FONT_PX = 11
# Fonts with Chinese glyphs, best first: the one chapters/matplotlibrc names, then any Noto CJK.
CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
CJK_GLOBS = ("**/*CJK*.tt[cf]", "**/*CJK*.otf")


@lru_cache(maxsize=None)
def label_font(px: int = FONT_PX) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """A TrueType font of ``px`` pixels that draws Latin and Chinese; without one, DejaVu Sans
    (matplotlib's, no Chinese glyphs), and last PIL's built-in bitmap font."""
    candidates = [Path(f) for f in CJK_FONTS]
    for pattern in CJK_GLOBS:
        candidates += sorted(Path("/usr/share/fonts").glob(pattern))
    try:
        from matplotlib import font_manager

        candidates.append(Path(font_manager.findfont("DejaVu Sans")))
    except Exception:  # noqa: BLE001 - matplotlib is optional here
        pass
    for path in candidates:
        if path.is_file():
            try:
                return ImageFont.truetype(str(path), px)
            except OSError:
                continue
    return ImageFont.load_default()


def _wrap(text: str, width: int, draw: ImageDraw.ImageDraw, font, max_lines: int = 2) -> list[str]:
    """``text`` in at most ``max_lines`` lines of at most ``width`` pixels (the last one cut with …).
    Breaks at spaces where it can, anywhere in a run of Chinese."""
    lines: list[str] = []
    rest = text.strip()
    while rest and len(lines) < max_lines:
        if draw.textlength(rest, font=font) <= width:
            lines.append(rest)
            return lines
        cut = len(rest)
        while cut > 1 and draw.textlength(rest[:cut], font=font) > width:
            cut -= 1
        space = rest.rfind(" ", 0, cut + 1)
        if space > 0 and len(lines) < max_lines - 1:
            cut = space
        if len(lines) == max_lines - 1:                      # the last line: cut with an ellipsis
            while cut > 1 and draw.textlength(rest[:cut].rstrip() + "…", font=font) > width:
                cut -= 1
            lines.append(rest[:cut].rstrip() + "…")
            return lines
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].strip()
    return lines


def image_grid(images: Sequence[torch.Tensor] | torch.Tensor, labels: Sequence[str] | None = None,
               ncol: int | None = None, size: int = 96, row_labels: Sequence[str] | None = None,
               label_lines: int = 2) -> Image.Image:
    """Images (a list, ``[B, H, W, 3]`` or ``[B, 3, H, W]``) in a grid, each ``size`` pixels wide.

    Args:
        labels: one short text above each image, wrapped to ``label_lines`` lines of the image's
            width (longer text ends in …).
        ncol: images per row (default: all in one row).
        row_labels: one text at the left of each row (the column is as wide as the longest,
            up to two tiles; longer text wraps to two lines).
    """
    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    font = label_font()
    line = FONT_PX + 3
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    ncol = ncol or len(images)
    nrow = (len(images) + ncol - 1) // ncol
    tiles = [to_pil(im, size) for im in images]
    th = max(t.height for t in tiles)
    gap = 4
    wrapped = [_wrap(t, size - 2, measure, font, label_lines) for t in labels] if labels is not None else None
    top = line * max(len(w) for w in wrapped) + 3 if wrapped else 0
    left = 0
    if row_labels:
        left = min(2 * size, int(max(measure.textlength(r, font=font) for r in row_labels)) + 10)
    canvas = Image.new("RGB", (left + ncol * (size + gap), nrow * (th + top + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        x, y = left + c * (size + gap), r * (th + top + gap)
        canvas.paste(tile, (x, y + top))
        for k, text in enumerate(wrapped[i] if wrapped else []):
            draw.text((x + 1, y + k * line), text, fill=(30, 30, 30), font=font)
    for r, text in enumerate((row_labels or [])[:nrow]):
        rows = _wrap(text, left - 6, draw, font, 2)
        y = r * (th + top + gap) + top + th // 2 - len(rows) * line // 2
        for k, part in enumerate(rows):
            draw.text((2, y + k * line), part, fill=(30, 30, 30), font=font)
    return canvas
