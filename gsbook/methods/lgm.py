"""LGM: four posed views → one network pass → pixel-aligned 3D Gaussians (taught in §3,
``chapters/03_lgm_grm.ipynb``).

Tang et al., *LGM: Large Multi-View Gaussian Model for High-Resolution 3D Content
Creation*, ECCV 2024 (arXiv:2402.05054; code: github.com/3DTopia/LGM). The structure below
follows its ``core/unet.py`` and ``core/models.py``; the sizes are the book's, small enough
to train on two CPU cores (:meth:`LGMConfig.paper` gives the paper's).

The model, top to bottom:

1. **Inputs** (:meth:`LGM.prepare_inputs`). Four views at azimuth 0°, 90°, 180°, 270°
   (:func:`gsbook.cameras.four_views`). Each pixel gets its RGB (ImageNet-normalised, as
   LGM's data loader does) and the Plücker embedding ``(o × d, d)`` of its ray
   (:func:`gsbook.cameras.plucker_rays`): 9 channels that tell the network *where* each
   pixel looks from, so it can place Gaussians in one shared world frame.
2. **An asymmetric U-Net** (:class:`LGM`). Residual blocks (GroupNorm, SiLU, 3×3 convs) go
   down to a low resolution and come back up only part of the way: the output grid is
   smaller than the input (256² → 64² in the paper, 64² → 32² here), which keeps the
   Gaussian count manageable. At the low-resolution levels a self-attention layer sees the
   tokens of *all four views at once* (:class:`LGMCrossViewAttention`): the only place where
   the views exchange information.
3. **Gaussians** (:func:`lgm_activate`, :func:`lgm_decode`). Each output pixel of each view
   emits one Gaussian, 14 numbers: position (3), opacity (1), scale (3), rotation (4),
   colour (3). With 4 views of 32² that is 4,096 Gaussians per object.
4. **Loss** (:func:`lgm_loss`). Render the Gaussians with the book's differentiable
   rasterizer from the input views and other views; MSE on the images plus MSE of the
   rendered alpha against the object's mask, plus (optionally) a perceptual term: LGM
   uses LPIPS with weight 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsbook.cameras import Cameras, plucker_rays
from gsbook.gaussians import Gaussians, rgb_to_sh0
from gsbook.render import render
from gsbook.zoo import ShippedModel

__all__ = ["LGMConfig", "LGM", "LGMResnetBlock", "LGMCrossViewAttention", "ColourShortcut", "input_colour",
           "LGMSplats", "lgm_activate",
           "lgm_decode", "lgm_loss", "LGM_VIEWS", "LGM_CHANNELS"]

LGM_VIEWS = 4        # front, right, back, left: azimuth 0°, 90°, 180°, 270°
LGM_CHANNELS = 14    # per Gaussian: position 3, opacity 1, scale 3, rotation 4, colour 3
# LGM feeds ImageNet-normalised RGB to its U-Net (its data loader calls TF.normalize with these).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- config
@dataclass
class LGMConfig:
    """The network's sizes. The defaults (2.6 M parameters, 64² in → 32² out, 4,096 Gaussians) train on a CPU.

    Attributes:
        input_size: side of the square input views, in pixels.
        down_channels: channels of each down level; every level but the last halves the
            resolution, so ``len(down_channels) - 1`` halvings.
        down_attention: cross-view attention after each residual block of that level.
        mid_attention: cross-view attention in the middle block (lowest resolution).
        up_channels: channels of each up level; every level but the last doubles the
            resolution. Fewer up levels than down levels is what makes the U-Net asymmetric.
        up_attention: cross-view attention in that up level.
        layers_per_block: residual blocks per down level (up levels have one more, to
            consume the downsampling skip, as in LGM).
        attention_heads: heads of each attention layer (LGM: 16).
        norm_groups: GroupNorm groups (LGM: 32; fewer suits the narrow book model).
        skip_scale: residual sums are multiplied by this (LGM: √0.5) to keep the variance
            from growing with depth.
        cross_view: attend across the four views (LGM). False restricts each attention to
            its own view: the ablation that shows the views only meet in attention.
        normalize_rgb: ImageNet-normalise the input RGB, as LGM does.
        rgb_skip: the book's colour shortcut (not in LGM): each Gaussian's colour channels also
            receive a linear map (:class:`ColourShortcut`, zero at initialisation) of the mean
            colour of the input pixels it sits on. See :func:`input_colour`.
    """

    input_size: int = 64
    down_channels: tuple[int, ...] = (32, 64, 96, 96)
    down_attention: tuple[bool, ...] = (False, False, True, True)
    mid_attention: bool = True
    up_channels: tuple[int, ...] = (96, 96, 64)
    up_attention: tuple[bool, ...] = (True, True, False)
    layers_per_block: int = 1
    attention_heads: int = 4
    norm_groups: int = 8
    skip_scale: float = math.sqrt(0.5)
    cross_view: bool = True
    normalize_rgb: bool = True
    rgb_skip: bool = False

    def __post_init__(self) -> None:
        self.down_channels = tuple(int(c) for c in self.down_channels)
        self.down_attention = tuple(bool(a) for a in self.down_attention)
        self.up_channels = tuple(int(c) for c in self.up_channels)
        self.up_attention = tuple(bool(a) for a in self.up_attention)
        if len(self.down_attention) != len(self.down_channels):
            raise ValueError("down_attention needs one flag per down level")
        if len(self.up_attention) != len(self.up_channels):
            raise ValueError("up_attention needs one flag per up level")
        if not 1 <= len(self.up_channels) <= len(self.down_channels):
            raise ValueError("need between 1 and len(down_channels) up levels")
        if self.input_size % 2 ** (len(self.down_channels) - 1):
            raise ValueError(f"input_size {self.input_size} must be divisible by "
                             f"2^{len(self.down_channels) - 1} (one halving per down level but the last)")
        for c in self.down_channels + self.up_channels:
            if c % self.norm_groups or c % self.attention_heads:
                raise ValueError(f"channels {c} must be divisible by norm_groups ({self.norm_groups}) "
                                 f"and attention_heads ({self.attention_heads})")

    @property
    def output_size(self) -> int:
        """Side of each view's Gaussian grid: down ``len(down)-1`` halvings, up ``len(up)-1`` doublings."""
        return self.input_size // 2 ** (len(self.down_channels) - 1) * 2 ** (len(self.up_channels) - 1)

    @property
    def n_gaussians(self) -> int:
        """Gaussians per object: one per output pixel per view."""
        return LGM_VIEWS * self.output_size ** 2

    def to_dict(self) -> dict:
        """Plain JSON-friendly values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "LGMConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def paper(cls) -> "LGMConfig":
        """LGM's default network (``core/options.py``, configs ``lrm`` and ``small``: 256² in, 64²
        Gaussians per view, 16,384 per object). The released ``big`` adds a fifth up level (128² per
        view, 65,536 Gaussians, supervised at 512²). For comparison only."""
        return cls(input_size=256, down_channels=(64, 128, 256, 512, 1024, 1024),
                   down_attention=(False, False, False, True, True, True), mid_attention=True,
                   up_channels=(1024, 1024, 512, 256), up_attention=(True, True, True, False),
                   layers_per_block=2, attention_heads=16, norm_groups=32)


# ----------------------------------------------------------------------------- building blocks
class LGMResnetBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, twice, plus a (1×1-projected) shortcut; ``[N, Cin, h, w] → [N, Cout, h, w]``.

    The residual sum is scaled by ``skip_scale`` (LGM: √0.5) so that stacking blocks does
    not inflate activations.
    """

    def __init__(self, c_in: int, c_out: int, groups: int, skip_scale: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in, eps=1e-5)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out, eps=1e-5)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.skip_scale = skip_scale

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (h + self.shortcut(x)) * self.skip_scale


class LGMCrossViewAttention(nn.Module):
    """Self-attention over the tokens of all views of one object (LGM's ``MVAttention``).

    ``x [B·V, C, h, w]`` (views of one object adjacent in the batch) is normalised and
    reshaped to ``[B, V·h·w, C]``: every pixel of every view attends to every pixel of every
    view. Convolutions and GroupNorm act on each view alone, so this is where, say, the back
    view learns what the front view shows. With ``cross_view=False`` the tokens are
    ``[B·V, h·w, C]``: attention within each view only.
    """

    def __init__(self, channels: int, heads: int, groups: int, skip_scale: float, cross_view: bool = True,
                 views: int = LGM_VIEWS) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-5)
        self.qkv = nn.Linear(channels, 3 * channels, bias=False)   # LGM: qkv_bias=False
        self.proj = nn.Linear(channels, channels)
        self.heads, self.views, self.cross_view, self.skip_scale = heads, views, cross_view, skip_scale

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x [B·V, C, h, w]`` → q, k, v ``[B', heads, tokens, C/heads]`` over each token set."""
        BV, C, h, w = x.shape
        group = self.views if self.cross_view else 1               # images that share one token set
        tokens = self.norm(x).reshape(BV // group, group, C, h, w).permute(0, 1, 3, 4, 2)
        tokens = tokens.reshape(BV // group, group * h * w, C)     # [B, V·h·w, C] (or [B·V, h·w, C])
        return self.qkv(tokens).reshape(tokens.shape[0], -1, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)

    def attention_weights(self, x: Tensor) -> Tensor:
        """The attention this layer computes on ``x [B·V, C, h, w]``, averaged over heads:
        ``[B, V·h·w, V·h·w]`` (row: a query token, view-major then rows; each row sums to 1).
        What §3's Figure 3 draws: where a pixel of one view looks in the others."""
        q, k, _ = self._qkv(x)
        return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1).mean(1)

    def forward(self, x: Tensor) -> Tensor:
        BV, C, h, w = x.shape
        group = self.views if self.cross_view else 1               # images that share one token set
        q, k, v = self._qkv(x)
        out = F.scaled_dot_product_attention(q, k, v)              # [B', heads, tokens, C/heads]
        out = self.proj(out.transpose(1, 2).reshape(q.shape[0], -1, C))
        out = out.reshape(BV // group, group, h, w, C).permute(0, 1, 4, 2, 3).reshape(BV, C, h, w)
        return (out + x) * self.skip_scale


def input_colour(x: Tensor, size: int) -> Tensor:
    """The network input's RGB channels ``x [B, V, 9, H, W]`` area-averaged to ``[B·V, 3, size, size]``:
    per output pixel, the mean (normalised) colour of the input pixels it covers."""
    B, V, _, H, W = x.shape
    return F.interpolate(x[:, :, :3].reshape(B * V, 3, H, W), size=(size, size), mode="area")


class ColourShortcut(nn.Module):
    """The book's colour shortcut: ``rgb [N, 3, h, w]`` → a ``[N, 3, h, w]`` addition to the raw colour channels.

    A 1×1 linear map, zero at initialisation (so switching it on leaves a trained network's
    output unchanged), from the colour of the input pixels under each Gaussian to that
    Gaussian's pre-activation colour. Without it the input colour reaches the output only
    through the whole U-Net (or transformer), and a small network trained briefly on a CPU
    learns colour last and worst (§3 measures it). It is not part of LGM or GRM: a large
    network trained for days does not need it. Switched on by ``rgb_skip``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Conv2d(3, 3, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, rgb: Tensor) -> Tensor:
        return self.linear(rgb)


class _Level(nn.Module):
    """One U-Net level: residual blocks, each optionally followed by cross-view attention."""

    def __init__(self, c_ins: list[int], c_out: int, attention: bool, cfg: LGMConfig) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(LGMResnetBlock(c, c_out, cfg.norm_groups, cfg.skip_scale) for c in c_ins)
        self.attentions = nn.ModuleList(
            LGMCrossViewAttention(c_out, cfg.attention_heads, cfg.norm_groups, cfg.skip_scale, cfg.cross_view)
            if attention else nn.Identity() for _ in c_ins)


# ----------------------------------------------------------------------------- the model
class LGM(nn.Module, ShippedModel):
    """LGM's asymmetric multi-view U-Net: ``[B, 4, 9, H, W]`` → raw Gaussian maps ``[B, 4, 14, h, w]``.

    Layout (LGM's ``UNet``): a 3×3 ``conv_in``; down levels (residual blocks, then a strided
    3×3 conv that halves the resolution, except at the last level), each output kept as a
    skip; a middle block (resnet, attention, resnet); up levels that concatenate skips from
    the *lowest* resolutions first (each has one block more than a down level, so it also
    eats the downsampling output), then a nearest ×2 upsample and 3×3 conv, except at the
    last level; GroupNorm, SiLU, 3×3 ``conv_out`` to 14 channels and LGM's extra 1×1 conv.
    Stopping the up path early leaves the high-resolution skips unused: that is the asymmetry.
    """

    config_class = LGMConfig     # what from_checkpoint rebuilds (GRM shares these methods with its own)
    shipped_name = "lgm"         # gsbook/weights/lgm.*, made by ``python -m gsbook.train lgm``

    def __init__(self, config: LGMConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LGMConfig()
        L = cfg.layers_per_block
        self.conv_in = nn.Conv2d(9, cfg.down_channels[0], 3, padding=1)
        skips = [cfg.down_channels[0]]                          # channels of each saved skip, in order
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        c = cfg.down_channels[0]
        for i, (c_out, attn) in enumerate(zip(cfg.down_channels, cfg.down_attention)):
            self.down.append(_Level([c] + [c_out] * (L - 1), c_out, attn, cfg))
            skips += [c_out] * L
            last = i == len(cfg.down_channels) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c_out, c_out, 3, stride=2, padding=1))
            skips += [] if last else [c_out]
            c = c_out
        self.mid = _Level([c, c], c, cfg.mid_attention, cfg)
        # The middle block attends once, between its two resnets (LGM's MidBlock).
        self.mid.attentions[1] = nn.Identity()
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, (c_out, attn) in enumerate(zip(cfg.up_channels, cfg.up_attention)):
            c_skip = [skips.pop() for _ in range(L + 1)]         # consumed from the end: lowest resolution first
            self.up.append(_Level([c_in + s for c_in, s in zip([c] + [c_out] * L, c_skip)], c_out, attn, cfg))
            last = i == len(cfg.up_channels) - 1
            self.upsample.append(nn.Identity() if last else nn.Conv2d(c_out, c_out, 3, padding=1))
            c = c_out
        self.norm_out = nn.GroupNorm(cfg.norm_groups, c, eps=1e-5)
        self.conv_out = nn.Conv2d(c, LGM_CHANNELS, 3, padding=1)
        self.conv = nn.Conv2d(LGM_CHANNELS, LGM_CHANNELS, 1)    # LGM's models.py adds this 1×1 after the U-Net
        self.colour_shortcut = ColourShortcut() if cfg.rgb_skip else None

    # --- inputs --------------------------------------------------------------------------
    def prepare_inputs(self, images: Tensor, cameras: Cameras) -> Tensor:
        """RGB views and their cameras → the network input ``[B, 4, 9, H, W]``.

        Args:
            images: ``[B, 4, H, W, 3]`` RGB in [0, 1], the object on LGM's white background.
            cameras: 4 cameras shared by the batch (e.g. :func:`~gsbook.cameras.four_views`)
                or ``4·B`` cameras, object-major, all ``W × H``.

        Returns:
            ``[B, 4, 9, H, W]``: RGB (ImageNet-normalised when ``config.normalize_rgb``), then
            the 6 Plücker channels ``(o × d, d)`` in :func:`~gsbook.cameras.plucker_rays`'s order.
        """
        B, V, H, W, _ = images.shape
        if V != LGM_VIEWS or images.shape[-1] != 3:
            raise ValueError(f"images must be [B, {LGM_VIEWS}, H, W, 3], got {list(images.shape)}")
        if (cameras.width, cameras.height) != (W, H) or len(cameras) not in (V, B * V):
            raise ValueError(f"need {V} or {B * V} cameras of {W}×{H}, got {len(cameras)} of "
                             f"{cameras.width}×{cameras.height}")
        rays = plucker_rays(cameras.to(device=images.device, dtype=images.dtype))   # [V or B·V, H, W, 6]
        rays = rays.reshape(-1, V, H, W, 6).expand(B, V, H, W, 6)
        rgb = images
        if self.config.normalize_rgb:
            rgb = (rgb - rgb.new_tensor(IMAGENET_MEAN)) / rgb.new_tensor(IMAGENET_STD)
        return torch.cat([rgb, rays], dim=-1).permute(0, 1, 4, 2, 3).contiguous()

    # --- the network -----------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """``x [B, 4, 9, H, W]`` → raw (pre-activation) Gaussian maps ``[B, 4, 14, h, w]``."""
        B, V, C, H, W = x.shape
        if V != LGM_VIEWS or C != 9:
            raise ValueError(f"input must be [B, {LGM_VIEWS}, 9, H, W], got {list(x.shape)}")
        # Views ride in the batch dimension, object-major, so convs and norms see one view
        # at a time and the attention layers can regroup each object's four views.
        inputs = x
        x = self.conv_in(x.reshape(B * V, C, H, W))
        skips = [x]
        for level, down in zip(self.down, self.downsample):
            for resnet, attn in zip(level.resnets, level.attentions):
                x = attn(resnet(x))
                skips.append(x)
            if not isinstance(down, nn.Identity):
                x = down(x)
                skips.append(x)
        x = self.mid.attentions[0](self.mid.resnets[0](x))
        x = self.mid.resnets[1](x)
        for level, up in zip(self.up, self.upsample):
            for resnet, attn in zip(level.resnets, level.attentions):
                x = attn(resnet(torch.cat([x, skips.pop()], dim=1)))
            if not isinstance(up, nn.Identity):
                x = up(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        x = self.conv(self.conv_out(F.silu(self.norm_out(x))))
        h = x.shape[-1]
        if self.colour_shortcut is not None:
            colour = x[:, 11:14] + self.colour_shortcut(input_colour(inputs, h))
            x = torch.cat([x[:, :11], colour], dim=1)
        return x.reshape(B, V, LGM_CHANNELS, h, h)

    def gaussians(self, x: Tensor) -> list[Gaussians]:
        """``x [B, 4, 9, H, W]`` → one :class:`~gsbook.gaussians.Gaussians` per object."""
        return lgm_decode(self(x))

    # --- saving ----------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        """``{"config": dict, "state_dict": ...}``, what :meth:`from_checkpoint` reads back."""
        return {"config": self.config.to_dict(), "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "LGM":
        model = cls.from_config(checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"])
        return model

    @classmethod
    def from_config(cls, config: dict) -> "LGM":
        """A fresh model from its config dict (what the shipped JSON's ``"model"`` holds)."""
        return cls(cls.config_class.from_dict(config))

    def config_dict(self) -> dict:
        return self.config.to_dict()


# ----------------------------------------------------------------------------- Gaussians
class LGMSplats(NamedTuple):
    """LGM's activated Gaussians, batched: each ``[B, N, ·]`` with ``N = 4·h·w`` (view-major, then rows)."""

    means: Tensor        # [B, N, 3] in [-1, 1]
    opacities: Tensor    # [B, N] in (0, 1)
    scales: Tensor       # [B, N, 3] > 0, standard deviations
    quats: Tensor        # [B, N, 4] unit, (w, x, y, z)
    rgb: Tensor          # [B, N, 3] in [0, 1]


def lgm_activate(raw: Tensor) -> LGMSplats:
    """Raw maps ``[B, 4, 14, h, w]`` → activated Gaussians, with LGM's activations.

    Position: clamp to [-1, 1], the box LGM normalises objects into (a hard clamp, as in
    LGM: no gradient pushes a Gaussian back once it is outside). Opacity: sigmoid. Scale:
    ``0.1 · softplus``, positive and small at initialisation (0.07 for a zero input).
    Rotation: normalised quaternion. Colour: ``0.5 · tanh + 0.5`` in [0, 1].
    """
    B = raw.shape[0]
    x = raw.permute(0, 1, 3, 4, 2).reshape(B, -1, LGM_CHANNELS)           # [B, N, 14]
    return LGMSplats(means=x[..., 0:3].clamp(-1, 1),
                     opacities=torch.sigmoid(x[..., 3]),
                     scales=0.1 * F.softplus(x[..., 4:7]),
                     quats=F.normalize(x[..., 7:11], dim=-1),
                     rgb=0.5 * torch.tanh(x[..., 11:14]) + 0.5)


def lgm_decode(raw: Tensor) -> list[Gaussians]:
    """Raw maps ``[B, 4, 14, h, w]`` → one book :class:`~gsbook.gaussians.Gaussians` per object.

    The book stores log-scales, opacity logits and SH coefficients, so the activated values
    are converted: ``logit(sigmoid(x)) = x`` exactly (no round trip), ``log(0.1·softplus(x))``
    computed as ``log 0.1 + log softplus(x)`` (floored so that an underflow cannot give −∞),
    colour → SH DC by :func:`~gsbook.gaussians.rgb_to_sh0`. Differentiable throughout.
    """
    splats = lgm_activate(raw)
    x = raw.permute(0, 1, 3, 4, 2).reshape(raw.shape[0], -1, LGM_CHANNELS)   # [B, N, 14], as lgm_activate
    opacity_logits = x[..., 3]
    log_scales = math.log(0.1) + F.softplus(x[..., 4:7]).clamp_min(1e-30).log()
    return [Gaussians(means=splats.means[b], quats=splats.quats[b], log_scales=log_scales[b],
                      opacity_logits=opacity_logits[b], sh=rgb_to_sh0(splats.rgb[b])[:, None, :])
            for b in range(raw.shape[0])]


# ----------------------------------------------------------------------------- loss
def lgm_loss(gaussians: list[Gaussians], cameras: Cameras | list[Cameras], images: Tensor, alphas: Tensor,
             background: tuple[float, float, float] = (1.0, 1.0, 1.0),
             perceptual: Callable[[Tensor, Tensor], Tensor] | None = None, perceptual_weight: float = 1.0,
             backend: str = "auto") -> dict[str, Tensor]:
    """LGM's training loss: render each object's Gaussians and compare with its target views.

    ``loss = MSE(image) + MSE(alpha, mask) + perceptual_weight · perceptual(image)``.

    Args:
        gaussians: B scenes (e.g. :func:`lgm_decode`'s output).
        cameras: V supervision cameras shared by all objects, or one :class:`Cameras` per
            object. LGM supervises the 4 input views plus others around the object.
        images: ``[B, V, H, W, 3]`` targets in [0, 1], composited on ``background`` (LGM
            uses white: ``image · mask + 1 · (1 − mask)``).
        alphas: ``[B, V, H, W, 1]`` (or ``[B, V, H, W]``) target masks in [0, 1].
        perceptual: optional ``f(pred, target) → scalar`` on ``[B·V, 3, H, W]`` images in
            [0, 1] (LGM: LPIPS with VGG, inputs mapped to [-1, 1] and resized to 256²; the
            book ships no LPIPS weights, so the default leaves it out).

    Returns:
        ``{"loss", "mse", "alpha", "perceptual"}`` scalars, plus ``"images"`` and
        ``"alphas"``: the renders ``[B, V, H, W, 3]`` and ``[B, V, H, W, 1]``.
    """
    B = len(gaussians)
    if images.dim() != 5 or images.shape[0] != B or images.shape[-1] != 3:
        raise ValueError(f"images must be [B={B}, V, H, W, 3], got {list(images.shape)}")
    alphas = alphas[..., None] if alphas.dim() == 4 else alphas
    cams = cameras if isinstance(cameras, list) else [cameras] * B
    outs = [render(g, c, background=background, backend=backend) for g, c in zip(gaussians, cams)]
    pred_images = torch.stack([o.image for o in outs])                     # [B, V, H, W, 3]
    pred_alphas = torch.stack([o.alpha for o in outs])                     # [B, V, H, W, 1]
    if pred_images.shape != images.shape or pred_alphas.shape != alphas.shape:
        raise ValueError(f"renders {list(pred_images.shape)} do not match targets {list(images.shape)} / "
                         f"{list(alphas.shape)}: check the cameras' count and size")
    mse = F.mse_loss(pred_images, images)
    alpha = F.mse_loss(pred_alphas, alphas)
    loss = mse + alpha
    percep = pred_images.new_zeros(())
    if perceptual is not None:
        flat = lambda t: t.reshape(-1, *t.shape[2:]).permute(0, 3, 1, 2)   # noqa: E731  [B·V, 3, H, W]
        percep = perceptual(flat(pred_images), flat(images)).mean()
        loss = loss + perceptual_weight * percep
    return {"loss": loss, "mse": mse, "alpha": alpha, "perceptual": percep,
            "images": pred_images, "alphas": pred_alphas}
