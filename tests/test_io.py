"""Tests for gsbook.io: exact .ply round trips in the standard 3DGS layout, agreement with
gsplat's exporter, clear errors on bad files, and .splat round trips within 8-bit error."""

from __future__ import annotations

import numpy as np
import plyfile
import pytest
import torch

from gsbook import io
from gsbook.gaussians import Gaussians



@pytest.fixture
def gsplat_exporter():
    """gsplat's CPU exporter, the reference for both formats (a dev dependency)."""
    return pytest.importorskip("gsplat.exporter")


def random_scene(n: int = 200, degree: int = 3, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return Gaussians(
        means=torch.randn(n, 3, generator=g) * 2,
        quats=torch.randn(n, 4, generator=g) * 3,  # deliberately not unit length
        log_scales=torch.randn(n, 3, generator=g) - 3,
        opacity_logits=torch.randn(n, generator=g) * 2,
        sh=torch.randn(n, k, 3, generator=g),
    )


def assert_same(a: Gaussians, b: Gaussians) -> None:
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name


# ----------------------------------------------------------------------------- .ply
@pytest.mark.parametrize("degree", [0, 1, 3])
def test_ply_round_trip_is_exact(tmp_path, degree):
    scene = random_scene(degree=degree)
    path = tmp_path / "scene.ply"
    io.save_ply(path, scene)
    back = io.load_ply(path)
    assert back.sh_degree == degree
    assert_same(scene, back)


def test_ply_header_is_the_standard_3dgs_layout(tmp_path):
    path = tmp_path / "scene.ply"
    io.save_ply(path, random_scene(n=5, degree=3))
    data = plyfile.PlyData.read(str(path))
    assert [el.name for el in data.elements] == ["vertex"]
    assert data.byte_order == "<" and not data.text
    expected = ("x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 "
                + " ".join(f"f_rest_{i}" for i in range(45))
                + " opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3").split()
    props = data["vertex"].properties
    assert [p.name for p in props] == expected
    assert {p.val_dtype for p in props} == {"f4"}
    assert len(data["vertex"]) == 5


def test_ply_stores_raw_values_with_channel_major_f_rest(tmp_path):
    """Read the file without gsbook: f_rest_{c·(K-1)+j} holds shN[:, j, c] (all R, G, B)."""
    scene = random_scene(n=7, degree=2)
    path = tmp_path / "scene.ply"
    io.save_ply(path, scene)
    v = plyfile.PlyData.read(str(path))["vertex"]
    col = lambda name: torch.from_numpy(np.asarray(v[name]))  # noqa: E731
    shN = scene.sh[:, 1:]  # [N, 8, 3]
    for c in range(3):
        assert torch.equal(col(f"f_dc_{c}"), scene.sh[:, 0, c])
        for j in range(8):
            assert torch.equal(col(f"f_rest_{c * 8 + j}"), shN[:, j, c]), (c, j)
    assert torch.equal(col("opacity"), scene.opacity_logits)
    for i in range(3):
        assert torch.equal(col(f"scale_{i}"), scene.log_scales[:, i])
        assert torch.equal(col(f"n{'xyz'[i]}"), torch.zeros(7))
    for i in range(4):
        assert torch.equal(col(f"rot_{i}"), scene.quats[:, i])


@pytest.mark.parametrize("degree", [0, 3])
def test_reads_gsplat_export(tmp_path, degree, gsplat_exporter):
    scene = random_scene(degree=degree, seed=1)
    path = tmp_path / "gsplat.ply"
    gsplat_exporter.export_splats(**scene.params(), format="ply", save_to=str(path))
    names = [p.name for p in plyfile.PlyData.read(str(path))["vertex"].properties]
    assert "nx" not in names  # gsplat writes no normals; the reader must not need them
    assert_same(scene, io.load_ply(path))


def test_ply_matches_gsplat_apart_from_normals(tmp_path, gsplat_exporter):
    scene = random_scene(n=50, degree=3, seed=2)
    ours, theirs = tmp_path / "ours.ply", tmp_path / "gsplat.ply"
    io.save_ply(ours, scene)
    gsplat_exporter.export_splats(**scene.params(), format="ply", save_to=str(theirs))
    a, b = (plyfile.PlyData.read(str(p))["vertex"] for p in (ours, theirs))
    names = [p.name for p in b.properties]
    assert [p.name for p in a.properties if p.name not in ("nx", "ny", "nz")] == names
    for name in names:
        assert np.array_equal(a[name], b[name]), name


def test_save_accepts_float64_and_grad(tmp_path):
    scene = random_scene(n=10, degree=1).to(torch.float64)
    scene.means.requires_grad_(True)
    io.save_gaussians(tmp_path / "s.ply", scene)
    back = io.load_gaussians(tmp_path / "s.ply")
    assert back.dtype == torch.float32
    assert torch.allclose(back.means.double(), scene.means.detach(), atol=1e-6)


# ----------------------------------------------------------------------------- errors
def write_vertex(path, columns: dict[str, np.ndarray]) -> None:
    n = len(next(iter(columns.values())))
    rows = np.empty(n, dtype=[(k, "<f4") for k in columns])
    for k, v in columns.items():
        rows[k] = v
    plyfile.PlyData([plyfile.PlyElement.describe(rows, "vertex")]).write(str(path))


def columns_of(scene: Gaussians) -> dict[str, np.ndarray]:
    names = io.ply_property_names(scene.sh_degree, normals=False)
    n = scene.n
    table = torch.cat([scene.means, scene.sh[:, 0], scene.sh[:, 1:].transpose(1, 2).reshape(n, -1),
                       scene.opacity_logits[:, None], scene.log_scales, scene.quats], 1)
    return {name: table[:, i].numpy() for i, name in enumerate(names)}


def test_truncated_ply(tmp_path):
    path = tmp_path / "cut.ply"
    io.save_ply(path, random_scene(n=20))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(io.PlyFormatError, match="cut.ply"):
        io.load_ply(path)


@pytest.mark.parametrize("content", [b"", b"hello, I am not a ply file\n",
                                     bytes(range(256)) * 4, b"ply\nformat nonsense\n"])
def test_garbage_is_not_a_ply(tmp_path, content):
    path = tmp_path / "junk.ply"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"junk\.ply.*not a readable \.ply"):
        io.load_gaussians(path)


def test_missing_property_is_named(tmp_path):
    cols = columns_of(random_scene(n=4, degree=0))
    del cols["opacity"]
    path = tmp_path / "noopacity.ply"
    write_vertex(path, cols)
    with pytest.raises(io.PlyFormatError, match=r"noopacity\.ply.*missing.*'opacity'"):
        io.load_ply(path)


def test_wrong_f_rest_count(tmp_path):
    cols = columns_of(random_scene(n=4, degree=1))  # 9 f_rest
    for i in range(3, 9):
        del cols[f"f_rest_{i}"]  # 3 left: K would be 2, which is no SH degree
    path = tmp_path / "rest.ply"
    write_vertex(path, cols)
    with pytest.raises(io.PlyFormatError, match=r"rest\.ply.*3 f_rest"):
        io.load_ply(path)


def test_no_vertex_element(tmp_path):
    rows = np.zeros(3, dtype=[("x", "<f4")])
    path = tmp_path / "faces.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(rows, "face")]).write(str(path))
    with pytest.raises(io.PlyFormatError, match=r"faces\.ply.*no 'vertex'"):
        io.load_ply(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_values_are_rejected(tmp_path, bad):
    cols = columns_of(random_scene(n=6, degree=0))
    cols["scale_1"][4] = bad
    path = tmp_path / "nan.ply"
    write_vertex(path, cols)
    with pytest.raises(io.PlyFormatError, match=r"nan\.ply.*'scale_1' of vertex 4"):
        io.load_ply(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load_ply(tmp_path / "absent.ply")
    with pytest.raises(ValueError, match=r"scene\.obj.*'\.obj'"):
        io.save_gaussians(tmp_path / "scene.obj", random_scene(n=4, degree=0))


# ----------------------------------------------------------------------------- .splat
def test_splat_bytes_equal_gsplat(tmp_path, gsplat_exporter):
    scene = random_scene(n=300, degree=2, seed=3)
    path = tmp_path / "s.splat"
    io.save_splat(path, scene)
    expected = gsplat_exporter.export_splats(**scene.params(), format="splat")
    assert path.read_bytes() == expected
    assert len(expected) == 32 * scene.n


def test_splat_round_trip_within_quantisation(tmp_path):
    scene = random_scene(n=300, degree=3, seed=4)
    path = tmp_path / "s.splat"
    io.save_gaussians(path, scene)
    back = io.load_gaussians(path)
    assert back.n == scene.n and back.sh_degree == 0
    # The file is in Morton order: match each read Gaussian to its source by position,
    # which .splat stores exactly as float32.
    idx = torch.cdist(back.means, scene.means).argmin(dim=1)
    assert sorted(idx.tolist()) == list(range(scene.n))
    assert not torch.equal(idx, torch.arange(scene.n))  # it really was reordered
    src = scene[idx]
    assert torch.equal(back.means, src.means)
    torch.testing.assert_close(back.scales, src.scales, rtol=1e-6, atol=0)
    # Colour and alpha: truncated to k/255, so read back within one step below the truth.
    step = 1 / 255
    err_rgb = src.rgb - back.rgb
    assert err_rgb.min() >= -1e-6 and err_rgb.max() <= step + 1e-6
    err_alpha = (src.opacities - back.opacities).abs()
    assert err_alpha.max() <= step + 1e-6
    # Rotation: each unit-quaternion component within 1/128, a bit more after renormalising.
    err_q = (src.unit_quats - back.unit_quats).abs().max()
    assert err_q <= 2 / 128
    assert err_q > 0  # quantisation is real; a lossless path here would be a surprise


def test_splat_of_empty_scene(tmp_path):
    empty = random_scene(n=4, degree=0)[:0]
    io.save_splat(tmp_path / "e.splat", empty)
    assert (tmp_path / "e.splat").read_bytes() == b""
    assert io.load_splat(tmp_path / "e.splat").n == 0


def test_bad_splat_files(tmp_path):
    path = tmp_path / "cut.splat"
    io.save_splat(path, random_scene(n=5, degree=0))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(io.SplatFormatError, match=r"cut\.splat.*157 bytes"):
        io.load_splat(path)
    path = tmp_path / "zeros.splat"
    path.write_bytes(bytes(64))  # right size, but zero scales
    with pytest.raises(ValueError, match=r"zeros\.splat"):
        io.load_gaussians(path)
