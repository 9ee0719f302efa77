"""Cameras: one convention for the whole book (taught in §0 and used everywhere after).

**The convention.** The world is right-handed with +y up (as glTF, three.js and LGM).
A camera is a world→camera 4×4 matrix in the OpenCV sense — camera x right, y down,
z forward (looking direction) — plus 3×3 pinhole intrinsics in pixels. That is exactly
what ``gsplat.rasterization`` takes, so both render backends take the same tensors.
Pixel ``(u, v)`` covers ``[u, u+1) × [v, v+1)``; its centre is ``(u + 0.5, v + 0.5)``.

Orbit angles: ``azimuth`` turns about +y, with azimuth 0 on the +z axis looking at the
origin (the object's "front"), and azimuth 90° on the +x axis. ``elevation`` > 0 puts the
camera above the object, looking down. (DreamGaussian's code uses the opposite sign for
elevation; the book's ``orbit`` takes the geometric one.)

OpenGL/Blender cameras (x right, y up, looking down −z, camera→world) convert with
:func:`viewmat_to_opengl_c2w` and :func:`opengl_c2w_to_viewmat`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import resolve_device

__all__ = ["Cameras", "intrinsics_from_fov", "look_at", "orbit_position", "orbit", "four_views", "random_cameras",
           "turntable", "rays_from", "pixel_rays", "plucker_rays", "viewmat_to_opengl_c2w", "opengl_c2w_to_viewmat"]

# OpenCV camera axes → OpenGL camera axes: flip y and z.
_CV_TO_GL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


@dataclass
class Cameras:
    """A batch of C pinhole cameras that share one image size.

    Attributes:
        viewmats: ``[C, 4, 4]`` world→camera (OpenCV axes).
        Ks: ``[C, 3, 3]`` intrinsics in pixels.
        width, height: image size in pixels.
    """

    viewmats: Tensor
    Ks: Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.viewmats.dim() == 2:
            self.viewmats = self.viewmats[None]
        if self.Ks.dim() == 2:
            self.Ks = self.Ks[None]
        c = self.viewmats.shape[0]
        if self.viewmats.shape != (c, 4, 4):
            raise ValueError(f"viewmats must have shape [C, 4, 4], got {list(self.viewmats.shape)}")
        if self.Ks.shape != (c, 3, 3):
            raise ValueError(f"Ks must have shape [{c}, 3, 3] to match viewmats, got {list(self.Ks.shape)}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"image size must be positive, got {self.width}×{self.height}")
        if not (torch.isfinite(self.viewmats).all() and torch.isfinite(self.Ks).all()):
            raise ValueError("camera matrices contain NaN or Inf")
        self.width, self.height = int(self.width), int(self.height)

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    def __getitem__(self, index) -> "Cameras":
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Cameras(self.viewmats[index], self.Ks[index], self.width, self.height)

    @property
    def centers(self) -> Tensor:
        """``[C, 3]`` camera centres in world space: ``-Rᵀ t``."""
        R, t = self.viewmats[:, :3, :3], self.viewmats[:, :3, 3]
        return -(R.transpose(1, 2) @ t[..., None])[..., 0]

    @property
    def c2w(self) -> Tensor:
        """``[C, 4, 4]`` camera→world (OpenCV axes)."""
        return torch.linalg.inv(self.viewmats)

    def to(self, *args, **kwargs) -> "Cameras":
        return Cameras(self.viewmats.to(*args, **kwargs), self.Ks.to(*args, **kwargs),
                       self.width, self.height)

    @staticmethod
    def cat(parts: "list[Cameras]") -> "Cameras":
        sizes = {(p.width, p.height) for p in parts}
        if len(sizes) != 1:
            raise ValueError(f"cameras to concatenate must share one image size, got {sizes}")
        return Cameras(torch.cat([p.viewmats for p in parts]), torch.cat([p.Ks for p in parts]),
                       parts[0].width, parts[0].height)


def intrinsics_from_fov(fovy_deg: float, width: int, height: int, fovx_deg: float | None = None) -> Tensor:
    """Pinhole intrinsics ``[3, 3]`` from the vertical field of view (degrees).

    With ``fovx_deg`` unset the pixels are square (``fx = fy``). The principal point
    is the image centre, ``(width / 2, height / 2)``.
    """
    if not 0 < fovy_deg < 180:
        raise ValueError(f"fovy must lie in (0, 180) degrees, got {fovy_deg}")
    fy = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
    fx = fy if fovx_deg is None else 0.5 * width / math.tan(math.radians(fovx_deg) / 2)
    return torch.tensor([[fx, 0.0, width / 2], [0.0, fy, height / 2], [0.0, 0.0, 1.0]])


def look_at(eye: Tensor, target: Tensor | None = None, up: Tensor | None = None) -> Tensor:
    """World→camera matrices ``[C, 4, 4]`` (OpenCV axes) for cameras at ``eye [C, 3]``
    looking at ``target [C, 3]`` (default origin) with world ``up`` (default +y)."""
    eye = torch.as_tensor(eye, dtype=torch.float32).reshape(-1, 3)
    target = torch.zeros_like(eye) if target is None else torch.as_tensor(target, dtype=eye.dtype).expand_as(eye)
    up = torch.tensor([0.0, 1.0, 0.0]) if up is None else torch.as_tensor(up, dtype=eye.dtype)
    forward = F.normalize(target - eye, dim=-1)                           # camera +z
    right = torch.linalg.cross(forward, up.expand_as(forward))            # camera +x
    # Looking straight up or down: any horizontal right vector will do.
    degenerate = right.norm(dim=-1) < 1e-6
    right[degenerate] = torch.tensor([1.0, 0.0, 0.0])
    right = F.normalize(right, dim=-1)
    down = torch.linalg.cross(forward, right)                             # camera +y
    R = torch.stack([right, down, forward], dim=1)                        # rows: camera axes
    viewmats = torch.zeros(eye.shape[0], 4, 4)
    viewmats[:, :3, :3] = R
    viewmats[:, :3, 3] = -(R @ eye[..., None])[..., 0]
    viewmats[:, 3, 3] = 1
    return viewmats


def orbit_position(elevation_deg: Tensor, azimuth_deg: Tensor, radius: Tensor) -> Tensor:
    """Camera centres ``[C, 3]`` on a sphere: azimuth about +y from +z, elevation up from the xz plane."""
    el, az = torch.deg2rad(elevation_deg), torch.deg2rad(azimuth_deg)
    return torch.stack([radius * torch.cos(el) * torch.sin(az),
                        radius * torch.sin(el),
                        radius * torch.cos(el) * torch.cos(az)], dim=-1)


def _as_batch(*values) -> list[Tensor]:
    tensors = [torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in values]
    c = max(t.numel() for t in tensors)
    for t in tensors:
        if t.numel() not in (1, c):
            raise ValueError(f"orbit arguments must be scalars or share one length, got lengths "
                             f"{[x.numel() for x in tensors]}")
    return [t.expand(c) for t in tensors]


def orbit(elevation_deg: float | Sequence[float] | Tensor, azimuth_deg: float | Sequence[float] | Tensor,
          radius: float | Sequence[float] | Tensor = 2.5, fovy_deg: float = 49.1,
          width: int = 128, height: int = 128, device: str | torch.device | None = None) -> Cameras:
    """Cameras on an orbit around the origin, looking at it, on ``device`` (default: the profile's).

    Each angle may be a scalar or a sequence; the batch size C is the longest length.
    Defaults (radius 2.5, fovy 49.1°) are DreamGaussian's.
    """
    el, az, r = _as_batch(elevation_deg, azimuth_deg, radius)
    if (r <= 0).any():
        raise ValueError("orbit radius must be positive")
    viewmats = look_at(orbit_position(el, az, r))
    K = intrinsics_from_fov(fovy_deg, width, height)
    return Cameras(viewmats, K.expand(len(viewmats), 3, 3).clone(), width, height).to(resolve_device(device))


def four_views(elevation_deg: float = 0.0, radius: float = 2.5, fovy_deg: float = 49.1,
               width: int = 128, height: int = 128, azimuth_offset_deg: float = 0.0,
               device: str | torch.device | None = None) -> Cameras:
    """LGM's four orthogonal views: azimuth 0°, 90°, 180°, 270° (front, right, back, left)."""
    az = torch.tensor([0.0, 90.0, 180.0, 270.0]) + azimuth_offset_deg
    return orbit(elevation_deg, az, radius, fovy_deg, width, height, device)


def random_cameras(n: int, elevation_range: tuple[float, float] = (-30.0, 30.0),
                   azimuth_range: tuple[float, float] = (-180.0, 180.0),
                   radius_range: tuple[float, float] = (2.5, 2.5), fovy_deg: float = 49.1,
                   width: int = 128, height: int = 128,
                   generator: torch.Generator | None = None, device: str | torch.device | None = None) -> Cameras:
    """``n`` cameras with angles uniform in the given ranges (DreamGaussian's defaults:
    elevation ±30°, full azimuth, radius 2.5, fovy 49.1°). The angles are drawn on the CPU
    with ``generator``, so a seed gives the same cameras on every device."""
    if n <= 0:
        raise ValueError(f"need at least one camera, got n={n}")
    u = torch.rand(3, n, generator=generator)
    el = elevation_range[0] + u[0] * (elevation_range[1] - elevation_range[0])
    az = azimuth_range[0] + u[1] * (azimuth_range[1] - azimuth_range[0])
    r = radius_range[0] + u[2] * (radius_range[1] - radius_range[0])
    return orbit(el, az, r, fovy_deg, width, height, device)


def turntable(n: int = 8, elevation_deg: float | Sequence[float] = (15.0, 30.0), radius: float = 2.5,
              fovy_deg: float = 49.1, width: int = 64, height: int = 64,
              device: str | torch.device | None = None) -> Cameras:
    """``n`` cameras at azimuths ``0, 360/n, …`` looking at the origin, the views every generator
    in the book is judged from. ``elevation_deg`` is one angle or a cycle of angles (default:
    15° and 30° in turn, so half the views look down more steeply)."""
    if n <= 0:
        raise ValueError(f"need at least one camera, got n={n}")
    cycle = [float(elevation_deg)] if isinstance(elevation_deg, (int, float)) else [float(e) for e in elevation_deg]
    elevations = [cycle[i % len(cycle)] for i in range(n)]
    azimuths = [360.0 * i / n for i in range(n)]
    return orbit(elevations, azimuths, radius, fovy_deg, width, height, device)


def rays_from(viewmats: Tensor, Ks: Tensor, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Rays through pixel centres of cameras given as tensors: world-space origins and unit
    directions, each ``[C, H, W, 3]``. ``viewmats [C, 4, 4]`` world→camera (OpenCV), ``Ks [C, 3, 3]``."""
    if viewmats.ndim != 3 or viewmats.shape[-2:] != (4, 4) or Ks.shape != (viewmats.shape[0], 3, 3):
        raise ValueError(f"viewmats must be [C, 4, 4] and Ks [C, 3, 3]; got {tuple(viewmats.shape)}, "
                         f"{tuple(Ks.shape)}")
    dtype, dev = viewmats.dtype, viewmats.device
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=dev) + 0.5,
                          torch.arange(width, dtype=dtype, device=dev) + 0.5, indexing="ij")
    x = (u[None] - Ks[:, 0, 2, None, None]) / Ks[:, 0, 0, None, None]
    y = (v[None] - Ks[:, 1, 2, None, None]) / Ks[:, 1, 1, None, None]
    dirs_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)            # [C, H, W, 3]
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
    dirs = F.normalize(torch.einsum("cji,chwj->chwi", R, dirs_cam), dim=-1)  # Rᵀ d
    origins = -torch.einsum("cji,cj->ci", R, t)                              # −Rᵀ t: the camera centre
    return origins[:, None, None, :].expand_as(dirs), dirs


def pixel_rays(cameras: Cameras) -> tuple[Tensor, Tensor]:
    """Per-pixel rays through pixel centres: origins and unit directions, each ``[C, H, W, 3]``."""
    return rays_from(cameras.viewmats, cameras.Ks, cameras.width, cameras.height)


def plucker_rays(cameras: Cameras) -> Tensor:
    """Plücker ray embedding ``[C, H, W, 6]`` = (o × d, d), in LGM's order.

    A ray is a line, and (moment, direction) describes it independent of where along
    the line the origin sits; LGM concatenates it to each input view's RGB.
    """
    o, d = pixel_rays(cameras)
    return torch.cat([torch.linalg.cross(o, d), d], dim=-1)


def viewmat_to_opengl_c2w(viewmats: Tensor) -> Tensor:
    """World→camera (OpenCV) ``[..., 4, 4]`` → camera→world (OpenGL axes) ``[..., 4, 4]``."""
    return torch.linalg.inv(viewmats) @ _CV_TO_GL.to(viewmats)


def opengl_c2w_to_viewmat(c2w: Tensor) -> Tensor:
    """Camera→world (OpenGL axes: y up, looking down −z) ``[..., 4, 4]`` → world→camera (OpenCV)."""
    return torch.linalg.inv(c2w @ _CV_TO_GL.to(c2w))
