"""§3's pipelines: text or an image → four views → Gaussians in one network pass.

LGM and GRM (:mod:`gsbook.methods.lgm`, :mod:`gsbook.methods.grm`) only *reconstruct*: they
turn four posed views into Gaussians. The views come from somewhere else, and that front end is
what makes them generators:

* **text → 4 views** — the multi-view prior (:class:`~gsbook.diffusion.multiview.MultiViewPrior`,
  MVDream's role) draws the four views from a caption;
* **image → 4 views** — the same prior, given the front view (ImageDream's role), draws the other three;
* **4 given views** — images the reader brings, or ShapeWorld's ground-truth renders of the
  prompt's object (:func:`ground_truth_views`: the reconstruction alone, with a perfect front end).

The prior draws 32² views; the reconstructors read 64², so the views are upsampled
(bilinearly; the reconstructors were trained with half their inputs blurred that way).
:func:`feedforward_text_to_3d` and :func:`reconstruct` are what ``gsbook generate lgm`` and
``gsbook generate grm`` run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gsbook.cameras import four_views
from gsbook.gaussians import Gaussians
from gsbook.methods.grm import GRM
from gsbook.methods.lgm import LGM, LGM_VIEWS

__all__ = ["FeedForwardConfig", "FeedForwardResult", "ground_truth_views", "upsample_views", "load_view_image",
           "reconstruct", "feedforward_text_to_3d"]


@dataclass
class FeedForwardConfig:
    """Settings of the text/image → 4 views → Gaussians pipeline (the ``cpu`` profile's defaults).

    Attributes:
        sampler_steps: DDIM steps of the multi-view prior.
        guidance: its classifier-free guidance scale (over caption and image together).
        seed: seeds the prior's starting noise (and the ground-truth object's shape).
    """

    sampler_steps: int = 50
    guidance: float = 3.0
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "FeedForwardConfig":
        sizes = {"ci": {"sampler_steps": 10}, "cpu": {}, "gpu": {}}[profile]
        return cls(**{**sizes, **overrides})

    def __post_init__(self) -> None:
        if self.sampler_steps < 1:
            raise ValueError(f"sampler_steps must be at least 1, got {self.sampler_steps}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be ≥ 0, got {self.guidance}")


@dataclass
class FeedForwardResult:
    """``views [4, 64, 64, 3]`` (what the reconstructor read), ``gaussians``, ``seconds`` per stage."""

    views: Tensor
    gaussians: Gaussians
    seconds: dict[str, float] = field(default_factory=dict)


def ground_truth_views(prompt: str, seed: int = 0, size: int = 64) -> Tensor:
    """ShapeWorld's exact renders of the prompt's object (shape drawn from ``seed``) from LGM's
    four views, on white: ``[4, size, size, 3]``."""
    from gsbook.world import make_asset
    from gsbook.world.raycast import render_asset

    cams = four_views(0.0, width=size, height=size, device="cpu")
    return render_asset(make_asset(prompt, seed), cams, background=1.0)["rgb"]


def upsample_views(views: Tensor, size: int = 64) -> Tensor:
    """``[..., S, S, 3]`` → ``[..., size, size, 3]``, bilinear (the prior's 32² views at LGM's input size)."""
    lead, S = views.shape[:-3], views.shape[-2]
    if S == size:
        return views
    x = views.reshape(-1, S, S, 3).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < S)
    return x.permute(0, 2, 3, 1).reshape(*lead, size, size, 3).clamp(0, 1)


def load_view_image(path: str | Path, size: int) -> Tensor:
    """A view from a PNG with transparency, put on white and resized to ``size``²: ``[size, size, 3]``.

    The object must be on a transparent background (the alpha channel is its mask), framed as
    ShapeWorld frames it (camera 2.5 units away, 49.1° field of view), in a square image of
    16 to 2048 pixels a side.

    Raises:
        ValueError: the file is missing or not an image, is not square, is too small or too
            large, or has no alpha channel; the message says which and what is expected.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            image = im.copy()
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not an image PIL can read ({err.__class__.__name__}); give a PNG with "
                         "transparency") from None
    w, h = image.size
    if w != h:
        raise ValueError(f"{path}: {w}×{h} is not square; give a square view (e.g. 64×64), the object centred")
    if not 16 <= w <= 2048:
        raise ValueError(f"{path}: {w}×{h} is out of range; give a square view of 16 to 2048 pixels a side")
    if "A" not in image.getbands() and "transparency" not in image.info:
        raise ValueError(f"{path}: the image has no alpha channel (mode {image.mode}); the object must be on a "
                         "transparent background, so that it can be put on white as the networks expect")
    rgba = torch.from_numpy(np.asarray(image.convert("RGBA")).copy()).float() / 255
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    on_white = (rgb * alpha + (1 - alpha)).permute(2, 0, 1)[None]
    resized = F.interpolate(on_white, size=(size, size), mode="bilinear", align_corners=False, antialias=w > size)
    return resized[0].permute(1, 2, 0).clamp(0, 1)


@torch.no_grad()
def reconstruct(model: LGM | GRM, views: Tensor) -> Gaussians:
    """One network pass: ``views [4, H, W, 3]`` (azimuth 0°, 90°, 180°, 270°; on white) → Gaussians."""
    if views.dim() != 4 or views.shape[0] != LGM_VIEWS or views.shape[-1] != 3:
        raise ValueError(f"views must be [{LGM_VIEWS}, H, W, 3], got {list(views.shape)}")
    size = model.config.input_size
    views = upsample_views(views, size)
    device = next(model.parameters()).device
    cams = four_views(0.0, width=size, height=size, device=device)
    return model.gaussians(model.prepare_inputs(views[None].to(device), cams))[0]


def feedforward_text_to_3d(model: LGM | GRM, prior, prompt: str, config: FeedForwardConfig | None = None,
                           image: Tensor | None = None, progress: bool = False) -> FeedForwardResult:
    """Text (and optionally the front view ``image [S, S, 3]``) → the prior's 4 views → Gaussians."""
    from gsbook.diffusion.multiview import sample_views

    config = config or FeedForwardConfig()
    S = prior.config.base.image_size
    t0 = time.perf_counter()
    front = None if image is None else upsample_views(image, S)[None]
    views = sample_views(prior, [prompt], images=front, steps=config.sampler_steps, guidance=config.guidance,
                         generator=torch.Generator().manual_seed(config.seed), progress=progress)[0]
    t1 = time.perf_counter()
    gaussians = reconstruct(model, views)
    t2 = time.perf_counter()
    return FeedForwardResult(upsample_views(views, model.config.input_size), gaussians,
                             {"views": t1 - t0, "reconstruct": t2 - t1})
