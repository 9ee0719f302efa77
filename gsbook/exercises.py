"""Self-checks for the chapters' exercises: ``check_<name>(your_function)``.

Each check calls the reader's function on a handful of cases, compares it with the
library's own implementation, and either prints what passed or raises an
``AssertionError`` that says which case failed and how (never just "wrong"). The
chapters keep their reference solutions between nbgrader's ``### BEGIN SOLUTION`` /
``### END SOLUTION`` markers, which ``python tools/make_student.py`` replaces by a stub.

======================  ==========  ==================================================
check                   chapter     the reader writes
======================  ==========  ==================================================
``check_sds_gradient``  §1          ``g = w(t) (ε̂ − ε)`` with DreamFusion's ``w(t) = 1 − ᾱ_t``
``check_anneal``        §1          DreamGaussian's linear timestep anneal
======================  ==========  ==================================================
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from gsbook.diffusion import scheduler_alphas_cumprod
from gsbook.sds import DreamGaussianAnneal, sds_weight

__all__ = ["check_sds_gradient", "check_anneal"]


def _call(fn: Callable, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise AssertionError(f"{getattr(fn, '__name__', 'your function')} is not written yet: "
                             "replace `raise NotImplementedError()` with your code") from None


def check_sds_gradient(sds_gradient: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> None:
    """Check ``sds_gradient(eps_hat [B,C,H,W], eps [B,C,H,W], alphas_cumprod [T], t [B]) → g [B,C,H,W]``."""
    abar = scheduler_alphas_cumprod()
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([500]), (1, 3, 8, 8)), (torch.tensor([20, 980]), (2, 4, 5, 5)),
             (torch.tensor([1, 250, 750]), (3, 3, 4, 6))]
    for t, shape in cases:
        eps_hat, eps = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        got = _call(sds_gradient, eps_hat, eps, abar, t)
        want = sds_weight("sds", abar, t, len(shape)) * (eps_hat - eps)
        if not isinstance(got, Tensor):
            raise AssertionError(f"sds_gradient should return a tensor, got {type(got).__name__}")
        if got.shape != want.shape:
            raise AssertionError(f"for a batch of shape {list(shape)} with t = {t.tolist()}, the gradient should "
                                 f"have shape {list(want.shape)}, got {list(got.shape)} (did w(t) broadcast "
                                 "over [B, 1, 1, 1]?)")
        if not torch.allclose(got, want, atol=1e-5, rtol=1e-4):
            ratio = (got / (eps_hat - eps)).flatten(1).median(1).values
            raise AssertionError(f"with t = {t.tolist()}: got g / (ε̂ − ε) ≈ {[round(r, 4) for r in ratio.tolist()]}, "
                                 f"expected w(t) = 1 − ᾱ_t = {[round(w, 4) for w in (1 - abar[t]).tolist()]}")
    print(f"✓ sds_gradient matches w(t)·(ε̂ − ε) with w(t) = 1 − ᾱ_t on {len(cases)} batches")


def check_anneal(anneal_timestep: Callable[[int, int], int]) -> None:
    """Check ``anneal_timestep(step, total_steps) → t`` against DreamGaussian's anneal
    (``T = 1000``, ``t_range = (0.02, 0.98)``)."""
    for total in (10, 100, 500):
        reference = DreamGaussianAnneal(1000, total)
        for step in sorted({0, 1, total // 3, total // 2, total - 1, total, total + 5}):
            got = _call(anneal_timestep, step, total)
            want = reference.timestep(step)
            if int(got) != want:
                raise AssertionError(f"anneal_timestep({step}, {total}) = {got}, expected {want}: "
                                     "t = round((1 − step/total)·1000), clipped to [20, 980]")
    print("✓ anneal_timestep matches DreamGaussian's schedule (3 run lengths, 7 steps each)")
