"""DreamFusion, the 2022 baseline: text → NeRF by score distillation, at book scale (§5).

Poole, Jain, Barron and Mildenhall, *DreamFusion: Text-to-3D using 2D Diffusion*,
arXiv:2209.14988 (2022), ICLR 2023. What the book takes from the paper, and is sure of:
a frozen text-to-image diffusion model (Imagen, whose base model makes 64² images) is the
critic; the 3D scene is a NeRF, an MLP from a point to a density and a colour, rendered by
volume rendering from random cameras; score distillation sampling (SDS, introduced there)
turns the critic's noise prediction into a gradient on the render, with classifier-free
guidance 100 and ``t`` drawn uniformly from ``[0.02 T, 0.98 T]`` (the book weights by
``w(t) = 1 − ᾱ_t``, as the open re-implementations do, :mod:`gsbook.sds.weighting`); one
asset takes 15,000 iterations, about 1.5 hours on a TPUv4 machine with 4 chips
(:data:`gsbook.era.ERA` keeps that figure and its source). The paper also shades its renders
(normals from the density, a random light), adds view-dependent text to the prompt, and
regularises the geometry; the book does none of that (below).

**The book's version** is the same loop with §0's pieces, small enough for a CPU:

* the field is :class:`gsbook.baselines.TinyNeRF` (NeRF's positional encoding, a 4 × 64 MLP,
  no view dependence), plus a density bias that puts a soft ball at the centre at the start
  (:class:`DreamFusionNeRF`; DreamFusion starts from a central density bias too — we recall
  it from the paper's appendix, but did not re-check its exact form), instead of the
  paper's mip-NeRF 360 network;
* it is rendered by :func:`gsbook.baselines.volume_render`: ``samples`` evenly spaced MLP
  queries along every pixel's ray (no proposal network, no hierarchical sampling);
* the critic is the book's own 32² prior (:class:`gsbook.sds.BookPrior`) with guidance 10
  (above about 20 it over-drives colours, §1), through the very same
  :func:`gsbook.sds.score_distillation`, ``w(t)``, timestep schedule and prior protocol that
  §1 and DreamGaussian (§2) use; nothing here is a second SDS;
* the render is the colour alone, composited over white (or black with probability
  ``invert_background``, as DreamGaussian does): no shading, so no normals, no lights, no
  textureless renders and no regulariser on normals;
* the prompt is used as it is: the book's prior never read "front view" captions, so the
  view-dependent prompts would be words it does not know;
* the cameras are DreamGaussian's (radius 2.5, vertical field of view 49.1°, elevation
  ±30°, any azimuth), so §5 compares the two on the same views; the optimiser is Adam.

**Why it is slow.** A step renders ``views × resolution²`` rays and queries the MLP
``samples`` times on each (:attr:`DreamFusionResult.counts` counts every query), forward and
backward. DreamGaussian's step projects each Gaussian once and blends a handful per pixel.
The NeRF's work grows with the image *and* the depth resolution, the Gaussians' with the
number of primitives: this, and the step counts, are what §5's table of times is made of.

**NeRF → Gaussians** (:func:`nerf_to_gaussians`): every generator of the book writes
Gaussians, so the trained field is turned into some in the simplest way that keeps what a
camera sees. The density is sampled at the centres of a ``grid_resolution³`` grid over
ShapeWorld's cube ``[-1, 1]³``; each cell gets the opacity a ray would pick up crossing it,
``α = 1 − exp(−σ · cell side)`` (the same quadrature as the renderer); cells with
``α < min_alpha`` are empty space and are dropped, and so are cells buried inside an
opaque region: when every cell within two cells of one has ``α ≥ 0.9``, any ray reaching it
first travels at least two cell sides through that region and keeps at most
``(1 − 0.9)² = 1 %`` of its light, so the cell cannot be seen. Each cell left becomes one
isotropic Gaussian at its centre with the field's colour there, opacity ``α`` and standard
deviation ``gaussian_scale`` × the cell side. Along a ray through cell centres the Gaussians
then composite to the field's own ``1 − exp(−Σ σ Δ)``; between centres the neighbours' tails
blur it slightly, and the silhouette grows by about half a cell, where the edge Gaussians'
tails reach past their cells. The conversion queries the MLP ``grid_resolution³`` times,
once, without gradients.

    result = dreamfusion_text_to_3d("a red ball", DreamFusionConfig.for_profile("ci"))
    result.gaussians, result.field, result.seconds, result.counts
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from gsbook.baselines import TinyNeRF, volume_render
from gsbook.cameras import Cameras, pixel_rays, random_cameras
from gsbook.config import pick, resolve_device
from gsbook.gaussians import Gaussians
from gsbook.sds import CountingPrior, DiffusionPrior, make_schedule, score_distillation
from gsbook.world import BOUND

__all__ = ["DREAMFUSION_SETTINGS", "DreamFusionConfig", "DreamFusionNeRF", "DreamFusion", "render_nerf",
           "nerf_to_gaussians", "DreamFusionResult", "dreamfusion_text_to_3d"]

# The paper's settings the book is sure of (see the module docstring), in this module's field names.
DREAMFUSION_SETTINGS: dict[str, object] = {
    "steps": 15_000, "resolution": 64, "guidance_scale": 100.0, "schedule": "uniform", "t_range": (0.02, 0.98),
}


@dataclass
class DreamFusionConfig:
    """Every setting of a DreamFusion run; the defaults are the ``cpu`` profile's
    (:meth:`for_profile` gives each profile's)."""

    # --- the optimisation -------------------------------------------------------------------
    steps: int = 500                        # DreamFusion: 15,000; the book's DreamGaussian: 500 (like for like)
    views: int = 1                          # random cameras rendered per step
    resolution: int = 64                    # DreamFusion renders 64² for Imagen; so does the book's DreamGaussian
    samples: int = 32                       # MLP queries per ray, evenly spaced in [near, far]
    near: float = 1.5                       # ray segment through ShapeWorld's object (cameras at radius 2.5)
    far: float = 3.5
    lr: float = 0.005                       # Adam, on every weight of the MLP
    guidance_scale: float = 10.0            # DreamFusion: 100 with Imagen; the book's prior over-drives above ~20 (§1)
    weighting: str = "sds"                  # w(t) = 1 − ᾱ_t (gsbook.sds.weighting)
    schedule: str = "uniform"               # DreamFusion: t uniform in [0.02 T, 0.98 T]
    t_range: tuple[float, float] = (0.02, 0.98)
    elevation_range: tuple[float, float] = (-30.0, 30.0)   # DreamGaussian's cameras, so §5 compares like with like
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    radius: float = 2.5
    fovy: float = 49.1
    invert_background: float = 0.5          # white, or black with this probability (DreamGaussian's)
    # --- the field ------------------------------------------------------------------------------
    hidden: int = 64                        # TinyNeRF's width, depth and positional-encoding octaves
    layers: int = 4
    n_freqs: int = 6
    density_bias: float = 5.0               # added to the density logit at the centre, falling linearly …
    bias_radius: float = 0.5                # … to 0 at this radius and below it further out
    # --- NeRF → Gaussians ------------------------------------------------------------------------
    grid_resolution: int = 64               # cells per side over [-1, 1]³
    min_alpha: float = 0.1                  # a cell more transparent than this is empty space
    gaussian_scale: float = 0.5             # each Gaussian's standard deviation, in cell sides
    seed: int = 0

    def __post_init__(self) -> None:
        self.t_range = tuple(self.t_range)
        self.elevation_range, self.azimuth_range = tuple(self.elevation_range), tuple(self.azimuth_range)
        if min(self.steps, self.views, self.samples, self.hidden, self.layers) < 1 or self.resolution < 8:
            raise ValueError("steps, views, samples, hidden and layers must be ≥ 1 and resolution ≥ 8, got "
                             f"steps={self.steps}, views={self.views}, samples={self.samples}, hidden={self.hidden}, "
                             f"layers={self.layers}, resolution={self.resolution}")
        if not 0 < self.near < self.far:
            raise ValueError(f"need 0 < near < far, got near={self.near}, far={self.far}")
        if not 0.0 <= self.invert_background <= 1.0:
            raise ValueError(f"invert_background is a probability, got {self.invert_background}")
        if self.grid_resolution < 2 or not 0.0 < self.min_alpha < 1.0 or self.gaussian_scale <= 0:
            raise ValueError("grid_resolution ≥ 2, 0 < min_alpha < 1 and gaussian_scale > 0 are needed, got "
                             f"{self.grid_resolution}, {self.min_alpha}, {self.gaussian_scale}")

    @classmethod
    def for_profile(cls, profile: str | None = None, **overrides) -> "DreamFusionConfig":
        """The profile's sizes: ``ci`` seconds; ``cpu`` a few minutes on 2 cores, with DreamGaussian's
        step count and render size (``DreamGaussianConfig``'s cpu profile), so that a step of one
        is set against a step of the other; ``gpu`` DreamFusion's step count and render size with
        a larger field and more samples per ray."""
        sizes = {"ci": dict(steps=60, resolution=32, grid_resolution=32),
                 "cpu": {},
                 "gpu": dict(steps=15_000, resolution=64, samples=128, hidden=128, grid_resolution=128)}
        if profile is not None and profile not in sizes:
            raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(sizes)}")
        chosen = sizes[profile] if profile is not None else pick(**sizes)
        return cls(**{**chosen, **overrides})


class DreamFusionNeRF(TinyNeRF):
    """:class:`~gsbook.baselines.TinyNeRF` with a density bias: ``σ(x) = softplus(raw(x) + b(x))``,
    ``b(x) = density_bias · (1 − ‖x‖ / bias_radius)``. At the start (``raw ≈ 0``) the field is a
    soft ball at the centre and nearly empty elsewhere, so the first renders show an object for
    the critic to judge rather than fog; the MLP can cancel the bias wherever SDS asks it to.

    ``queries`` counts the points the field was asked about (every call adds ``x.numel() / 3``):
    the cost that does not depend on the machine."""

    def __init__(self, hidden: int = 64, layers: int = 4, n_freqs: int = 6, density_bias: float = 5.0,
                 bias_radius: float = 0.5) -> None:
        super().__init__(hidden, layers, n_freqs)
        self.density_bias, self.bias_radius = density_bias, bias_radius
        self.queries = 0

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x [..., 3]`` → density ``[...]`` ≥ 0 and colour ``[..., 3]`` in [0, 1]."""
        self.queries += x.numel() // 3
        out = self.raw(x)
        bias = self.density_bias * (1 - x.norm(dim=-1) / self.bias_radius)
        return F.softplus(out[..., 0] + bias), torch.sigmoid(out[..., 1:])


def render_nerf(nerf: torch.nn.Module, cameras: Cameras, samples: int, near: float = 1.5, far: float = 3.5,
                background: float | Tensor = 1.0) -> Tensor:
    """Volume-render ``nerf`` from ``cameras``: ``[C, H, W, 3]``, ``samples`` queries per ray.
    ``background``: one grey level or one per camera ``[C]``."""
    origins, dirs = pixel_rays(cameras)
    bg = torch.as_tensor(background, dtype=dirs.dtype, device=dirs.device)
    bg = bg.reshape(-1, 1, 1, 1) if bg.dim() == 1 else bg
    return volume_render(nerf, origins, dirs, samples, near, far, background=bg)


@dataclass
class DreamFusion:
    """One DreamFusion run for one prompt; :meth:`step` is one SDS update of the NeRF.

    Attributes (after steps): ``iteration``, ``nerf`` (the :class:`DreamFusionNeRF`),
    ``history`` (per step: ``t``, ``grad_norm`` ‖g‖, ``queries`` (MLP queries of the step),
    ``seconds``), ``critic`` (the prior wrapped in a :class:`~gsbook.sds.CountingPrior`).
    """

    prior: DiffusionPrior
    prompt: str
    config: DreamFusionConfig = field(default_factory=DreamFusionConfig)
    device: str | torch.device | None = None

    def __post_init__(self) -> None:
        c = self.config
        self.device = resolve_device(self.device if self.device is not None else getattr(self.prior, "device", None))
        self.generator = torch.Generator().manual_seed(c.seed)
        with torch.random.fork_rng(devices=[]):          # the MLP's initial weights from the run's seed alone
            torch.manual_seed(c.seed)
            self.nerf = DreamFusionNeRF(c.hidden, c.layers, c.n_freqs, c.density_bias, c.bias_radius).to(self.device)
        self.optimizer = torch.optim.Adam(self.nerf.parameters(), lr=c.lr)
        self.critic = CountingPrior(self.prior)
        self.embeddings = self.prior.encode_prompts([self.prompt])
        self.schedule = make_schedule(c.schedule, self.prior.num_train_timesteps, total_steps=c.steps,
                                      t_range=c.t_range)
        self.iteration = 0
        self.history: list[dict] = []

    def step(self) -> float:
        """One update; returns ‖g‖, the SDS gradient's size."""
        c = self.config
        start, queries = time.perf_counter(), self.nerf.queries
        cams = random_cameras(c.views, c.elevation_range, c.azimuth_range, (c.radius, c.radius), c.fovy,
                              c.resolution, c.resolution, generator=self.generator, device=self.device)
        black = torch.rand(c.views, generator=self.generator) < c.invert_background
        image = render_nerf(self.nerf, cams, c.samples, c.near, c.far, (~black).float().to(self.device))
        sds = score_distillation(self.critic, image, self.embeddings, guidance_scale=c.guidance_scale,
                                 weighting=c.weighting, schedule=self.schedule, step=self.iteration,
                                 generator=self.generator, reduction="batch_mean")
        self.optimizer.zero_grad(set_to_none=True)
        sds.loss.backward()
        self.optimizer.step()
        self.iteration += 1
        norm = float(sds.grad.norm())
        self.history.append({"t": int(sds.t[0]), "grad_norm": norm, "queries": self.nerf.queries - queries,
                             "seconds": time.perf_counter() - start})
        return norm

    def run(self, steps: int | None = None, progress: bool = False) -> DreamFusionNeRF:
        """The remaining ``steps`` (default: up to ``config.steps``); returns the field."""
        from tqdm.auto import tqdm

        steps = self.config.steps - self.iteration if steps is None else steps
        for _ in tqdm(range(steps), desc=f"DreamFusion (NeRF) · {self.prompt}", disable=not progress, leave=False):
            self.step()
        return self.nerf


@torch.no_grad()
def nerf_to_gaussians(nerf: torch.nn.Module, resolution: int = 64, min_alpha: float = 0.1,
                      gaussian_scale: float = 0.5, bound: float = BOUND, hidden: float = 0.01,
                      chunk: int = 65_536) -> Gaussians:
    """One isotropic Gaussian per occupied, visible cell of the field (see the module docstring).

    Args:
        nerf: a field ``x [..., 3] → (density [...], colour [..., 3])``.
        resolution: cells per side of the grid over ``[-bound, bound]³``.
        min_alpha: cells whose opacity ``1 − exp(−σ · side)`` is below this are dropped (empty).
        gaussian_scale: each Gaussian's standard deviation, in cell sides.
        hidden: the light a ray may keep and still count as blocked: a cell is dropped when every
            cell within two of it has ``α ≥ 1 − √hidden`` (0.9 for 1 %), so that any ray to it has
            crossed at least two sides of such cells (transmittance ≤ ``(1 − α)²``).

    Returns:
        Gaussians (degree-0 colour) on the field's device; none where the field is empty.
    """
    device = next(iter(nerf.parameters()), torch.zeros(())).device          # a field without weights: the CPU
    side = 2 * bound / resolution
    axis = -bound + side * (torch.arange(resolution, dtype=torch.float32, device=device) + 0.5)
    centres = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)   # [R³, 3]
    density, colour = zip(*(nerf(part) for part in centres.split(chunk)))
    alpha = 1 - torch.exp(-torch.cat(density) * side)                                                 # [R³]
    # the least α within two cells (min-pool = −max-pool of −α); outside the grid counts as empty (α = 0)
    grid = F.pad(alpha.reshape(1, 1, resolution, resolution, resolution), (2,) * 6, value=0.0)
    buried = -F.max_pool3d(-grid, 5, stride=1).reshape(-1) >= 1 - hidden ** 0.5
    keep = (alpha >= min_alpha) & ~buried
    n = int(keep.sum())
    scales = torch.full((n, 3), gaussian_scale * side, device=device)
    return Gaussians.from_activated(centres[keep], scales, alpha[keep].clamp(1e-4, 1 - 1e-4),
                                    torch.cat(colour)[keep].clamp(0, 1))


@dataclass
class DreamFusionResult:
    """What :func:`dreamfusion_text_to_3d` made.

    Attributes:
        nerf: the trained field. gaussians: its conversion (:func:`nerf_to_gaussians`).
        seconds: ``optimise`` (the SDS steps) and ``convert``.
        history: per step (see :class:`DreamFusion`).
        counts: what the run cost whatever the machine: ``steps``, ``prior_calls`` (network
            evaluations of the critic, one CFG batch per step) and ``prior_images`` (images they
            covered), ``rays_per_step``, ``mlp_queries_per_step``, ``mlp_queries_optimise``,
            ``mlp_queries_convert``, ``gaussians``.
    """

    prompt: str
    config: DreamFusionConfig
    nerf: DreamFusionNeRF
    gaussians: Gaussians
    seconds: dict[str, float]
    history: list[dict]
    counts: dict[str, int]


def dreamfusion_text_to_3d(prompt: str, config: DreamFusionConfig | None = None, *,
                           prior: DiffusionPrior | None = None, progress: bool = False) -> DreamFusionResult:
    """Text → NeRF (SDS) → Gaussians. ``prior``: the critic (default: the book's
    :class:`~gsbook.sds.BookPrior` on the profile's device)."""
    if prior is None:
        from gsbook.sds import BookPrior

        prior = BookPrior()
    config = config or DreamFusionConfig.for_profile()
    start = time.perf_counter()
    run = DreamFusion(prior, prompt, config)
    nerf = run.run(progress=progress)
    seconds = {"optimise": time.perf_counter() - start}
    trained_queries = nerf.queries
    start = time.perf_counter()
    gaussians = nerf_to_gaussians(nerf, config.grid_resolution, config.min_alpha, config.gaussian_scale)
    seconds["convert"] = time.perf_counter() - start
    rays = config.views * config.resolution ** 2
    counts = {"steps": run.iteration, "prior_calls": run.critic.calls, "prior_images": run.critic.images,
              "rays_per_step": rays, "mlp_queries_per_step": rays * config.samples,
              "mlp_queries_optimise": trained_queries, "mlp_queries_convert": nerf.queries - trained_queries,
              "gaussians": gaussians.n}
    return DreamFusionResult(prompt, config, nerf, gaussians, seconds, run.history, counts)
