"""gsbook.images: uint8/PNG conversion, grids, and moving renders onto another background."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from gsbook.images import grid, hwc, over_background, png_bytes, save_grid, sharpness, to_pil, to_uint8


def test_both_layouts_give_the_same_pixels():
    img = torch.rand(5, 7, 3)
    assert torch.equal(hwc(img.permute(2, 0, 1)), img)
    a = to_uint8(img)
    assert a.dtype == np.uint8 and a.shape == (5, 7, 3)
    assert np.array_equal(a, to_uint8(img.permute(2, 0, 1)))
    assert np.array_equal(to_uint8(torch.tensor([[[2.0, -1.0, 0.5]]])), [[[255, 0, 128]]])
    with pytest.raises(ValueError, match=r"\[H, W, 3\] or \[3, H, W\]"):
        hwc(torch.rand(2, 3, 4, 4))


def test_png_bytes_round_trip_and_enlarge_by_whole_pixels():
    img = torch.rand(4, 6, 3)
    back = np.array(Image.open(io.BytesIO(png_bytes(img, scale=3))))
    assert back.shape == (12, 18, 3)
    assert np.array_equal(back[::3, ::3], to_uint8(img))
    assert to_pil(img, size=12).size == (12, 8)


def test_grid_and_save_grid(tmp_path):
    tiles = torch.rand(5, 3, 8, 8)
    g = grid(tiles, nrow=4)
    assert g.shape == (2 * 10 + 2, 4 * 10 + 2, 3)
    assert torch.equal(g[2:10, 12:20], hwc(tiles[1])) and float(g[0, 0, 0]) == 0.5
    path = save_grid(tiles, tmp_path / "sub" / "g.png", nrow=4, scale=2)
    assert Image.open(path).size == (2 * (4 * 10 + 2), 2 * (2 * 10 + 2))
    with pytest.raises(ValueError, match="one size"):
        grid([torch.rand(3, 8, 8), torch.rand(3, 4, 4)])


def test_over_background_recomposites_renders_made_on_white():
    colour = torch.tensor([0.2, 0.4, 0.6])
    alpha = torch.tensor([[[1.0, 0.5, 0.0]]])                               # [1, 1, 3]
    on_white = alpha[..., None] * colour + (1 - alpha[..., None]) * 1.0
    for bg in (0.0, 0.5, torch.tensor([[0.1, 0.9, 0.3]])):
        b = torch.as_tensor(bg).reshape(-1)[None, None, None, :] if torch.is_tensor(bg) else bg
        expected = alpha[..., None] * colour + (1 - alpha[..., None]) * b
        torch.testing.assert_close(over_background(on_white, alpha, bg), expected.expand(1, 1, 3, 3))


def test_sharpness_is_higher_for_a_sharp_image_than_its_blur():
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    sharp = torch.ones(1, 32, 32, 3)
    sharp[:, 8:24, 8:24] = torch.rand(16, 16, 3, generator=g) * 0.6    # a noisy patch on white
    blurred = F.avg_pool2d(sharp.permute(0, 3, 1, 2), 3, stride=1, padding=1, count_include_pad=False).permute(0, 2, 3, 1)
    assert sharpness(sharp) > 2 * sharpness(blurred) > 0
    with pytest.raises(ValueError, match="no object pixels"):
        sharpness(torch.ones(1, 8, 8, 3))
