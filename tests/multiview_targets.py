"""Shared by tests/test_lgm.py and tests/test_grm.py: the four input cameras and a ShapeWorld
object's ground-truth renders to reconstruct, so both reconstructors are tested on the same target."""

from __future__ import annotations

import torch

from gsbook.cameras import Cameras, four_views, orbit
from gsbook.render import render


def cams(size: int = 32, elevation: float = 0.0) -> Cameras:
    """The four input views (azimuth 0/90/180/270) at ``size``²."""
    return four_views(elevation, width=size, height=size, device="cpu")


def target_views(n: int = 512, size: int = 32):
    """A ShapeWorld object's ``n`` ground-truth Gaussians rendered from the 4 input views and 2
    others: ``(input cameras, input images [1, 4, S, S, 3], supervision cameras, target images
    [1, 6, S, S, 3], target alphas [1, 6, S, S])``."""
    from gsbook.world import make_asset
    gt = make_asset("a red mushroom").gaussians(n)
    inputs = cams(size)
    supervision = Cameras.cat([inputs, orbit(30.0, [45.0, 225.0], width=size, height=size, device="cpu")])
    with torch.no_grad():
        seen, target = render(gt, inputs), render(gt, supervision)
    return inputs, seen.image[None], supervision, target.image[None], target.alpha[None]
