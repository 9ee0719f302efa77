"""§3's pipelines: text or an image → four views → Gaussians in one network pass.

LGM and GRM (:mod:`gsbook.methods.lgm`, :mod:`gsbook.methods.grm`) only *reconstruct*: they
turn four posed views into Gaussians. The views come from somewhere else, and that front end is
what makes them generators:

* **text → 4 views** — the multi-view prior (:class:`~gsbook.diffusion.multiview.MultiViewPrior`,
  MVDream's role) draws the four views from a caption, and their background is keyed out to
  white (:func:`key_background`, the book's stand-in for the background removal LGM's pipeline runs);
* **image → 4 views** — the same prior, given the front view and a caption (ImageDream's role),
  draws the other three. With no caption, the 2D prior first reads one from the image
  (:func:`~gsbook.diffusion.classify.read_caption`, the Diffusion Classifier): from the image
  alone, the multi-view prior draws objects unrelated to it;
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
           "reconstruct", "feedforward_text_to_3d", "VIEW_SUBSETS", "rotate_about_up", "draw_views", "complete_views",
           "key_background", "recenter_views", "SHAPEWORLD_BORDER",
           "reconstruct_from_views", "caption_for", "match_front_scale", "object_height"]

# Which of the four views (0 front, 1 right, 2 back, 3 left) are real when only some are:
# the front always (the prior is conditioned on it), then the view opposite it, then a side.
VIEW_SUBSETS: dict[int, tuple[int, ...]] = {1: (0,), 2: (0, 2), 3: (0, 1, 2), 4: (0, 1, 2, 3)}


@dataclass
class FeedForwardConfig:
    """Settings of the text/image → 4 views → Gaussians pipeline (the ``cpu`` profile's defaults).

    Attributes:
        sampler_steps: steps of the multi-view prior's sampler.
        sampler: ``"ddpm"`` (ancestral) or ``"ddim"`` (deterministic), for draws with a
            caption; see :func:`~gsbook.diffusion.multiview.sample_views` for why DDPM.
        image_sampler: the same choice for draws from an image alone (caption ``""``, only with
            ``caption_trials=0``). The shipped prior leans on the caption, and from an image
            alone neither sampler draws the right object most of the time (three drawn views of
            the tuning prompts' objects: DDIM 15% category, DDPM 5%;
            ``benchmarks/feedforward.py --only sampler`` measures both modes).
        guidance: its classifier-free guidance scale (over caption and image together).
        caption_trials: image → 3D with no caption: the 2D prior reads one from the front view
            first (:func:`~gsbook.diffusion.classify.read_caption`, this many noise draws per
            caption), and the multi-view prior draws from the image *and* that caption. 0 draws
            from the image alone, which the shipped prior does badly (§3, "Where it fails").
            On 40 ``unseen`` tuning fronts (seed 4000) 8 trials read the category right 95% of
            the time and the colour 100% (4.2 s a front on 2 cores); 2 trials 88% / 98% (1.1 s)
            (``benchmarks/feedforward.py --only reading``).
        match_front: image → 3D: zoom the three drawn views so that the object is as tall as in
            the given front (:func:`match_front_scale`); the prior draws them at its own framing.
        seed: seeds the prior's starting noise (and the ground-truth object's shape).
        recenter: move the object of each view drawn from a caption to the centre, at
            LGM's border of 0.2, before the reconstructor reads it (:func:`recenter_views`), as
            LGM's pipeline does. Off by default: ShapeWorld's objects are not all one size (the
            judge reads size, and a ball drawn too large reads as a box), and recentring every
            view to one size read better on §3's five tuning prompts with an earlier prior (LGM
            70% → 100% category) but not on its ten test prompts (with the shipped prior: LGM
            91.2% / 98.8% → 87.5% / 96.2% category / colour; GRM 82.5% / 100% → 83.8% / 100%;
            ``benchmarks/feedforward.py --only text``). A given front view is never recentred
            (a ShapeWorld front is framed already; with the earlier prior, recentring it cost
            LGM's image → 3D 78.8% → 57.5% category on 10 tuning assets); the views drawn from
            it are zoomed to its scale instead (``match_front``).
    """

    sampler_steps: int = 50
    sampler: str = "ddpm"
    image_sampler: str = "ddim"
    guidance: float = 3.0
    caption_trials: int = 8
    match_front: bool = True
    seed: int = 0
    recenter: bool = False

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "FeedForwardConfig":
        sizes = {"ci": {"sampler_steps": 10, "caption_trials": 2}, "cpu": {}, "gpu": {}}[profile]
        return cls(**{**sizes, **overrides})

    def __post_init__(self) -> None:
        if self.sampler_steps < 1:
            raise ValueError(f"sampler_steps must be at least 1, got {self.sampler_steps}")
        for name in ("sampler", "image_sampler"):
            if getattr(self, name) not in ("ddpm", "ddim"):
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose 'ddpm' or 'ddim'")
        if self.guidance < 0:
            raise ValueError(f"guidance must be ≥ 0, got {self.guidance}")
        if self.caption_trials < 0:
            raise ValueError(f"caption_trials must be ≥ 0 (0: draw from the image alone), got {self.caption_trials}")

    def sampler_for(self, caption: str) -> str:
        """The sampler of a draw with this caption (``""``: from an image alone)."""
        return self.sampler if caption.strip() else self.image_sampler


@dataclass
class FeedForwardResult:
    """``views [4, 64, 64, 3]`` (what the reconstructor read), ``gaussians``, ``seconds`` per stage,
    and ``caption``: the one the prior drew from (read from the image when none was given)."""

    views: Tensor
    gaussians: Gaussians
    seconds: dict[str, float] = field(default_factory=dict)
    caption: str = ""


def caption_for(front: Tensor, caption: str = "", config: "FeedForwardConfig | None" = None, reader=None,
                device: str | torch.device | None = None) -> str:
    """The caption an image → 3D draw uses: ``caption`` when given; else, when
    ``config.caption_trials`` > 0, the one the 2D prior ``reader`` (default: the shipped
    ``prior2d``, loaded on ``device``) reads in ``front [H, W, 3]``; else ``""`` (the image alone)."""
    from gsbook.config import resolve_device
    from gsbook.diffusion.classify import read_caption
    from gsbook.diffusion.prior2d import TextToImagePrior

    config = config or FeedForwardConfig()
    if caption.strip() or not config.caption_trials:
        return caption
    reader = reader or TextToImagePrior.from_shipped(device=resolve_device(device))
    return read_caption(reader, front, trials=config.caption_trials, seed=config.seed).caption


def ground_truth_views(prompt, seed: int = 0, size: int = 64, azimuth_offset_deg: float = 0.0) -> Tensor:
    """ShapeWorld's exact renders of the prompt's object (a caption or an ``ObjectSpec``; shape drawn
    from ``seed``) from LGM's four views turned by ``azimuth_offset_deg``, on white: ``[4, size, size, 3]``."""
    from gsbook.world import make_asset
    from gsbook.world.raycast import render_asset

    cams = four_views(0.0, width=size, height=size, azimuth_offset_deg=azimuth_offset_deg, device="cpu")
    return render_asset(make_asset(prompt, seed), cams, background=1.0)["rgb"]


def rotate_about_up(gaussians: Gaussians, degrees: float) -> Gaussians:
    """The scene turned by ``degrees`` about the up axis +y, the way azimuth grows (+z towards +x).

    Centres turn with ``R``; each covariance ``R_i S² R_iᵀ`` becomes ``(R R_i) S² (R R_i)ᵀ``, so
    the rotations compose and the scales stay. Colours are view-independent (SH degree 0), as
    LGM's and GRM's are, so nothing else changes.
    """
    from gsbook.gaussians import quat_to_rotmat, rotmat_to_quat

    if gaussians.sh_degree != 0:
        raise ValueError("rotate_about_up turns SH degree 0 scenes only (higher bands would need rotating too)")
    a = torch.deg2rad(torch.tensor(float(degrees)))
    c, s = torch.cos(a).item(), torch.sin(a).item()
    R = gaussians.means.new_tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return Gaussians(means=gaussians.means @ R.T, quats=rotmat_to_quat(R @ quat_to_rotmat(gaussians.quats)),
                     log_scales=gaussians.log_scales, opacity_logits=gaussians.opacity_logits, sh=gaussians.sh)


@torch.no_grad()
def complete_views(prior, real: Tensor, keep: tuple[int, ...], caption: str = "",
                   config: FeedForwardConfig | None = None, drawn: Tensor | None = None, reader=None) -> Tensor:
    """Four views of which only ``keep`` are real: the others drawn by the multi-view prior.

    Args:
        prior: a :class:`~gsbook.diffusion.multiview.MultiViewPrior`.
        real: ``[4, H, W, 3]`` the real views (front, right, back, left); only ``keep`` are read.
        keep: indices of the real views to use; must include the front (0), which the prior
            is conditioned on (ImageDream's setting).
        caption: the prior's caption (``""``: read from the front view, see :func:`caption_for`).
        drawn: the prior's four views ``[4, S, S, 3]`` for this front view, if already drawn
            (the draw does not depend on ``keep``, so one draw serves every subset).

    Returns:
        ``[4, H, W, 3]``: real views at ``keep``, the prior's (upsampled from 32²) elsewhere.
    """
    if 0 not in keep:
        raise ValueError(f"keep must include the front view 0 (the prior is conditioned on it), got {keep}")
    if len(keep) == LGM_VIEWS:
        return real.clone()
    if drawn is None:
        drawn = draw_views(prior, real[0], caption, config, reader)
    views = upsample_views(key_background(drawn), real.shape[-2])
    views[list(keep)] = real[list(keep)]
    if config is None or config.match_front:
        views = match_front_scale(views, tuple(i for i in range(LGM_VIEWS) if i not in keep))
    return views


@torch.no_grad()
def draw_views(prior, front: Tensor, caption: str = "", config: FeedForwardConfig | None = None,
               reader=None, progress: bool = False) -> Tensor:
    """The prior's four views ``[4, S, S, 3]`` given the front view ``[H, W, 3]`` and a caption
    (``""``: the 2D prior ``reader`` reads one from the front view first, :func:`caption_for`)."""
    from gsbook.diffusion.multiview import sample_views

    config = config or FeedForwardConfig()
    caption = caption_for(front, caption, config, reader, next(prior.parameters()).device)
    S = prior.config.base.image_size
    return sample_views(prior, [caption], images=upsample_views(front, S)[None], steps=config.sampler_steps,
                        sampler=config.sampler_for(caption), guidance=config.guidance,
                        generator=torch.Generator().manual_seed(config.seed), progress=progress)[0]


def reconstruct_from_views(model: LGM | GRM, prior, real: dict[float, Tensor], n_views: int, caption: str = "",
                           config: FeedForwardConfig | None = None, drawn: dict[float, Tensor] | None = None,
                           reader=None) -> Gaussians:
    """Gaussians from ``n_views`` real views (1, 2, 3, 4, 6 or 8), the rest filled in by the prior.

    The networks read exactly four views, at azimuth 0°, 90°, 180°, 270°. Up to four real views
    (:data:`VIEW_SUBSETS`) are completed to four by :func:`complete_views` and read in one pass.
    Six or eight take a second pass over the four views turned by 45° (``real[45.0]``), of which
    2 or 4 are real: the network reads them as if they were at 0°, …, 270°, its Gaussians are
    turned back by 45° (:func:`rotate_about_up`), and the two sets are joined (8,192 Gaussians).

    Args:
        real: ``{0.0: [4, H, W, 3]}`` and, for 6 or 8 views, ``{45.0: [4, H, W, 3]}``
            (:func:`ground_truth_views` with ``azimuth_offset_deg``).
        drawn: a cache ``{offset: the prior's views}`` filled as the prior draws, so that a
            study over several ``n_views`` draws once per offset.
    """
    passes = {1: [(0.0, 1)], 2: [(0.0, 2)], 3: [(0.0, 3)], 4: [(0.0, 4)], 6: [(0.0, 4), (45.0, 2)],
              8: [(0.0, 4), (45.0, 4)]}
    if n_views not in passes:
        raise ValueError(f"n_views must be one of {sorted(passes)}, got {n_views}")
    parts = []
    for offset, n in passes[n_views]:
        if offset not in real:
            raise ValueError(f"{n_views} views need the real views at azimuth offset {offset:g}°")
        keep = VIEW_SUBSETS[n]
        if len(keep) < LGM_VIEWS and drawn is not None and offset not in drawn:
            drawn[offset] = draw_views(prior, real[offset][0], caption, config, reader)
        views = complete_views(prior, real[offset], keep, caption, config,
                               None if drawn is None else drawn.get(offset), reader)
        gaussians = reconstruct(model, views)
        parts.append(rotate_about_up(gaussians, offset) if offset else gaussians)
    return parts[0] if len(parts) == 1 else Gaussians.cat(parts)


def key_background(views: Tensor, low: float = 2.0, high: float = 5.0) -> Tensor:
    """Views with their background keyed out and replaced by white: ``[..., S, S, 3]`` → same shape.

    The multi-view prior was fine-tuned from a 2D prior that drew objects on black and on white,
    and its backgrounds come out a noisy grey or tint, where the reconstructors were trained on
    clean white; a reconstructor then builds the background as part of the object. LGM's own
    pipeline removes an input image's background (with ``rembg``) before it reconstructs; the
    book keys it out instead, per view: the background colour is the median of the border
    pixels, its noise the median distance of the border pixels from it, and a pixel's alpha
    rises from 0 to 1 as its distance from the background goes from ``low`` to ``high`` times
    that noise (floored at 0.02). Objects whose colour is the background's fade with it.
    """
    lead, S = views.shape[:-3], views.shape[-2]
    v = views.reshape(-1, S, S, 3)
    border = torch.cat([v[:, 0], v[:, -1], v[:, 1:-1, 0], v[:, 1:-1, -1]], dim=1)          # [N, 4S−4, 3]
    background = border.median(dim=1).values                                                  # [N, 3]
    noise = (border - background[:, None]).norm(dim=-1).median(dim=1).values.clamp_min(0.02)  # [N]
    distance = (v - background[:, None, None]).norm(dim=-1) / noise[:, None, None]            # [N, S, S]
    alpha = ((distance - low) / (high - low)).clamp(0, 1)[..., None]
    return (alpha * v + (1 - alpha)).reshape(*lead, S, S, 3)


# ShapeWorld's framing (camera 2.5 units away, 49.1° field of view), as LGM's ``border_ratio``:
# the median object's largest bounding box over its four views spans 0.594 of the side, a border of 0.203
# each side (
# ``benchmarks/feedforward.py --only framing``, 200 ``train`` assets at 64²): LGM's own 0.2.
SHAPEWORLD_BORDER = 0.2


def recenter_views(views: Tensor, border: float = SHAPEWORLD_BORDER, size: int | None = None,
                   together: bool = False, threshold: float = 0.1) -> Tensor:
    """Views on white, each object moved to the centre and scaled so its bounding box spans
    ``1 − 2 · border`` of the side: ``[..., 4, S, S, 3]`` → ``[..., 4, size, size, 3]``.

    LGM's own pipeline does this to every view the multi-view model draws (``kiui.op.recenter``
    with ``border_ratio=0.2`` after background removal, 3DTopia/LGM ``app.py``): a diffusion
    model frames its objects as it likes, and the reconstructor reads them at the size it was
    trained on. The book's prior draws its objects about 1.18× larger than ShapeWorld frames
    them, and a reconstructor fed those views builds a larger object. LGM's training objects
    are normalised to one size, so one border suits them all; ShapeWorld's are not (the largest
    box of the middle 80% spans 0.53 to 0.72 of the side), which is why the book's pipeline leaves this
    off by default (:attr:`FeedForwardConfig.recenter`).

    Args:
        border: the margin on each side, as a fraction of the side (LGM: 0.2).
        size: output side (default: the input's).
        together: one scale for the four views (the largest bounding box of the four spans
            ``1 − 2 · border``), so the views keep their sizes relative to each other. The
            default scales each view on its own, as LGM does; on §3's tuning prompts that read
            better (LGM 100% / 100% category / colour, against 82.5% / 100% together).
        threshold: a pixel is the object's when its darkest channel is this far below white.
    """
    lead, S = views.shape[:-4], views.shape[-2]
    size = size or S
    v = views.reshape(-1, views.shape[-4], S, S, 3)
    out = torch.ones(v.shape[0], v.shape[1], size, size, 3, dtype=views.dtype, device=views.device)
    boxes = []                                        # (top, bottom, left, right), inclusive, per view
    for obj in v:
        mask = (1 - obj).amax(-1) > threshold                     # [V, S, S]
        rows, cols = mask.any(-1), mask.any(-2)                   # [V, S]
        boxes.append([None if not r.any() else (int(r.nonzero()[0]), int(r.nonzero()[-1]),
                                                  int(c.nonzero()[0]), int(c.nonzero()[-1]))
                      for r, c in zip(rows, cols)])
    target = (1 - 2 * border) * size
    for i, obj in enumerate(v):
        extents = [max(b - t, r - l) + 1 for t, b, l, r in filter(None, boxes[i])]
        if not extents:
            continue                                              # nothing drawn: leave it white
        shared = target / max(extents)
        for j, box in enumerate(boxes[i]):
            if box is None:
                continue
            t, b, l, r = box
            scale = shared if together else target / (max(b - t, r - l) + 1)
            h, w = max(1, round((b - t + 1) * scale)), max(1, round((r - l + 1) * scale))
            h, w = min(h, size), min(w, size)
            crop = obj[j, t:b + 1, l:r + 1].permute(2, 0, 1)[None]
            crop = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False,
                                 antialias=h < crop.shape[-2])[0].permute(1, 2, 0)
            top, left = (size - h) // 2, (size - w) // 2
            out[i, j, top:top + h, left:left + w] = crop.clamp(0, 1)
    return out.reshape(*lead, v.shape[1], size, size, 3)


def object_height(view: Tensor, threshold: float = 0.1) -> int:
    """Rows of ``view [S, S, 3]`` (on white) that the object covers, top to bottom; 0 when none does.
    A row counts when at least ``S / 32`` of its pixels are the object's, so that a stray speck a
    diffusion model leaves above or below the object does not stretch it."""
    S = view.shape[-2]
    rows = (((1 - view).amax(-1) > threshold).sum(-1) >= max(1, S // 32)).nonzero()
    return 0 if len(rows) == 0 else int(rows[-1] - rows[0]) + 1


def match_front_scale(views: Tensor, drawn: tuple[int, ...] = (1, 2, 3), threshold: float = 0.1) -> Tensor:
    """The ``drawn`` views of ``views [4, S, S, 3]`` (on white) zoomed about the image centre so that
    the object stands as tall in them as in the real front view (view 0).

    The multi-view prior frames objects as it likes (about 1.1× larger than ShapeWorld), also when
    it draws the other views of a given front, and a reconstructor fed a front at one scale and
    three views at another builds neither. At elevation 0 an object's height in the image hardly
    changes with azimuth, so the front's height fixes the scale: one zoom, the front's height over
    the median of the drawn views', for all of them, about the principal point, which is what a
    change of focal length does. Views in which nothing is drawn are left as they are.
    """
    heights = [object_height(views[i], threshold) for i in drawn]
    front = object_height(views[0], threshold)
    drawn_heights = sorted(h for h in heights if h > 0)
    if not front or not drawn_heights:
        return views
    zoom = front / drawn_heights[len(drawn_heights) // 2]
    if abs(zoom - 1) < 1e-3:
        return views
    S = views.shape[-2]
    theta = views.new_tensor([[1 / zoom, 0.0, 0.0], [0.0, 1 / zoom, 0.0]])[None]
    grid = F.affine_grid(theta, [1, 3, S, S], align_corners=False)
    out = views.clone()
    for i in drawn:
        ink = (1 - views[i]).permute(2, 0, 1)[None]              # sampled with zeros outside: white there
        out[i] = 1 - F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=False)[0].permute(1, 2, 0)
    return out.clamp(0, 1)


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
                           image: Tensor | None = None, progress: bool = False, reader=None) -> FeedForwardResult:
    """Text, or the front view ``image [S, S, 3]`` (with a prompt, or with the caption the 2D prior
    ``reader`` reads in it: :func:`caption_for`) → the prior's 4 views → Gaussians."""
    from gsbook.diffusion.multiview import sample_views

    config = config or FeedForwardConfig()
    size = model.config.input_size
    seconds = {}
    if image is not None:                   # image → 3D: complete_views, with the caption read (and timed) first
        t = time.perf_counter()
        prompt = caption_for(image, prompt, config, reader, next(prior.parameters()).device)
        seconds["read"] = time.perf_counter() - t
    t0 = time.perf_counter()
    if image is None:
        views = sample_views(prior, [prompt], steps=config.sampler_steps, sampler=config.sampler_for(prompt),
                             guidance=config.guidance, generator=torch.Generator().manual_seed(config.seed),
                             progress=progress)[0]
        # Framed as the prior likes: LGM recentres each view; the book can (FeedForwardConfig.recenter).
        views = key_background(views)
        views = recenter_views(views, size=size) if config.recenter else upsample_views(views, size)
    else:                                   # the given view is the reader's, on white already: kept as it is
        real = torch.ones(LGM_VIEWS, size, size, 3)
        real[0] = upsample_views(image, size)
        views = complete_views(prior, real, (0,), prompt, config,
                               draw_views(prior, image, prompt, config, reader, progress))
    t1 = time.perf_counter()
    gaussians = reconstruct(model, views)
    t2 = time.perf_counter()
    return FeedForwardResult(views, gaussians, {**seconds, "views": t1 - t0, "reconstruct": t2 - t1}, prompt)
