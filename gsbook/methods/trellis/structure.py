"""TRELLIS, stage 1: the sparse structure — which voxels does the object occupy? (§4)

Xiang et al., *Structured 3D Latents for Scalable and Versatile 3D Generation* (TRELLIS,
CVPR 2025, arXiv:2412.01506) generate an object in two stages. The first decides *where*
the object is: a coarse occupancy grid. The second (:mod:`gsbook.methods.trellis.slat`) puts
features on the occupied voxels and decodes them to Gaussians. This module is the first
stage, at book scale, top to bottom:

1. **The structure** (:func:`structure_grid`, :func:`surface_voxels`, :func:`occupied_fraction`).
   A ShapeWorld object's solid occupancy on an ``R³`` grid over ``[-1, 1]³``, axes (x, y, z),
   +y up. TRELLIS' *active voxels* are those the surface passes through: the shell of that
   solid, where stage 2 puts its latents. Most of space is empty: measure it.
2. **A 3D convolutional VAE** (:class:`StructureVAE`): ``32³`` occupancy → a dense ``8³ × 8``
   latent → occupancy logits (TRELLIS: ``64³ → 16³ × 8``). A dense latent, even though the
   occupancy is sparse, because a dense grid is what a plain transformer can generate.
3. **A flow transformer** (:class:`StructureFlow`): a DiT — adaLN-Zero modulation from the
   time, self-attention over the latent's patches with 3D sine positions, cross-attention to
   the caption's MiniLM tokens — that predicts the rectified-flow velocity of the latent
   (:mod:`gsbook.flow` holds the path, the loss and the Euler sampler).
4. **Sampling** (:func:`sample_structure`): caption → noise → 25 Euler steps with
   classifier-free guidance → decoded occupancy. With ``known``/``keep`` it regenerates one
   sub-volume (:func:`top_region_mask`) and holds the rest, RePaint-style.

TRELLIS' own sizes (its ``ss_flow_img_dit_L_16l8`` config: a 16³ × 8 latent, patch size 1,
24 blocks of width 1024 with 16 heads, absolute positions, RMS-normalised queries and keys,
captions dropped 10 % of the time, logit-normal times with mean 1 and std 1, σ_min 1e-5) are
far beyond two CPU cores; the book keeps the architecture and shrinks every number
(:class:`StructureVAEConfig`, :class:`StructureFlowConfig`). The recipes that train both
models are :mod:`gsbook.recipes.trellis_structure` (``python -m gsbook.train trellis_ss_vae``, then
``trellis_ss_flow``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsbook.diffusion import EMPTY_CAPTION, caption_features, guide, pooled_features
from gsbook.flow import euler_sample, interpolate, velocity_target
from gsbook.text import TEXT_DIM
from gsbook.world import Asset, ObjectSpec, make_asset
from gsbook.zoo import ShippedModel

__all__ = ["STRUCTURE_RESOLUTION", "structure_grid", "surface_voxels", "occupied_fraction", "voxel_iou",
           "fold3d", "unfold3d", "StructureVAEConfig", "StructureResBlock", "StructureVAE", "structure_vae_loss",
           "StructureFlowConfig", "StructureAttention", "StructureDiTBlock", "timestep_embedding",
           "sincos_3d_positions", "StructureFlow", "top_region_mask", "sample_structure"]

STRUCTURE_RESOLUTION = 32       # the book's structure grid (TRELLIS: 64)


# ============================================================================ 1. the structure
def structure_grid(asset_or_prompt: Asset | ObjectSpec | str, resolution: int = STRUCTURE_RESOLUTION,
                   seed: int = 0) -> Tensor:
    """``[R, R, R]`` bool: the solid occupancy of a ShapeWorld object (voxel centres inside it).

    Axes are (x, y, z) with +y up, voxel ``(i, j, k)`` centred at ``-1 + (i + ½)·2/R``
    (:meth:`gsbook.world.Asset.occupancy`). ``asset_or_prompt`` is an asset, a spec or a
    prompt ("a red mushroom"); a spec or prompt is made with ``seed``.
    """
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    asset = asset_or_prompt if isinstance(asset_or_prompt, Asset) else make_asset(asset_or_prompt, seed)
    return asset.occupancy(resolution)


def _grids(occ: Tensor, name: str = "occupancy") -> Tensor:
    """``occ`` as ``[B, R, R, R]`` bool (a single ``[R, R, R]`` grid gets a batch of 1)."""
    if occ.dim() == 3:
        occ = occ[None]
    if occ.dim() != 4 or not (occ.shape[1] == occ.shape[2] == occ.shape[3]):
        raise ValueError(f"{name} must be a cubic grid [R, R, R] or a batch [B, R, R, R], got {list(occ.shape)}")
    if occ.dtype != torch.bool:
        raise ValueError(f"{name} must be bool, got {occ.dtype}")
    return occ


def surface_voxels(occ: Tensor) -> Tensor:
    """TRELLIS' active voxels: the occupied voxels with at least one empty 6-neighbour.

    ``occ [R, R, R]`` or ``[B, R, R, R]`` bool → the same shape, bool. Outside the grid counts
    as empty, so an object touching the border keeps its shell there.
    """
    grids = _grids(occ)
    # A voxel is interior when it and all six neighbours are occupied: erode with a "+" stencil.
    padded = F.pad(grids.float()[:, None], (1, 1, 1, 1, 1, 1))          # zero = empty outside
    interior = grids.clone()
    R = grids.shape[-1]
    for axis in range(3):
        for shift in (0, 2):
            index = [slice(None), 0, slice(1, R + 1), slice(1, R + 1), slice(1, R + 1)]
            index[2 + axis] = slice(shift, shift + R)
            interior &= padded[tuple(index)] > 0
    return (grids & ~interior).reshape(occ.shape)


def occupied_fraction(occ: Tensor) -> Tensor:
    """Fraction of voxels that are True: ``[R, R, R]`` → a scalar, ``[B, R, R, R]`` → ``[B]``."""
    grids = _grids(occ)
    fraction = grids.flatten(1).float().mean(1)
    return fraction[0] if occ.dim() == 3 else fraction


def voxel_iou(a: Tensor, b: Tensor) -> Tensor:
    """Intersection over union of two occupancies, ``[B, R, R, R]`` bool each → ``[B]``
    (1 where both are empty)."""
    a, b = _grids(a, "a"), _grids(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"grids differ in shape: {list(a.shape)} and {list(b.shape)}")
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


# ============================================================================ 2. the structure VAE
def fold3d(x: Tensor, p: int) -> Tensor:
    """Space to depth: ``[B, C, D, H, W] → [B, C·p³, D/p, H/p, W/p]`` (each p³ block of voxels
    becomes p³ channels; lossless, the 3D ``pixel_unshuffle``)."""
    B, C, D, H, W = x.shape
    if D % p or H % p or W % p:
        raise ValueError(f"grid {D}×{H}×{W} is not divisible by {p}")
    x = x.reshape(B, C, D // p, p, H // p, p, W // p, p)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(B, C * p ** 3, D // p, H // p, W // p)


def unfold3d(x: Tensor, p: int) -> Tensor:
    """Depth to space, the inverse of :func:`fold3d`: ``[B, C·p³, d, h, w] → [B, C, d·p, h·p, w·p]``."""
    B, Cp, d, h, w = x.shape
    if Cp % p ** 3:
        raise ValueError(f"{Cp} channels cannot unfold into {p}³ blocks")
    C = Cp // p ** 3
    x = x.reshape(B, C, p, p, p, d, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(B, C, d * p, h * p, w * p)


@dataclass
class StructureVAEConfig:
    """Sizes of :class:`StructureVAE` (saved with its weights).

    Attributes:
        resolution: occupancy grid side ``R`` (32; TRELLIS 64).
        fold: voxels folded into channels before the first convolution (``R → R/fold``). The
            costly full-resolution convolutions are never run; the 2³ blocks become 8 channels.
        widths: channels at ``R/fold`` and at the latent resolution ``R/(2·fold)``.
        latent_channels: channels of the latent (TRELLIS: 8).
        encoder_blocks, decoder_blocks: residual blocks at the latent resolution.
        fine_blocks: residual blocks of the decoder at ``R/fold``, where the surface detail is drawn.
        groups: GroupNorm groups.
        latent_scale: multiplies the posterior mean to give the flow's latent (set by the
            recipe so that the flow sees latents of unit standard deviation).
    """

    resolution: int = STRUCTURE_RESOLUTION
    fold: int = 2
    widths: tuple[int, int] = (32, 64)
    latent_channels: int = 8
    encoder_blocks: int = 1
    decoder_blocks: int = 2
    fine_blocks: int = 1
    groups: int = 8
    latent_scale: float = 1.0

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if len(self.widths) != 2:
            raise ValueError(f"widths holds two numbers (at R/fold and at the latent), got {self.widths}")
        if self.resolution % (2 * self.fold):
            raise ValueError(f"resolution {self.resolution} must be divisible by 2·fold = {2 * self.fold}")
        if any(w % self.groups for w in self.widths):
            raise ValueError(f"widths {self.widths} must be divisible by groups={self.groups}")
        if not self.latent_scale > 0:
            raise ValueError(f"latent_scale must be positive, got {self.latent_scale}")

    @property
    def latent_resolution(self) -> int:
        return self.resolution // (2 * self.fold)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


class StructureResBlock(nn.Module):
    """``x + conv(SiLU(GN(conv(SiLU(GN(x))))))`` on ``[B, C, D, H, W]`` (3×3×3 convolutions); the
    second convolution starts at zero, so a fresh block is the identity."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(groups, channels), nn.SiLU(), nn.Conv3d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels), nn.SiLU(), nn.Conv3d(channels, channels, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class StructureDecoder(nn.Sequential):
    """One of the structure VAE's two decoding passes (coarse latent grid → features, then → the fine
    occupancy grid). A plain ``nn.Sequential`` with a name, so that call counts
    (:func:`gsbook.harness.count_network_calls`) say which network ran; its weights' keys are a
    ``Sequential``'s."""


class StructureVAE(nn.Module, ShippedModel):
    """Occupancy ``[B, R, R, R]`` ⇄ latent ``[B, 8, r, r, r]`` (``r = R/4``: 32³ → 8³).

    Encoder: fold 2³ voxels into 8 channels (``R/2``), a 3×3×3 convolution, a stride-2
    convolution to ``r``, residual blocks, and a convolution to the posterior's mean and
    log-variance. Decoder: a convolution up from the latent, residual blocks at ``r``, a
    learned 2× upsampling (a 1×1×1 convolution to 8× the channels, unfolded: a transposed
    convolution with kernel 2 and stride 2), residual blocks at ``R/2``, and 8 logits per
    voxel block, unfolded into the ``R³`` occupancy logits.
    """

    shipped_name = "trellis_ss_vae"

    def __init__(self, config: StructureVAEConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or StructureVAEConfig()
        fine, coarse, g, f3 = cfg.widths[0], cfg.widths[1], cfg.groups, cfg.fold ** 3
        self.encoder = nn.Sequential(
            nn.Conv3d(f3, fine, 3, padding=1),
            nn.Conv3d(fine, coarse, 3, stride=2, padding=1),
            *[StructureResBlock(coarse, g) for _ in range(cfg.encoder_blocks)],
            nn.GroupNorm(g, coarse), nn.SiLU(), nn.Conv3d(coarse, 2 * cfg.latent_channels, 3, padding=1))
        self.decoder_coarse = StructureDecoder(
            nn.Conv3d(cfg.latent_channels, coarse, 3, padding=1),
            *[StructureResBlock(coarse, g) for _ in range(cfg.decoder_blocks)],
            nn.GroupNorm(g, coarse), nn.SiLU(), nn.Conv3d(coarse, fine * 8, 1))
        self.decoder_fine = StructureDecoder(
            *[StructureResBlock(fine, g) for _ in range(cfg.fine_blocks)],
            nn.GroupNorm(g, fine), nn.SiLU(), nn.Conv3d(fine, f3, 3, padding=1))

    @classmethod
    def from_config(cls, config: dict) -> "StructureVAE":
        return cls(StructureVAEConfig(**config))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """``(C, r, r, r)`` of one latent."""
        r = self.config.latent_resolution
        return (self.config.latent_channels, r, r, r)

    def _check_occupancy(self, occ: Tensor) -> Tensor:
        R = self.config.resolution
        if occ.dim() != 4 or occ.shape[1:] != (R, R, R):
            raise ValueError(f"occupancy must be [B, {R}, {R}, {R}], got {list(occ.shape)}")
        if occ.dtype != torch.bool and not occ.is_floating_point():
            raise ValueError(f"occupancy must be bool (or float in [0, 1]), got {occ.dtype}")
        return occ

    def _check_latent(self, z: Tensor) -> Tensor:
        if z.dim() != 5 or tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"latent must be [B, {', '.join(map(str, self.latent_shape))}], got {list(z.shape)}")
        return z

    # --- the two halves ----------------------------------------------------------------------
    def encode(self, occ: Tensor) -> tuple[Tensor, Tensor]:
        """``occ [B, R, R, R]`` (bool or 0/1 float) → posterior ``(mean, logvar)``, each ``[B, 8, r, r, r]``."""
        occ = self._check_occupancy(occ)
        x = occ.to(next(self.parameters()).device, torch.float32)[:, None] * 2 - 1      # ±1: centred input
        h = self.encoder(fold3d(x, self.config.fold))
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        """``z [B, 8, r, r, r]`` → occupancy logits ``[B, R, R, R]`` (positive = occupied)."""
        z = self._check_latent(z)
        h = unfold3d(self.decoder_coarse(z), 2)                       # learned 2× upsampling
        return unfold3d(self.decoder_fine(h), self.config.fold)[:, 0]

    def forward(self, occ: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(logits [B, R, R, R], mean, logvar)`` with ``z = mean + σ·n`` drawn from the posterior."""
        mean, logvar = self.encode(occ)
        noise = torch.randn(mean.shape, generator=generator).to(mean.device)
        return self.decode(mean + (0.5 * logvar).exp() * noise), mean, logvar

    # --- in the flow's units --------------------------------------------------------------------
    @torch.no_grad()
    def encode_latents(self, occ: Tensor) -> Tensor:
        """The flow's data: the posterior mean × ``latent_scale``, ``[B, 8, r, r, r]``."""
        return self.encode(occ)[0] * self.config.latent_scale

    @torch.no_grad()
    def decode_latents(self, z: Tensor) -> Tensor:
        """Occupancy logits ``[B, R, R, R]`` of flow latents (divided by ``latent_scale`` first)."""
        return self.decode(z / self.config.latent_scale)

    @torch.no_grad()
    def reconstruct(self, occ: Tensor) -> Tensor:
        """``occ`` through the posterior mean and back: ``[B, R, R, R]`` bool."""
        return self.decode(self.encode(occ)[0]) > 0


def structure_vae_loss(vae: StructureVAE, occ: Tensor, generator: torch.Generator | None = None,
                       kl_weight: float = 1e-3, dice_weight: float = 1.0) -> tuple[Tensor, dict[str, float]]:
    """Binary cross-entropy + soft Dice on the occupancy, + a small KL to N(0, I).

    About 7 % of a ShapeWorld grid is occupied, so plain BCE is dominated by empty space that
    is easy to get right; the Dice term ``1 − 2|p·y| / (|p| + |y|)`` (per object) weighs the
    object and its surface instead, which is what the IoU counts. The KL keeps the latent
    smooth enough for a flow to model; its weight is small because the reconstruction must
    stay near-exact (IoU ≥ 0.95).

    Returns the loss and its parts (floats, for logging).
    """
    logits, mean, logvar = vae(occ, generator)
    target = occ.to(logits.device, logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = logits.sigmoid().flatten(1)
    y = target.flatten(1)
    dice = (1 - (2 * (p * y).sum(1) + 1) / (p.sum(1) + y.sum(1) + 1)).mean()
    kl = 0.5 * (mean.square() + logvar.exp() - 1 - logvar).mean()
    loss = bce + dice_weight * dice + kl_weight * kl
    return loss, {"bce": bce.item(), "dice": dice.item(), "kl": kl.item()}


# ============================================================================ 3. the flow transformer
@dataclass
class StructureFlowConfig:
    """Sizes of :class:`StructureFlow` (saved with its weights).

    Attributes:
        latent_resolution, latent_channels: the VAE's latent grid (8³ × 8; TRELLIS 16³ × 8).
        patch: latent voxels per token side: 2 gives (8/2)³ = 64 tokens (TRELLIS: 1).
        width, depth, heads, mlp_ratio: the transformer (TRELLIS: 1024, 24, 16, 4).
        text_dim: caption token features (MiniLM: 384).
        pooled_caption: also add the pooled caption to the time embedding, so every block's
            modulation knows the caption's gist from the first steps of training (the book's
            addition; TRELLIS conditions through cross-attention only).

    The defaults have 4.06 M parameters (8 MB in float16). Measured in CPU time on one core: one
    evaluation at batch 2 (a caption and ``""`` side by side) takes about 30 ms, so 25 guided
    Euler steps and the VAE's decoder (about 50 ms) make one structure in about 0.9 s.
    """

    latent_resolution: int = 8
    latent_channels: int = 8
    patch: int = 2
    width: int = 160
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    text_dim: int = TEXT_DIM
    pooled_caption: bool = True

    def __post_init__(self) -> None:
        if self.latent_resolution % self.patch:
            raise ValueError(f"latent_resolution {self.latent_resolution} must be divisible by patch {self.patch}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")

    @property
    def tokens(self) -> int:
        return (self.latent_resolution // self.patch) ** 3

    def to_dict(self) -> dict:
        return asdict(self)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """``[B] → [B, dim]`` sinusoids of ``1000·t`` (flow time in [0, 1] spread over the range the
    DDPM-era embedding was designed for, as TRELLIS does)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def sincos_3d_positions(n: int, dim: int) -> Tensor:
    """``[n³, dim]`` fixed 3D positions of an ``n³`` token grid, in ``(x, y, z)`` raster order:
    one sine-cosine block per axis (``dim // 6`` frequencies each), zero-padded to ``dim``."""
    per_axis = dim // 6
    freqs = 1.0 / (10_000.0 ** (torch.arange(per_axis, dtype=torch.float32) / max(per_axis, 1)))
    ticks = torch.arange(n, dtype=torch.float32)
    grid = torch.stack(torch.meshgrid(ticks, ticks, ticks, indexing="ij"), dim=-1).reshape(-1, 3)   # [n³, 3]
    angles = grid[:, :, None] * freqs                                                              # [n³, 3, F]
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1).reshape(n ** 3, -1)
    return F.pad(emb, (0, dim - emb.shape[1]))


class StructureAttention(nn.Module):
    """Multi-head attention with RMS-normalised queries and keys (as TRELLIS' blocks), on
    :func:`torch.nn.functional.scaled_dot_product_attention`.

    Self-attention when ``context`` is None; cross-attention to ``context [B, L, context_dim]``
    with ``context_mask [B, L]`` (True = a real token) otherwise.
    """

    def __init__(self, width: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.to_q = nn.Linear(width, width)
        self.to_kv = nn.Linear(context_dim or width, 2 * width)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None) -> Tensor:
        B, N, D = x.shape
        source = x if context is None else context
        split = lambda a: a.reshape(B, a.shape[1], self.heads, self.head_dim).transpose(1, 2)   # noqa: E731
        q = self.q_norm(split(self.to_q(x)))
        k, v = (split(a) for a in self.to_kv(source).chunk(2, dim=-1))
        k = self.k_norm(k)
        mask = None if context_mask is None else context_mask[:, None, None, :].to(torch.bool)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(h.transpose(1, 2).reshape(B, N, D))


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale) + shift


class StructureDiTBlock(nn.Module):
    """One DiT block with adaLN-Zero (Peebles & Xie 2023) and cross-attention (TRELLIS'
    ``ModulatedTransformerCrossBlock``)::

        x += gate₁ · SelfAttn(LN(x)·(1 + scale₁) + shift₁)
        x += CrossAttn(LN(x), caption tokens)
        x += gate₂ · MLP(LN(x)·(1 + scale₂) + shift₂)

    The six modulation vectors come from the conditioning vector ``c [B, width]`` (time, and the
    pooled caption) through one linear layer that starts at zero: every gate is 0 at
    initialisation, so a fresh block passes its input through (the "Zero").
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float, text_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.self_attn = StructureAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.cross_attn = StructureAttention(width, heads, context_dim=text_dim)
        self.norm3 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        # Exact GELU: TRELLIS uses the tanh approximation, which on CPU runs about 3× slower here.
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: Tensor, c: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c)[:, None].chunk(6, dim=-1)
        x = x + gate1 * self.self_attn(_modulate(self.norm1(x), shift1, scale1))
        x = x + self.cross_attn(self.norm2(x), context, context_mask)
        return x + gate2 * self.mlp(_modulate(self.norm3(x), shift2, scale2))


class StructureFlow(nn.Module, ShippedModel):
    """The structure latent's velocity: ``forward(x_t [B, 8, r, r, r], t [B] in [0, 1],
    tokens [B, L, 384], mask [B, L]) → v̂ [B, 8, r, r, r]`` (a :class:`gsbook.flow.VelocityModel`).

    Patchify (``p³`` latent voxels → one token, a linear map to ``width``) + fixed 3D positions →
    ``depth`` :class:`StructureDiTBlock` → adaLN-modulated LayerNorm and a linear map (zero at
    initialisation) back to ``p³ × 8`` numbers per token → unpatchify.
    """

    shipped_name = "trellis_ss_flow"

    def __init__(self, config: StructureFlowConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or StructureFlowConfig()
        patch_numbers = cfg.latent_channels * cfg.patch ** 3
        self.patch_embed = nn.Linear(patch_numbers, cfg.width)
        self.register_buffer("positions", sincos_3d_positions(cfg.latent_resolution // cfg.patch, cfg.width),
                             persistent=False)
        self.time_embed = nn.Sequential(nn.Linear(256, cfg.width), nn.SiLU(), nn.Linear(cfg.width, cfg.width))
        self.caption_embed = (nn.Sequential(nn.Linear(cfg.text_dim, cfg.width), nn.SiLU(),
                                            nn.Linear(cfg.width, cfg.width)) if cfg.pooled_caption else None)
        self.blocks = nn.ModuleList(StructureDiTBlock(cfg.width, cfg.heads, cfg.mlp_ratio, cfg.text_dim)
                                    for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(cfg.width, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.width, 2 * cfg.width))
        self.final = nn.Linear(cfg.width, patch_numbers)
        for layer in (self.final_modulation[1], self.final):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    def from_config(cls, config: dict) -> "StructureFlow":
        return cls(StructureFlowConfig(**config))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        r = self.config.latent_resolution
        return (self.config.latent_channels, r, r, r)

    def forward(self, x_t: Tensor, t: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        cfg = self.config
        if x_t.dim() != 5 or tuple(x_t.shape[1:]) != self.latent_shape:
            raise ValueError(f"x_t must be [B, {', '.join(map(str, self.latent_shape))}], got {list(x_t.shape)}")
        B = x_t.shape[0]
        if t.dim() != 1 or t.shape[0] != B:
            raise ValueError(f"t must be [B={B}], got {list(t.shape)}")
        if tokens.dim() != 3 or tokens.shape[0] != B or tokens.shape[2] != cfg.text_dim:
            raise ValueError(f"tokens must be [B={B}, L, {cfg.text_dim}], got {list(tokens.shape)}")
        if mask.shape != tokens.shape[:2]:
            raise ValueError(f"mask must be [B, L] = {list(tokens.shape[:2])}, got {list(mask.shape)}")
        n, p = cfg.latent_resolution // cfg.patch, cfg.patch
        # [B, 8, r, r, r] → [B, 8·p³, n, n, n] → [B, n³, 8·p³] tokens in (x, y, z) raster order
        h = self.patch_embed(fold3d(x_t, p).flatten(2).transpose(1, 2)) + self.positions
        c = self.time_embed(timestep_embedding(t, 256).to(x_t.dtype))
        if self.caption_embed is not None:
            c = c + self.caption_embed(pooled_features(tokens, mask))
        for block in self.blocks:
            h = block(h, c, tokens, mask)
        shift, scale = self.final_modulation(c)[:, None].chunk(2, dim=-1)
        out = self.final(_modulate(self.final_norm(h), shift, scale))           # [B, n³, 8·p³]
        return unfold3d(out.transpose(1, 2).reshape(B, -1, n, n, n), p)


# ============================================================================ 4. sampling and editing
def top_region_mask(resolution: int = STRUCTURE_RESOLUTION, fraction: float = 1 / 3) -> Tensor:
    """``[R, R, R]`` bool, True on the top ``fraction`` of the grid's height (+y, axis 1): the
    sub-volume §4's edit regenerates (``round(fraction·R)`` layers)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    region = torch.zeros(resolution, resolution, resolution, dtype=torch.bool)
    region[:, resolution - round(fraction * resolution):, :] = True
    return region


def _latent_keep(keep: Tensor, block: int) -> Tensor:
    """``[B, R, R, R]`` voxel mask → ``[B, 1, r, r, r]``: a latent cell is held only when every
    voxel of its ``block³`` is kept."""
    return -F.max_pool3d(-keep.float()[:, None], block) > 0.5


@torch.no_grad()
def sample_structure(vae: StructureVAE, flow: StructureFlow, captions: str | list[str], steps: int = 25,
                     guidance: float = 3.0, generator: torch.Generator | None = None, known: Tensor | None = None,
                     keep: Tensor | None = None,
                     callback: Callable[[int, Tensor, Tensor, Tensor], None] | None = None) -> Tensor:
    """Caption(s) → occupancy ``[B, R, R, R]`` bool: Euler steps of the flow from noise, with
    classifier-free guidance against the empty caption, then the VAE's decoder.

    Each step evaluates the flow once on a batch of ``2B`` (caption and ``""`` side by side,
    cheaper on a CPU than two calls) unless ``guidance == 1``.

    Editing a sub-volume (RePaint-style, Lugmayr et al. 2022): give ``known [B, R, R, R]``
    (the current structure) and ``keep`` (``[R, R, R]`` or ``[B, R, R, R]`` bool, True where the
    structure stays). The known latent ``z_k`` rides its own straight path: at every step the
    held cells of ``x`` are ``interpolate(z_k, ε, t)`` and move with the path's exact velocity,
    so the network sees the kept part at the right noise level and draws the rest to fit it.
    A latent cell is held only if all its voxels are kept; and since the decoder's
    convolutions see across the border, the known voxels are pasted back at the end: every
    voxel where ``keep`` is True equals ``known``.

    ``callback(i, t, z_t, v)`` sees every Euler step (:func:`gsbook.flow.euler_sample`), in latent space.
    """
    captions = [captions] if isinstance(captions, str) else list(captions)
    if not captions:
        raise ValueError("sample_structure needs at least one caption")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if vae.latent_shape != flow.latent_shape:
        raise ValueError(f"the VAE's latent {vae.latent_shape} and the flow's {flow.latent_shape} differ")
    if (known is None) != (keep is None):
        raise ValueError("an edit needs both known (the current structure) and keep (where it stays)")
    device = next(flow.parameters()).device
    B, R = len(captions), vae.config.resolution
    noise = torch.randn((B, *flow.latent_shape), generator=generator).to(device)

    guided = guidance != 1.0
    tokens, mask = caption_features(([EMPTY_CAPTION] * B if guided else []) + captions)
    tokens, mask = tokens.to(device), mask.to(device)

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        if not guided:
            return flow(x, t, tokens, mask)
        v = flow(torch.cat([x, x]), torch.cat([t, t]), tokens, mask)
        return guide(v[:B], v[B:], guidance)

    model = velocity
    if known is not None:
        known = _grids(known, "known").to(device)
        keep = _grids(keep, "keep").to(device).expand(B, R, R, R)
        if known.shape != (B, R, R, R):
            raise ValueError(f"known must be [B={B}, {R}, {R}, {R}], got {list(known.shape)}")
        z_known = vae.encode_latents(known)
        held = _latent_keep(keep, R // vae.config.latent_resolution)             # [B, 1, r, r, r]
        v_known = velocity_target(z_known, noise)

        def model(x: Tensor, t: Tensor) -> Tensor:                                # noqa: F811
            x = torch.where(held, interpolate(z_known, noise, t), x)
            return torch.where(held, v_known, velocity(x, t))

    z = euler_sample(model, noise, steps, callback=callback)
    if known is not None:
        z = torch.where(held, z_known, z)
    occ = vae.decode_latents(z) > 0
    if known is not None:
        occ = torch.where(keep, known, occ)
    return occ.cpu()
