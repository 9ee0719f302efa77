"""The book's multi-view prior: four views of one object drawn jointly (§3's front end).

MVDream (Shi et al., ICLR 2024, arXiv:2308.16512) turned a text-to-image diffusion model into
one that draws several views of the same object at once, with two changes to the network:
its 2D self-attention becomes *3D* (the tokens of all views attend to each other: the
views can agree), and a camera embedding is added to the timestep embedding (each view knows
where it looks from). ImageDream (Wang & Shi, 2023, arXiv:2312.02201) adds an input image of
the object. The book's version does both on top of its own 2D prior
(:class:`~gsbook.diffusion.prior2d.TextToImagePrior`), whose weights it starts from:

* **Cross-view self-attention, no new weights.** Every self-attention layer (``attn1``) of the
  UNet's transformer blocks gets :class:`MultiViewAttnProcessor`, which reshapes the tokens
  ``[B·V, N, C] → [B, V·N, C]`` before attending and back after: the same projection weights,
  now over all four views (MVDream initialises its 3D attention from the 2D one the same way).
* **Camera embedding.** ``(sin az, cos az, sin el, cos el)`` of each view → a two-layer MLP →
  added to the pooled caption vector that diffusers' class embedding adds to the time
  embedding. The MLP's last layer starts at zero, so the untrained model *is* the 2D prior.
* **An image, optionally** (ImageDream's role, done the Zero-1-to-3 way): the known view's
  clean pixels and a mask are concatenated to the noisy input (``conv_in`` grows from 12 to
  28 channels after 2×2 pixel folding; the new weights start at zero). Training gives the
  front view (azimuth 0°) half of the time; with it the model draws the other three views of
  *that* object.

The four views are LGM's input layout: azimuth 0°, 90°, 180°, 270° at elevation 0°
(:func:`gsbook.cameras.four_views`). Trained by :mod:`gsbook.recipes.prior_mv`
(``python -m gsbook.train prior_mv``) and shipped: ``MultiViewPrior.from_shipped()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import ShippedModel
from .noise import add_noise, guide
from .prior2d import EMPTY_CAPTION, Prior2DConfig, TextToImagePrior, caption_features, pooled_features

__all__ = ["MV_VIEWS", "MV_AZIMUTHS", "MultiViewPriorConfig", "MultiViewPrior", "MultiViewAttnProcessor",
           "camera_features", "multiview_loss", "sample_views"]

MV_VIEWS = 4
MV_AZIMUTHS = (0.0, 90.0, 180.0, 270.0)     # LGM's four input views


@dataclass
class MultiViewPriorConfig:
    """Architecture of :class:`MultiViewPrior` (saved with the weights).

    Attributes:
        base: the 2D prior's config (the UNet the multi-view model is built from).
        views: views drawn jointly.
        elevation: their elevation in degrees (azimuths: :data:`MV_AZIMUTHS`).
        cross_view: attend across views (MVDream). False keeps each view's attention to itself:
            four independent 2D samples, the ablation of §3.
    """

    base: Prior2DConfig = field(default_factory=Prior2DConfig)
    views: int = MV_VIEWS
    elevation: float = 0.0
    cross_view: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.base, dict):
            self.base = Prior2DConfig(**self.base)
        if self.views != MV_VIEWS:
            raise ValueError(f"the multi-view prior draws LGM's {MV_VIEWS} views, got views={self.views}")

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "views": self.views, "elevation": self.elevation,
                "cross_view": self.cross_view}


def camera_features(azimuths_deg: Tensor, elevations_deg: Tensor) -> Tensor:
    """``[..., 4]``: ``(sin az, cos az, sin el, cos el)``, what the camera MLP reads."""
    az, el = torch.deg2rad(azimuths_deg), torch.deg2rad(elevations_deg)
    return torch.stack([az.sin(), az.cos(), el.sin(), el.cos()], dim=-1)


class MultiViewAttnProcessor:
    """diffusers' attention, but over the tokens of all ``views`` images of one object.

    ``hidden_states [B·V, N, C]`` (views of one object adjacent) → ``[B, V·N, C]`` → diffusers'
    :class:`~diffusers.models.attention_processor.AttnProcessor2_0` → back to ``[B·V, N, C]``.
    Used for self-attention only (no ``encoder_hidden_states``).
    """

    def __init__(self, views: int = MV_VIEWS) -> None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.views = views
        self.inner = AttnProcessor2_0()

    def __call__(self, attn, hidden_states: Tensor, encoder_hidden_states: Tensor | None = None,
                 attention_mask: Tensor | None = None, temb: Tensor | None = None, *args, **kwargs) -> Tensor:
        if encoder_hidden_states is not None or hidden_states.dim() != 3:
            raise ValueError("MultiViewAttnProcessor is for self-attention on [B·V, N, C] tokens")
        BV, N, C = hidden_states.shape
        joint = hidden_states.reshape(BV // self.views, self.views * N, C)
        out = self.inner(attn, joint, None, attention_mask, temb, *args, **kwargs)
        return out.reshape(BV, N, C)


class MultiViewPrior(nn.Module, ShippedModel):
    """ε_φ for four views at once: ``forward(x_t [B, 4, 3, S, S], t [B], tokens [B, L, 384], mask [B, L],
    cond [B, 4, 3, S, S] | None, cond_mask [B, 4] | None) → ε̂ [B, 4, 3, S, S]``.

    ``cond`` holds known views in [-1, 1] where ``cond_mask`` is True (the front view for
    image → 3D), anything elsewhere; ``None`` means no image.
    """

    shipped_name = "prior_mv"
    EXTRA_CHANNELS = 4                        # the mask (1 channel) folded 2×2

    def __init__(self, config: MultiViewPriorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or MultiViewPriorConfig()
        self.base = TextToImagePrior(cfg.base)
        unet = self.base.unet
        c_img = 3 * cfg.base.patch ** 2
        old = unet.conv_in
        unet.conv_in = nn.Conv2d(2 * c_img + self.EXTRA_CHANNELS, old.out_channels, old.kernel_size,
                                 padding=old.padding)
        with torch.no_grad():                  # the noisy image's weights are the 2D prior's; the rest start at 0
            unet.conv_in.weight.zero_()
            unet.conv_in.weight[:, :c_img] = old.weight
            unet.conv_in.bias.copy_(old.bias)
        self.camera = nn.Sequential(nn.Linear(4, cfg.base.text_dim), nn.SiLU(),
                                    nn.Linear(cfg.base.text_dim, cfg.base.text_dim))
        nn.init.zeros_(self.camera[2].weight)
        nn.init.zeros_(self.camera[2].bias)
        if cfg.cross_view:
            unet.set_attn_processor({name: MultiViewAttnProcessor(cfg.views) if name.endswith("attn1.processor")
                                     else proc for name, proc in unet.attn_processors.items()})
        azimuths = torch.tensor(MV_AZIMUTHS)
        self.register_buffer("view_cameras", camera_features(azimuths, torch.full_like(azimuths, cfg.elevation)),
                             persistent=False)

    # --- building from the 2D prior -----------------------------------------------------------
    @classmethod
    def from_prior2d(cls, prior: TextToImagePrior, **overrides) -> "MultiViewPrior":
        """A multi-view prior that starts as ``prior`` (the same UNet weights; new weights at zero)."""
        model = cls(MultiViewPriorConfig(base=prior.config, **overrides))
        state = {k: v for k, v in prior.state_dict().items() if k != "unet.conv_in.weight"}
        missing, unexpected = model.base.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"unet.conv_in.weight"}:
            raise RuntimeError(f"prior2d does not fit: missing {missing}, unexpected {unexpected}")
        c_img = 3 * prior.config.patch ** 2
        with torch.no_grad():
            model.base.unet.conv_in.weight.zero_()
            model.base.unet.conv_in.weight[:, :c_img] = prior.unet.conv_in.weight
        return model

    @classmethod
    def from_config(cls, config: dict) -> "MultiViewPrior":
        return cls(MultiViewPriorConfig(**config))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def make_scheduler(self, kind: str = "ddim"):
        return self.base.make_scheduler(kind)

    @property
    def alphas_cumprod(self) -> Tensor:
        return self.base.alphas_cumprod

    # --- the network -------------------------------------------------------------------------
    def forward(self, x_t: Tensor, t: Tensor, tokens: Tensor, mask: Tensor, cond: Tensor | None = None,
                cond_mask: Tensor | None = None) -> Tensor:
        B, V = x_t.shape[:2]
        S, p = self.config.base.image_size, self.config.base.patch
        if x_t.dim() != 5 or x_t.shape[1:] != (self.config.views, 3, S, S):
            raise ValueError(f"x_t must be [B, {self.config.views}, 3, {S}, {S}], got {list(x_t.shape)}")
        if tokens.dim() != 3 or tokens.shape[0] != B:
            raise ValueError(f"tokens must be [B={B}, L, D], got {list(tokens.shape)}")
        t = t.reshape(-1).to(x_t.device)
        t = (t.expand(B) if t.numel() == 1 else t).repeat_interleave(V)
        if cond is None:
            cond, cond_mask = torch.zeros_like(x_t), torch.zeros(B, V, dtype=torch.bool, device=x_t.device)
        if cond_mask is None or cond_mask.shape != (B, V):
            raise ValueError(f"cond needs cond_mask [B={B}, {V}] (True where the view is known)")
        m = cond_mask.to(x_t.dtype)[:, :, None, None, None].expand(B, V, 1, S, S)
        fold = lambda a: F.pixel_unshuffle(a.reshape(B * V, -1, S, S), p)   # noqa: E731
        h = torch.cat([fold(x_t), fold(cond * m), fold(m)], dim=1)
        tok = tokens.repeat_interleave(V, dim=0)
        msk = mask.repeat_interleave(V, dim=0)
        cams = self.view_cameras.to(x_t.dtype).repeat(B, 1)                 # [B·V, 4]
        labels = pooled_features(tok, msk) + self.camera(cams)
        out = self.base.unet(h, t, encoder_hidden_states=tok, encoder_attention_mask=msk.bool(),
                             class_labels=labels).sample
        return F.pixel_shuffle(out, p).reshape(B, V, 3, S, S)


def multiview_loss(model: MultiViewPrior, x0: Tensor, tokens: Tensor, mask: Tensor, cond_mask: Tensor,
                   generator: torch.Generator) -> Tensor:
    """ε-MSE (DDPM's L_simple) of four views ``x0 [B, 4, 3, S, S]`` in [-1, 1], all noised to one
    random timestep per object; the views where ``cond_mask [B, 4]`` is True are also given clean."""
    B = x0.shape[0]
    abar = model.alphas_cumprod
    t = torch.randint(0, len(abar), (B,), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_t = add_noise(x0.flatten(1), noise.flatten(1), t, abar).reshape(x0.shape)
    return (model(x_t, t, tokens, mask, x0, cond_mask) - noise).square().mean()


@torch.no_grad()
def sample_views(model: MultiViewPrior, captions: list[str] | str, images: Tensor | None = None, steps: int = 50,
                 guidance: float = 3.0, sampler: str = "ddpm", generator: torch.Generator | None = None,
                 progress: bool = False) -> Tensor:
    """Four views per caption, ``[B, 4, S, S, 3]`` in [0, 1] on white, in LGM's order (azimuth 0, 90, 180, 270).

    Args:
        captions: one per object (``""`` when only an image is given).
        images: optional front views ``[B, S, S, 3]`` in [0, 1] on white (image → 3D). They
            condition every step and are returned as view 0.
        guidance: classifier-free guidance over caption *and* image: the unconditional branch
            has neither (the model learned it from training rows that dropped both).
        sampler: ``"ddpm"`` (ancestral, the default) or ``"ddim"`` (deterministic). DDIM carries
            the model's error at the first, nearly pure-noise step all the way to the image, and
            some starting noises then end as a grainy blob on a tinted background; DDPM's fresh
            noise at every step washes that error out (``benchmarks/feedforward.py`` measures
            both on its tuning prompts; §3 shows the failure).
    """
    from tqdm.auto import tqdm

    captions = [captions] if isinstance(captions, str) else list(captions)
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"unknown sampler {sampler!r}; choose 'ddpm' or 'ddim'")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    device = next(model.parameters()).device
    B, V, S = len(captions), model.config.views, model.config.base.image_size
    tokens, mask = caption_features([EMPTY_CAPTION] * B + captions)
    tokens, mask = tokens.to(device), mask.to(device)
    cond = torch.zeros(2 * B, V, 3, S, S, device=device)
    cond_mask = torch.zeros(2 * B, V, dtype=torch.bool, device=device)
    if images is not None:
        if images.shape != (B, S, S, 3):
            raise ValueError(f"images must be [B={B}, {S}, {S}, 3] front views, got {list(images.shape)}")
        cond[B:, 0] = images.to(device).permute(0, 3, 1, 2) * 2 - 1
        cond_mask[B:, 0] = True
    scheduler = model.make_scheduler(sampler)
    scheduler.set_timesteps(steps)
    x = torch.randn(B, V, 3, S, S, generator=generator).to(device)
    for t in tqdm(scheduler.timesteps, desc="multi-view sampling", disable=not progress):
        eps = model(torch.cat([x, x]), t.reshape(1).to(device), tokens, mask, cond, cond_mask)
        eps = guide(eps[:B], eps[B:], guidance)
        extra = {"eta": 0.0} if sampler == "ddim" else {}
        x = scheduler.step(eps.flatten(0, 1), t, x.flatten(0, 1), generator=generator, **extra).prev_sample
        x = x.reshape(B, V, 3, S, S)
    views = ((x + 1) / 2).clamp(0, 1).permute(0, 1, 3, 4, 2).cpu()
    if images is not None:
        views[:, 0] = images.cpu()
    return views
