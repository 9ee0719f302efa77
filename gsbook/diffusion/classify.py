"""Reading a caption back out of an image with the 2D prior: the Diffusion Classifier (§3).

A text-to-image diffusion model scores how well a caption explains an image: noise the image,
ask the model for the noise under that caption, and measure the miss. Averaged over noise
levels this is (up to constants) the ELBO of ``log p(image | caption)``, so the caption with the
smallest error is the model's best reading of the image. Li et al. call it the *Diffusion
Classifier* ("Your Diffusion Model is Secretly a Zero-Shot Classifier", ICCV 2023,
arXiv:2303.16203; Clark & Jaini did the same with Imagen, NeurIPS 2023). Two of their
practical points carry over unchanged:

* **The same noise for every caption.** Each trial draws one timestep and one ε and scores all
  captions on that same ``x_t``; the differences between captions then do not drown in the
  noise of the estimate (a paired comparison).
* **Prune, then refine.** Scoring every caption many times is the cost; a coarse pass over all
  candidates keeps a shortlist, and only the shortlist is scored again, in full.

§3 needs it for image → 3D. The multi-view prior draws the three unseen views from a front view
*and* a caption, as ImageDream does; from the image alone it draws objects unrelated to it
(§3, "Where it fails"). The 2D prior reads the caption first: one pass over every
colour × category pair ("a red mushroom"), then the shortlist with every part colour ("a red
mushroom with a white stem"). Nothing is trained: the reading uses only the shipped ``prior2d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..world.captions import ObjectSpec, caption
from ..world.categories import CATEGORIES, CATEGORY_NAMES
from ..world.colours import COLOUR_NAMES
from .noise import add_noise
from .prior2d import TextToImagePrior, caption_features

__all__ = ["CaptionReading", "denoising_errors", "read_caption"]


@dataclass
class CaptionReading:
    """What :func:`read_caption` read.

    Attributes:
        caption: the best caption, canonical ("a red mushroom with a white stem").
        spec: the same as an :class:`~gsbook.world.captions.ObjectSpec`.
        shortlist: the first pass's best colour × category captions and their mean ε-errors.
        evaluations: images the network denoised (captions scored × trials, both passes): the cost.
    """

    caption: str
    spec: ObjectSpec
    shortlist: list[tuple[str, float]]
    evaluations: int


def _at_prior_size(image: Tensor, size: int) -> Tensor:
    """``[H, W, 3]`` in [0, 1] → ``[1, 3, size, size]`` in [-1, 1] (area-averaged when smaller)."""
    if image.dim() != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be [H, W, 3] in [0, 1], got {list(image.shape)}")
    x = image.float().permute(2, 0, 1)[None]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="area" if x.shape[-1] > size else "bilinear")
    return x.clamp(0, 1) * 2 - 1


@torch.no_grad()
def denoising_errors(prior: TextToImagePrior, image: Tensor, captions: list[str], trials: int = 8,
                     t_range: tuple[int, int] = (100, 800), seed: int = 0, batch: int = 96) -> Tensor:
    """Mean ε-prediction error of ``image [H, W, 3]`` (in [0, 1], on white) under each caption: ``[C]``.

    Trial ``k`` noises the image once, at timestep ``t_k`` (evenly spaced over ``t_range``) with
    one ε, and every caption is scored on that same noisy image. Lower is a better explanation.
    The network runs ``len(captions) × trials`` times, in chunks of ``batch``.
    """
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if not captions:
        raise ValueError("no captions to score")
    lo, hi = t_range
    T = len(prior.alphas_cumprod)
    if not 0 <= lo <= hi < T:
        raise ValueError(f"t_range must lie in [0, {T - 1}] with low ≤ high, got {t_range}")
    device = next(prior.parameters()).device
    S = prior.config.image_size
    x0 = _at_prior_size(image, S).to(device)
    tokens, mask = caption_features(captions)
    tokens, mask = tokens.to(device), mask.to(device)
    generator = torch.Generator().manual_seed(seed)
    errors = torch.zeros(len(captions), device=device)
    for t in torch.linspace(lo, hi, trials).round().long():
        eps = torch.randn(x0.shape, generator=generator).to(device)
        x_t = add_noise(x0, eps, t.reshape(1).to(device), prior.alphas_cumprod)
        for s in range(0, len(captions), batch):
            n = min(batch, len(captions) - s)
            out = prior(x_t.expand(n, -1, -1, -1), t.reshape(1).to(device), tokens[s:s + n], mask[s:s + n])
            errors[s:s + n] += (out - eps).square().mean((1, 2, 3))
    return (errors / trials).cpu()


def read_caption(prior: TextToImagePrior, image: Tensor, trials: int = 8, shortlist: int = 3,
                 seed: int = 0) -> CaptionReading:
    """The caption the 2D prior reads in a single object's view ``image [H, W, 3]`` (in [0, 1], on white).

    Pass one scores every colour × category caption ("a red mushroom": 11 × 16 = 176); pass two
    scores each of the ``shortlist`` best with every part colour its category allows ("a red
    mushroom with a white stem", …) and returns the best. About ``(176 + 10 · shortlist) × trials``
    network evaluations (1,648 with the defaults).
    """
    if shortlist < 1:
        raise ValueError(f"shortlist must be at least 1, got {shortlist}")
    pairs = [ObjectSpec(category, colour) for category in CATEGORY_NAMES for colour in COLOUR_NAMES]
    first = [caption(spec) for spec in pairs]
    errors = denoising_errors(prior, image, first, trials, seed=seed)
    best = errors.argsort()[:shortlist].tolist()
    specs = []
    for j in best:
        spec = pairs[j]
        if CATEGORIES[spec.category].part:
            specs += [ObjectSpec(spec.category, spec.colour, part) for part in COLOUR_NAMES if part != spec.colour]
        else:
            specs.append(spec)
    second = [caption(spec) for spec in specs]
    # fresh noise for pass two: the shortlist won on pass one's draws, and is judged on new ones
    final = denoising_errors(prior, image, second, trials, seed=seed + 1)
    k = int(final.argmin())
    return CaptionReading(second[k], specs[k], [(first[j], float(errors[j])) for j in best],
                          (len(first) + len(second)) * trials)
