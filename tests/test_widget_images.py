"""widgets.images.image_grid: labels in both scripts, wrapped to the tile, and clear errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from widgets.images import CJK_FONTS, _wrap, image_grid, label_font

HAVE_CJK = any(Path(f).is_file() for f in CJK_FONTS) or bool(list(Path("/usr/share/fonts").glob("**/*CJK*")))


def _glyph(text: str) -> np.ndarray:
    img = Image.new("L", (40, 20), 255)
    ImageDraw.Draw(img).text((2, 2), text, fill=0, font=label_font())
    return np.asarray(img)


@pytest.mark.skipif(not HAVE_CJK, reason="no CJK font installed (conftest installs fonts-wqy-microhei where it can)")
def test_chinese_labels_are_drawn_as_distinct_glyphs_not_boxes():
    true, value = _glyph("真"), _glyph("值")
    assert (true < 128).sum() > 10 and (value < 128).sum() > 10    # ink on the page
    assert not np.array_equal(true, value)                        # two characters, not one tofu box twice


def test_labels_wrap_to_the_tile_width_in_at_most_two_lines():
    draw, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), label_font()
    lines = _wrap("a brown chair with white legs and a very long tail of words", 94, draw, font, 2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert all(draw.textlength(s, font=font) <= 94 for s in lines)
    assert _wrap("a red ball", 94, draw, font, 2) == ["a red ball"]
    # Chinese has no spaces: it breaks between characters, and the text is kept in order
    zh = _wrap("一个红色的雪人戴着黑色的帽子站在雪地里", 60, draw, font, 3)
    assert "".join(zh).rstrip("…").startswith("一个红色") and len(zh) >= 2


def test_grid_size_and_row_labels():
    images = torch.rand(6, 3, 16, 16)
    plain = image_grid(images, ncol=3, size=32)
    assert plain.size == (3 * (32 + 4), 2 * (32 + 4))
    labelled = image_grid(images, ["view · 视角"] * 6, ncol=3, size=32, row_labels=["truth · 真值", "SLat VAE"])
    assert labelled.width > plain.width and labelled.height > plain.height
    # the tiles' pixels are the images' (nearest-neighbour, so a constant image stays constant)
    red = image_grid([torch.tensor([1.0, 0.0, 0.0]).expand(8, 8, 3)], size=32)
    assert red.getpixel((16, 16)) == (255, 0, 0)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least one image"):
        image_grid([])
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        image_grid(torch.rand(2, 8, 8, 3), ["one"])
