"""The book's 2D text-to-image prior: the critic that §1's score distillation listens to.

A small ε-prediction diffusion model (DDPM, Ho et al. 2020) in *pixel space* at 32² that
reads captions through MiniLM token features, trained by the recipe
:mod:`gsbook.recipes.prior2d` (``python -m gsbook.train prior2d``) on random views of
ShapeWorld on white and black backgrounds, and shipped: ``TextToImagePrior.from_shipped()``.

Anatomy (every part is diffusers' or the text encoder's; the wiring is ours)::

    x_t [B, 3, 32, 32] ──PixelUnshuffle(2)──▶ [B, 12, 16, 16]
        ──UNet2DConditionModel (16² → 8² → 4², cross-attention at 8² and 4²)──▶ [B, 12, 16, 16]
        ──PixelShuffle(2)──▶ ε̂ [B, 3, 32, 32]
    t ──sinusoid + MLP──┐
    pooled caption ─MLP─┴─▶ added to every ResNet block (diffusers' ``class_embed_type="projection"``)
    caption tokens [B, L, 384] (+ mask) ──▶ keys and values of every cross-attention layer

Why these choices (measured on 2 CPU cores, see §1):

* **Pixel space, 2×2 patches.** ShapeWorld objects are flat-shaded shapes; at 32² the
  judge still reads them (≥ 99 %). A latent model would need an autoencoder trained
  first and would put a VAE encoder into every SDS step. Folding 2×2 pixels into 12
  channels (as *simple diffusion* and DiT patchify their inputs) runs the UNet at 16²,
  which trains about 2.5× faster per step than a UNet at 32² of similar width.
* **Two ways in for the caption.** Cross-attention to the tokens, as Stable Diffusion
  does, lets each region look up the words it needs (the part colour); the pooled
  sentence vector added to the time embedding gives every layer the gist (category
  and colour) from the first step of training.
* **Cosine noise schedule** (``squaredcos_cap_v2``, Nichol & Dhariwal 2021): a linear
  schedule destroys a 32² image too early.
* **Unconditional = the empty caption.** Training replaces 10 % of captions with
  ``""``; classifier-free guidance contrasts a caption with ``""``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..text import TEXT_DIM
from ..zoo import ShippedModel
from .noise import add_noise

__all__ = ["Prior2DConfig", "TextToImagePrior", "caption_features", "pooled_features", "diffusion_loss",
           "EMPTY_CAPTION"]

EMPTY_CAPTION = ""


@dataclass
class Prior2DConfig:
    """Architecture and noise schedule of :class:`TextToImagePrior` (saved with the weights)."""

    image_size: int = 32
    patch: int = 2
    channels: tuple[int, ...] = (64, 96, 128)
    cross_attention: tuple[bool, ...] = (False, True, True)
    layers_per_block: int = 1
    attention_heads: int = 4
    norm_groups: int = 16
    text_dim: int = TEXT_DIM
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        self.cross_attention = tuple(bool(a) for a in self.cross_attention)
        if len(self.channels) != len(self.cross_attention):
            raise ValueError(f"channels {self.channels} and cross_attention {self.cross_attention} "
                             "need one entry per resolution")
        if self.image_size % (self.patch * 2 ** (len(self.channels) - 1)):
            raise ValueError(f"image_size {self.image_size} must be divisible by patch × 2^(levels-1) = "
                             f"{self.patch * 2 ** (len(self.channels) - 1)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"], d["cross_attention"] = list(self.channels), list(self.cross_attention)
        return d


def caption_features(captions: list[str]) -> tuple[Tensor, Tensor]:
    """MiniLM token features of ``captions``: ``tokens [B, L, 384]`` and ``mask [B, L]`` (bool)."""
    from ..text import encode

    feats = encode(list(captions))
    return feats.tokens, feats.mask


def pooled_features(tokens: Tensor, mask: Tensor) -> Tensor:
    """``[B, 384]``: the masked mean of the tokens, L2-normalised — exactly the sentence
    embedding all-MiniLM-L6-v2 returns, recomputed so that the model needs only tokens."""
    m = mask.to(tokens.dtype)[..., None]
    mean = (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)
    return F.normalize(mean, dim=-1)


class TextToImagePrior(nn.Module, ShippedModel):
    """ε_φ(x_t, t, caption) for 32² RGB images scaled to [-1, 1].

    ``forward(x_t [B, 3, S, S], t [B] int, tokens [B, L, 384], mask [B, L]) → ε̂ [B, 3, S, S]``.
    """

    shipped_name = "prior2d"

    def __init__(self, config: Prior2DConfig | None = None) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        self.config = config = config or Prior2DConfig()
        c_in = 3 * config.patch ** 2
        down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in config.cross_attention)
        up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.cross_attention))
        self.unet = UNet2DConditionModel(
            sample_size=config.image_size // config.patch, in_channels=c_in, out_channels=c_in,
            block_out_channels=config.channels, down_block_types=down, up_block_types=up,
            layers_per_block=config.layers_per_block, norm_num_groups=config.norm_groups,
            # diffusers' UNet2DConditionModel reads `attention_head_dim` as the number of heads.
            attention_head_dim=config.attention_heads, cross_attention_dim=config.text_dim,
            class_embed_type="projection", projection_class_embeddings_input_dim=config.text_dim,
        )
        self.register_buffer("alphas_cumprod", self.make_scheduler().alphas_cumprod.float(), persistent=False)

    @classmethod
    def from_config(cls, config: dict) -> "TextToImagePrior":
        return cls(Prior2DConfig(**config))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    def make_scheduler(self, kind: str = "ddpm"):
        """A fresh diffusers scheduler with this model's noise schedule: ``"ddpm"`` or ``"ddim"``."""
        from diffusers import DDIMScheduler, DDPMScheduler

        common = dict(num_train_timesteps=self.config.num_train_timesteps, beta_schedule=self.config.beta_schedule,
                      prediction_type="epsilon")
        if kind == "ddpm":
            return DDPMScheduler(**common, clip_sample=True, clip_sample_range=1.0)
        if kind == "ddim":
            # No clipping of the predicted x0, and no step at t = 999. Near t = T the cosine schedule
            # leaves ᾱ_t ≈ 1e-9, so x0 = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t multiplies the model's error by
            # up to 2·10⁴; DDPM's fresh noise washes that out, DDIM's deterministic step keeps it.
            # Clipping is worse: DDIM re-derives ε from the clipped x0, which there is ≈ x_t, so the
            # model's prediction is thrown away (§1's primer measures it: DDIM with clipping from
            # t = 999 gets far fewer categories right).
            return DDIMScheduler(**common, clip_sample=False, timestep_spacing="leading", set_alpha_to_one=True)
        raise ValueError(f"unknown scheduler kind {kind!r}; choose 'ddpm' or 'ddim'")

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x_t: Tensor, t: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        S, p = self.config.image_size, self.config.patch
        if x_t.dim() != 4 or x_t.shape[1:] != (3, S, S):
            raise ValueError(f"x_t must be [B, 3, {S}, {S}], got {list(x_t.shape)}")
        if tokens.dim() != 3 or tokens.shape[0] != x_t.shape[0] or tokens.shape[2] != self.config.text_dim:
            raise ValueError(f"tokens must be [B={x_t.shape[0]}, L, {self.config.text_dim}], got {list(tokens.shape)}")
        if mask.shape != tokens.shape[:2]:
            raise ValueError(f"mask must be [B, L] = {list(tokens.shape[:2])}, got {list(mask.shape)}")
        t = t.reshape(-1).to(x_t.device)
        if t.shape[0] == 1 and x_t.shape[0] > 1:
            t = t.expand(x_t.shape[0])
        h = F.pixel_unshuffle(x_t, p)
        out = self.unet(h, t, encoder_hidden_states=tokens, encoder_attention_mask=mask.bool(),
                        class_labels=pooled_features(tokens, mask)).sample
        return F.pixel_shuffle(out, p)


def diffusion_loss(model: TextToImagePrior, x0: Tensor, tokens: Tensor, mask: Tensor, generator: torch.Generator,
                   min_snr_gamma: float | None = None) -> Tensor:
    """DDPM's training loss (L_simple): the ε-prediction MSE at uniform random timesteps, for
    clean images ``x0 [B, 3, S, S]`` in [-1, 1] and their captions. With ``min_snr_gamma``
    (Hang et al. 2023) each sample's MSE is weighted by ``min(SNR_t, γ) / SNR_t``. The draws
    come from the CPU ``generator`` wherever ``x0`` lives, so a run is the same on every device."""
    B = x0.shape[0]
    abar = model.alphas_cumprod
    t = torch.randint(0, len(abar), (B,), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_t = add_noise(x0, noise, t, abar)
    per_sample = (model(x_t, t, tokens, mask) - noise).square().mean((1, 2, 3))
    if min_snr_gamma:
        snr = abar[t] / (1 - abar[t])
        per_sample = per_sample * snr.clamp(max=min_snr_gamma) / snr
    return per_sample.mean()
