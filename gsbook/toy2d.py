"""§1's toy SDS loop: 2D Gaussians pulled toward a target image (taught in §1, figure 1).

Score distillation (SDS) turns a denoiser into a gradient on a rendered image ``x``::

    x_t = a_t x + s_t eps,        grad_x = w(t) * (eps_hat(x_t, t) - eps)

and backpropagates ``grad_x`` through the renderer (never through the denoiser). This module
runs that loop on a flat "scene" of 2D Gaussians (:func:`gsbook.render.splat2d`) with a
*stand-in* denoiser: the ideal denoiser for a single known target image ``x*``, which
predicts ``eps_hat = (x_t - a_t x*) / s_t``. Then

    eps_hat - eps = (a_t / s_t) (x - x*),

so the SDS gradient is exactly the L2 gradient toward ``x*``, scaled by ``w(t) a_t / s_t``
(:func:`oracle_sds_grad` and its test check this). It is the cheat the essay's figure uses,
written so that §1 can later swap in a learned denoiser without changing the loop.

    loop = ToySDS(target_image(48, 48), n=32, seed=0)
    loop.run(50)                 # 50 SDS steps
    loop.loss_history[-1]        # MSE(render, target) after them
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gsbook.gaussians import Gaussians2D
from gsbook.render import splat2d

__all__ = ["target_image", "noise_schedule", "oracle_sds_grad", "ToySDS"]


def target_image(width: int = 48, height: int = 48) -> Tensor:
    """The figure's target ``[H, W, 3]`` in [0, 1]: a sun over a hill under a blue sky."""
    if width < 8 or height < 8:
        raise ValueError(f"target_image needs at least 8×8 pixels, got {width}×{height}")
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    u, v = xs / width, ys / height
    img = torch.empty(height, width, 3)
    img[:] = torch.tensor([0.55, 0.75, 0.95])                                   # sky
    sun = (u - 0.70) ** 2 + (v - 0.30) ** 2 < 0.14**2
    img[sun] = torch.tensor([1.0, 0.80, 0.15])
    hill = v > 0.72 - 0.25 * torch.exp(-((u - 0.30) ** 2) / 0.05)
    img[hill] = torch.tensor([0.20, 0.60, 0.25])
    return img


def noise_schedule(t: Tensor) -> tuple[Tensor, Tensor]:
    """Cosine schedule: ``(a_t, s_t)`` with ``a_t**2 + s_t**2 = 1`` for ``t`` in (0, 1)."""
    a = torch.cos(0.5 * math.pi * t)
    return a, torch.sin(0.5 * math.pi * t)


def oracle_sds_grad(x: Tensor, target: Tensor, t: Tensor, eps: Tensor,
                    weight: str = "dreamfusion") -> Tensor:
    """SDS gradient on image ``x`` with the ideal denoiser for ``target`` (same shape as ``x``).

    ``weight``: ``"dreamfusion"`` (w = s_t², as in DreamFusion) or ``"unit"`` (w = 1).
    """
    if x.shape != target.shape or x.shape != eps.shape:
        raise ValueError(f"x {tuple(x.shape)}, target {tuple(target.shape)} and eps "
                         f"{tuple(eps.shape)} must have one shape")
    a, s = noise_schedule(t)
    x_t = a * x + s * eps
    eps_hat = (x_t - a * target) / s           # what the ideal denoiser predicts
    w = s**2 if weight == "dreamfusion" else torch.ones_like(s)
    return w * (eps_hat - eps)


@dataclass
class ToySDS:
    """The SDS loop on 2D Gaussians; :meth:`step` is one update, as the figure's button.

    Attributes:
        target: ``[H, W, 3]`` image the stand-in denoiser knows.
        n: number of Gaussians (random start).
        seed: seeds the start and the noise draws, so a run is reproducible.
        t_range: timesteps are drawn uniformly from this interval (as DreamFusion's 0.02–0.98).
    """

    target: Tensor
    n: int = 32
    seed: int = 0
    t_range: tuple[float, float] = (0.02, 0.98)
    lr_means: float = 0.6
    lr: float = 0.05
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    iteration: int = field(init=False, default=0)
    loss_history: list[float] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.target.ndim != 3 or self.target.shape[-1] != 3:
            raise ValueError(f"target must be [H, W, 3], got {tuple(self.target.shape)}")
        self.height, self.width = int(self.target.shape[0]), int(self.target.shape[1])
        self.generator = torch.Generator().manual_seed(self.seed)
        g = Gaussians2D.random(self.n, self.width, self.height, generator=self.generator)
        g.colors = torch.full_like(g.colors, 0.5) + 0.1 * torch.randn(g.colors.shape, generator=self.generator)
        self.gaussians = g.requires_grad_()
        self.optimizer = torch.optim.Adam([
            {"params": [g.means], "lr": self.lr_means},
            {"params": [g.log_scales, g.rotations, g.opacity_logits, g.colors], "lr": self.lr},
        ])
        self._bg = torch.tensor(self.background)
        self.iteration = 0
        self.loss_history = [self.loss()]

    def reset(self) -> None:
        """Back to iteration 0: the same random start (same seed), fresh optimiser state."""
        self.__post_init__()

    def render(self) -> Tensor:
        """The current image ``[H, W, 3]`` (differentiable)."""
        g = self.gaussians
        image, _ = splat2d(g.means, g.scales, g.rotations, g.opacities, g.colors,
                           self.width, self.height, background=self._bg)
        return image

    @torch.no_grad()
    def loss(self) -> float:
        """Mean squared error between the render and the target (the readout)."""
        return float(((self.render() - self.target) ** 2).mean())

    def centres(self) -> Tensor:
        """Gaussian centres ``[N, 2]`` in pixels (a detached copy)."""
        return self.gaussians.means.detach().clone()

    def step(self) -> float:
        """One SDS update: render, noise, ask the denoiser, push its gradient into the Gaussians."""
        t = torch.empty(()).uniform_(*self.t_range, generator=self.generator)
        x = self.render()
        eps = torch.randn(x.shape, generator=self.generator)
        grad = oracle_sds_grad(x.detach(), self.target, t, eps)
        self.optimizer.zero_grad(set_to_none=True)
        x.backward(gradient=grad)          # the SDS trick: no gradient through the denoiser
        self.optimizer.step()
        with torch.no_grad():              # keep the toy well-posed
            self.gaussians.colors.clamp_(0.0, 1.0)
            self.gaussians.log_scales.clamp_(math.log(0.5), math.log(max(self.width, self.height)))
            self.gaussians.means[:, 0].clamp_(0.0, float(self.width))
            self.gaussians.means[:, 1].clamp_(0.0, float(self.height))
        self.iteration += 1
        self.loss_history.append(self.loss())
        return self.loss_history[-1]

    def run(self, steps: int, progress: bool = False) -> float:
        """``steps`` updates; returns the last loss. ``progress`` shows a tqdm bar."""
        it = range(steps)
        if progress:
            from tqdm.auto import tqdm
            it = tqdm(it, desc="SDS steps", leave=False)
        for _ in it:
            self.step()
        return self.loss_history[-1]
