"""3D and 2D Gaussians: raw parameters, activations, spherical harmonics, initialisations.

Taught in §0 ("why 3DGS") and §2 (DreamGaussian's initialisation).

A 3D Gaussian scene is a set of N primitives, each with

* a mean ``μ ∈ R³``,
* a rotation as a unit quaternion ``q = (w, x, y, z)``,
* per-axis scales ``s ∈ R³₊`` (stored as ``log s`` so that optimisation stays positive),
* an opacity ``o ∈ (0, 1)`` (stored as the logit),
* a colour as spherical-harmonic (SH) coefficients ``[K, 3]`` with ``K = (degree + 1)²``.

Raw parameters are what an optimiser updates and what a ``.ply`` file stores; the
*activated* values (``scales``, ``opacities``, unit ``quats``) are what the renderer takes.
Naming and SH conventions follow the 3DGS reference code and gsplat (``sh0``/``shN``,
``rgb = C0 · sh_dc + 0.5``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import resolve_device

__all__ = ["SH_C0", "check_tensor", "sh_degree_from_count", "rgb_to_sh0", "sh0_to_rgb", "quat_to_rotmat",
           "rotmat_to_quat", "covariances", "eval_sh", "Gaussians", "knn_mean_distance", "from_points", "init_ball",
           "from_mesh", "quats_from_normals", "Gaussians2D"]

# The constant of the degree-0 real spherical harmonic, 1 / (2√π).
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005,
         -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


# ----------------------------------------------------------------------------- validation
def check_tensor(name: str, value: Tensor, shape: tuple, *, floating: bool = True) -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is a finite tensor of ``shape``.

    ``shape`` may hold ``None`` for a free dimension, e.g. ``(None, 3)``.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
    if value.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, value.shape)):
        raise ValueError(f"{name} must have shape {want}, got {list(value.shape)}")
    if floating and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if floating and not torch.isfinite(value).all():
        bad = (~torch.isfinite(value)).nonzero()[0].tolist()
        kind = "NaN" if torch.isnan(value).any() else "Inf"
        raise ValueError(f"{name} contains {kind} values (first at index {bad})")


def sh_degree_from_count(k: int) -> int:
    """The SH degree whose basis has ``k = (degree + 1)²`` functions (degree 0–3)."""
    for degree in range(4):
        if (degree + 1) ** 2 == k:
            return degree
    raise ValueError(f"an SH colour needs 1, 4, 9 or 16 coefficients (degree 0–3), got {k}")


def rgb_to_sh0(rgb: Tensor) -> Tensor:
    """RGB in [0, 1] → the degree-0 SH coefficient that renders as that colour."""
    return (rgb - 0.5) / SH_C0


def sh0_to_rgb(sh0: Tensor) -> Tensor:
    """Degree-0 SH coefficient → RGB (before clamping)."""
    return sh0 * SH_C0 + 0.5


# ----------------------------------------------------------------------------- rotations
def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Quaternions ``[..., 4]`` (w, x, y, z; need not be unit) → rotation matrices ``[..., 3, 3]``."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(quats.shape[:-1] + (3, 3))


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` → unit quaternions ``[..., 4]`` (w, x, y, z), w ≥ 0."""
    m = R.reshape(-1, 3, 3)
    # Shepperd's method: pick the largest of the four squared components for stability.
    t = torch.stack([
        1 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2],
        1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
        1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2],
        1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2],
    ], dim=-1)
    best = t.argmax(-1)
    q = torch.empty(m.shape[0], 4, dtype=R.dtype, device=R.device)
    s = torch.sqrt(t.gather(1, best[:, None]).clamp_min(1e-12))[:, 0] * 2  # 4·|component|
    for k in range(4):
        i = best == k
        if not i.any():
            continue
        mi, si = m[i], s[i]
        if k == 0:
            q[i] = torch.stack([si / 4, (mi[:, 2, 1] - mi[:, 1, 2]) / si,
                                (mi[:, 0, 2] - mi[:, 2, 0]) / si, (mi[:, 1, 0] - mi[:, 0, 1]) / si], -1)
        elif k == 1:
            q[i] = torch.stack([(mi[:, 2, 1] - mi[:, 1, 2]) / si, si / 4,
                                (mi[:, 0, 1] + mi[:, 1, 0]) / si, (mi[:, 0, 2] + mi[:, 2, 0]) / si], -1)
        elif k == 2:
            q[i] = torch.stack([(mi[:, 0, 2] - mi[:, 2, 0]) / si, (mi[:, 0, 1] + mi[:, 1, 0]) / si,
                                si / 4, (mi[:, 1, 2] + mi[:, 2, 1]) / si], -1)
        else:
            q[i] = torch.stack([(mi[:, 1, 0] - mi[:, 0, 1]) / si, (mi[:, 0, 2] + mi[:, 2, 0]) / si,
                                (mi[:, 1, 2] + mi[:, 2, 1]) / si, si / 4], -1)
    q = torch.where(q[:, :1] < 0, -q, q)
    return F.normalize(q, dim=-1).reshape(R.shape[:-2] + (4,))


def covariances(quats: Tensor, scales: Tensor) -> Tensor:
    """Σ = R S Sᵀ Rᵀ from quaternions ``[..., 4]`` and scales ``[..., 3]`` → ``[..., 3, 3]``."""
    M = quat_to_rotmat(quats) * scales[..., None, :]
    return M @ M.transpose(-1, -2)


# ----------------------------------------------------------------------------- SH
def eval_sh(sh: Tensor, dirs: Tensor, degree: int | None = None) -> Tensor:
    """Evaluate real spherical harmonics: ``sh [..., K, D]``, ``dirs [..., 3]`` → ``[..., D]``.

    ``dirs`` need not be unit length. Uses the basis and sign convention of the 3DGS
    reference implementation (and gsplat), so coefficients move between them unchanged.
    The result is the raw SH value; the renderer adds 0.5 and clamps at 0, as gsplat does.
    """
    K = sh.shape[-2]
    degree = sh_degree_from_count(K) if degree is None else degree
    if (degree + 1) ** 2 > K:
        raise ValueError(f"SH degree {degree} needs {(degree + 1) ** 2} coefficients, got {K}")
    d = F.normalize(dirs, dim=-1)
    x, y, z = d[..., 0:1], d[..., 1:2], d[..., 2:3]
    out = SH_C0 * sh[..., 0, :]
    if degree >= 1:
        out = out - SH_C1 * y * sh[..., 1, :] + SH_C1 * z * sh[..., 2, :] - SH_C1 * x * sh[..., 3, :]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out = (out + SH_C2[0] * xy * sh[..., 4, :] + SH_C2[1] * yz * sh[..., 5, :]
               + SH_C2[2] * (2 * zz - xx - yy) * sh[..., 6, :]
               + SH_C2[3] * xz * sh[..., 7, :] + SH_C2[4] * (xx - yy) * sh[..., 8, :])
    if degree >= 3:
        out = (out + SH_C3[0] * y * (3 * xx - yy) * sh[..., 9, :]
               + SH_C3[1] * xy * z * sh[..., 10, :]
               + SH_C3[2] * y * (4 * zz - xx - yy) * sh[..., 11, :]
               + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[..., 12, :]
               + SH_C3[4] * x * (4 * zz - xx - yy) * sh[..., 13, :]
               + SH_C3[5] * z * (xx - yy) * sh[..., 14, :]
               + SH_C3[6] * x * (xx - 3 * yy) * sh[..., 15, :])
    return out


# ----------------------------------------------------------------------------- 3D Gaussians
@dataclass
class Gaussians:
    """A 3D Gaussian scene in raw (optimisable) parameters.

    Attributes:
        means: ``[N, 3]`` centres in world space.
        quats: ``[N, 4]`` rotations as quaternions (w, x, y, z); normalised when used.
        log_scales: ``[N, 3]`` natural log of the per-axis standard deviations.
        opacity_logits: ``[N]`` logit of the opacity.
        sh: ``[N, K, 3]`` SH colour coefficients, ``K = (degree + 1)²`` with degree 0–3.
    """

    means: Tensor
    quats: Tensor
    log_scales: Tensor
    opacity_logits: Tensor
    sh: Tensor

    def __post_init__(self) -> None:
        check_tensor("means", self.means, (None, 3))
        n = self.means.shape[0]
        check_tensor("quats", self.quats, (n, 4))
        check_tensor("log_scales", self.log_scales, (n, 3))
        check_tensor("opacity_logits", self.opacity_logits, (n,))
        check_tensor("sh", self.sh, (n, None, 3))
        sh_degree_from_count(self.sh.shape[1])
        dtypes = {f.name: getattr(self, f.name).dtype for f in fields(self)}
        if len(set(dtypes.values())) > 1:
            raise ValueError(f"all parameters must share one dtype, got {dtypes}")
        devices = {f.name: str(getattr(self, f.name).device) for f in fields(self)}
        if len(set(devices.values())) > 1:
            raise ValueError(f"all parameters must be on one device, got {devices}")
        if (self.quats.detach().norm(dim=-1) < 1e-8).any():
            raise ValueError("quats contains a zero quaternion, which is no rotation")

    # --- activated views -------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of Gaussians."""
        return self.means.shape[0]

    def __len__(self) -> int:
        return self.n

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_count(self.sh.shape[1])

    @property
    def scales(self) -> Tensor:
        """``[N, 3]`` per-axis standard deviations, ``exp(log_scales)``."""
        return self.log_scales.exp()

    @property
    def opacities(self) -> Tensor:
        """``[N]`` opacities in (0, 1), ``sigmoid(opacity_logits)``."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def unit_quats(self) -> Tensor:
        """``[N, 4]`` normalised quaternions."""
        return F.normalize(self.quats, dim=-1)

    @property
    def rotmats(self) -> Tensor:
        """``[N, 3, 3]`` rotation matrices."""
        return quat_to_rotmat(self.quats)

    @property
    def covariances(self) -> Tensor:
        """``[N, 3, 3]`` world-space covariances ``R S² Rᵀ``."""
        return covariances(self.quats, self.scales)

    @property
    def rgb(self) -> Tensor:
        """``[N, 3]`` view-independent colour from the DC coefficient, clamped to [0, 1]."""
        return sh0_to_rgb(self.sh[:, 0]).clamp(0, 1)

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def colors(self, viewdirs: Tensor) -> Tensor:
        """View-dependent colour ``[..., N, 3]`` for directions ``[..., N, 3]`` (camera → point)."""
        return (eval_sh(self.sh, viewdirs) + 0.5).clamp_min(0)

    # --- conversions -----------------------------------------------------------------
    @classmethod
    def from_activated(cls, means: Tensor, scales: Tensor, opacities: Tensor, rgb: Tensor,
                       quats: Tensor | None = None, sh_degree: int = 0) -> "Gaussians":
        """Build from activated values: ``scales [N,3] > 0``, ``opacities [N] ∈ (0,1)``, ``rgb [N,3]``.

        Higher SH bands (when ``sh_degree > 0``) start at zero, i.e. view-independent.
        """
        check_tensor("means", means, (None, 3))
        n = means.shape[0]
        check_tensor("scales", scales, (n, 3))
        check_tensor("opacities", opacities, (n,))
        check_tensor("rgb", rgb, (n, 3))
        if (scales <= 0).any():
            raise ValueError("scales must be positive (they are standard deviations)")
        if ((opacities <= 0) | (opacities >= 1)).any():
            raise ValueError("opacities must lie strictly between 0 and 1")
        if quats is None:
            quats = torch.zeros(n, 4, dtype=means.dtype, device=means.device)
            quats[:, 0] = 1
        sh = torch.zeros(n, (sh_degree + 1) ** 2, 3, dtype=means.dtype, device=means.device)
        sh[:, 0] = rgb_to_sh0(rgb)
        return cls(means, quats, scales.log(), torch.logit(opacities), sh)

    def params(self) -> dict[str, Tensor]:
        """Raw parameters under gsplat's names (``means, quats, scales, opacities, sh0, shN``),
        as gsplat's densification strategies and exporter expect (``scales`` are log-scales,
        ``opacities`` logits)."""
        return {"means": self.means, "quats": self.quats, "scales": self.log_scales,
                "opacities": self.opacity_logits, "sh0": self.sh[:, :1], "shN": self.sh[:, 1:]}

    @classmethod
    def from_params(cls, params: dict[str, Tensor]) -> "Gaussians":
        """Inverse of :meth:`params` (accepts a ``torch.nn.ParameterDict``)."""
        sh = torch.cat([params["sh0"], params["shN"]], dim=1)
        return cls(params["means"], params["quats"], params["scales"], params["opacities"], sh)

    def parameter_dict(self) -> torch.nn.ParameterDict:
        """A ``torch.nn.ParameterDict`` of detached copies that require grad, for optimisers."""
        return torch.nn.ParameterDict(
            {k: torch.nn.Parameter(v.detach().clone()) for k, v in self.params().items()})

    def detach(self) -> "Gaussians":
        return Gaussians(*(getattr(self, f.name).detach() for f in fields(self)))

    def requires_grad_(self, flag: bool = True) -> "Gaussians":
        """Make every raw parameter a leaf that collects gradients (in place); returns self."""
        for f in fields(self):
            getattr(self, f.name).requires_grad_(flag)
        return self

    def to(self, *args, **kwargs) -> "Gaussians":
        return Gaussians(*(getattr(self, f.name).to(*args, **kwargs) for f in fields(self)))

    def __getitem__(self, index) -> "Gaussians":
        """Select Gaussians by index, slice or boolean mask."""
        return Gaussians(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def cat(parts: "list[Gaussians]") -> "Gaussians":
        """Concatenate scenes (all must have the same SH degree)."""
        return Gaussians(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(Gaussians)))

    def __repr__(self) -> str:
        return (f"Gaussians(n={self.n}, sh_degree={self.sh_degree}, dtype={self.dtype}, "
                f"device={self.device})")


# ----------------------------------------------------------------------------- initialisations
def knn_mean_distance(points: Tensor, k: int = 3, chunk: int = 4096) -> Tensor:
    """Mean distance from each point ``[N, 3]`` to its ``k`` nearest neighbours → ``[N]``.

    The 3DGS reference initialises each Gaussian's scale this way. Computed in chunks so
    that memory stays ``O(chunk · N)``.
    """
    n = points.shape[0]
    if n <= k:
        raise ValueError(f"need more than k={k} points to find {k} neighbours, got {n}")
    out = []
    for start in range(0, n, chunk):
        d2 = torch.cdist(points[start:start + chunk], points).square()
        nearest = d2.topk(k + 1, dim=1, largest=False).values[:, 1:]  # drop the point itself
        out.append(nearest.clamp_min(1e-12).sqrt().mean(dim=1))
    return torch.cat(out)


def from_points(points: Tensor, rgb: Tensor | None = None, opacity: float = 0.1,
                sh_degree: int = 0, scale_factor: float = 1.0) -> Gaussians:
    """Isotropic Gaussians at ``points [N, 3]``, scaled by the mean distance to the 3 nearest
    neighbours (the 3DGS initialisation). ``rgb [N, 3]`` defaults to grey."""
    check_tensor("points", points, (None, 3))
    n = points.shape[0]
    if rgb is None:
        rgb = torch.full((n, 3), 0.5, dtype=points.dtype, device=points.device)
    scale = knn_mean_distance(points).clamp_min(1e-7) * scale_factor
    opac = torch.full((n,), opacity, dtype=points.dtype, device=points.device)
    return Gaussians.from_activated(points, scale[:, None].expand(n, 3).contiguous(), opac, rgb,
                                    sh_degree=sh_degree)


def init_ball(n: int = 5000, radius: float = 0.5, opacity: float = 0.1, rgb: float = 0.5,
              sh_degree: int = 0, generator: torch.Generator | None = None,
              device: str | torch.device | None = None) -> Gaussians:
    """DreamGaussian's initialisation: ``n`` points uniform in a ball of ``radius``, grey,
    opacity 0.1, isotropic scales from the mean distance to the 3 nearest neighbours; on
    ``device`` (default: the profile's). The points are drawn on the CPU with ``generator``,
    so a seed gives the same ball on every device."""
    if n < 4:
        raise ValueError(f"init_ball needs at least 4 points, got n={n}")
    direction = F.normalize(torch.randn(n, 3, generator=generator), dim=-1)
    r = radius * torch.rand(n, 1, generator=generator).pow(1 / 3)  # uniform in volume
    points = (direction * r).to(resolve_device(device))
    return from_points(points, torch.full((n, 3), rgb, device=points.device), opacity=opacity, sh_degree=sh_degree)


def from_mesh(vertices: Tensor, faces: Tensor, n: int, rgb: Tensor | None = None,
              opacity: float = 0.9, thickness: float = 0.1,
              generator: torch.Generator | None = None) -> Gaussians:
    """``n`` flat Gaussians sampled on a triangle mesh, lying in the surface.

    Points are drawn area-uniformly; each Gaussian's two in-plane scales come from the
    sample spacing ``sqrt(area / n)`` and its normal-direction scale is ``thickness`` times
    that, so the splats tile the surface like scales on a fish.

    Args:
        vertices: ``[V, 3]``; faces: ``[F, 3]`` integer vertex indices.
        rgb: per-face colours ``[F, 3]`` (default grey).
    """
    check_tensor("vertices", vertices, (None, 3))
    check_tensor("faces", faces, (None, 3), floating=False)
    v0, v1, v2 = (vertices[faces[:, i]] for i in range(3))
    cross = torch.linalg.cross(v1 - v0, v2 - v0)
    area = 0.5 * cross.norm(dim=-1)
    if area.sum() <= 0:
        raise ValueError("the mesh has zero surface area")
    face = torch.multinomial(area, n, replacement=True, generator=generator)
    u, v = torch.rand(2, n, 1, generator=generator, dtype=vertices.dtype)
    flip = (u + v) > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    points = v0[face] + u * (v1[face] - v0[face]) + v * (v2[face] - v0[face])
    normal = F.normalize(cross[face], dim=-1)
    spacing = math.sqrt(float(area.sum()) / n)
    scales = torch.tensor([spacing, spacing, spacing * thickness], dtype=vertices.dtype)
    quats = quats_from_normals(normal)
    colours = (torch.full((len(faces), 3), 0.5, dtype=vertices.dtype) if rgb is None else rgb)[face]
    opac = torch.full((n,), opacity, dtype=vertices.dtype)
    return Gaussians.from_activated(points, scales.expand(n, 3).contiguous(), opac, colours, quats)


def quats_from_normals(normals: Tensor) -> Tensor:
    """Quaternions ``[N, 4]`` rotating the local z axis onto unit ``normals [N, 3]``."""
    z = torch.zeros_like(normals)
    z[:, 2] = 1
    axis = torch.linalg.cross(z, normals)
    cos = (normals * z).sum(-1, keepdim=True)
    # Half-angle form: q = (1 + cos, axis) normalised; the antipodal case picks the x axis.
    q = torch.cat([1 + cos, axis], dim=-1)
    antipodal = (1 + cos[:, 0]) < 1e-8
    q[antipodal] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=normals.dtype)
    return F.normalize(q, dim=-1)


# ----------------------------------------------------------------------------- 2D Gaussians
@dataclass
class Gaussians2D:
    """Gaussians on an image plane, for the 2D figures (§1's SDS loop, §2's convergence).

    Attributes:
        means: ``[N, 2]`` centres in pixels (x right, y down; pixel centres at +0.5).
        log_scales: ``[N, 2]`` log standard deviations along the rotated axes, in pixels.
        rotations: ``[N]`` angle of the first axis, radians.
        opacity_logits: ``[N]``.
        colors: ``[N, D]`` colours (raw; the figures keep them in [0, 1]).
    """

    means: Tensor
    log_scales: Tensor
    rotations: Tensor
    opacity_logits: Tensor
    colors: Tensor

    def __post_init__(self) -> None:
        check_tensor("means", self.means, (None, 2))
        n = self.means.shape[0]
        check_tensor("log_scales", self.log_scales, (n, 2))
        check_tensor("rotations", self.rotations, (n,))
        check_tensor("opacity_logits", self.opacity_logits, (n,))
        check_tensor("colors", self.colors, (n, None))

    @property
    def n(self) -> int:
        return self.means.shape[0]

    def __len__(self) -> int:
        return self.n

    @property
    def scales(self) -> Tensor:
        return self.log_scales.exp()

    @property
    def opacities(self) -> Tensor:
        return torch.sigmoid(self.opacity_logits)

    @classmethod
    def random(cls, n: int, width: int, height: int, channels: int = 3, scale: float | None = None,
               opacity: float = 0.5, generator: torch.Generator | None = None,
               device: str | torch.device | None = None) -> "Gaussians2D":
        """``n`` random Gaussians spread over a ``width × height`` image (drawn on the CPU with
        ``generator``, then moved to ``device``, default the profile's)."""
        means = torch.rand(n, 2, generator=generator) * torch.tensor([width, height])
        s = scale if scale is not None else 0.5 * math.sqrt(width * height / n)
        log_scales = torch.full((n, 2), math.log(s)) + 0.2 * torch.randn(n, 2, generator=generator)
        rotations = torch.rand(n, generator=generator) * math.pi
        logits = torch.full((n,), math.log(opacity / (1 - opacity)))
        colors = torch.rand(n, channels, generator=generator)
        return cls(means, log_scales, rotations, logits, colors).to(resolve_device(device))

    def to(self, *args, **kwargs) -> "Gaussians2D":
        return Gaussians2D(*(t.to(*args, **kwargs) for t in self.parameters()))

    def parameters(self) -> list[Tensor]:
        return [self.means, self.log_scales, self.rotations, self.opacity_logits, self.colors]

    def requires_grad_(self, flag: bool = True) -> "Gaussians2D":
        for p in self.parameters():
            p.requires_grad_(flag)
        return self
