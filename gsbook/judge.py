"""The judge: an independent ShapeWorld classifier that scores every generator in the book.

Taught in §1 (where it first scores SDS results) and used in every later chapter.

Generated images are only as good as the measurement we can put on them. Papers use
CLIP R-precision: does CLIP pick the true caption out of a set of distractors? The book
has no CLIP, but its world is closed: every caption is a category, a colour and maybe a
part colour. So the judge is a small convolutional classifier with three heads —
category, main colour, part colour (or none) — trained on ShapeWorld renders on white
and black backgrounds, at 64² and at 32² blown up to 64², with an architecture of its
own (no part of it is shared with the generators it scores).

* :meth:`Judge.from_shipped` — the shipped weights (``gsbook/weights/judge.*``; the recipe
  that trains them is :mod:`gsbook.recipes.judge`, ``python -m gsbook.train judge``);
* :meth:`Judge.predict` — the most likely (category, colour, part colour) of each image;
* :func:`accuracy` — how often each head is right, given the intended captions;
* :func:`r_precision` — the caption-retrieval score in the spirit of CLIP R-precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .world import CATEGORIES, CATEGORY_NAMES, COLOUR_NAMES, ObjectSpec, parse
from .zoo import ShippedModel

__all__ = ["JUDGE_SIZE", "NONE_PART", "Judge", "judge_input", "Scores", "accuracy", "r_precision",
           "all_object_specs", "ViewReadings", "read_views"]

JUDGE_SIZE = 64
NONE_PART = len(COLOUR_NAMES)          # index of "no part colour" in the part head


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Judge(nn.Module, ShippedModel):
    """Images ``[B, 3, H, W]`` in [0, 1] → logits for category, colour and part colour.

    A strided stem takes 64² to 32², then three blocks halve the size and double the
    width (32² → 4²); mean and max pooling keep both "what is everywhere" (the body's
    colour) and "what is somewhere" (a small part's colour).
    """

    shipped_name = "judge"

    def __init__(self, widths: tuple[int, ...] = (24, 48, 96, 192), dropout: float = 0.2) -> None:
        super().__init__()
        self.widths, self.dropout_p = tuple(widths), dropout
        stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]),
                             nn.ReLU(inplace=True))
        self.features = nn.Sequential(stem, *[_block(a, b, 2) for a, b in zip(widths[:-1], widths[1:])])
        self.dropout = nn.Dropout(dropout)
        feat = 2 * widths[-1]
        self.category = nn.Linear(feat, len(CATEGORY_NAMES))
        self.colour = nn.Linear(feat, len(COLOUR_NAMES))
        self.part_colour = nn.Linear(feat, len(COLOUR_NAMES) + 1)

    @classmethod
    def from_config(cls, config: dict) -> "Judge":
        return cls(tuple(config.get("widths", (24, 48, 96, 192))), config.get("dropout", 0.2))

    def config_dict(self) -> dict:
        return {"widths": list(self.widths), "dropout": self.dropout_p}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = judge_input(images).to(next(self.parameters()).device)
        h = self.features(x * 2 - 1)
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)
        h = self.dropout(h)
        return {"category": self.category(h), "colour": self.colour(h), "part_colour": self.part_colour(h)}

    @torch.no_grad()
    def predict(self, images: Tensor) -> list[ObjectSpec]:
        """The judge's reading of each image as an :class:`ObjectSpec`."""
        out = self(images)
        specs = []
        for k, c, p in zip(out["category"].argmax(1), out["colour"].argmax(1), out["part_colour"].argmax(1)):
            category = CATEGORY_NAMES[k]
            part = None if (p == NONE_PART or CATEGORIES[category].part is None) else COLOUR_NAMES[p]
            specs.append(ObjectSpec(category, COLOUR_NAMES[c], part))
        return specs

    @torch.no_grad()
    def log_likelihood(self, images: Tensor, specs: list[ObjectSpec]) -> Tensor:
        """``[B, S]``: log p(spec | image) for every image against every spec (heads independent)."""
        out = {k: v.log_softmax(1).cpu() for k, v in self(images).items()}
        k = torch.tensor([CATEGORY_NAMES.index(s.category) for s in specs])
        c = torch.tensor([COLOUR_NAMES.index(s.colour) for s in specs])
        p = torch.tensor([NONE_PART if s.part_colour is None else COLOUR_NAMES.index(s.part_colour)
                          for s in specs])
        has_part = torch.tensor([CATEGORIES[s.category].part is not None for s in specs])
        return (out["category"][:, k] + out["colour"][:, c] + out["part_colour"][:, p] * has_part)


def judge_input(images: Tensor) -> Tensor:
    """Accept ``[B, 3, H, W]`` or ``[B, H, W, 3]`` images in [0, 1]; return ``[B, 3, 64, 64]``."""
    if images.dim() != 4:
        raise ValueError(f"the judge takes a batch of images [B, 3, H, W] or [B, H, W, 3], got {list(images.shape)}")
    if images.shape[1] != 3 and images.shape[-1] == 3:
        images = images.permute(0, 3, 1, 2)
    if images.shape[1] != 3:
        raise ValueError(f"the judge takes RGB images, got {images.shape[1]} channels")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or Inf")
    images = images.float().clamp(0, 1)
    if images.shape[-2:] != (JUDGE_SIZE, JUDGE_SIZE):
        images = F.interpolate(images, size=(JUDGE_SIZE, JUDGE_SIZE), mode="bilinear", align_corners=False,
                               antialias=images.shape[-1] > JUDGE_SIZE)
    return images


# ----------------------------------------------------------------------------- scores
@dataclass
class Scores:
    """Per-head accuracies of a set of judged images."""

    category: float
    colour: float
    part_colour: float          # over images whose category has a part
    all: float                  # every stated attribute right
    n: int

    def __str__(self) -> str:
        return (f"category {self.category:.1%} · colour {self.colour:.1%} · part colour {self.part_colour:.1%} · "
                f"all {self.all:.1%} (n = {self.n})")


def accuracy(judge: Judge, images: Tensor, intended: list[ObjectSpec | str], batch: int = 256) -> Scores:
    """How often the judge reads each image as the spec (or caption) it was meant to show."""
    specs = [parse(s) if isinstance(s, str) else s for s in intended]
    if len(specs) != len(images):
        raise ValueError(f"{len(images)} images but {len(specs)} intended captions")
    judge.eval()
    predicted: list[ObjectSpec] = []
    for i in range(0, len(images), batch):
        predicted += judge.predict(images[i:i + batch])
    cat = [p.category == s.category for p, s in zip(predicted, specs)]
    col = [p.colour == s.colour for p, s in zip(predicted, specs) if s.colour is not None]
    part = [p.part_colour == s.part_colour for p, s in zip(predicted, specs) if s.part_colour is not None]
    every = [p.category == s.category and (s.colour is None or p.colour == s.colour)
             and (s.part_colour is None or p.part_colour == s.part_colour) for p, s in zip(predicted, specs)]
    mean = lambda xs: sum(xs) / len(xs) if xs else math.nan  # noqa: E731
    return Scores(mean(cat), mean(col), mean(part), mean(every), len(specs))


def r_precision(judge: Judge, images: Tensor, intended: list[ObjectSpec | str], distractors: int = 31,
                generator: torch.Generator | None = None) -> float:
    """Fraction of images whose true caption the judge ranks first among ``distractors`` others.

    Distractors are random other captions of ShapeWorld (as CLIP R-precision draws other
    captions from the data set); the judge ranks captions by ``log p(caption | image)``.
    """
    specs = [parse(s) if isinstance(s, str) else s for s in intended]
    pool = all_object_specs()
    hits = 0
    for image, spec in zip(images, specs):
        others = [pool[i] for i in torch.randperm(len(pool), generator=generator).tolist() if pool[i] != spec]
        candidates = [spec] + others[:distractors]
        scores = judge.log_likelihood(image[None], candidates)[0]
        hits += int(scores.argmax() == 0)
    return hits / len(specs)


def all_object_specs() -> list[ObjectSpec]:
    """Every fully stated single-object spec of ShapeWorld (main colour, and part colour where there is a part)."""
    specs = []
    for k in CATEGORY_NAMES:
        for c in COLOUR_NAMES:
            if CATEGORIES[k].part is None:
                specs.append(ObjectSpec(k, c))
            else:
                specs += [ObjectSpec(k, c, p) for p in COLOUR_NAMES if p != c]
    return specs


@dataclass
class ViewReadings:
    """The judge's reading of each view of one generated object.

    Attributes:
        readings: one :class:`ObjectSpec` per view.
        category, colour, part_colour: ``[V]`` bool, whether each view reads that attribute
            as the caption says (``part_colour`` is all True when the caption names no part).
    """

    caption: str
    readings: list[ObjectSpec]
    category: list[bool]
    colour: list[bool]
    part_colour: list[bool]

    def scores(self) -> Scores:
        """Averages over the views."""
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        every = [a and b and c for a, b, c in zip(self.category, self.colour, self.part_colour)]
        return Scores(mean(self.category), mean(self.colour), mean(self.part_colour), mean(every), len(self.readings))

    def worst_and_best(self) -> tuple[float, float]:
        """The lowest and highest per-view score, a view scoring (category + colour) / 2."""
        per_view = [(a + b) / 2 for a, b in zip(self.category, self.colour)]
        return min(per_view), max(per_view)

    def to_dict(self) -> dict:
        from .world import caption as caption_of

        return {"caption": self.caption, "readings": [caption_of(r) for r in self.readings],
                "category": self.category, "colour": self.colour, "part_colour": self.part_colour}


def read_views(judge: Judge, images: Tensor, intended: str | ObjectSpec) -> ViewReadings:
    """The judge's reading of ``images [V, H, W, 3]`` (views of one object), against the caption."""
    spec = parse(intended) if isinstance(intended, str) else intended
    readings = judge.predict(images)
    return ViewReadings(intended if isinstance(intended, str) else str(intended), readings,
                        [r.category == spec.category for r in readings],
                        [r.colour == spec.colour for r in readings],
                        [spec.part_colour is None or r.part_colour == spec.part_colour for r in readings])
