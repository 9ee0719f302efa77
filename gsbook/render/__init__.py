"""Differentiable rendering of Gaussians (taught in §0; used by every later chapter).

* :func:`rasterize` — gsplat's ``rasterization`` contract on plain tensors, with two
  backends: ``"torch"`` (the book's pure-PyTorch reference, CPU or GPU) and ``"gsplat"``
  (CUDA kernels). ``"auto"`` picks gsplat when the tensors are on CUDA and gsplat works.
* :func:`render` — the same for a :class:`~gsbook.gaussians.Gaussians` and
  :class:`~gsbook.cameras.Cameras`, returning named images.
* :func:`splat2d` — 2D Gaussians straight onto an image, for the 2D figures.

The pieces of the torch backend live in :mod:`.project` (EWA projection),
:mod:`.compositing` (fast compositing with a hand-written backward) and :mod:`.dense`
(the plain every-pixel-against-every-Gaussian reference).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..cameras import Cameras
from ..gaussians import Gaussians, check_tensor, covariances, eval_sh
from .compositing import composite, depth_order, list_pairs  # noqa: F401  (re-exported)
from .dense import composite_dense
from .project import Projection, project  # noqa: F401

RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]
Backend = Literal["auto", "torch", "gsplat", "dense"]
__all__ = ["rasterize", "render", "splat2d", "RenderOutput", "project", "gsplat_available"]


@functools.lru_cache(maxsize=1)
def gsplat_available() -> bool:
    """True when CUDA is present and gsplat's CUDA kernels load."""
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat.cuda._backend import _C  # compiles the kernels on first use
        return _C is not None
    except Exception:  # noqa: BLE001 — any failure means "not available"
        return False


def _resolve_backend(backend: Backend, device: torch.device) -> str:
    if backend == "auto":
        return "gsplat" if device.type == "cuda" and gsplat_available() else "torch"
    if backend == "gsplat":
        if device.type != "cuda":
            raise ValueError("backend='gsplat' needs CUDA tensors; use backend='torch' on the CPU")
        if not gsplat_available():
            raise RuntimeError("backend='gsplat' needs gsplat with working CUDA kernels "
                               "(pip install gsplat==1.5.3; see README, 'CPU and GPU installs')")
    elif backend not in ("torch", "dense"):
        raise ValueError(f"unknown backend {backend!r}; choose 'auto', 'torch', 'gsplat' or 'dense'")
    return backend


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                  backgrounds):
    check_tensor("means", means, (None, 3))
    n = means.shape[0]
    check_tensor("quats", quats, (n, 4))
    check_tensor("scales", scales, (n, 3))
    check_tensor("opacities", opacities, (n,))
    check_tensor("viewmats", viewmats, (None, 4, 4))
    c = viewmats.shape[0]
    check_tensor("Ks", Ks, (c, 3, 3))
    if sh_degree is None:
        if colors.dim() == 2:
            check_tensor("colors", colors, (n, None))
        else:
            check_tensor("colors", colors, (c, n, None))
    else:
        check_tensor("colors (SH coefficients)", colors, (n, None, 3))
        if (sh_degree + 1) ** 2 > colors.shape[1]:
            raise ValueError(f"sh_degree={sh_degree} needs {(sh_degree + 1) ** 2} SH coefficients, "
                             f"colors has {colors.shape[1]}")
    if backgrounds is not None:
        check_tensor("backgrounds", backgrounds, (c, None))
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"image size must be positive, got {width}×{height}")
    if (scales <= 0).any():
        raise ValueError("scales must be positive: pass activated scales, exp(log_scales)")
    if ((opacities < 0) | (opacities > 1)).any():
        raise ValueError("opacities must lie in [0, 1]: pass activated opacities, sigmoid(logits)")


def rasterize(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
              viewmats: Tensor, Ks: Tensor, width: int, height: int, near_plane: float = 0.01,
              far_plane: float = 1e10, eps2d: float = 0.3, sh_degree: int | None = None,
              backgrounds: Tensor | None = None, render_mode: RenderMode = "RGB",
              rasterize_mode: Literal["classic", "antialiased"] = "classic",
              backend: Backend = "auto") -> tuple[Tensor, Tensor, dict]:
    """Render N Gaussians into C cameras, as ``gsplat.rasterization`` does.

    Args:
        means: ``[N, 3]``; quats ``[N, 4]`` (w, x, y, z); scales ``[N, 3]`` (activated);
            opacities ``[N]`` (activated).
        colors: ``[N, D]`` or per camera ``[C, N, D]``; with ``sh_degree`` set, SH
            coefficients ``[N, K, 3]`` evaluated toward each camera (``+0.5``, clamped at 0).
        viewmats: ``[C, 4, 4]`` world→camera (OpenCV); Ks ``[C, 3, 3]``.
        backgrounds: ``[C, D]`` colours behind the Gaussians (default none, i.e. black).
        render_mode: ``"RGB"``; ``"D"``/``"ED"`` accumulated/expected depth; or both.
        rasterize_mode: ``"classic"`` (3DGS) or ``"antialiased"``, which scales each
            opacity by how much the ``eps2d`` low-pass widened its splat, so that thin or
            distant Gaussians do not grow fat (Mip-Splatting's 2D filter, as in gsplat).
        backend: ``"auto"``, ``"torch"``, ``"gsplat"``; ``"dense"`` is the slow reference.

    Returns:
        ``(colors [C, H, W, D'], alphas [C, H, W, 1], info)``. ``info`` has gsplat's keys
        (``means2d`` — whose ``.grad`` drives densification — ``radii [C, N, 2]``,
        ``depths``, ``conics``, ``opacities``, ``width``, ``height``, ``n_cameras``, …); the
        book's backends add ``n_pairs``, the (pixel, Gaussian) pairs composited: their work.
    """
    if render_mode not in ("RGB", "D", "ED", "RGB+D", "RGB+ED"):
        raise ValueError(f"unknown render_mode {render_mode!r}")
    if rasterize_mode not in ("classic", "antialiased"):
        raise ValueError(f"unknown rasterize_mode {rasterize_mode!r}; choose 'classic' or 'antialiased'")
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                  backgrounds)
    backend = _resolve_backend(backend, means.device)
    if backend == "gsplat":
        from gsplat import rasterization
        return rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                             near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
                             sh_degree=sh_degree, backgrounds=backgrounds, render_mode=render_mode,
                             rasterize_mode=rasterize_mode, packed=False)

    C, N = viewmats.shape[0], means.shape[0]
    proj = project(means, covariances(quats, scales), viewmats, Ks, width, height,
                   eps2d=eps2d, near_plane=near_plane, far_plane=far_plane)
    if sh_degree is not None:
        campos = torch.linalg.inv(viewmats)[:, :3, 3]                       # [C, 3]
        dirs = means[None] - campos[:, None]                                # [C, N, 3]
        coeffs = colors[:, : (sh_degree + 1) ** 2]
        colors = (eval_sh(coeffs.expand(C, *coeffs.shape), dirs, sh_degree) + 0.5).clamp_min(0)
    elif colors.dim() == 2:
        colors = colors.expand(C, *colors.shape)
    if render_mode in ("RGB+D", "RGB+ED"):
        colors = torch.cat([colors, proj.depths[..., None]], dim=-1)
        if backgrounds is not None:
            backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(C, 1)], dim=-1)
    elif render_mode in ("D", "ED"):
        colors = proj.depths[..., None]
        backgrounds = None if backgrounds is None else backgrounds.new_zeros(C, 1)

    visible = (proj.radii > 0).all(dim=-1)
    opac = opacities.expand(C, N)
    if rasterize_mode == "antialiased":
        opac = opac * proj.compensations
    stats = {}
    if backend == "dense":
        image, alpha = composite_dense(proj.means2d, proj.conics, opac, colors, proj.depths,
                                       visible, width, height, backgrounds)
        stats["n_pairs"] = int(visible.sum()) * width * height       # every pixel meets every visible Gaussian
    else:
        image, alpha = composite(proj.means2d, proj.conics, opac, colors, depth_order(proj.depths),
                                 visible, width, height, backgrounds, stats)
    if render_mode in ("ED", "RGB+ED"):
        image = torch.cat([image[..., :-1], image[..., -1:] / alpha.clamp_min(1e-10)], dim=-1)

    info = {
        "batch_ids": None, "camera_ids": None, "gaussian_ids": None,
        "radii": proj.radii, "means2d": proj.means2d, "depths": proj.depths,
        "conics": proj.conics, "opacities": opac,
        "width": width, "height": height, "n_cameras": C, "n_batches": 1, "tile_size": 1,
        "n_pairs": stats["n_pairs"],
    }
    return image, alpha, info


@dataclass
class RenderOutput:
    """Named results of :func:`render`."""

    image: Tensor            # [C, H, W, 3]
    alpha: Tensor            # [C, H, W, 1]
    depth: Tensor | None     # [C, H, W, 1] expected depth, when asked for
    info: dict


def _background_tensor(background, cameras: int, channels: int, like: Tensor) -> Tensor | None:
    if background is None:
        return None
    bg = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    if bg.dim() == 0:
        bg = bg.expand(channels)
    if bg.dim() == 1:
        bg = bg.expand(cameras, channels)
    return bg


def render(gaussians: Gaussians, cameras: Cameras, background=(1.0, 1.0, 1.0), depth: bool = False,
           view_dependent: bool = True, backend: Backend = "auto", **kwargs) -> RenderOutput:
    """Render a :class:`Gaussians` scene from :class:`Cameras`.

    Args:
        background: a colour (3 numbers or one grey level), ``[C, 3]`` per camera, or None.
        depth: also return the expected depth ``[C, H, W, 1]``.
        view_dependent: evaluate SH toward each camera (else only the DC colour).
        kwargs: passed to :func:`rasterize` (``near_plane``, ``eps2d``, …).
    """
    cams = cameras.to(device=gaussians.device, dtype=gaussians.dtype)
    if view_dependent and gaussians.sh_degree > 0:
        colors, sh_degree = gaussians.sh, gaussians.sh_degree
    else:
        colors, sh_degree = gaussians.rgb, None
    bg = _background_tensor(background, len(cams), 3, gaussians.means)
    image, alpha, info = rasterize(
        gaussians.means, gaussians.unit_quats, gaussians.scales, gaussians.opacities, colors,
        cams.viewmats, cams.Ks, cams.width, cams.height, sh_degree=sh_degree, backgrounds=bg,
        render_mode="RGB+ED" if depth else "RGB", backend=backend, **kwargs)
    if depth:
        return RenderOutput(image[..., :3], alpha, image[..., 3:], info)
    return RenderOutput(image, alpha, None, info)


def splat2d(means: Tensor, scales: Tensor, rotations: Tensor, opacities: Tensor, colors: Tensor,
            width: int, height: int, background: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Differentiable 2D Gaussians composited onto one image, first Gaussian in front.

    Args:
        means: ``[N, 2]`` centres in pixels (x right, y down).
        scales: ``[N, 2]`` standard deviations in pixels along the rotated axes.
        rotations: ``[N]`` angle of the first axis from +x, radians.
        opacities: ``[N]`` in [0, 1]; colors ``[N, D]``.
        background: ``[D]`` colour behind the Gaussians (default none, i.e. zeros).

    Returns:
        ``image [H, W, D]`` and ``alpha [H, W, 1]``.
    """
    check_tensor("means", means, (None, 2))
    n = means.shape[0]
    check_tensor("scales", scales, (n, 2))
    check_tensor("rotations", rotations, (n,))
    check_tensor("opacities", opacities, (n,))
    check_tensor("colors", colors, (n, None))
    if (scales <= 0).any():
        raise ValueError("scales must be positive standard deviations (pixels)")
    cos, sin = torch.cos(rotations), torch.sin(rotations)
    R = torch.stack([cos, -sin, sin, cos], -1).reshape(n, 2, 2)
    cov = R @ torch.diag_embed(scales**2) @ R.transpose(1, 2)
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] * cov[:, 1, 0]
    conics = torch.stack([cov[:, 1, 1] / det, -cov[:, 0, 1] / det, cov[:, 0, 0] / det], -1)
    order = torch.arange(n, device=means.device)[None]
    visible = torch.ones(1, n, dtype=torch.bool, device=means.device)
    bg = None if background is None else torch.as_tensor(background, dtype=colors.dtype).reshape(1, -1)
    image, alpha = composite(means[None], conics[None], opacities[None], colors[None], order, visible,
                             width, height, bg)
    return image[0], alpha[0]
