"""Score distillation on a 2D Gaussian image: §1's method, its Figure 1 and its experiment bench.

The smallest complete SDS system: the "scene" is ``N`` Gaussians on an image plane,
rendered by :func:`gsbook.render.splat2d`; the critic is any
:class:`~gsbook.sds.DiffusionPrior` (the book's prior, Stable Diffusion, the oracle);
the update is :func:`~gsbook.sds.score_distillation` or
:func:`~gsbook.sds.interval_score_matching`. There is no camera, so what §1 studies
— guidance scale, ``w(t)``, timestep schedules, SDS against ISM — is seen without 3D in the
way, and one run takes seconds on a CPU.

    prior = BookPrior()
    run = ImageSDS(prior, "a red mushroom with a white stem", ImageSDSConfig(steps=300))
    image = run.run(progress=True)         # [H, W, 3] in [0, 1]

With :class:`~gsbook.sds.OraclePrior` as the critic (a denoiser that knows one target image),
the same loop is the essay's Figure 1 "L2 stand-in": SDS then pulls the image straight toward
the target (:meth:`ImageSDS.mse` measures how close it is).

Each step renders the image once and scores ``batch`` independently noised copies of it
(``batch`` draws of ``t`` and ``ε``, like ``batch`` camera views of a 3D scene), which
averages out part of SDS's noise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from gsbook.config import resolve_device
from gsbook.gaussians import Gaussians2D
from gsbook.render import splat2d
from gsbook.sds import CountingPrior, DiffusionPrior, interval_score_matching, make_schedule, score_distillation

__all__ = ["ImageSDSConfig", "ImageSDS", "initial_gaussians", "distill_images", "SDS_ABLATION", "AblationRow",
           "ablate"]

METHODS = ("sds", "ism")


@dataclass
class ImageSDSConfig:
    """Settings of one 2D SDS run (defaults: what §1 uses with the book's prior).

    Attributes:
        steps: optimisation steps.
        n_gaussians: Gaussians in the image.
        resolution: render side in pixels (resized to the prior's ``image_size``).
        batch: noised copies scored per step.
        guidance_scale: CFG scale ``s``.
        weighting: ``w(t)``: ``"sds"``, ``"uniform"``, ``"fantasia"`` or ``"lucid"``.
        schedule: ``"uniform"``, ``"anneal"`` (DreamGaussian's) or ``"narrowing"``.
        t_range: fraction of the timesteps the schedule draws from.
        method: ``"sds"`` or ``"ism"`` (LucidDreamer's interval score matching).
        background: RGB behind the Gaussians.
        lr: Adam learning rates for colours, log-scales, rotations and opacities;
            ``lr_means`` (pixels per step, roughly) for the centres.
        seed: seeds the start, the timesteps and the noise.
    """

    steps: int = 300
    n_gaussians: int = 96
    resolution: int = 64
    batch: int = 4
    guidance_scale: float = 7.5
    weighting: str = "sds"
    schedule: str = "anneal"
    t_range: tuple[float, float] = (0.02, 0.98)
    method: str = "sds"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    lr: float = 0.03
    lr_means: float = 0.4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {list(METHODS)}")
        if self.steps < 1 or self.n_gaussians < 1 or self.batch < 1 or self.resolution < 8:
            raise ValueError("steps, n_gaussians and batch must be positive and resolution at least 8")


def initial_gaussians(n: int, size: int, generator: torch.Generator) -> Gaussians2D:
    """``n`` grey, half-transparent Gaussians in a disc at the image centre (DreamGaussian
    starts its 3D Gaussians in a ball at the origin for the same reason: the object is there)."""
    radius = 0.28 * size * torch.rand(n, generator=generator).sqrt()
    angle = 2 * math.pi * torch.rand(n, generator=generator)
    means = size / 2 + torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    log_scales = torch.full((n, 2), math.log(0.07 * size)) + 0.1 * torch.randn(n, 2, generator=generator)
    rotations = torch.rand(n, generator=generator) * math.pi
    opacity_logits = torch.zeros(n)
    colors = 0.5 + 0.05 * torch.randn(n, 3, generator=generator)
    return Gaussians2D(means, log_scales, rotations, opacity_logits, colors)


@dataclass
class ImageSDS:
    """One SDS (or ISM) run on 2D Gaussians toward ``prompt``; :meth:`step` is one update.

    The run lives where the prior does (``prior.device`` if it has one, else the profile's
    device); its random draws come from a CPU generator seeded by ``config.seed``, so a seed
    gives the same run on every device.

    Attributes (after steps): ``iteration``, ``history`` (per step: ``t`` of the first copy,
    ``grad_norm`` = ‖g‖ over the batch), ``snapshots`` (iteration → image), ``seconds``.
    """

    prior: DiffusionPrior
    prompt: str
    config: ImageSDSConfig = field(default_factory=ImageSDSConfig)
    snapshot_every: int = 0

    def __post_init__(self) -> None:
        c = self.config
        self.device = resolve_device(getattr(self.prior, "device", None))
        self.generator = torch.Generator().manual_seed(c.seed)
        self.gaussians = initial_gaussians(c.n_gaussians, c.resolution, self.generator).to(self.device)
        self.gaussians.requires_grad_()
        g = self.gaussians
        self.optimizer = torch.optim.Adam([
            {"params": [g.means], "lr": c.lr_means},
            {"params": [g.log_scales, g.rotations, g.opacity_logits, g.colors], "lr": c.lr},
        ])
        self.embeddings = self.prior.encode_prompts([self.prompt])
        self.schedule = make_schedule(c.schedule, self.prior.num_train_timesteps, total_steps=c.steps,
                                      t_range=c.t_range)
        self._background = torch.tensor(c.background, dtype=torch.float32, device=self.device)
        self.iteration = 0
        self.seconds = 0.0
        self.history: list[dict[str, float]] = []
        self.snapshots: dict[int, Tensor] = {0: self.image()}

    def reset(self) -> None:
        """Back to iteration 0 (the same start, the same random draws)."""
        self.__post_init__()

    def render(self) -> Tensor:
        """The current image ``[H, W, 3]``, differentiable in the Gaussians."""
        g, size = self.gaussians, self.config.resolution
        image, _ = splat2d(g.means, g.scales, g.rotations, g.opacities, g.colors, size, size,
                           background=self._background)
        return image

    @torch.no_grad()
    def image(self) -> Tensor:
        """A detached copy of the current image ``[H, W, 3]`` in [0, 1]."""
        return self.render().clamp(0, 1)

    def centres(self) -> Tensor:
        """The Gaussians' centres ``[N, 2]`` in pixels (a detached copy)."""
        return self.gaussians.means.detach().clone()

    def mse(self, target: Tensor) -> float:
        """Mean squared error between the current image and ``target [H, W, 3]``."""
        if target.shape != (self.config.resolution, self.config.resolution, 3):
            raise ValueError(f"target must be [{self.config.resolution}, {self.config.resolution}, 3], "
                             f"got {list(target.shape)}")
        return float((self.image() - target.to(self.device)).square().mean())

    def step(self) -> float:
        """One update; returns ‖g‖ (the size of the SDS/ISM gradient in model space)."""
        c = self.config
        start = time.perf_counter()
        image = self.render()
        images = image[None].expand(c.batch, -1, -1, -1)
        distill = score_distillation if c.method == "sds" else interval_score_matching
        out = distill(self.prior, images, self.embeddings, guidance_scale=c.guidance_scale,
                      weighting=c.weighting, schedule=self.schedule, step=self.iteration,
                      generator=self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            g = self.gaussians
            g.colors.clamp_(0.0, 1.0)
            g.log_scales.clamp_(math.log(0.3), math.log(0.5 * c.resolution))
            g.means.clamp_(0.0, float(c.resolution))
        self.iteration += 1
        self.seconds += time.perf_counter() - start
        norm = float(out.grad.norm())
        self.history.append({"t": int(out.t[0]), "grad_norm": norm})
        if self.snapshot_every and self.iteration % self.snapshot_every == 0:
            self.snapshots[self.iteration] = self.image()
        return norm

    def run(self, steps: int | None = None, progress: bool = False) -> Tensor:
        """Run the remaining ``steps`` (default: up to ``config.steps``); return the image."""
        from tqdm.auto import tqdm

        steps = self.config.steps - self.iteration if steps is None else steps
        for _ in tqdm(range(steps), desc=f"{self.config.method.upper()} · {self.prompt}", disable=not progress,
                      leave=False):
            self.step()
        return self.image()


def distill_images(prior: DiffusionPrior, prompts: list[str], config: ImageSDSConfig | None = None,
                   progress: bool = False, **overrides) -> tuple[Tensor, list[float]]:
    """One run per prompt: images ``[P, H, W, 3]`` and each run's seconds.

    ``overrides`` replace fields of ``config`` (``guidance_scale=100``, ``method="ism"``, …).
    """
    from tqdm.auto import tqdm

    config = replace(config or ImageSDSConfig(), **overrides)
    images, seconds = [], []
    for prompt in tqdm(prompts, desc="prompts", disable=not progress):
        run = ImageSDS(prior, prompt, config)
        images.append(run.run())
        seconds.append(run.seconds)
    return torch.stack(images), seconds


# One knob at a time from the baseline (§1's experiments; benchmarks/sds_ablation.py runs the grid at length).
SDS_ABLATION: dict[str, dict] = {
    "baseline": {},
    "guidance 100": {"guidance_scale": 100.0},
    "w(t) = 1": {"weighting": "uniform"},
    "w(t) = sqrt(abar)(1 - abar)": {"weighting": "fantasia"},
    "no anneal": {"schedule": "uniform"},
    "ISM": {"method": "ism", "weighting": "lucid"},
}


@dataclass
class AblationRow:
    """One setting of :func:`ablate`: ``images [P, H, W, 3]`` (one per prompt), each run's
    ``seconds``, and what one optimisation step asks of the prior — ``prior_calls`` network
    evaluations covering ``prior_images`` images (the cost, whatever the machine)."""

    images: Tensor
    seconds: list[float]
    prior_calls: float
    prior_images: float


def ablate(prior: DiffusionPrior, prompts: list[str], config: ImageSDSConfig | None = None,
           settings: dict[str, dict] | None = None, progress: bool = False) -> dict[str, AblationRow]:
    """Run every prompt under every setting (``{name: config overrides}``, default
    :data:`SDS_ABLATION`) with the same seeds, counting the prior's work."""
    config = config or ImageSDSConfig()
    rows = {}
    for name, change in (settings or SDS_ABLATION).items():
        counter = CountingPrior(prior)
        images, seconds = distill_images(counter, prompts, config, progress=progress, **change)
        steps = len(prompts) * replace(config, **change).steps
        rows[name] = AblationRow(images, seconds, counter.calls / steps, counter.images / steps)
    return rows
