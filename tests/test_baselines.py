"""gsbook.baselines (and the rays they march, gsbook.cameras.pixel_rays): the three properties §0 measures."""

import pytest
import torch

from gsbook.baselines import TinyNeRF, VoxelGrid, hard_rasterize_triangle, positional_encoding, volume_render
from gsbook.cameras import orbit, pixel_rays


def test_rays_start_at_the_camera_centre_and_the_central_ray_hits_the_target():
    cams = orbit(20.0, [0.0, 90.0], radius=2.5, width=33, height=33)
    origins, dirs = pixel_rays(cams)
    assert origins.shape == dirs.shape == (2, 33, 33, 3)
    centres = torch.linalg.inv(cams.viewmats)[:, :3, 3]
    assert torch.allclose(origins[:, 0, 0], centres, atol=1e-5)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(2, 33, 33), atol=1e-5)
    # orbit cameras look at the origin: the centre pixel's ray passes through it
    mid = dirs[:, 16, 16]
    assert torch.allclose(mid, torch.nn.functional.normalize(-centres, dim=-1), atol=1e-4)


def test_rays_match_projection():
    cams = orbit(10.0, 30.0, width=16, height=12)
    origins, dirs = pixel_rays(cams)
    p = origins[0, 5, 7] + 1.7 * dirs[0, 5, 7]                   # a point on pixel (7, 5)'s ray
    pc = cams.viewmats[0, :3, :3] @ p + cams.viewmats[0, :3, 3]
    uv = (cams.Ks[0] @ pc)[:2] / pc[2]
    assert torch.allclose(uv, torch.tensor([7.5, 5.5]), atol=1e-4)


def test_positional_encoding_shape():
    assert positional_encoding(torch.zeros(5, 3), 4).shape == (5, 27)


@pytest.mark.parametrize("field", [TinyNeRF(hidden=16, layers=2), VoxelGrid(resolution=8)])
def test_volume_render_is_differentiable_and_in_range(field):
    cams = orbit(0.0, 0.0, width=8, height=8)
    o, d = pixel_rays(cams)
    img = volume_render(field, o, d, n_samples=8)
    assert img.shape == (1, 8, 8, 3)
    assert img.min() >= 0 and img.max() <= 1 + 1e-5
    img.mean().backward()
    assert sum(p.grad.abs().sum() for p in field.parameters()) > 0


def test_empty_field_renders_the_background():
    grid = VoxelGrid(resolution=4)
    with torch.no_grad():
        grid.density.fill_(-30.0)   # softplus(-30) ~ 0: empty space
    cams = orbit(0.0, 0.0, width=4, height=4)
    o, d = pixel_rays(cams)
    assert torch.allclose(volume_render(grid, o, d, 16, background=0.25), torch.full((1, 4, 4, 3), 0.25), atol=1e-4)


def test_hard_triangle_covers_its_inside_and_has_zero_gradient():
    v = torch.tensor([[2.0, 2.0], [14.0, 2.0], [2.0, 14.0]], requires_grad=True)
    cov = hard_rasterize_triangle(v, 16, 16)
    assert cov[3, 3] == 1 and cov[14, 14] == 0
    assert 60 < cov.sum() < 90          # about half of the 12×12 square
    (cov * torch.rand(16, 16)).sum().backward()
    assert v.grad is not None and v.grad.abs().max() == 0
    with pytest.raises(ValueError):
        hard_rasterize_triangle(torch.zeros(4, 2), 8, 8)
