"""gsbook.mesh: the triangle rasterizer against ray casting, gradients, UV atlas, baking, files,
clean-up, and the Gaussians' density field."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from trimesh.ray.ray_triangle import ray_triangle_id
from trimesh.triangles import points_to_barycentric
from trimesh.visual.color import uv_to_color

from gsbook.cameras import Cameras, intrinsics_from_fov, orbit, pixel_rays
from gsbook.gaussians import Gaussians, rotmat_to_quat
from gsbook.mesh import (TexturedMesh, bake_texture, clean_mesh, decimate_mesh, face_normals, gaussian_density,
                         interpolate_attributes, level_set_mesh, rasterize_triangles, render_textured_mesh,
                         sample_texture, uv_unwrap, view_cosine)


def _tensors(mesh: trimesh.Trimesh, dtype=torch.float32):
    return torch.tensor(mesh.vertices, dtype=dtype), torch.tensor(mesh.faces, dtype=torch.long)


def _sphere(subdivisions: int = 2, radius: float = 0.8, dtype=torch.float32):
    return _tensors(trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius), dtype)


def _mushroom():
    from gsbook.world import ObjectSpec, make_asset
    return _tensors(make_asset(ObjectSpec("mushroom", "red"), seed=0).mesh(resolution=20))


class _BruteForceIndex:
    """Stands in for trimesh's rtree index (rtree is not installed): the same AABB query, brute force,
    so that trimesh's own pure-Python ray casting (ray_triangle_id) runs unchanged."""

    def __init__(self, triangles: np.ndarray):
        self.lo, self.hi = triangles.min(1), triangles.max(1)
        self.bounds = np.concatenate([self.lo.min(0), self.hi.max(0)])

    def intersection(self, box):
        box = np.asarray(box)
        return np.nonzero(((self.lo <= box[3:]) & (self.hi >= box[:3])).all(1))[0]


def _ray_cast(vertices: torch.Tensor, faces: torch.Tensor, cameras: Cameras):
    """trimesh's ray casting through the pixel centres: face ``[C·H·W]`` (-1: miss), barycentrics
    ``[C·H·W, 3]`` and hit points ``[C·H·W, 3]``."""
    origins, dirs = (t.reshape(-1, 3).double().numpy() for t in pixel_rays(cameras))
    triangles = vertices.double().numpy()[faces.numpy()]
    tri, ray, loc = ray_triangle_id(triangles, origins, dirs, tree=_BruteForceIndex(triangles), multiple_hits=False)
    face = np.full(len(origins), -1)
    bary, points = np.zeros((len(origins), 3)), np.zeros((len(origins), 3))
    face[ray] = tri
    bary[ray] = points_to_barycentric(triangles[tri], loc)
    points[ray] = loc
    return face, bary, points


# ----------------------------------------------------------------------------- rasterizer
@pytest.mark.parametrize("shape", ["icosphere", "mushroom"])
def test_rasterizer_agrees_with_trimesh_ray_casting(shape):
    vertices, faces = _sphere() if shape == "icosphere" else _mushroom()
    cameras = orbit([20.0, -10.0], [30.0, 200.0], width=32, height=32)
    frags = rasterize_triangles(vertices, faces, cameras)
    ref_face, ref_bary, _ = _ray_cast(vertices, faces, cameras)
    face = frags.face_id.reshape(-1).numpy()
    bary = frags.bary.reshape(-1, 3).double().numpy()

    ours, theirs = face >= 0, ref_face >= 0
    assert theirs.sum() > 300, "the mesh should fill a good part of the views"
    assert (ours != theirs).sum() <= 4, f"coverage differs on {(ours != theirs).sum()} pixels"
    both = ours & theirs
    same = both & (face == ref_face)
    assert same.sum() >= 0.99 * both.sum()
    np.testing.assert_allclose(bary[same], ref_bary[same], atol=1e-3)
    np.testing.assert_allclose(bary[ours].sum(-1), 1.0, atol=1e-6)
    assert (frags.depth.reshape(-1)[~torch.from_numpy(ours)] == 0).all(), "empty pixels have depth 0"


def test_interpolated_positions_are_the_points_the_rays_hit():
    vertices, faces = _sphere(dtype=torch.float64)
    cameras = orbit([15.0, 40.0], [-60.0, 120.0], width=24, height=24).to(torch.float64)
    frags = rasterize_triangles(vertices, faces, cameras)
    points = interpolate_attributes(vertices, frags, faces)                    # [C, H, W, 3]
    ref_face, _, ref_points = _ray_cast(vertices, faces, cameras)
    same = (frags.face_id.reshape(-1).numpy() == ref_face) & (ref_face >= 0)
    np.testing.assert_allclose(points.reshape(-1, 3).numpy()[same], ref_points[same], atol=1e-6)
    # The depth is the camera z of that point.
    cam_z = (points @ cameras.viewmats[:, None, None, 2, :3].transpose(-1, -2))[..., 0] + \
        cameras.viewmats[:, None, None, 2, 3]
    covered = frags.covered
    torch.testing.assert_close(frags.depth[covered], cam_z[covered])
    assert (points[~covered] == 0).all()


def test_chunking_and_dtype_do_not_change_the_picture():
    vertices, faces = _mushroom()
    cameras = orbit([10.0, 30.0, -20.0], [0.0, 100.0, 250.0], width=40, height=32)
    whole = rasterize_triangles(vertices, faces, cameras)
    chunked = rasterize_triangles(vertices, faces, cameras, max_pairs=257)
    assert torch.equal(whole.face_id, chunked.face_id)
    torch.testing.assert_close(whole.bary, chunked.bary)
    double = rasterize_triangles(vertices.double(), faces.int(), cameras)
    assert double.bary.dtype == torch.float64 and double.depth.dtype == torch.float64
    assert (double.face_id == whole.face_id).float().mean() > 0.999


def test_near_plane_skips_triangles_that_cross_it():
    # A quad straddling the camera's plane (z from -1 to +1 in camera space) and one wholly in front.
    cameras = Cameras(torch.eye(4), intrinsics_from_fov(60.0, 16, 16), 16, 16)
    crossing = torch.tensor([[-1.0, -1.0, -1.0], [1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])
    front = crossing * torch.tensor([3.0, 3.0, 0.0]) + torch.tensor([0.0, 0.0, 3.0])     # fills the view
    quad = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert not rasterize_triangles(crossing, quad, cameras).covered.any()
    frags = rasterize_triangles(torch.cat([crossing, front]), torch.cat([quad, quad + 4]), cameras)
    assert frags.covered.all() and (frags.face_id >= 2).all()
    torch.testing.assert_close(frags.depth, torch.full_like(frags.depth, 3.0))


def test_face_normals_point_out_and_view_cosine_peaks_facing_the_camera():
    vertices, faces = _sphere()
    normals = face_normals(vertices, faces)
    centroids = vertices[faces].mean(1)
    assert ((normals * centroids).sum(-1) > 0).all()
    cameras = orbit(0.0, 0.0, width=33, height=33)
    frags = rasterize_triangles(vertices, faces, cameras)
    cos = view_cosine(vertices, faces, frags, cameras)
    assert cos[0, 16, 16] > 0.98                      # the middle of the sphere faces the camera
    assert cos[frags.covered].min() > 0 and cos[frags.covered].min() < 0.5   # grazing at the silhouette
    assert (cos[~frags.covered] == 0).all()


# ----------------------------------------------------------------------------- textures
def _quad_mesh(dtype=torch.float64, texture=None):
    vertices = torch.tensor([[-0.6, -0.5, 0.0], [0.5, -0.6, 0.1], [0.6, 0.5, 0.0], [-0.5, 0.6, -0.1]], dtype=dtype)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uvs = torch.tensor([[0.05, 0.9], [0.95, 0.95], [0.9, 0.1], [0.1, 0.05]], dtype=dtype)
    if texture is None:
        texture = torch.rand(4, 4, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    return TexturedMesh(vertices, faces, uvs, texture)


def test_render_textured_mesh_gradcheck_in_the_texture():
    mesh = _quad_mesh()
    cameras = orbit(10.0, 20.0, radius=2.0, width=8, height=8).to(torch.float64)
    image, alpha, _ = render_textured_mesh(mesh, cameras)
    assert 0 < alpha.mean() < 1, "the test wants both mesh and background pixels"
    texture = mesh.texture.clone().requires_grad_(True)

    def f(tex):
        return render_textured_mesh(TexturedMesh(mesh.vertices, mesh.faces, mesh.uvs, tex), cameras,
                                    background=0.3)[0]

    assert torch.autograd.gradcheck(f, (texture,), eps=1e-6, atol=1e-7)
    image = f(texture)
    torch.testing.assert_close(image[alpha[..., 0] == 0], torch.full_like(image[alpha[..., 0] == 0], 0.3))


def test_sample_texture_reads_texel_centres_in_the_image_convention():
    texture = torch.rand(5, 7, 3)
    rows, cols = torch.meshgrid(torch.arange(5), torch.arange(7), indexing="ij")
    uv = torch.stack([(cols + 0.5) / 7, (rows + 0.5) / 5], -1)               # u along columns, v down rows
    torch.testing.assert_close(sample_texture(texture, uv), texture)
    # Outside [0, 1] the border repeats.
    torch.testing.assert_close(sample_texture(texture, torch.tensor([[-0.5, -0.5], [2.0, 2.0]])),
                               torch.stack([texture[0, 0], texture[-1, -1]]))


@pytest.mark.parametrize("texture_size", [None, 64])
def test_uv_unwrap_keeps_the_surface(texture_size):
    vertices, faces = _sphere()
    new_v, new_f, uvs = uv_unwrap(vertices, faces, texture_size=texture_size)
    assert new_f.shape == faces.shape and uvs.shape == (len(new_v), 2)
    assert new_f.min() >= 0 and new_f.max() < len(new_v)
    assert uvs.min() >= 0 and uvs.max() <= 1
    before, after = trimesh.Trimesh(vertices.numpy(), faces.numpy()), trimesh.Trimesh(new_v.numpy(), new_f.numpy(),
                                                                                      process=False)
    assert after.area == pytest.approx(before.area, rel=1e-6)
    np.testing.assert_allclose(after.bounds, before.bounds, atol=1e-6)
    # Face for face the same triangles: xatlas only splits vertices along its cuts.
    np.testing.assert_allclose(after.triangles, before.triangles, atol=1e-6)
    assert len(new_v) > len(vertices), "a closed surface needs cuts, hence duplicated vertices"
    # Charts do not overlap: the UV triangles' areas add up to the covered area (sampled).
    uv_tri = uvs[new_f].double()
    area = 0.5 * ((uv_tri[:, 1] - uv_tri[:, 0])[:, 0] * (uv_tri[:, 2] - uv_tri[:, 0])[:, 1]
                  - (uv_tri[:, 2] - uv_tri[:, 0])[:, 0] * (uv_tri[:, 1] - uv_tri[:, 0])[:, 1]).abs()
    assert 0.3 < area.sum() <= 1.0


def _smooth_texture(size: int) -> torch.Tensor:
    t = (torch.arange(size) + 0.5) / size
    v, u = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([0.5 + 0.4 * torch.sin(2 * math.pi * u), 0.5 + 0.4 * torch.cos(2 * math.pi * v),
                        0.2 + 0.6 * u * v], -1)


def test_bake_texture_recovers_a_known_texture_and_fills_every_texel():
    vertices, faces = _sphere()
    vertices, faces, uvs = uv_unwrap(vertices, faces)
    truth = _smooth_texture(32)
    mesh = TexturedMesh(vertices, faces, uvs, truth)
    cameras = orbit([25.0] * 4 + [-25.0] * 4, [0.0, 90.0, 180.0, 270.0, 45.0, 135.0, 225.0, 315.0],
                    width=64, height=64)
    images, _, _ = render_textured_mesh(mesh, cameras)
    texture, filled = bake_texture(vertices, faces, uvs, cameras, images, size=32)
    assert texture.shape == (32, 32, 3) and filled.shape == (32, 32) and filled.dtype == torch.bool
    assert filled.float().mean() > 0.4
    error = (texture - truth).abs()[filled]
    assert error.mean() < 0.02, f"mean error {error.mean():.4f} where the views saw the surface"
    # Every texel holds a colour: the unseen ones copy a seen one.
    assert torch.isfinite(texture).all() and texture.min() >= 0 and texture.max() <= 1
    seen = texture[filled]
    unseen = texture[~filled]
    assert (unseen[:, None] == seen[None]).all(-1).any(-1).all()
    # Rendered again, the baked mesh looks like the original.
    again, alpha, _ = render_textured_mesh(TexturedMesh(vertices, faces, uvs, texture), cameras)
    assert (again - images).abs()[alpha[..., 0] > 0].mean() < 0.03


def test_bake_texture_keeps_the_first_view_of_each_texel():
    vertices, faces = _sphere()
    vertices, faces, uvs = uv_unwrap(vertices, faces)
    cameras = orbit(0.0, [0.0, 60.0], width=48, height=48)
    images = torch.zeros(2, 48, 48, 3)
    images[0, ..., 0] = 1.0                                                   # view 0 is red
    images[1, ..., 2] = 1.0                                                   # view 1 is blue
    texture, filled = bake_texture(vertices, faces, uvs, cameras, images, size=32, min_view_cos=0.3)
    one = bake_texture(vertices, faces, uvs, cameras[0], images[:1], size=32, min_view_cos=0.3)[1]
    assert (texture[one] == torch.tensor([1.0, 0.0, 0.0])).all(), "what view 0 covered stays red"
    later = filled & ~one
    assert later.any() and (texture[later] == torch.tensor([0.0, 0.0, 1.0])).all()


# ----------------------------------------------------------------------------- files
def _texel_mesh(size: int = 8):
    """An icosphere whose UVs sit on texel centres of a texture of distinct colours."""
    vertices, faces = _sphere(1)
    g = torch.Generator().manual_seed(3)
    texture = torch.randperm(size * size * 3, generator=g).reshape(size, size, 3).float() / (size * size * 3)
    texture = (texture * 255).round() / 255                                   # exactly representable in a PNG
    cells = torch.randint(0, size, (len(vertices), 2), generator=g)
    uvs = (cells.float() + 0.5) / size                                         # (u, v) = (col, row) centres
    return TexturedMesh(vertices, faces, uvs, texture), cells


def _trimesh_colours(mesh: trimesh.Trimesh) -> np.ndarray:
    """Colours trimesh itself reads at each vertex's UV (its own v-up convention)."""
    material = mesh.visual.material
    image = material.image if hasattr(material, "image") else material.baseColorTexture
    return uv_to_color(mesh.visual.uv, image)[:, :3]


@pytest.mark.parametrize("suffix", [".glb", ".obj"])
def test_save_and_load_round_trip(tmp_path, suffix):
    mesh, cells = _texel_mesh()
    path = mesh.save(tmp_path / f"thing{suffix}")
    if suffix == ".obj":
        assert {p.name for p in tmp_path.iterdir()} == {"thing.obj", "thing.mtl", "thing.png"}
    # trimesh, reading the file on its own, finds each vertex's texel at the same colour.
    raw = trimesh.load(str(path), force="mesh", process=False)
    expected = (mesh.texture[cells[:, 1], cells[:, 0]] * 255).round().to(torch.uint8).numpy()   # texture[row, col]
    assert len(raw.vertices) == len(mesh.vertices)
    np.testing.assert_array_equal(_trimesh_colours(raw), expected)
    # And back into a TexturedMesh: same geometry, UVs and texture.
    loaded = TexturedMesh.load(path)
    assert torch.equal(loaded.faces, mesh.faces)
    torch.testing.assert_close(loaded.vertices, mesh.vertices)
    torch.testing.assert_close(loaded.uvs, mesh.uvs)
    torch.testing.assert_close(loaded.texture, mesh.texture, atol=0.5 / 255, rtol=0)
    torch.testing.assert_close(sample_texture(loaded.texture, loaded.uvs), mesh.texture[cells[:, 1], cells[:, 0]],
                               atol=0.5 / 255, rtol=0)
    cameras = orbit(20.0, 30.0, width=24, height=24)
    torch.testing.assert_close(render_textured_mesh(loaded, cameras)[0], render_textured_mesh(mesh, cameras)[0],
                               atol=1e-5, rtol=0)


def test_to_trimesh_flips_v_and_from_trimesh_flips_it_back():
    mesh, cells = _texel_mesh()
    tm = mesh.to_trimesh()
    np.testing.assert_allclose(tm.visual.uv[:, 1], 1 - mesh.uvs[:, 1].numpy(), atol=1e-7)
    expected = (mesh.texture[cells[:, 1], cells[:, 0]] * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(_trimesh_colours(tm), expected)
    back = TexturedMesh.from_trimesh(tm)
    torch.testing.assert_close(back.uvs, mesh.uvs)
    moved = mesh.to(torch.float64)
    assert moved.vertices.dtype == torch.float64 and moved.faces.dtype == torch.long and moved.n_faces == 80


# ----------------------------------------------------------------------------- clean-up
def test_clean_mesh_drops_a_floater_duplicates_and_degenerates():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)               # 1280 faces
    floater = trimesh.creation.box(extents=(0.05, 0.05, 0.05))                   # 12 faces < 1% of 1292
    floater.apply_translation([2.0, 0.0, 0.0])
    v = np.concatenate([sphere.vertices, floater.vertices, sphere.vertices[:3]])  # duplicated vertices too
    n = len(sphere.vertices)
    f = np.concatenate([sphere.faces, floater.faces + n, sphere.faces[:5],       # duplicate faces
                        [[0, 0, 1]],                                            # a degenerate face
                        [[len(v) - 3, len(v) - 2, len(v) - 1]]])                # a face on the duplicates
    vertices, faces = clean_mesh(torch.tensor(v, dtype=torch.float32), torch.tensor(f))
    cleaned = trimesh.Trimesh(vertices.numpy(), faces.numpy(), process=False)
    assert len(faces) == 1280 + 1 or len(faces) == 1280   # the copied face may coincide with an original
    assert len(cleaned.vertices) == len(sphere.vertices)
    np.testing.assert_allclose(cleaned.bounds, sphere.bounds, atol=1e-6)
    assert cleaned.is_watertight


def test_decimate_mesh_reaches_the_target_and_keeps_the_shape():
    vertices, faces = _sphere(4)                                                # 5120 faces
    small_v, small_f = decimate_mesh(vertices, faces, 600)
    assert len(small_f) <= 600 and len(small_f) > 300
    after = trimesh.Trimesh(small_v.numpy(), small_f.numpy(), process=False)
    np.testing.assert_allclose(after.bounds, np.array([[-0.8] * 3, [0.8] * 3]), atol=0.03)
    assert small_v.dtype == vertices.dtype and small_f.dtype == torch.long
    same_v, same_f = decimate_mesh(small_v, small_f, 600)
    assert same_v is small_v and same_f is small_f


# ----------------------------------------------------------------------------- Gaussians → density
def _random_gaussians(n: int = 24, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) - 0.5
    scales = 0.02 + 0.06 * torch.rand(n, 3, generator=g)
    rot = torch.linalg.qr(torch.randn(n, 3, 3, generator=g)).Q
    rot = rot * torch.linalg.det(rot)[:, None, None]                          # proper rotations
    opac = 0.2 + 0.7 * torch.rand(n, generator=g)
    opac[0] = 0.001                                                              # below min_opacity: dropped
    return Gaussians.from_activated(means, scales, opac, torch.rand(n, 3, generator=g), rotmat_to_quat(rot))


def _brute_force_density(gaussians: Gaussians, grid_shape, origin, spacing, min_opacity=0.005):
    idx = torch.stack(torch.meshgrid(*(torch.arange(s) for s in grid_shape), indexing="ij"), -1).double()
    points = origin.double() + spacing * idx                                    # [R, R, R, 3]
    keep = gaussians.opacities > min_opacity
    inv = torch.linalg.inv(gaussians.covariances[keep].double())
    d = points[..., None, :] - gaussians.means[keep].double()                   # [R, R, R, N, 3]
    q = torch.einsum("...ni,nij,...nj->...n", d, inv, d)
    return (gaussians.opacities[keep].double() * torch.exp(-0.5 * q)).sum(-1)


@pytest.mark.parametrize("bound", [None, 0.7])
def test_gaussian_density_matches_brute_force(bound):
    gaussians = _random_gaussians()
    grid, origin, spacing = gaussian_density(gaussians, resolution=16, bound=bound, blocks=4)
    assert grid.shape == (16, 16, 16) and origin.shape == (3,)
    ref = _brute_force_density(gaussians, grid.shape, origin, spacing)
    torch.testing.assert_close(grid.double(), ref, atol=1e-5, rtol=1e-4)
    means = gaussians.means
    if bound is None:   # the centres' bounding box fills 90% of the grid's side
        side = spacing * 16
        assert side == pytest.approx(float((means.amax(0) - means.amin(0)).max()) / 0.9, rel=1e-5)
        torch.testing.assert_close(origin - spacing / 2 + side / 2, (means.amin(0) + means.amax(0)) / 2)
    else:               # the same voxel centres as gsbook.world.grid_centres
        from gsbook.world import grid_centres
        centres = torch.tensor(grid_centres(16, bound), dtype=torch.float32).reshape(16, 16, 16, 3)
        idx = torch.stack(torch.meshgrid(*(torch.arange(16),) * 3, indexing="ij"), -1)
        torch.testing.assert_close(origin + spacing * idx, centres)


def test_gaussian_density_level_set_is_a_closed_blob_of_the_expected_radius():
    centre = torch.tensor([0.1, -0.05, 0.2])
    sigmas, opacities = torch.tensor([0.06, 0.1, 0.14]), torch.tensor([0.9, 0.6, 0.4])
    gaussians = Gaussians.from_activated(centre.expand(3, 3).clone(), sigmas[:, None].expand(3, 3).clone(),
                                         opacities, torch.full((3, 3), 0.5))
    level = 0.8
    # The radius where Σ oᵢ exp(−r²/2σᵢ²) = level, by bisection.
    lo, hi = 0.0, 1.0
    for _ in range(60):
        r = (lo + hi) / 2
        lo, hi = (r, hi) if float((opacities * torch.exp(-r * r / (2 * sigmas ** 2))).sum()) > level else (lo, r)
    grid, origin, spacing = gaussian_density(gaussians, resolution=40, bound=0.6, blocks=4)
    mesh = level_set_mesh(grid.numpy(), level, spacing, origin.numpy(), outside=0.0)
    assert mesh.is_watertight
    dist = np.linalg.norm(mesh.vertices - centre.numpy(), axis=1)
    np.testing.assert_allclose(dist, r, atol=spacing / 4)
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * r ** 3, rel=0.05)   # > 0: normals point out


# ----------------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors():
    vertices, faces = _sphere(1)
    cameras = orbit(0.0, 0.0, width=8, height=8)
    with pytest.raises(ValueError, match="faces index vertex 41, but the mesh has 40 vertices"):
        rasterize_triangles(vertices[:40], faces, cameras)
    with pytest.raises(ValueError, match="faces index vertex -1"):
        rasterize_triangles(vertices, faces - 1, cameras)
    with pytest.raises(ValueError, match="vertices contains NaN"):
        rasterize_triangles(torch.full_like(vertices, float("nan")), faces, cameras)
    with pytest.raises(ValueError, match=r"vertices must have shape \[\*, 3\]"):
        rasterize_triangles(vertices[:, :2], faces, cameras)
    with pytest.raises(ValueError, match="faces must be an integer tensor"):
        rasterize_triangles(vertices, faces.float(), cameras)
    with pytest.raises(ValueError, match="empty mesh"):
        rasterize_triangles(vertices, faces[:0], cameras)
    with pytest.raises(ValueError, match=r"texture must be RGB"):
        TexturedMesh(vertices, faces, torch.zeros(len(vertices), 2), torch.zeros(4, 4, 4))
    with pytest.raises(ValueError, match=r"uvs must have shape"):
        TexturedMesh(vertices, faces, torch.zeros(3, 2), torch.zeros(4, 4, 3))
    with pytest.raises(ValueError, match="uv contains NaN"):
        sample_texture(torch.zeros(4, 4, 3), torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"images must have shape \[1, 8, 8, 3\]"):
        bake_texture(vertices, faces, torch.zeros(len(vertices), 2), cameras, torch.zeros(1, 8, 9, 3), 16)
    with pytest.raises(ValueError, match=r"\.glb or \.obj"):
        _quad_mesh().save("mesh.ply")
    with pytest.raises(ValueError, match="no UV texture"):
        TexturedMesh.from_trimesh(trimesh.creation.box())
    with pytest.raises(ValueError, match="min_opacity"):
        gaussian_density(_random_gaussians()[:1], 8)
    with pytest.raises(ValueError, match="span no volume"):
        gaussian_density(Gaussians.from_activated(torch.zeros(2, 3), torch.full((2, 3), 0.1),
                                                  torch.full((2,), 0.5), torch.zeros(2, 3)), 8)
    with pytest.raises(ValueError, match="target_faces"):
        decimate_mesh(vertices, faces, 2)
    frags = rasterize_triangles(vertices, faces, cameras)
    with pytest.raises(ValueError, match="rasterized from another mesh"):
        interpolate_attributes(vertices, frags, faces[:3])
