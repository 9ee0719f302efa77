"""TRELLIS stage 2: the structured latent (SLat) on the active voxels (taught in §4).

Xiang et al., *Structured 3D Latents for Scalable and Versatile 3D Generation*, CVPR 2025
(arXiv:2412.01506; code: github.com/microsoft/TRELLIS). Stage 1
(:mod:`gsbook.methods.trellis.structure`) decides *where* the object is: a set of active voxels.
Stage 2, this file, decides *what it looks like* there: a few latent numbers on every active
voxel (the SLat), which a decoder turns into a small bundle of 3D Gaussians per voxel.
The sizes are the book's, small enough for two CPU cores; TRELLIS' are noted where they differ.

Top to bottom:

1. **The structure** (:func:`shell_coords`). ShapeWorld's solid occupancy at 32³
   (``asset.occupancy(32)``); the active voxels are its surface shell, occupied voxels with at
   least one empty 6-neighbour (TRELLIS' active voxels are those the surface passes through, at
   64³). Coordinates are integer ``(i, j, k)`` along world ``(x, y, z)``; voxel ``(i, j, k)`` is
   centred at ``-1 + (i + 0.5)·2/32`` (:func:`voxel_centres`). Over 50 ShapeWorld assets the
   shell holds 199–1,312 voxels (median 520).
2. **Features from renders** (:func:`voxel_features`). TRELLIS renders ~150 views of each
   training asset, runs DINOv2 on them and averages, on every active voxel, the patch features
   at the pixels that voxel projects to. The book cannot download DINOv2, so it averages what
   it can compute offline: the ground-truth render's RGB and, optionally, a few channels of the
   shipped judge's first convolution (:class:`gsbook.judge.Judge`'s stem, 24 channels at 32²)
   as the book's stand-in for DINOv2's patch features. A voxel gets a view's feature only where
   it is visible there: its centre's camera depth lies within one voxel of the rendered depth.
3. **The SLat VAE** (:class:`SLatVAE`). A transformer over the active voxels of one object
   (:class:`VoxelBlock`; full self-attention inside the object, :func:`sparse_attention`;
   TRELLIS uses shifted-window attention at 64³) encodes ``features + position`` into 8 latent
   channels per voxel (TRELLIS: 8) with a KL term; a second transformer, the **Gaussian
   decoder**, reads the latents back and emits ``K`` Gaussians per voxel (TRELLIS: 32; the book:
   4) — offset from the voxel centre (``tanh``-bounded to ±0.75 voxel, TRELLIS' ``voxel_size:
   1.5``, starting from a Hammersley spread as TRELLIS' ``offset_perturbation`` does), scale
   (bounded, in voxel units), opacity, rotation and colour (SH degree 0).
4. **The loss** (:func:`slat_vae_loss`). Render the decoded Gaussians with the book's
   rasterizer from random views and compare with ShapeWorld's exact renders: LGM's loss
   (:func:`gsbook.methods.lgm.lgm_loss`: image MSE + alpha MSE, optional perceptual term),
   plus ``kl_weight × KL`` (10⁻⁶, TRELLIS' ``lambda_kl``). TRELLIS' own render loss is L1 +
   0.2 D-SSIM + 0.2 LPIPS at 512², with small volume and opacity regularisers.
5. **The SLat flow** (:class:`SLatFlow`). A transformer over the same voxels that predicts the
   rectified-flow velocity of the latents given the structure and a caption (adaLN-Zero
   timestep modulation, cross-attention to MiniLM tokens, a ×2-coarsened middle as in TRELLIS'
   SLat flow); trained with :func:`slat_flow_loss` (:mod:`gsbook.flow`'s path and target, averaged
   over real voxels) and sampled with :func:`gsbook.flow.euler_sample` and CFG (:func:`sample_slat`).

**Batches** are padded: ``coords [B, L, 3]`` (long), per-voxel tensors ``[B, L, ·]`` and a key
mask ``mask [B, L]`` (True = a real voxel of that object). :func:`pad_voxels` builds them from
lists; padded rows are zero everywhere the models return them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsbook.cameras import Cameras, orbit
from gsbook.diffusion import EMPTY_CAPTION, caption_features, guide, pooled_features
from gsbook.flow import euler_sample, interpolate, logit_normal_timesteps, velocity_target
from gsbook.gaussians import Gaussians, rgb_to_sh0
from gsbook.judge import judge_input
from gsbook.methods.lgm import lgm_loss
from gsbook.methods.trellis.structure import sincos_3d_positions, surface_voxels, timestep_embedding
from gsbook.text import TEXT_DIM
from gsbook.world import BOUND, Asset, render_asset
from gsbook.zoo import ShippedModel

__all__ = ["SLAT_RESOLUTION", "SLAT_CHANNELS", "GAUSSIAN_CHANNELS", "shell_coords", "voxel_centres",
           "pad_voxels", "feature_cameras", "voxel_visibility", "judge_feature_maps", "voxel_features",
           "sparse_attention", "position_embedding", "VoxelAttention", "VoxelBlock",
           "SLatVAEConfig", "SLatVAE", "SLatEncoding", "slat_vae_loss", "hammersley",
           "coarsen", "SLatFlowConfig", "SLatFlow", "slat_flow_loss", "sample_slat"]

SLAT_RESOLUTION = 32     # the book's grid (TRELLIS: 64³)
SLAT_CHANNELS = 8        # latent channels per active voxel (TRELLIS: 8)
GAUSSIAN_CHANNELS = 14   # per Gaussian: offset 3, scale 3, opacity 1, colour 3, rotation 4


# ----------------------------------------------------------------------------- the structure
def shell_coords(occ: Tensor) -> Tensor:
    """Active voxels of a solid occupancy grid as a coordinate list: stage 1's
    :func:`~gsbook.methods.trellis.structure.surface_voxels` (occupied voxels with at least one
    empty 6-neighbour; outside the grid counts as empty), as stage 2 stores them.

    Args:
        occ: ``[R, R, R]`` bool, axes (x, y, z) as :meth:`gsbook.world.Asset.occupancy` returns.

    Returns:
        ``[N, 3]`` long ``(i, j, k)``, in lexicographic order.
    """
    if occ.dim() != 3:
        raise ValueError(f"occupancy must be one cubic grid [R, R, R], got {list(occ.shape)}")
    return torch.nonzero(surface_voxels(occ))


def _check_coords(coords: Tensor, resolution: int) -> None:
    if coords.shape[-1] != 3 or coords.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"voxel coordinates must be integer [..., 3], got {coords.dtype} {list(coords.shape)}")
    if coords.numel() and (coords.min() < 0 or coords.max() >= resolution):
        raise ValueError(f"voxel coordinates must lie in [0, {resolution}), got "
                         f"[{int(coords.min())}, {int(coords.max())}]")


def voxel_centres(coords: Tensor, resolution: int = SLAT_RESOLUTION, bound: float = BOUND) -> Tensor:
    """World positions ``[..., 3]`` (float32) of the centres of voxels ``coords [..., 3]``:
    ``-bound + (i + 0.5)·2·bound/R``, as :func:`gsbook.world.grid_centres`."""
    _check_coords(coords, resolution)
    return -bound + (coords.float() + 0.5) * (2 * bound / resolution)


def pad_voxels(items: Sequence[Tensor], length: int | None = None) -> tuple[Tensor, Tensor]:
    """Stack per-object tensors ``[N_b, ...]`` into ``[B, L, ...]`` (zero padding) and the key
    mask ``[B, L]`` (True = real voxel); ``L`` = the longest object unless ``length`` is given."""
    if not items:
        raise ValueError("need at least one object")
    L = max(len(t) for t in items) if length is None else length
    if any(len(t) > L for t in items):
        raise ValueError(f"an object has more than length={L} voxels")
    first = items[0]
    out = first.new_zeros((len(items), L, *first.shape[1:]))
    mask = torch.zeros(len(items), L, dtype=torch.bool, device=first.device)
    for b, t in enumerate(items):
        out[b, :len(t)] = t
        mask[b, :len(t)] = True
    return out, mask


# ----------------------------------------------------------------------------- features
def feature_cameras(views: int = 16, size: int = 64, radius: float = 2.5, fovy_deg: float = 49.1,
                    elevations: tuple[float, float] = (30.0, -20.0)) -> Cameras:
    """The views features are averaged over: two rings of ``views / 2`` azimuths each, one above
    the object and one below (offset by half a step, so together they cover every side), on
    the CPU, where the ray caster runs. TRELLIS renders 150 views on a sphere."""
    if views < 2 or views % 2:
        raise ValueError(f"views must be an even number ≥ 2, got {views}")
    half = views // 2
    az = [360.0 * i / half for i in range(half)] + [360.0 * (i + 0.5) / half for i in range(half)]
    el = [elevations[0]] * half + [elevations[1]] * half
    return orbit(el, az, radius, fovy_deg, size, size, device="cpu")


def _project(points: Tensor, cameras: Cameras) -> tuple[Tensor, Tensor]:
    """Pixel positions ``uv [V, N, 2]`` and camera depths ``z [V, N]`` of ``points [N, 3]``."""
    cam = cameras.viewmats[:, :3, :3] @ points.T + cameras.viewmats[:, :3, 3:]       # [V, 3, N]
    z = cam[:, 2]
    K = cameras.Ks
    u = K[:, 0, 0, None] * cam[:, 0] / z + K[:, 0, 2, None]
    v = K[:, 1, 1, None] * cam[:, 1] / z + K[:, 1, 2, None]
    return torch.stack([u, v], dim=-1), z


def voxel_visibility(centres: Tensor, cameras: Cameras, depth: Tensor, alpha: Tensor,
                     tolerance: float) -> tuple[Tensor, Tensor]:
    """Which views see which voxel: the voxel's centre projects inside the image onto a covered
    pixel (alpha > 0.5) whose rendered depth is no more than ``tolerance`` in front of it.

    A shell voxel's centre lies *inside* the object, up to about one voxel behind the surface
    the camera sees, so the tolerance is about one voxel; a centre further behind the visible
    surface is hidden by it.

    Args:
        centres: ``[N, 3]`` world positions. cameras: V cameras of size ``H × W``.
        depth, alpha: ``[V, H, W]`` the renders' camera depth and coverage.

    Returns:
        ``visible [V, N]`` bool and ``uv [V, N, 2]`` the pixel positions.
    """
    V, H, W = len(cameras), cameras.height, cameras.width
    if depth.shape != (V, H, W) or alpha.shape != (V, H, W):
        raise ValueError(f"depth and alpha must be [{V}, {H}, {W}], got {list(depth.shape)}, {list(alpha.shape)}")
    uv, z = _project(centres.float(), cameras)
    px = uv.floor().long()
    inside = (px[..., 0] >= 0) & (px[..., 0] < W) & (px[..., 1] >= 0) & (px[..., 1] < H) & (z > 0)
    pu, pv = px[..., 0].clamp(0, W - 1), px[..., 1].clamp(0, H - 1)
    views = torch.arange(V)[:, None].expand_as(pu)
    # Nearest pixel, not bilinear: mixing depths across a silhouette would invent a surface.
    d, a = depth[views, pv, pu], alpha[views, pv, pu]
    return inside & (a > 0.5) & (z - d <= tolerance), uv


def judge_feature_maps(judge: nn.Module, images: Tensor, channels: int) -> Tensor:
    """The first ``channels`` maps of the judge's stem (a strided 3×3 convolution, BatchNorm,
    ReLU: 64² → 32²) on ``images [V, H, W, 3]``: ``[V, channels, 32, 32]``. The book's
    stand-in for DINOv2's patch features: what a trained image network sees early on."""
    stem = judge.features[0]
    if not 0 < channels <= stem[0].out_channels:
        raise ValueError(f"channels must lie in [1, {stem[0].out_channels}], got {channels}")
    with torch.no_grad():
        x = judge_input(images).to(next(judge.parameters()).device)
        return stem(x * 2 - 1)[:, :channels].cpu()


def voxel_features(asset: Asset, coords: Tensor, cameras: Cameras | None = None, resolution: int = SLAT_RESOLUTION,
                   judge: nn.Module | None = None, judge_channels: int = 0,
                   renders: dict[str, Tensor] | None = None, tolerance_voxels: float = 1.0) -> Tensor:
    """Average, on every voxel, the features of the views that see it (TRELLIS' feature aggregation).

    Renders ``asset`` from ``cameras`` (default :func:`feature_cameras`: 16 views at 64²) with
    the exact ray caster, projects every voxel centre into every view, keeps the views where it
    is visible (:func:`voxel_visibility`) and averages there: the RGB of the render (nearest
    pixel: 3 channels, in [0, 1]) and, with ``judge`` and ``judge_channels > 0``, that many
    channels of :func:`judge_feature_maps` (bilinear). TRELLIS averages DINOv2 patch features of
    ~150 views; the judge's stem is the book's offline stand-in. A voxel that no view sees (a
    crevice) takes the features of the nearest voxel that some view sees.

    Args:
        asset: the ShapeWorld object. coords: ``[N, 3]`` its active voxels (:func:`shell_coords`).
        renders: precomputed ``render_asset(asset, cameras)`` output, to skip rendering.

    Returns:
        ``[N, 3 + judge_channels]`` float32.
    """
    _check_coords(coords, resolution)
    if coords.dim() != 2 or len(coords) == 0:
        raise ValueError(f"coords must be a non-empty [N, 3] list of voxels, got {list(coords.shape)}")
    if judge_channels and judge is None:
        raise ValueError("judge_channels > 0 needs the judge (gsbook.judge.Judge.from_shipped())")
    cameras = cameras if cameras is not None else feature_cameras()
    out = renders if renders is not None else render_asset(asset, cameras, ss=1)
    centres = voxel_centres(coords, resolution)
    visible, uv = voxel_visibility(centres, cameras, out["depth"], out["alpha"],
                                   tolerance_voxels * 2 * BOUND / resolution)
    V, H, W = out["alpha"].shape
    maps = [out["rgb"].permute(0, 3, 1, 2)]                                   # [V, 3, H, W]
    modes = ["nearest"]
    if judge_channels:
        maps.append(judge_feature_maps(judge, out["rgb"], judge_channels))
        modes.append("bilinear")
    # grid_sample's [-1, 1] spans the image's outer pixel edges (align_corners=False).
    grid = torch.stack([uv[..., 0] / W, uv[..., 1] / H], dim=-1)[:, None] * 2 - 1   # [V, 1, N, 2]
    sampled = torch.cat([F.grid_sample(m, grid, mode=mode, align_corners=False)[:, :, 0]
                         for m, mode in zip(maps, modes)], dim=1)               # [V, C, N]
    w = visible.float()[:, None]
    seen = visible.any(0)
    feats = ((sampled * w).sum(0) / w.sum(0).clamp_min(1)).T.contiguous()      # [N, C]
    if not seen.all():
        if not seen.any():
            raise ValueError("no view sees any voxel: are the coordinates this asset's, and the cameras around it?")
        nearest = torch.cdist(centres[~seen], centres[seen]).argmin(1)
        feats[~seen] = feats[seen][nearest]
    return feats


# ----------------------------------------------------------------------------- attention
def sparse_attention(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, query_mask: Tensor | None = None) -> Tensor:
    """Attention restricted to each object's own voxels, in a padded batch.

    The key mask bars every query from padded keys, so each object's voxels see exactly its
    own active voxels (the same numbers as dense attention over that object alone: sparse
    attention is dense attention on the occupied set); padded query rows are set to zero so
    nothing computed there can leak into later layers.

    Args:
        q: ``[B, H, Lq, D]``; k, v: ``[B, H, Lk, D]``.
        key_mask: ``[B, Lk]`` bool, True = a real key (each object needs at least one).
        query_mask: ``[B, Lq]`` bool (default: ``key_mask`` for self-attention).

    Returns:
        ``[B, H, Lq, D]``.
    """
    B, Lk = k.shape[0], k.shape[2]
    if key_mask.shape != (B, Lk) or key_mask.dtype != torch.bool:
        raise ValueError(f"key_mask must be bool [{B}, {Lk}], got {key_mask.dtype} {list(key_mask.shape)}")
    if not key_mask.any(1).all():
        raise ValueError("every object needs at least one active voxel (a row of key_mask is all False)")
    query_mask = key_mask if query_mask is None else query_mask
    if query_mask.shape != (B, q.shape[2]):
        raise ValueError(f"query_mask must be [{B}, {q.shape[2]}], got {list(query_mask.shape)}")
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
    return out * query_mask[:, None, :, None].to(out.dtype)


def position_embedding(coords: Tensor, channels: int, resolution: int = SLAT_RESOLUTION) -> Tensor:
    """Absolute 3D position embedding ``[..., channels]`` of integer voxel ``coords [..., 3]``:
    stage 1's fixed sine-cosine grid positions (:func:`~gsbook.methods.trellis.structure.sincos_3d_positions`,
    one block per axis, TRELLIS' ``ape``) looked up at each voxel."""
    table = _position_table(resolution, channels, coords.device)
    return table[(coords[..., 0] * resolution + coords[..., 1]) * resolution + coords[..., 2]]


_TABLES: dict[tuple[int, int, str], Tensor] = {}


def _position_table(resolution: int, channels: int, device: torch.device) -> Tensor:
    """``sincos_3d_positions(resolution, channels)`` on ``device``, computed once per size and device."""
    key = (resolution, channels, str(device))
    if key not in _TABLES:
        _TABLES[key] = sincos_3d_positions(resolution, channels).to(device)
    return _TABLES[key]


class VoxelAttention(nn.Module):
    """Multi-head attention of voxel tokens ``[B, L, C]`` to themselves (``context=None``) or to
    context tokens ``[B, T, Cc]``, through :func:`sparse_attention`."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor, context: Tensor | None = None,
                context_mask: Tensor | None = None) -> Tensor:
        B, L, C = x.shape
        ctx, key_mask = (x, mask) if context is None else (context, context_mask)
        split = lambda t: t.reshape(B, t.shape[1], self.heads, C // self.heads).transpose(1, 2)  # noqa: E731
        k, v = self.kv(ctx).chunk(2, dim=-1)
        out = sparse_attention(split(self.q(x)), split(k), split(v), key_mask, mask)
        return self.proj(out.transpose(1, 2).reshape(B, L, C))


class VoxelBlock(nn.Module):
    """A pre-norm transformer block over the active voxels: ``x + Attn(LN x)``, ``x + MLP(LN x)``;
    with ``context_dim``, a cross-attention ``x + XAttn(LN x, context)`` in between; with
    ``modulated``, adaLN-Zero (DiT, TRELLIS' flow): a conditioning vector ``c [B, C]`` sets a
    shift, scale and gate for the self-attention and the MLP, all gates starting at zero so
    every block starts as the identity."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, context_dim: int | None = None,
                 modulated: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=not modulated)
        self.attn = VoxelAttention(dim, heads)
        self.cross = VoxelAttention(dim, heads, context_dim) if context_dim else None
        self.norm_cross = nn.LayerNorm(dim) if context_dim else None
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=not modulated)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.modulation = None
        if modulated:
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
            nn.init.zeros_(self.modulation[1].weight)
            nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor | None = None, context: Tensor | None = None,
                context_mask: Tensor | None = None) -> Tensor:
        if self.modulation is None:
            x = x + self.attn(self.norm1(x), mask)
            if self.cross is not None:
                x = x + self.cross(self.norm_cross(x), mask, context, context_mask)
            return x + self.mlp(self.norm2(x)) * mask[..., None].to(x.dtype)
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond)[:, None].chunk(6, dim=-1)
        x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1, mask)
        if self.cross is not None:
            x = x + self.cross(self.norm_cross(x), mask, context, context_mask)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2) * mask[..., None].to(x.dtype)


# ----------------------------------------------------------------------------- the SLat VAE
def hammersley(n: int) -> Tensor:
    """``[n, 3]`` points of the 3D Hammersley set in [0, 1)³ (cell-centred in the first axis):
    an even spread, TRELLIS' starting offsets for the Gaussians of a voxel."""
    def radical_inverse(i: int, base: int) -> float:
        f, r = 1.0, 0.0
        while i:
            f /= base
            r += f * (i % base)
            i //= base
        return r
    return torch.tensor([[(i + 0.5) / n, radical_inverse(i, 2), radical_inverse(i, 3)] for i in range(n)])


@dataclass
class SLatVAEConfig:
    """Sizes of :class:`SLatVAE`. The defaults (0.17 M parameters) train on two CPU cores.

    Attributes:
        feature_channels: per-voxel input features (3 = RGB; more with judge channels).
        width, heads, mlp_ratio: the transformers' token width, attention heads, MLP ratio.
        encoder_depth, decoder_depth: blocks of the encoder and of the Gaussian decoder.
        latent_channels: SLat channels per voxel (TRELLIS: 8).
        gaussians_per_voxel: K (TRELLIS: 32 at 64³ for 512² renders). The book measured 4 and 8
            at 32³ for 32²–64² renders: the same held-out PSNR after 80 steps on one object
            (17.8 vs 17.2 dB), and 4 renders in half the time, so 4.
        resolution, bound: the voxel grid (voxel size ``2·bound/resolution``).
        offset_reach: offsets stay within ±``offset_reach / 2`` voxels of the centre (TRELLIS'
            ``voxel_size`` 1.5: the Gaussians may reach a quarter voxel into the neighbours).
        scale_range: standard deviations lie in this range, in voxel units.
        init_scale, init_opacity: where scales and opacities start (the output layer starts at 0).
    """

    feature_channels: int = 3
    width: int = 64
    heads: int = 4
    mlp_ratio: float = 2.0
    encoder_depth: int = 2
    decoder_depth: int = 3
    latent_channels: int = SLAT_CHANNELS
    gaussians_per_voxel: int = 4
    resolution: int = SLAT_RESOLUTION
    bound: float = BOUND
    offset_reach: float = 1.5
    scale_range: tuple[float, float] = (0.02, 1.0)
    init_scale: float = 0.3
    init_opacity: float = 0.5

    def __post_init__(self) -> None:
        self.scale_range = tuple(float(s) for s in self.scale_range)
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if min(self.feature_channels, self.latent_channels, self.gaussians_per_voxel, self.encoder_depth,
               self.decoder_depth) < 1:
            raise ValueError("channels, depths and gaussians_per_voxel must be positive")
        lo, hi = self.scale_range
        if not 0 < lo < self.init_scale < hi:
            raise ValueError(f"need 0 < scale_range[0] < init_scale < scale_range[1], got {self.scale_range}, "
                             f"{self.init_scale}")
        if not 0 < self.init_opacity < 1:
            raise ValueError(f"init_opacity must lie in (0, 1), got {self.init_opacity}")

    @property
    def voxel_size(self) -> float:
        return 2 * self.bound / self.resolution

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "SLatVAEConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown SLatVAEConfig keys: {sorted(unknown)}")
        return cls(**d)


@dataclass
class SLatEncoding:
    """The encoder's output: ``mean``, ``logvar``, ``z`` (a sample, or the mean) ``[B, L, 8]``,
    zero on padding, and ``kl`` (scalar: KL to N(0, I) per real voxel and channel)."""

    mean: Tensor
    logvar: Tensor
    z: Tensor
    kl: Tensor


class _VoxelTransformer(nn.Module):
    """Linear in, + position embedding, blocks, LayerNorm, linear out; padding stays zero."""

    def __init__(self, cin: int, cout: int, cfg: SLatVAEConfig, depth: int) -> None:
        super().__init__()
        self.width, self.resolution = cfg.width, cfg.resolution
        self.inp = nn.Linear(cin, cfg.width)
        self.blocks = nn.ModuleList([VoxelBlock(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(cfg.width)
        self.out = nn.Linear(cfg.width, cout)

    def forward(self, x: Tensor, coords: Tensor, mask: Tensor) -> Tensor:
        keep = mask[..., None].to(x.dtype)
        h = (self.inp(x) + position_embedding(coords, self.width, self.resolution)) * keep
        for block in self.blocks:
            h = block(h, mask)
        return self.out(self.norm(h)) * keep


class SLatDecoder(_VoxelTransformer):
    """The SLat VAE's decoder (latents → K Gaussians' channels per voxel): the voxel transformer under
    its own name, so that call counts (:func:`gsbook.harness.count_network_calls`) say which network ran."""


class SLatVAE(nn.Module, ShippedModel):
    """The structured-latent VAE: voxel features → SLat ``[B, L, 8]`` → K Gaussians per voxel.

    ``encode(feats [B, L, C], coords [B, L, 3], mask [B, L]) → SLatEncoding``;
    ``decode(z [B, L, 8], coords, mask) → list[Gaussians]`` (one per object, ``N_b·K`` each);
    ``forward`` does both.
    """

    shipped_name = "trellis_slat_vae"     # gsbook/weights/trellis_slat_vae.*, ``python -m gsbook.train trellis_slat_vae``

    def __init__(self, config: SLatVAEConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SLatVAEConfig()
        self.encoder = _VoxelTransformer(cfg.feature_channels, 2 * cfg.latent_channels, cfg, cfg.encoder_depth)
        self.decoder = SLatDecoder(cfg.latent_channels, cfg.gaussians_per_voxel * GAUSSIAN_CHANNELS, cfg,
                                         cfg.decoder_depth)
        # TRELLIS zeroes the decoder's output layer: every voxel starts as the same bundle.
        nn.init.zeros_(self.decoder.out.weight)
        nn.init.zeros_(self.decoder.out.bias)
        # Starting offsets: a Hammersley spread inside ±0.5 voxel, stored pre-tanh.
        start = (hammersley(cfg.gaussians_per_voxel) * 2 - 1) * (0.5 / (cfg.offset_reach / 2)) * 0.999
        self.register_buffer("offset_start", torch.atanh(start), persistent=False)

    @classmethod
    def from_config(cls, config: dict) -> "SLatVAE":
        return cls(SLatVAEConfig.from_dict(config))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def _check(self, x: Tensor, channels: int, coords: Tensor, mask: Tensor, name: str) -> None:
        B, L = mask.shape if mask.dim() == 2 else (None, None)
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool [B, L], got {mask.dtype} {list(mask.shape)}")
        if x.shape != (B, L, channels):
            raise ValueError(f"{name} must be [B={B}, L={L}, {channels}], got {list(x.shape)}")
        if coords.shape != (B, L, 3):
            raise ValueError(f"coords must be [B={B}, L={L}, 3], got {list(coords.shape)}")
        _check_coords(coords, self.config.resolution)
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contain NaN or Inf")

    def encode(self, feats: Tensor, coords: Tensor, mask: Tensor, sample: bool = True,
               generator: torch.Generator | None = None) -> SLatEncoding:
        """Features → the SLat: ``mean + exp(logvar / 2)·ε`` when ``sample`` (training), else the mean."""
        self._check(feats, self.config.feature_channels, coords, mask, "features")
        mean, logvar = self.encoder(feats, coords, mask).chunk(2, dim=-1)
        logvar = logvar.clamp(-30.0, 20.0)
        keep = mask[..., None].to(mean.dtype)
        z = mean
        if sample:
            z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator).to(mean) * keep
        kl = 0.5 * ((mean.square() + logvar.exp() - 1 - logvar) * keep).sum() / (keep.sum() * mean.shape[-1])
        return SLatEncoding(mean, logvar, z, kl)

    def decode_raw(self, z: Tensor, coords: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """The SLat → activated Gaussian attributes per voxel, each ``[B, L, K, ·]``: ``means``
        (world), ``scales`` (standard deviations), ``opacity_logits`` ``[B, L, K]``, ``rgb``,
        ``quats`` (w, x, y, z; unnormalised)."""
        cfg = self.config
        self._check(z, cfg.latent_channels, coords, mask, "latents")
        B, L = mask.shape
        raw = self.decoder(z, coords, mask).reshape(B, L, cfg.gaussians_per_voxel, GAUSSIAN_CHANNELS)
        off, s, a, c, q = raw.split([3, 3, 1, 3, 4], dim=-1)
        h = cfg.voxel_size
        means = voxel_centres(coords, cfg.resolution, cfg.bound)[:, :, None] + \
            torch.tanh(off + self.offset_start) * (0.5 * cfg.offset_reach * h)
        lo, hi = cfg.scale_range
        s0 = math.log((cfg.init_scale - lo) / (hi - cfg.init_scale))          # sigmoid(s0) puts the scale at init
        scales = h * (lo + (hi - lo) * torch.sigmoid(s + s0))
        a0 = math.log(cfg.init_opacity / (1 - cfg.init_opacity))
        identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=q.dtype, device=q.device)
        return {"means": means, "scales": scales, "opacity_logits": (a + a0)[..., 0], "rgb": torch.sigmoid(c),
                "quats": q + identity}

    def decode(self, z: Tensor, coords: Tensor, mask: Tensor) -> list[Gaussians]:
        """The SLat → one :class:`Gaussians` per object: its ``N_b`` voxels × K, voxel-major."""
        out = self.decode_raw(z, coords, mask)
        scenes = []
        for b in range(mask.shape[0]):
            m = mask[b]
            pick = lambda t: t[b][m].flatten(0, 1)  # noqa: E731  [N_b·K, ·]
            scenes.append(Gaussians(pick(out["means"]), pick(out["quats"]), pick(out["scales"]).log(),
                                    pick(out["opacity_logits"]), rgb_to_sh0(pick(out["rgb"]))[:, None]))
        return scenes

    def forward(self, feats: Tensor, coords: Tensor, mask: Tensor, sample: bool = True,
                generator: torch.Generator | None = None) -> tuple[list[Gaussians], SLatEncoding]:
        enc = self.encode(feats, coords, mask, sample, generator)
        return self.decode(enc.z, coords, mask), enc


def slat_vae_loss(model: SLatVAE, feats: Tensor, coords: Tensor, mask: Tensor, cameras: Cameras | list[Cameras],
                  images: Tensor, alphas: Tensor, kl_weight: float = 1e-6,
                  perceptual: Callable[[Tensor, Tensor], Tensor] | None = None,
                  generator: torch.Generator | None = None, backend: str = "auto") -> dict[str, Tensor]:
    """Encode, decode, render, compare: LGM's render loss (:func:`gsbook.methods.lgm.lgm_loss`:
    image MSE + alpha MSE [+ perceptual]) + ``kl_weight · KL``.

    Args:
        feats, coords, mask: a padded batch of B objects (see :class:`SLatVAE`).
        cameras: V views shared by all objects, or one :class:`Cameras` per object.
        images: ``[B, V, H, W, 3]`` ground truth on white; alphas ``[B, V, H, W]`` or ``[..., 1]``.

    Returns:
        ``lgm_loss``'s dict (``loss`` now includes the KL) plus ``kl`` and ``gaussians``.
    """
    gaussians, enc = model(feats, coords, mask, sample=True, generator=generator)
    out = lgm_loss(gaussians, cameras, images, alphas, perceptual=perceptual, backend=backend)
    out["loss"] = out["loss"] + kl_weight * enc.kl
    out["kl"] = enc.kl
    out["gaussians"] = gaussians
    return out


# ----------------------------------------------------------------------------- the SLat flow
def coarsen(coords: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Group each object's voxels by their parent on the grid of half the resolution (2³ children
    per parent), TRELLIS' sparse ×2 downsampling.

    Args:
        coords: ``[B, L, 3]`` long; mask: ``[B, L]`` bool.

    Returns:
        ``parent [B, L]`` long (each voxel's row in the coarse batch; 0 on padding),
        ``coarse_coords [B, Lc, 3]`` and ``coarse_mask [B, Lc]``.
    """
    parents, index = [], torch.zeros(mask.shape, dtype=torch.long, device=mask.device)
    # One integer key per parent: a 1D unique is far faster than torch.unique(dim=0) on rows.
    half = int(coords.max()) // 2 + 1 if coords.numel() else 1
    for b in range(mask.shape[0]):
        p = coords[b][mask[b]] // 2
        uniq, inverse = torch.unique((p[:, 0] * half + p[:, 1]) * half + p[:, 2], return_inverse=True)
        parents.append(torch.stack([uniq // (half * half), uniq // half % half, uniq % half], dim=-1))
        index[b, mask[b]] = inverse
    coarse, coarse_mask = pad_voxels(parents)
    return index, coarse, coarse_mask


def _pool(h: Tensor, parent: Tensor, mask: Tensor, coarse_mask: Tensor) -> Tensor:
    """Mean of each parent's children: ``h [B, L, C]`` → ``[B, Lc, C]``."""
    B, Lc, C = coarse_mask.shape[0], coarse_mask.shape[1], h.shape[-1]
    keep = mask[..., None].to(h.dtype)
    idx = parent[..., None].expand(-1, -1, C)
    total = h.new_zeros(B, Lc, C).scatter_add_(1, idx, h * keep)
    count = h.new_zeros(B, Lc, 1).scatter_add_(1, parent[..., None], keep)
    return total / count.clamp_min(1.0)


class _ModulatedMLP(nn.Module):
    """A per-voxel residual MLP with adaLN-Zero on a conditioning vector: the book's stand-in for
    TRELLIS' sparse 3×3×3 convolution blocks around the transformer (neighbours meet in the
    coarse transformer instead)."""

    def __init__(self, dim: int, cond_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 3 * dim))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor) -> Tensor:
        shift, scale, gate = self.modulation(cond)[:, None].chunk(3, dim=-1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift) * mask[..., None].to(x.dtype)


@dataclass
class SLatFlowConfig:
    """Sizes of :class:`SLatFlow`, aimed at ~25 ms per evaluation at batch 2 (conditional and
    unconditional together) on one CPU core. Full attention over 1,000 voxels alone costs ~24 ms
    per layer there, which is why the transformer runs on the ×2-coarsened voxels (about 3.3×
    fewer tokens), as TRELLIS' does. Measured on one thread of a shared 2-core machine (best of
    5): 9.5 ms at 250 voxels, 25 ms at 624, 23 ms at 980, 31 ms at 1,152; so 25 guided Euler
    steps take ~0.6 s for a median object.

    Attributes:
        latent_channels: SLat channels (the VAE's). io_width: per-voxel width at full resolution.
        width, depth, heads, mlp_ratio: the transformer on the coarse voxels.
        text_dim: caption token width (MiniLM: 384). resolution: the fine voxel grid.
    """

    latent_channels: int = SLAT_CHANNELS
    io_width: int = 32
    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    text_dim: int = TEXT_DIM
    resolution: int = SLAT_RESOLUTION

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if self.resolution % 2:
            raise ValueError(f"resolution must be even (the transformer runs at half of it), got {self.resolution}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SLatFlowConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown SLatFlowConfig keys: {sorted(unknown)}")
        return cls(**d)


class SLatFlow(nn.Module, ShippedModel):
    """The SLat flow: ``v_θ(x_t [B, L, 8], t [B], coords [B, L, 3], mask [B, L], tokens [B, T, 384],
    token_mask [B, T]) → [B, L, 8]``, a :class:`gsbook.flow.VelocityModel` over the active voxels.

    TRELLIS' SLat flow layout at book scale: per-voxel input blocks, a ×2 downsampling
    (:func:`coarsen`: each 2³ block of active voxels pooled to one token), transformer blocks with
    full attention over the coarse tokens (:func:`sparse_attention`), adaLN-Zero on the timestep
    (plus, here, the pooled caption) and cross-attention to the caption's MiniLM tokens, then the
    ×2 upsampling (every voxel takes its parent's token) with a skip connection from the input
    blocks, and a zero-initialised output layer (the model starts at ``v = 0``). Padded rows of
    the output are zero.
    """

    shipped_name = "trellis_slat_flow"

    def __init__(self, config: SLatFlowConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SLatFlowConfig()
        self.inp = nn.Linear(cfg.latent_channels, cfg.io_width)
        self.time = nn.Sequential(nn.Linear(cfg.width, cfg.width), nn.SiLU(), nn.Linear(cfg.width, cfg.width))
        self.pooled = nn.Linear(cfg.text_dim, cfg.width)
        self.io_in = _ModulatedMLP(cfg.io_width, cfg.width, cfg.mlp_ratio)
        self.down = nn.Linear(cfg.io_width, cfg.width)
        self.blocks = nn.ModuleList([VoxelBlock(cfg.width, cfg.heads, cfg.mlp_ratio, context_dim=cfg.text_dim,
                                                modulated=True) for _ in range(cfg.depth)])
        self.up = nn.Linear(cfg.width + cfg.io_width, cfg.io_width)
        self.io_out = _ModulatedMLP(cfg.io_width, cfg.width, cfg.mlp_ratio)
        self.norm = nn.LayerNorm(cfg.io_width, elementwise_affine=False)
        self.out = nn.Linear(cfg.io_width, cfg.latent_channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # The training latents' per-channel statistics: the flow works on (z - mean) / std
        # (set by the recipe, saved with the weights; sample_slat undoes it).
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))

    @classmethod
    def from_config(cls, config: dict) -> "SLatFlow":
        return cls(SLatFlowConfig.from_dict(config))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def forward(self, x_t: Tensor, t: Tensor, coords: Tensor, mask: Tensor, tokens: Tensor,
                token_mask: Tensor) -> Tensor:
        cfg = self.config
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool [B, L], got {mask.dtype} {list(mask.shape)}")
        B, L = mask.shape
        if x_t.shape != (B, L, cfg.latent_channels) or coords.shape != (B, L, 3):
            raise ValueError(f"x_t must be [B, L, {cfg.latent_channels}] and coords [B, L, 3] with mask [B, L] = "
                             f"{[B, L]}; got {list(x_t.shape)}, {list(coords.shape)}")
        if tokens.dim() != 3 or tokens.shape[0] != B or tokens.shape[-1] != cfg.text_dim \
                or token_mask.shape != tokens.shape[:2]:
            raise ValueError(f"tokens must be [B={B}, T, {cfg.text_dim}] with token_mask [B, T]; got "
                             f"{list(tokens.shape)}, {list(token_mask.shape)}")
        _check_coords(coords, cfg.resolution)
        keep = mask[..., None].to(x_t.dtype)
        cond = self.time(timestep_embedding(t, cfg.width).to(x_t)) + self.pooled(pooled_features(tokens, token_mask))
        h = (self.inp(x_t) + position_embedding(coords, cfg.io_width, cfg.resolution)) * keep
        skip = self.io_in(h, mask, cond)
        parent, coarse, coarse_mask = coarsen(coords, mask)
        c = self.down(_pool(skip, parent, mask, coarse_mask))
        c = (c + position_embedding(coarse, cfg.width, cfg.resolution // 2)) * coarse_mask[..., None].to(c.dtype)
        for block in self.blocks:
            c = block(c, coarse_mask, cond, tokens, token_mask)
        up = torch.gather(c, 1, parent[..., None].expand(-1, -1, cfg.width))
        h = self.io_out(self.up(torch.cat([up, skip], dim=-1)), mask, cond)
        return self.out(self.norm(h)) * keep


def slat_flow_loss(model: SLatFlow, x0: Tensor, coords: Tensor, mask: Tensor, tokens: Tensor, token_mask: Tensor,
                   generator: torch.Generator | None = None, mean: float = 1.0, std: float = 1.0) -> Tensor:
    """The rectified-flow loss of :mod:`gsbook.flow` on a padded batch of (normalised) latents
    ``x0 [B, L, 8]``: logit-normal times, :func:`~gsbook.flow.interpolate`, MSE against
    :func:`~gsbook.flow.velocity_target` — averaged over real voxels only. (:func:`gsbook.flow.flow_loss`
    averages over every element, so padding, whose target is pure noise, would add a constant and
    shrink the gradient by the padded fraction.)"""
    t = logit_normal_timesteps(x0.shape[0], mean, std, generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    keep = mask[..., None].to(x0.dtype)
    x0 = x0 * keep
    err = (model(interpolate(x0, noise, t), t, coords, mask, tokens, token_mask) - velocity_target(x0, noise)) * keep
    return err.square().sum() / (keep.sum() * x0.shape[-1]).clamp_min(1.0)


@torch.no_grad()
def sample_slat(flow: SLatFlow, coords: Sequence[Tensor], captions: Sequence[str], steps: int = 25,
                guidance: float = 3.0, generator: torch.Generator | None = None,
                known: Sequence[Tensor] | None = None, keep: Sequence[Tensor] | None = None,
                callback: Callable[[int, Tensor, Tensor, Tensor], None] | None = None) -> list[Tensor]:
    """Caption + structure → SLat: :func:`gsbook.flow.euler_sample` from noise on the given voxels,
    with classifier-free guidance against the empty caption (both in one batch: one model call
    of batch 2B per step), then the training statistics undone.

    Args:
        coords: per object ``[N_b, 3]`` long (e.g. :func:`shell_coords` of stage 1's structure).
        captions: one per object.
        known, keep: an edit that holds some voxels' latents (RePaint-style, as
            :func:`~gsbook.methods.trellis.structure.sample_structure` does for stage 1): per
            object ``known [N_b, 8]`` latents and ``keep [N_b]`` bool. Held voxels ride their own
            straight path to their known value, so the rest is drawn to fit them; they come out
            exactly as given.
        callback: ``(i, t, x_t, v)`` at every Euler step, on the padded, normalised latents.

    Returns:
        per object ``[N_b, 8]``: latents for :meth:`SLatVAE.decode`.
    """
    if len(coords) != len(captions):
        raise ValueError(f"need one caption per object, got {len(captions)} captions for {len(coords)} objects")
    if (known is None) != (keep is None):
        raise ValueError("an edit needs both known (the latents) and keep (which voxels stay)")
    device = flow.latent_mean.device
    padded, mask = pad_voxels([c.to(device) for c in coords])
    tokens, token_mask = caption_features(list(captions) + [EMPTY_CAPTION])
    tokens, token_mask = tokens.to(device), token_mask.to(device)
    B = len(coords)
    noise = torch.randn((*mask.shape, flow.config.latent_channels), generator=generator).to(device)
    if guidance == 1.0:
        def velocity(x: Tensor, t: Tensor) -> Tensor:
            return flow(x, t, padded, mask, tokens[:B], token_mask[:B])
    else:
        # Conditional and unconditional velocities in one batch of 2B (one model call per step,
        # cheaper on a CPU than two calls of B), combined by gsbook.diffusion.guide.
        both = (torch.cat([padded, padded]), torch.cat([mask, mask]),
                torch.cat([tokens[:B], tokens[B:].expand(B, -1, -1)]),
                torch.cat([token_mask[:B], token_mask[B:].expand(B, -1)]))

        def velocity(x: Tensor, t: Tensor) -> Tensor:
            v = flow(torch.cat([x, x]), torch.cat([t, t]), *both)
            return guide(v[B:], v[:B], guidance)

    model = velocity
    if known is not None:
        if len(known) != B or len(keep) != B:
            raise ValueError(f"known and keep need one entry per object ({B})")
        for b, (k, h) in enumerate(zip(known, keep)):
            n = coords[b].shape[0]
            if k.shape != (n, flow.config.latent_channels) or h.shape != (n,) or h.dtype != torch.bool:
                raise ValueError(f"object {b}: known must be [{n}, {flow.config.latent_channels}] and keep [{n}] "
                                 f"bool, got {list(k.shape)} and {h.dtype} {list(h.shape)}")
        z_known, _ = pad_voxels([((k.to(device) - flow.latent_mean) / flow.latent_std) for k in known])
        held, _ = pad_voxels([h.to(device)[:, None] for h in keep])
        held = held.bool()
        v_known = velocity_target(z_known, noise)

        def model(x: Tensor, t: Tensor) -> Tensor:                                # noqa: F811
            x = torch.where(held, interpolate(z_known, noise, t), x)
            return torch.where(held, v_known, velocity(x, t))

    x0 = euler_sample(model, noise, steps, callback=callback)
    if known is not None:
        x0 = torch.where(held, z_known, x0)
    x0 = x0 * flow.latent_std + flow.latent_mean
    out = [x0[b][mask[b]] for b in range(B)]
    if known is not None:                  # exactly as given (the round trip through the statistics rounds)
        out = [torch.where(h.to(device)[:, None], k.to(device), o) for o, k, h in zip(out, known, keep)]
    return out
