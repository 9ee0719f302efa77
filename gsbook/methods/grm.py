"""GRM: four posed views → one transformer pass → pixel-aligned 3D Gaussians on their rays
(taught in §3, ``chapters/03_lgm_grm.ipynb``, next to :mod:`gsbook.methods.lgm`).

Xu et al., *GRM: Large Gaussian Reconstruction Model for Efficient 3D Reconstruction and
Generation*, ECCV 2024 (arXiv:2403.14621). The sizes are the book's, small enough to train on
two CPU cores (:meth:`GRMConfig.paper` gives the paper's, as far as the book could check them).

GRM is LGM's sibling on the *transformer road*. Everything around the network is LGM's and is
imported from :mod:`gsbook.methods.lgm`, so that §3 compares the two networks and nothing else:
the inputs (:meth:`GRM.prepare_inputs` *is* :meth:`LGM.prepare_inputs`: RGB + Plücker rays,
``[B, 4, 9, H, W]``), the 14-channel raw map ``[B, 4, 14, h, w]`` in LGM's channel order, its
activations and decoding (:func:`~gsbook.methods.lgm.lgm_activate`,
:func:`~gsbook.methods.lgm.lgm_decode`) and its rendering loss
(:func:`~gsbook.methods.lgm.lgm_loss`). What differs:

1. **Patches, one sequence** (:meth:`GRM.encode`). Each view's 9-channel input is cut into
   ``p × p`` patches (a stride-``p`` convolution, GRM's "convolutional tokenizer"); the tokens of
   all four views form *one* sequence (4 × 8 × 8 = 256 tokens for the book's 64² views and
   ``p = 8``) and pass through a plain pre-norm ViT encoder (:class:`GRMBlock`: LayerNorm,
   multi-head self-attention, LayerNorm, GELU MLP). Every layer attends across all views,
   where LGM's U-Net lets views meet only at its low-resolution levels.
2. **A transformer upsampler** (:class:`GRMUpsampler`). The token grid is coarse (8² per view);
   each upsampling stage is a linear layer and PixelShuffle ×2 (twice the resolution, half the
   channels), then a transformer block whose attention is *windowed* (non-overlapping
   ``window × window`` squares within one view) so its cost stays linear in the pixel count.
   Two stages take 8² tokens to 32² Gaussians per view: 4 × 32² = 4,096 Gaussians, LGM's count.
3. **Depth along the ray** (:func:`grm_positions`). GRM does not predict free xyz: each pixel
   predicts one depth τ and its Gaussian sits at ``μ = c + τ·r`` on that pixel's ray (camera
   centre ``c``, unit direction ``r``). The book squashes τ with a sigmoid into the stretch of
   the ray inside the object's box ``[-1, 1]³`` (the box LGM clamps into):
   ``τ = near + sigmoid(z)·(far − near)`` with ``near``/``far`` where the ray enters and leaves
   the box (:func:`grm_box_depths`). The position therefore never leaves the box, LGM's clamp
   never bites, and the other 11 channels (opacity, scale, rotation, colour) are LGM's. The
   paper's exact depth activation is not something the book could confirm; this one is
   documented, bounded and starts every Gaussian at the middle of its ray's chord.
   The rays come from the network input itself: camera centres are the least-squares meeting
   point of each view's Plücker lines, and each output pixel's direction is the normalised mean
   of the input pixels it covers (for a pinhole camera that is the ray through the output
   pixel's centre up to a second-order angle, < 1e-4 rad at 64² → 32²).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsbook.methods.lgm import LGM, LGM_CHANNELS, LGM_VIEWS, ColourShortcut, LGMConfig, input_colour
from gsbook.zoo import ShippedModel

__all__ = ["GRMConfig", "GRM", "GRMBlock", "GRMUpsampler", "grm_rays", "grm_box_depths", "grm_positions",
           "GRM_RAW_CHANNELS"]

# What GRM's head predicts per pixel: depth 1, then LGM's opacity 1, scale 3, rotation 4, colour 3.
GRM_RAW_CHANNELS = 1 + LGM_CHANNELS - 3


# ----------------------------------------------------------------------------- config
@dataclass
class GRMConfig:
    """The network's sizes. The defaults (2.6 M parameters, 64² in → 32² out, 4,096 Gaussians) train on a CPU.

    Attributes:
        input_size: side of the square input views, in pixels.
        patch_size: side of a patch; each view becomes ``(input_size / patch_size)²`` tokens.
        width: channels of the encoder's tokens.
        depth: encoder blocks.
        heads: attention heads (encoder and upsampler).
        mlp_ratio: hidden width of each MLP, as a multiple of its block's width.
        upsample_stages: PixelShuffle ×2 stages; each halves the channels. The output grid is
            ``input_size / patch_size · 2^stages`` per side.
        window: side of the upsampler's square attention windows, in pixels of that stage
            (clipped to the stage's grid).
        box: half-side of the object box ``[-box, box]³`` that bounds the depths.
        cross_view: the encoder attends over all four views' tokens (GRM). False restricts it
            to each view's own tokens: the ablation that shows where the views meet.
        normalize_rgb: ImageNet-normalise the input RGB (as LGM; shared input code).
        rgb_skip: the book's colour shortcut, as ``LGMConfig.rgb_skip`` (not in GRM).
    """

    input_size: int = 64
    patch_size: int = 8
    width: int = 192
    depth: int = 5
    heads: int = 4
    mlp_ratio: float = 4.0
    upsample_stages: int = 2
    window: int = 8
    box: float = 1.0
    cross_view: bool = True
    normalize_rgb: bool = True
    rgb_skip: bool = False

    def __post_init__(self) -> None:
        if self.input_size % self.patch_size:
            raise ValueError(f"input_size {self.input_size} must be divisible by patch_size {self.patch_size}")
        if self.output_size > self.input_size:
            raise ValueError(f"{self.upsample_stages} upsampling stages overshoot the input size "
                             f"({self.output_size} > {self.input_size}): the output rays come from input pixels")
        if self.width % 2 ** self.upsample_stages:
            raise ValueError(f"width {self.width} must halve {self.upsample_stages} times")
        for s in range(self.upsample_stages + 1):
            if (self.width >> s) % self.heads:
                raise ValueError(f"channels {self.width >> s} must be divisible by heads ({self.heads})")

    @property
    def grid_size(self) -> int:
        """Tokens per side of each view."""
        return self.input_size // self.patch_size

    @property
    def n_tokens(self) -> int:
        """Length of the encoder's one sequence: all views' patches."""
        return LGM_VIEWS * self.grid_size ** 2

    @property
    def output_size(self) -> int:
        """Side of each view's Gaussian grid."""
        return self.grid_size * 2 ** self.upsample_stages

    @property
    def n_gaussians(self) -> int:
        """Gaussians per object: one per output pixel per view."""
        return LGM_VIEWS * self.output_size ** 2

    # Saved and read back exactly as LGM's config is.
    to_dict = LGMConfig.to_dict
    from_dict = classmethod(LGMConfig.from_dict.__func__)

    @classmethod
    def paper(cls) -> "GRMConfig":
        """GRM as the book reads the paper (512² views, 16² patches → 32² = 1,024 tokens per view,
        4,096 in the sequence; a 24-block, 1,024-wide encoder; upsampling back to one Gaussian per
        input pixel). For comparison only: these numbers are from the book's reading of the paper,
        not checked against released code (none was public for training), so treat them as
        approximate. The upsampler's windows and channel halving are the book's."""
        return cls(input_size=512, patch_size=16, width=1024, depth=24, heads=16, upsample_stages=4, window=32)


# ----------------------------------------------------------------------------- building blocks
class GRMBlock(nn.Module):
    """A pre-norm transformer block on ``[N, T, C]`` tokens: ``x + MSA(LN x)``, then ``x + MLP(LN x)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.heads = heads

    def forward(self, x: Tensor) -> Tensor:
        N, T, C = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(N, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)                 # [N, heads, T, C/heads]
        x = x + self.proj(out.transpose(1, 2).reshape(N, T, C))
        return x + self.mlp(self.norm2(x))


def _windows(x: Tensor, w: int) -> Tensor:
    """``[N, C, H, W]`` → ``[N·(H/w)·(W/w), w·w, C]``: non-overlapping ``w × w`` windows as token sets."""
    N, C, H, W = x.shape
    x = x.reshape(N, C, H // w, w, W // w, w).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(N * (H // w) * (W // w), w * w, C)


def _unwindows(t: Tensor, N: int, H: int, W: int, w: int) -> Tensor:
    """Inverse of :func:`_windows`."""
    C = t.shape[-1]
    t = t.reshape(N, H // w, W // w, w, w, C).permute(0, 5, 1, 3, 2, 4)
    return t.reshape(N, C, H, W)


class GRMUpsampler(nn.Module):
    """One upsampling stage on per-view maps ``[N, C, h, w]`` → ``[N, C/2, 2h, 2w]``.

    A 1×1 linear layer to ``2C`` channels, PixelShuffle ×2 (``2C`` channels → ``C/2`` at twice
    the resolution), then a :class:`GRMBlock` whose attention sees ``window × window`` squares
    of one view: the book's reading of GRM's windowed-attention upsampler.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, window: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(dim, 2 * dim, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.block = GRMBlock(dim // 2, heads, mlp_ratio)
        self.window = window

    def forward(self, x: Tensor) -> Tensor:
        x = self.shuffle(self.expand(x))                               # [N, C/2, 2h, 2w]
        N, _, H, W = x.shape
        w = min(self.window, H)
        if H % w or W % w:
            raise ValueError(f"window {w} must divide the {H}×{W} grid")
        return _unwindows(self.block(_windows(x, w)), N, H, W, w)


# ----------------------------------------------------------------------------- rays and depth
def grm_rays(x: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The rays of each view's ``size × size`` output pixels, read from the network input.

    Args:
        x: ``[B, V, 9, H, W]`` (:meth:`GRM.prepare_inputs`); channels 3:6 are the Plücker
            moments ``o × d``, 6:9 the unit directions ``d``.
        size: output grid side; must divide ``H`` and ``W``.

    Returns:
        ``origins [B, V, 3]`` (camera centres: the least-squares point nearest to all of a
        view's rays, exact when they meet) and ``directions [B, V, size, size, 3]`` (unit; the
        normalised mean of the input pixels' directions under each output pixel).
    """
    B, V, _, H, W = x.shape
    m = x[:, :, 3:6].permute(0, 1, 3, 4, 2).reshape(B, V, -1, 3).double()
    d = x[:, :, 6:9].permute(0, 1, 3, 4, 2).reshape(B, V, -1, 3).double()
    p = torch.linalg.cross(d, m)                                        # d × (o × d): the point nearest the world origin
    eye = torch.eye(3, dtype=d.dtype, device=d.device)
    A = (eye - d[..., :, None] * d[..., None, :]).sum(dim=2)            # Σ (I − d dᵀ)   [B, V, 3, 3]
    origins = torch.linalg.solve(A, p.sum(dim=2)).to(x.dtype)           # Σ (I − d dᵀ) p = Σ p, as p ⊥ d
    coarse = F.avg_pool2d(x[:, :, 6:9].reshape(B * V, 3, H, W), (H // size, W // size))
    directions = F.normalize(coarse.reshape(B, V, 3, size, size).permute(0, 1, 3, 4, 2), dim=-1)
    return origins, directions


def grm_box_depths(origins: Tensor, directions: Tensor, box: float = 1.0) -> tuple[Tensor, Tensor]:
    """Where each ray enters and leaves the box ``[-box, box]³`` (the slab method).

    ``origins [..., 3]`` broadcast against ``directions [..., 3]``; returns ``near, far`` of
    the directions' leading shape. A ray that misses the box gets ``near = far =`` the depth of
    its point nearest the box centre (its Gaussian is then off the box and LGM's clamp moves
    it; with the book's cameras every input ray hits the unit box).
    """
    o = origins.expand_as(directions)
    d = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    t1, t2 = (-box - o) / d, (box - o) / d
    near = torch.minimum(t1, t2).amax(dim=-1).clamp_min(0.0)
    far = torch.maximum(t1, t2).amin(dim=-1)
    miss = far <= near
    closest = -(o * directions).sum(-1)
    return torch.where(miss, closest, near), torch.where(miss, closest, far)


def grm_positions(depth_logits: Tensor, origins: Tensor, directions: Tensor, box: float = 1.0) -> Tensor:
    """GRM's Gaussian centres ``μ = c + τ·r``, ``τ = near + sigmoid(z)·(far − near)``.

    Args:
        depth_logits: ``[B, V, h, w]`` raw depth channel ``z``.
        origins: ``[B, V, 3]`` camera centres; directions ``[B, V, h, w, 3]`` unit.

    Returns:
        ``[B, V, h, w, 3]`` positions, each on its pixel's ray inside ``[-box, box]³``.
    """
    c = origins[:, :, None, None, :]
    near, far = grm_box_depths(c, directions, box)
    tau = near + torch.sigmoid(depth_logits) * (far - near)
    return c + tau[..., None] * directions


# ----------------------------------------------------------------------------- the model
class GRM(nn.Module, ShippedModel):
    """GRM's transformer: ``[B, 4, 9, H, W]`` → raw Gaussian maps ``[B, 4, 14, h, w]`` in LGM's layout.

    Patchify (stride-``p`` conv) → one sequence of ``4·(H/p)·(W/p)`` tokens → ``depth`` pre-norm
    ViT blocks → per-view token grids → upsampling stages (linear, PixelShuffle, windowed
    attention) → LayerNorm and a linear head to 12 channels per pixel (depth, then LGM's 11) →
    the depth becomes a position on the pixel's ray, written into LGM's 3 position channels.
    """

    # The inputs are LGM's, built by the same code (it reads only ``config.normalize_rgb``).
    prepare_inputs = LGM.prepare_inputs

    def __init__(self, config: GRMConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or GRMConfig()
        self.patchify = nn.Conv2d(9, cfg.width, cfg.patch_size, stride=cfg.patch_size)
        self.encoder = nn.ModuleList(GRMBlock(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)
        self.upsample = nn.ModuleList(GRMUpsampler(cfg.width >> s, cfg.heads, cfg.mlp_ratio, cfg.window)
                                      for s in range(cfg.upsample_stages))
        c = cfg.width >> cfg.upsample_stages
        self.norm_out = nn.LayerNorm(c)
        self.head = nn.Linear(c, GRM_RAW_CHANNELS)
        self.colour_shortcut = ColourShortcut() if cfg.rgb_skip else None

    def encode(self, x: Tensor) -> Tensor:
        """``x [B, 4, 9, H, W]`` → the encoder's output sequence ``[B, 4·(H/p)·(W/p), width]``
        (view-major, then token rows)."""
        B, V, C, H, W = x.shape
        if V != LGM_VIEWS or C != 9:
            raise ValueError(f"input must be [B, {LGM_VIEWS}, 9, H, W], got {list(x.shape)}")
        if (H, W) != (self.config.input_size,) * 2:
            raise ValueError(f"input views must be {self.config.input_size}², got {H}×{W}")
        t = self.patchify(x.reshape(B * V, C, H, W)).flatten(2).transpose(1, 2)   # [B·V, g², width]
        group = V if self.config.cross_view else 1                               # views sharing one sequence
        t = t.reshape(B * V // group, -1, self.config.width)
        for block in self.encoder:
            t = block(t)
        return self.norm(t).reshape(B, -1, self.config.width)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, 4, 9, H, W]`` → raw Gaussian maps ``[B, 4, 14, h, w]``: channels 0:3 the positions
        on the rays (already inside the box), 3:14 LGM's pre-activation opacity, scale, rotation, colour."""
        B, V = x.shape[:2]
        g, cfg = self.config.grid_size, self.config
        t = self.encode(x).reshape(B * V, g, g, cfg.width).permute(0, 3, 1, 2)   # per-view token grids
        for stage in self.upsample:
            t = stage(t)
        h = t.shape[-1]
        out = self.head(self.norm_out(t.permute(0, 2, 3, 1))).reshape(B, V, h, h, GRM_RAW_CHANNELS)
        if self.colour_shortcut is not None:      # raw channels 9:12 are the colour (depth, opacity, scale, rotation first)
            shortcut = self.colour_shortcut(input_colour(x, h)).permute(0, 2, 3, 1).reshape(B, V, h, h, 3)
            out = torch.cat([out[..., :9], out[..., 9:] + shortcut], dim=-1)
        origins, directions = grm_rays(x, h)
        means = grm_positions(out[..., 0], origins, directions, cfg.box)          # [B, V, h, h, 3]
        return torch.cat([means, out[..., 1:]], dim=-1).permute(0, 1, 4, 2, 3)

    # Decoding (LGM's) and saving are LGM's own methods; from_checkpoint rebuilds ``config_class``.
    config_class = GRMConfig
    shipped_name = "grm"         # gsbook/weights/grm.*, made by ``python -m gsbook.train grm``
    gaussians = LGM.gaussians
    checkpoint = LGM.checkpoint
    config_dict = LGM.config_dict
    from_checkpoint = classmethod(LGM.from_checkpoint.__func__)
    from_config = classmethod(LGM.from_config.__func__)

