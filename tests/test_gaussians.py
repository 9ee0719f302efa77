import math

import pytest
import torch

from gsbook.gaussians import (Gaussians, Gaussians2D, eval_sh, from_mesh, from_points, init_ball,
                              knn_mean_distance, quat_to_rotmat, quats_from_normals, rgb_to_sh0,
                              rotmat_to_quat, sh0_to_rgb)


def make(n=5, k=1):
    return dict(means=torch.zeros(n, 3), quats=torch.tensor([[1.0, 0, 0, 0]] * n),
                log_scales=torch.zeros(n, 3), opacity_logits=torch.zeros(n), sh=torch.zeros(n, k, 3))


def test_activations():
    g = Gaussians(**make())
    assert torch.allclose(g.scales, torch.ones(5, 3))
    assert torch.allclose(g.opacities, torch.full((5,), 0.5))
    assert torch.allclose(g.rgb, torch.full((5, 3), 0.5))
    assert g.sh_degree == 0 and len(g) == 5


@pytest.mark.parametrize("field, value, message", [
    ("means", torch.zeros(5, 2), r"means must have shape \[\*, 3\], got \[5, 2\]"),
    ("quats", torch.zeros(4, 4), r"quats must have shape \[5, 4\]"),
    ("sh", torch.zeros(5, 5, 3), "1, 4, 9 or 16 coefficients"),
    ("opacity_logits", torch.tensor([0.0, 1, float("inf"), 0, 0]), "opacity_logits contains Inf"),
    ("log_scales", torch.zeros(5, 3, dtype=torch.int64), "floating-point"),
    ("quats", torch.zeros(5, 4), "zero quaternion"),
    ("means", torch.zeros(5, 3, dtype=torch.float64), "share one dtype"),
])
def test_validation_messages(field, value, message):
    kwargs = make()
    kwargs[field] = value
    with pytest.raises(ValueError, match=message):
        Gaussians(**kwargs)


def test_params_round_trip_and_indexing():
    g = init_ball(50, generator=torch.Generator().manual_seed(0), sh_degree=2)
    h = Gaussians.from_params(g.params())
    for a, b in zip(g.params().values(), h.params().values()):
        assert torch.equal(a, b)
    sub = g[g.means[:, 0] > 0]
    assert 0 < len(sub) < 50
    assert len(Gaussians.cat([g, sub])) == 50 + len(sub)


def test_init_ball_follows_dreamgaussian():
    g = init_ball(5000, generator=torch.Generator().manual_seed(0))
    assert len(g) == 5000
    assert g.means.norm(dim=-1).max() <= 0.5 + 1e-6
    # Uniform in volume: the median radius is 0.5 · 0.5^(1/3).
    assert g.means.norm(dim=-1).median().item() == pytest.approx(0.5 * 0.5 ** (1 / 3), rel=0.03)
    assert torch.allclose(g.opacities, torch.full((5000,), 0.1), atol=1e-6)
    assert torch.allclose(g.rgb, torch.full((5000, 3), 0.5), atol=1e-6)
    # Isotropic scales equal the mean distance to the 3 nearest neighbours.
    assert torch.allclose(g.scales[:, 0], knn_mean_distance(g.means), rtol=1e-5)
    assert torch.allclose(g.scales[:, 0], g.scales[:, 2])


def test_knn_mean_distance_on_a_grid():
    grid = torch.stack(torch.meshgrid(*[torch.arange(5.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    d = knn_mean_distance(grid, chunk=7)
    assert torch.allclose(d, torch.ones(125))       # 3 nearest neighbours are 1 apart


def test_from_mesh_lies_on_surface_and_faces_normal():
    # A unit square in the z=0 plane, two triangles.
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    g = from_mesh(v, f, 400, generator=torch.Generator().manual_seed(0))
    assert g.means[:, 2].abs().max() < 1e-6
    assert (g.means[:, :2] >= -1e-6).all() and (g.means[:, :2] <= 1 + 1e-6).all()
    normal_axis = g.rotmats[:, :, 2]                   # local z in world
    assert torch.allclose(normal_axis.abs(), torch.tensor([0.0, 0, 1]).expand(400, 3), atol=1e-5)
    assert g.scales[0, 2] < g.scales[0, 0]             # flat


def test_quaternion_conversions():
    q = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    R = quat_to_rotmat(q)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(100, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(100), atol=1e-5)
    assert torch.allclose(quat_to_rotmat(rotmat_to_quat(R)), R, atol=1e-5)
    n = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    n[0] = torch.tensor([0.0, 0, -1])                  # the antipodal case
    assert torch.allclose(quat_to_rotmat(quats_from_normals(n))[:, :, 2], n, atol=1e-5)


def test_sh_matches_gsplat_reference():
    ref = pytest.importorskip("gsplat.cuda._torch_impl")
    gen = torch.Generator().manual_seed(0)
    dirs = torch.randn(64, 3, generator=gen)
    for degree in range(4):
        coeffs = torch.randn(64, (degree + 1) ** 2, 3, generator=gen)
        ours = eval_sh(coeffs, dirs)
        theirs = ref._spherical_harmonics(degree, dirs, coeffs)
        assert torch.allclose(ours, theirs, atol=1e-5)


def test_sh_dc_round_trip():
    rgb = torch.rand(10, 3)
    assert torch.allclose(sh0_to_rgb(rgb_to_sh0(rgb)), rgb, atol=1e-6)
    assert torch.allclose(eval_sh(rgb_to_sh0(rgb)[:, None], torch.randn(10, 3)) + 0.5, rgb, atol=1e-6)


def test_gaussians2d_random():
    g = Gaussians2D.random(20, 64, 32, generator=torch.Generator().manual_seed(0))
    assert g.means[:, 0].max() <= 64 and g.means[:, 1].max() <= 32
    assert g.colors.shape == (20, 3) and len(g) == 20
    with pytest.raises(ValueError, match="rotations must have shape"):
        Gaussians2D(g.means, g.log_scales, torch.zeros(3), g.opacity_logits, g.colors)


def test_from_points_errors():
    with pytest.raises(ValueError, match="more than k=3 points"):
        from_points(torch.zeros(3, 3))
