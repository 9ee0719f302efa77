"""Adapter: the book's own 2D prior as a :class:`~gsbook.sds.prior.DiffusionPrior` (§1).

:class:`BookPrior` wraps :class:`gsbook.diffusion.TextToImagePrior` (shipped as
``gsbook/weights/prior2d.*``) so that :func:`~gsbook.sds.distill.score_distillation` and
:func:`~gsbook.sds.ism.interval_score_matching` can use it exactly as they use Stable
Diffusion:

* images: pixel space, ``x = 2·rgb − 1`` at 32² (renders are resized bilinearly);
* prompts: MiniLM token features plus one mask channel, ``[B, L, 385]``, so that a
  caption and the empty (unconditional) caption fit one tensor shape;
* schedule: the model's own cosine ``alphas_cumprod`` (1000 steps).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from gsbook.config import resolve_device
from gsbook.diffusion import TextToImagePrior, caption_features, check_timesteps
from gsbook.sds.prior import PromptEmbeddings

__all__ = ["BookPrior", "pack_text", "unpack_text"]


def pack_text(tokens: Tensor, mask: Tensor) -> Tensor:
    """``tokens [B, L, D]`` and ``mask [B, L]`` → ``[B, L, D + 1]`` (mask as the last channel)."""
    return torch.cat([tokens, mask.to(tokens.dtype)[..., None]], dim=-1)


def unpack_text(embeddings: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack_text`."""
    return embeddings[..., :-1], embeddings[..., -1] > 0.5


class BookPrior:
    """The shipped 32² text-to-image prior, speaking the SDS protocol.

    Args:
        model: a :class:`~gsbook.diffusion.TextToImagePrior`; default: the shipped weights.
        device: where the model runs (default: the profile's).
        check_vocabulary: reject prompts with words ShapeWorld does not have (the prior
            never read them, so it would silently answer about something else). The part
            after a comma (a view suffix such as ``", side view"``) is not checked.
    """

    def __init__(self, model: TextToImagePrior | None = None, device: str | torch.device | None = None,
                 check_vocabulary: bool = True) -> None:
        device = resolve_device(device)
        if model is None:
            model = TextToImagePrior.from_shipped(device)
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = device
        self.alphas_cumprod = self.model.alphas_cumprod.detach().float().cpu()
        self.num_train_timesteps = int(self.alphas_cumprod.shape[0])
        size = self.model.config.image_size
        self.image_size = (size, size)
        self.check_vocabulary = check_vocabulary

    def _check(self, prompts: Sequence[str]) -> None:
        from gsbook.world import parse

        for prompt in prompts:
            if prompt.strip():
                parse(prompt.split(",")[0])          # raises PromptError naming the unknown word

    def encode_prompts(self, prompts: Sequence[str], negative: Sequence[str] | None = None) -> PromptEmbeddings:
        """``[B, L, 385]`` rows for ``prompts`` (cond) and ``negative`` (uncond; default ``""``)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ValueError("encode_prompts needs at least one prompt")
        negative = [""] * len(prompts) if negative is None else list(negative)
        if len(negative) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(negative)} negative prompts")
        if self.check_vocabulary:
            self._check(prompts)
        tokens, mask = caption_features(prompts + negative)       # padded to one length L
        packed = pack_text(tokens, mask).to(self.device)
        return PromptEmbeddings(packed[: len(prompts)], packed[len(prompts):])

    def encode_images(self, rgb: Tensor) -> Tensor:
        """``rgb [B, 3, 32, 32]`` in [0, 1] → ``x = 2·rgb − 1`` (the model's pixel space)."""
        return rgb * 2 - 1

    def decode_images(self, x: Tensor) -> Tensor:
        """Model space → ``rgb`` in [0, 1] (for pictures of x_t or x̂_0)."""
        return ((x + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Tensor) -> Tensor:
        """``ε_φ(x_t, t, y)`` for ``x_t [N, 3, 32, 32]``, ``t [N]``, ``embeddings [N, L, 385]``."""
        t = check_timesteps(t.reshape(-1), self.num_train_timesteps, x_t.shape[0])
        tokens, mask = unpack_text(embeddings.to(self.device))
        return self.model(x_t.to(self.device).float(), t.to(self.device), tokens.float(), mask)
