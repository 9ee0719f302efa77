"""Reading and writing Gaussian scenes: the 3DGS ``.ply`` and antimatter15's ``.splat``.

Taught in §0 (what a trained scene *is*: one row of raw numbers per Gaussian) and in
§2's export step (DreamGaussian hands its result to a web viewer).

``.ply`` — the layout of the 3DGS reference code, which every viewer and tool reads: one
``vertex`` element of little-endian float32 properties, in this order::

    x y z  nx ny nz  f_dc_0..2  f_rest_0..f_rest_{3(K-1)-1}  opacity  scale_0..2  rot_0..3

holding *raw* values (log-scales, the opacity logit, the quaternion w, x, y, z as
optimised, not normalised). Normals are zeros (nothing uses them). ``f_rest`` is
channel-major: the K-1 higher-order coefficients of red, then of green, then of blue,
i.e. ``shN [N, K-1, 3]`` transposed to ``[N, 3, K-1]`` and flattened. The file is exact:
float32 scenes round-trip bit for bit.

``.splat`` — 32 bytes per Gaussian, no header: position (3 × float32), activated scale
``exp(log_scale)`` (3 × float32), RGBA (4 × uint8: DC colour and ``sigmoid(opacity)``,
× 255 and truncated), rotation (4 × uint8: unit quaternion w, x, y, z as ``q·128 + 128``).
It drops the higher SH bands and quantises colour, opacity and rotation to 8 bits, so a
round trip is close, not exact. Gaussians are stored in Morton (z-curve) order of their
centres, as gsplat's exporter writes them, and this module writes the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import plyfile
import torch
from torch import Tensor

from .gaussians import Gaussians, rgb_to_sh0, sh0_to_rgb, sh_degree_from_count

__all__ = ["PlyFormatError", "SplatFormatError", "ply_property_names",
           "save_ply", "load_ply", "save_splat", "splat_bytes", "load_splat", "save_gaussians", "load_gaussians",
           "save_voxels", "load_voxels"]

PathLike = str | os.PathLike


class PlyFormatError(ValueError):
    """A ``.ply`` file that is not a readable 3DGS scene."""


class SplatFormatError(ValueError):
    """A ``.splat`` file that is not a readable scene."""


# ----------------------------------------------------------------------------- .ply
def ply_property_names(sh_degree: int, normals: bool = True) -> list[str]:
    """The standard 3DGS vertex property names, in file order, for SH degree 0–3."""
    n_rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return (["x", "y", "z"] + (["nx", "ny", "nz"] if normals else [])
            + [f"f_dc_{i}" for i in range(3)] + [f"f_rest_{i}" for i in range(n_rest)]
            + ["opacity"] + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])


def save_ply(path: PathLike, gaussians: Gaussians) -> None:
    """Write ``gaussians`` (N Gaussians, SH ``[N, K, 3]``) as a standard binary 3DGS ``.ply``.

    Written with plyfile rather than ``gsplat.exporter.export_splats``: gsplat writes the
    same values in the same (channel-major) layout but no ``nx ny nz`` normals, which the
    reference code and some viewers expect; and gsplat is only an optional dependency.
    """
    g = gaussians.detach().to("cpu", torch.float32)
    n, k = g.sh.shape[:2]
    zeros = torch.zeros(n, 3)
    f_rest = g.sh[:, 1:].transpose(1, 2).reshape(n, 3 * (k - 1))  # channel-major, as 3DGS
    table = torch.cat([g.means, zeros, g.sh[:, 0], f_rest, g.opacity_logits[:, None],
                       g.log_scales, g.quats], dim=1)
    dtype = np.dtype([(name, "<f4") for name in ply_property_names(g.sh_degree)])
    rows = np.ascontiguousarray(table.numpy(), dtype="<f4").view(dtype).reshape(n)
    plyfile.PlyData([plyfile.PlyElement.describe(rows, "vertex")], byte_order="<").write(
        str(path))


def load_ply(path: PathLike) -> Gaussians:
    """Read a 3DGS ``.ply`` (with or without normals, SH degree 0–3) → float32 ``Gaussians``.

    Also reads gsplat's ``export_splats(..., format="ply")``. Extra properties are ignored.

    Raises:
        FileNotFoundError: no such file.
        PlyFormatError: (a ``ValueError``) not a ply, truncated, no ``vertex`` element, a
            missing property, a wrong number of ``f_rest_*``, or NaN/Inf values.
    """
    def fail(problem: str) -> PlyFormatError:
        return PlyFormatError(f"{path}: {problem}")

    try:
        data = plyfile.PlyData.read(str(path), mmap=False)
    except OSError:
        raise
    except Exception as e:  # plyfile raises several types on corrupt input; name the file
        raise fail(f"not a readable .ply file ({type(e).__name__}: {e})") from e
    names = [el.name for el in data.elements]
    if "vertex" not in names:
        hint = " (a compressed .ply? only the uncompressed 3DGS layout is read)" \
            if "chunk" in names else ""
        raise fail(f"no 'vertex' element (elements: {names}){hint}")
    vertex = data["vertex"]
    present = {p.name for p in vertex.properties}
    n_rest = sum(name.startswith("f_rest_") for name in present)
    if n_rest % 3:
        raise fail(f"{n_rest} f_rest_* properties; expected 3·(K-1) for K = 1, 4, 9 or 16")
    try:
        degree = sh_degree_from_count(n_rest // 3 + 1)
    except ValueError as e:
        raise fail(f"{n_rest} f_rest_* properties: {e}") from None
    wanted = ply_property_names(degree, normals=False)
    missing = [name for name in wanted if name not in present]
    if missing:
        raise fail(f"missing vertex properties {missing}")
    table = np.stack([np.asarray(vertex[name], dtype=np.float32) for name in wanted], axis=1)
    bad = ~np.isfinite(table)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise fail(f"non-finite value ({table[row, col]}) in property '{wanted[col]}' "
                   f"of vertex {row} ({int(bad.sum())} in all)")
    t = torch.from_numpy(table)
    n, k = t.shape[0], (degree + 1) ** 2
    sh0 = t[:, 3:6].reshape(n, 1, 3)
    shN = t[:, 6:6 + n_rest].reshape(n, 3, k - 1).transpose(1, 2)
    rest = t[:, 6 + n_rest:]
    try:
        return Gaussians(t[:, 0:3].contiguous(), rest[:, 4:8].contiguous(),
                         rest[:, 1:4].contiguous(), rest[:, 0].contiguous(),
                         torch.cat([sh0, shN], dim=1).contiguous())
    except ValueError as e:  # e.g. a zero quaternion
        raise fail(str(e)) from None


# ----------------------------------------------------------------------------- .splat
SPLAT_DTYPE = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3),
                        ("rgba", "u1", 4), ("rotation", "u1", 4)])  # 32 bytes


def _part1by2(x: Tensor) -> Tensor:
    """Spread the low 10 bits of ``x`` so that two zero bits separate each pair."""
    x = x & 0x000003FF
    x = (x ^ (x << 16)) & 0xFF0000FF
    x = (x ^ (x << 8)) & 0x0300F00F
    x = (x ^ (x << 4)) & 0x030C30C3
    return (x ^ (x << 2)) & 0x09249249


def morton_order(means: Tensor) -> Tensor:
    """Indices ``[N]`` sorting centres ``[N, 3]`` along a 10-bit-per-axis z-order curve.

    Same as ``gsplat.exporter.sort_centers``, quirk included: a coordinate equal to the
    maximum scales to 1024, whose low 10 bits are 0, so it sorts as if at the minimum.
    Only the viewer's memory locality depends on this order, never the picture.
    """
    lo, hi = means.min(dim=0).values, means.max(dim=0).values
    length = hi - lo
    length[length == 0] = 1
    cell = ((means - lo) / length * 1024).floor().to(torch.int32)
    code = (_part1by2(cell[:, 2]) << 2) + (_part1by2(cell[:, 1]) << 1) + _part1by2(cell[:, 0])
    return torch.argsort(code)


def save_splat(path: PathLike, gaussians: Gaussians) -> None:
    """Write ``gaussians`` as antimatter15's ``.splat`` (32 bytes each, Morton order).

    Lossy: keeps only the DC colour and quantises colour, opacity and rotation to 8 bits.
    The bytes equal ``gsplat.exporter.export_splats(..., format="splat")``'s.
    """
    Path(path).write_bytes(splat_bytes(gaussians))


def splat_bytes(gaussians: Gaussians) -> bytes:
    """The bytes :func:`save_splat` writes (a web page can carry them inline, no file needed)."""
    g = gaussians.detach().to("cpu", torch.float32)
    rgba = torch.cat([sh0_to_rgb(g.sh[:, 0]), g.opacities[:, None]], dim=1)
    unit = g.quats / torch.linalg.norm(g.quats, dim=1, keepdim=True)
    rows = np.empty(g.n, dtype=SPLAT_DTYPE)
    rows["position"] = g.means.numpy()
    rows["scale"] = g.scales.numpy()
    rows["rgba"] = (rgba * 255).clamp(0, 255).to(torch.uint8).numpy()  # truncates, as gsplat
    rows["rotation"] = (unit * 128 + 128).clamp(0, 255).to(torch.uint8).numpy()
    order = morton_order(g.means).numpy() if g.n else np.arange(0)
    return rows[order].tobytes()


def load_splat(path: PathLike) -> Gaussians:
    """Read antimatter15's ``.splat`` → float32 ``Gaussians`` with SH degree 0, in file order.

    Decoded as viewers do (colour and alpha ``byte / 255``, rotation ``(byte - 128) / 128``);
    alpha is kept inside ``[0.5/255, 1 - 0.5/255]`` so that its logit is finite.

    Raises:
        SplatFormatError: (a ``ValueError``) a size that is not a multiple of 32 bytes,
            non-finite positions or scales, non-positive scales, or a zero rotation.
    """
    raw = Path(path).read_bytes()
    if len(raw) % SPLAT_DTYPE.itemsize:
        raise SplatFormatError(f"{path}: {len(raw)} bytes is not a whole number of "
                               f"{SPLAT_DTYPE.itemsize}-byte splats (truncated, or not a .splat)")
    rows = np.frombuffer(raw, dtype=SPLAT_DTYPE)
    means = torch.from_numpy(rows["position"].copy())
    scales = torch.from_numpy(rows["scale"].copy())
    if not (torch.isfinite(means).all() and torch.isfinite(scales).all()) or (scales <= 0).any():
        raise SplatFormatError(f"{path}: non-finite positions or non-positive scales "
                               "(corrupt, or not a .splat file)")
    rgba = torch.from_numpy(rows["rgba"].astype(np.float32)) / 255
    quats = (torch.from_numpy(rows["rotation"].astype(np.float32)) - 128) / 128
    alpha = rgba[:, 3].clamp(0.5 / 255, 1 - 0.5 / 255)
    try:
        return Gaussians(means, quats, scales.log(), torch.logit(alpha),
                         rgb_to_sh0(rgba[:, None, :3]))
    except ValueError as e:
        raise SplatFormatError(f"{path}: {e}") from None


# ----------------------------------------------------------------------------- dispatch
_WRITERS = {".ply": save_ply, ".splat": save_splat}
_READERS = {".ply": load_ply, ".splat": load_splat}


def _suffix(path: PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in _READERS:
        raise ValueError(f"{path}: unknown scene format {suffix!r}; use .ply or .splat")
    return suffix


def save_gaussians(path: PathLike, gaussians: Gaussians) -> None:
    """Write ``gaussians`` in the format named by the suffix (``.ply`` or ``.splat``)."""
    _WRITERS[_suffix(path)](path, gaussians)


def load_gaussians(path: PathLike) -> Gaussians:
    """Read a ``.ply`` or ``.splat`` scene, chosen by the suffix."""
    return _READERS[_suffix(path)](path)


# ----------------------------------------------------------------------------- voxels
def save_voxels(path: PathLike, coords: Tensor, resolution: int, bound: float = 1.0) -> None:
    """Write active voxels (TRELLIS' structure, §4) as a ``.ply`` point cloud any viewer opens:
    one vertex per voxel at its centre ``-bound + (i + ½)·2·bound/R`` (float32 ``x y z``), with its
    integer index (``i j k``, int32) so the grid comes back exactly. The header's comment holds
    ``resolution`` and ``bound``.

    ``coords [N, 3]`` integer indices in ``[0, resolution)``, axes (x, y, z).
    """
    coords = torch.as_tensor(coords)
    if coords.dim() != 2 or coords.shape[1] != 3 or coords.is_floating_point():
        raise ValueError(f"coords must be integer [N, 3], got {coords.dtype} {list(coords.shape)}")
    if len(coords) and (coords.min() < 0 or coords.max() >= resolution):
        raise ValueError(f"voxel indices must lie in [0, {resolution}), got {int(coords.min())}..{int(coords.max())}")
    index = coords.cpu().numpy().astype(np.int32)
    centre = (-bound + (index + 0.5) * 2 * bound / resolution).astype(np.float32)
    rows = np.empty(len(index), dtype=[(n, "<f4") for n in "xyz"] + [(n, "<i4") for n in "ijk"])
    for a, n in enumerate("xyz"):
        rows[n] = centre[:, a]
    for a, n in enumerate("ijk"):
        rows[n] = index[:, a]
    plyfile.PlyData([plyfile.PlyElement.describe(rows, "vertex")], byte_order="<",
                    comments=[f"gsbook voxels resolution {resolution} bound {bound!r}"]).write(str(path))


def load_voxels(path: PathLike) -> tuple[Tensor, int]:
    """Read :func:`save_voxels`' file: ``(coords [N, 3] long, resolution)``."""
    data = plyfile.PlyData.read(str(path), mmap=False)
    comment = next((c for c in data.comments if c.startswith("gsbook voxels")), None)
    if comment is None or "vertex" not in data or not {"i", "j", "k"} <= set(data["vertex"].data.dtype.names):
        raise PlyFormatError(f"{path}: not a gsbook voxel file (no 'gsbook voxels' comment or i j k indices)")
    resolution = int(comment.split()[3])
    rows = data["vertex"].data
    coords = torch.from_numpy(np.stack([rows[n].astype(np.int64) for n in "ijk"], axis=1))
    return coords, resolution
