import math

import pytest
import torch

from gsbook.cameras import (Cameras, four_views, intrinsics_from_fov, look_at, opengl_c2w_to_viewmat,
                            orbit, pixel_rays, plucker_rays, random_cameras, viewmat_to_opengl_c2w)


def project(cams: Cameras, point):
    p = cams.viewmats[:, :3, :3] @ torch.as_tensor(point) + cams.viewmats[:, :3, 3]
    uv = (cams.Ks @ p[..., None])[..., 0]
    return uv[:, :2] / uv[:, 2:], p[:, 2]


def test_orbit_looks_at_origin_with_y_up():
    cams = orbit(0.0, [0.0, 90.0], radius=2.5, width=64, height=48)
    assert torch.allclose(cams.centers, torch.tensor([[0.0, 0, 2.5], [2.5, 0, 0]]), atol=1e-6)
    uv, z = project(cams, [0.0, 0.0, 0.0])
    assert torch.allclose(uv, torch.tensor([[32.0, 24.0]] * 2)) and (z > 0).all()
    # World +y appears above the centre (smaller v) — the image is upright.
    uv_up, _ = project(cams, [0.0, 0.3, 0.0])
    assert (uv_up[:, 1] < 24).all()
    # From the front (azimuth 0), world +x is on the right.
    uv_right, _ = project(cams[0], [0.3, 0.0, 0.0])
    assert uv_right[0, 0] > 32


def test_elevation_positive_is_above():
    cams = orbit(30.0, 0.0)
    assert cams.centers[0, 1] == pytest.approx(2.5 * math.sin(math.radians(30)), abs=1e-6)


def test_rotation_is_orthonormal_and_batches():
    cams = random_cameras(16, generator=torch.Generator().manual_seed(0))
    R = cams.viewmats[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(16, 3, 3), atol=1e-5)
    assert torch.allclose(cams.centers.norm(dim=-1), torch.full((16,), 2.5), atol=1e-5)
    el = torch.rad2deg(torch.asin(cams.centers[:, 1] / 2.5))
    assert el.abs().max() <= 30 + 1e-3
    assert len(four_views()) == 4


def test_intrinsics_from_fov():
    K = intrinsics_from_fov(90.0, 100, 50)
    assert K[1, 1] == pytest.approx(25.0) and K[0, 2] == 50 and K[1, 2] == 25
    with pytest.raises(ValueError, match="fovy"):
        intrinsics_from_fov(180.0, 10, 10)


def test_opengl_round_trip_and_axes():
    cams = random_cameras(5, generator=torch.Generator().manual_seed(1))
    c2w = viewmat_to_opengl_c2w(cams.viewmats)
    assert torch.allclose(opengl_c2w_to_viewmat(c2w), cams.viewmats, atol=1e-5)
    # OpenGL cameras look down their −z axis: toward the origin for an orbit.
    forward = -c2w[:, :3, 2]
    to_origin = torch.nn.functional.normalize(-c2w[:, :3, 3], dim=-1)
    assert torch.allclose(forward, to_origin, atol=1e-5)


def test_rays_and_plucker():
    cams = orbit(20.0, 45.0, width=8, height=6)
    o, d = pixel_rays(cams)
    assert o.shape == (1, 6, 8, 3) and torch.allclose(d.norm(dim=-1), torch.ones(1, 6, 8))
    # The central rays pass (nearly) through the origin: distance from origin to ray.
    centre_dir = d[0, 2:4, 3:5].mean((0, 1))
    assert torch.linalg.cross(-o[0, 0, 0], torch.nn.functional.normalize(centre_dir, dim=0)).norm() < 0.1
    p = plucker_rays(cams)
    assert p.shape == (1, 6, 8, 6)
    # The moment is independent of where on the ray the origin sits.
    shifted = torch.linalg.cross(o + 0.7 * d, d)
    assert torch.allclose(p[..., :3], shifted, atol=1e-5)


def test_camera_validation():
    with pytest.raises(ValueError, match="Ks must have shape"):
        Cameras(torch.eye(4)[None].expand(2, 4, 4), torch.eye(3)[None], 8, 8)
    with pytest.raises(ValueError, match="share one length"):
        orbit([0.0, 10.0], [0.0, 1.0, 2.0])
    # Looking straight down still gives a valid rotation.
    R = look_at(torch.tensor([[0.0, 3.0, 0.0]]))[0, :3, :3]
    assert torch.allclose(R @ R.T, torch.eye(3), atol=1e-6)
    assert torch.allclose(R[2], torch.tensor([0.0, -1.0, 0.0]), atol=1e-6)
