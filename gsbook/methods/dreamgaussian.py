"""DreamGaussian: text → 3D Gaussians → textured mesh, with the book's prior as the critic (§2).

Tang et al., *DreamGaussian: Generative Gaussian Splatting for Efficient 3D Content
Creation*, ICLR 2024 (arXiv:2309.16653; code: github.com/dreamgaussian/dreamgaussian). The
settings below are those of its ``configs/text.yaml`` and ``main.py`` unless a comment says
what the book changes, and why.

**Stage 1, generative Gaussian splatting** (:class:`DreamGaussian`). Gaussians start as a
grey, faint ball (5000 points of radius 0.5, opacity 0.1). Each step renders random views
(radius 2.5, vertical field of view 49.1°, elevation in [−30°, 30°], any azimuth) on a
white background, or a black one with probability 0.5, and score distillation
(:func:`gsbook.sds.score_distillation`) turns the prior's opinion of the renders into
gradients: CFG, ``w(t) = 1 − ᾱ_t``, and the timestep annealed linearly from ``0.98 T`` to
``0.02 T`` over the run. Adam updates each kind of parameter at its own rate (positions
0.01 → 0.0002 on an exponential schedule over 300 steps, colours 0.01, opacities 0.05,
scales and rotations 0.005). Every 50 steps the Gaussians whose projected centres collected
a large SDS gradient are densified — cloned when small, split when large — and faint or
oversized ones are pruned (:class:`DreamGaussianStrategy`, gsplat's ``DefaultStrategy``
with DreamGaussian's pruning).

**Stage 2, mesh and texture** (:func:`extract_mesh`, :class:`TextureRefiner`): the
Gaussians' opacity field on a grid, marching cubes at density 1, clean-up, decimation, a UV
atlas, a texture baked from renders of the Gaussians; then a short refinement: render the
textured mesh from random views, let the prior denoise each render from a small timestep
(img2img, multi-step), and fit the texture to those refined images by MSE.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from gsplat.strategy import DefaultStrategy
from gsplat.strategy.ops import remove
from torch import Tensor

from gsbook.cameras import Cameras, random_cameras
from gsbook.config import pick, resolve_device
from gsbook.cameras import orbit
from gsbook.gaussians import Gaussians, init_ball
from gsbook.mesh import (TexturedMesh, bake_texture, clean_mesh, decimate_mesh, gaussian_density, level_set_mesh,
                         render_textured_mesh, uv_unwrap)
from gsbook.render import render
from gsbook.sds import (DiffusionPrior, interval_score_matching, make_schedule, refine_images,
                        score_distillation)

__all__ = ["PAPER_SETTINGS", "BOOK_CHANGES", "DREAMGAUSSIAN_ABLATION", "DreamGaussianConfig", "DreamGaussianStrategy",
           "DreamGaussian", "prune_size", "position_lr", "extract_mesh", "bake_cameras", "bake_mesh", "TextureRefiner",
           "DreamGaussianResult", "dreamgaussian_text_to_3d"]


# DreamGaussian's own settings for text-to-3D, read from its code (github.com/dreamgaussian/
# dreamgaussian: configs/text.yaml; main.py for the cameras, densification and baking views;
# main2.py and guidance/sd_utils.py for stage 2), in this module's field names and units.
# The positions' learning rate is text.yaml's 0.001 → 0.00002 times the spatial_lr_scale of 10
# that gs_renderer.py's initialize() passes for the ball initialisation.
PAPER_SETTINGS: dict[str, object] = {
    "steps": 500, "n_init": 5000, "init_radius": 0.5, "views": 1, "resolution": 512, "guidance_scale": 100.0,
    "weighting": "sds", "schedule": "anneal", "t_range": (0.02, 0.98), "elevation_range": (-30.0, 30.0),
    "azimuth_range": (-180.0, 180.0), "radius": 2.5, "fovy": 49.1, "invert_background": 0.5,
    "position_lr": (0.01, 0.0002), "position_lr_steps": 300, "colour_lr": 0.01, "opacity_lr": 0.05,
    "scale_lr": 0.005, "rotation_lr": 0.005, "densify_every": 50, "densify_until": 3000, "grow_grad2d": 0.01,
    "extent": 0.5, "percent_dense": 0.01, "prune_opacity": 0.01, "prune_scale": 0.1, "opacity_reset_every": 700,
    "mesh_resolution": 128, "density_threshold": 1.0, "max_faces": 100_000, "texture_size": 1024,
    "bake_resolution": 512, "refine_steps": 50, "refine_views": 1, "refine_resolution": 512, "texture_lr": 0.2,
    "refine_strength": (0.8, 0.95), "refine_sampler_steps": 50, "refine_guidance": 100.0,
}
# What the book's cpu profile changes, and why (§2 prints this table).
BOOK_CHANGES: dict[str, str] = {
    "resolution": "the book's prior sees 32² (DreamGaussian renders 128 → 256 → 512 for Stable Diffusion's 64² latents)",
    "guidance_scale": "above about 20 the book's prior over-drives colours and adds noise (§1; the tuning prompts)",
    "grow_grad2d": "0.01 is set for Stable Diffusion's latent gradients; this prior's pixel gradients are far larger",
    "mesh_resolution": "a 64³ grid resolves ShapeWorld's parts; 128³ costs 8× the Gaussian evaluations",
    "density_threshold": "fewer, fainter Gaussians: at 0.1 the mesh's silhouette matches theirs best",
    "max_faces": "the CPU rasterizer renders 20 k faces in tens of milliseconds",
    "texture_size": "flat-coloured objects seen at 64² need no finer texture",
    "bake_resolution": "half the texture's side, as DreamGaussian bakes 512² renders into a 1024² texture",
    "refine_resolution": "twice the prior's 32², as DreamGaussian renders at 512² for a 512² critic",
    "refine_guidance": "at 100 the prior's redraws lose the prompt's colours",
}


# One change at a time from the book's recipe (§2's ablations; benchmarks/dreamgaussian.py --ablation).
DREAMGAUSSIAN_ABLATION: dict[str, dict] = {
    "the book's recipe": {},
    "no densification": {"densify_until": 0},          # neither clone, split nor prune: N stays as initialised
    "uniform t": {"schedule": "uniform"},               # DreamFusion's random timesteps instead of the anneal
    "guidance 100": {"guidance_scale": 100.0},          # DreamGaussian's own scale (for Stable Diffusion)
    "ISM": {"distillation": "ism"},                     # LucidDreamer's interval score matching
}


@dataclass
class DreamGaussianConfig:
    """Every setting of a DreamGaussian run; the defaults are the ``cpu`` profile's
    (:meth:`for_profile` gives each profile's). Fields marked *DG* are DreamGaussian's values."""

    # --- stage 1: the Gaussians ------------------------------------------------------------
    steps: int = 500                        # DG: iters 500
    n_init: int = 5000                      # DG: num_pts 5000, in a ball of radius 0.5
    init_radius: float = 0.5
    views: int = 1                          # DG: batch_size 1 (random views per step)
    resolution: int = 64                    # DG renders 128 → 256 → 512 for a 64² latent; the book's prior sees 32²
    guidance_scale: float = 10.0            # DG: 100 with Stable Diffusion; the book's prior over-drives above ~20 (§1, and the tuning prompts)
    weighting: str = "sds"                  # w(t) = 1 − ᾱ_t, as DG's sd_utils
    distillation: str = "sds"               # "sds" (DG) or "ism" (LucidDreamer's interval score matching)
    schedule: str = "anneal"                # DG: anneal_timestep True
    t_range: tuple[float, float] = (0.02, 0.98)
    elevation_range: tuple[float, float] = (-30.0, 30.0)   # DG: randint(-30, 30) for elevation 0
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    radius: float = 2.5
    fovy: float = 49.1
    invert_background: float = 0.5         # DG: invert_bg_prob (white, or black with this probability)
    position_lr: tuple[float, float] = (0.01, 0.0002)      # DG: 0.001 → 0.00002, times spatial_lr_scale 10
    position_lr_steps: int = 300            # DG: position_lr_max_steps
    colour_lr: float = 0.01                 # DG: feature_lr
    opacity_lr: float = 0.05
    scale_lr: float = 0.005
    rotation_lr: float = 0.005
    densify_every: int = 50                 # DG: densification_interval 50
    densify_until: int = 3000               # DG: density_end_iter
    grow_grad2d: float = 2.0                # DG: 0.01 for Stable Diffusion's latent gradients; rescaled to this prior's (§2)
    extent: float = 0.5                     # DG: densify_and_prune(extent=0.5)
    percent_dense: float = 0.01             # DG: clone below 0.01 × extent, split above
    prune_opacity: float = 0.01             # DG: min_opacity
    prune_scale: float = 0.1                # 3DGS / DG: prune Gaussians larger than 0.1 × extent (see prune_size)
    opacity_reset_every: int = 700          # DG: opacity_reset_interval (never reached in 500 steps)
    # --- stage 2: the mesh and its texture ------------------------------------------------
    mesh_resolution: int = 64               # DG: 128 (density grid side)
    density_threshold: float = 0.1          # DG: 1, for its many opaque Gaussians; ours are fewer and fainter (§2 calibrates it)
    min_component: float = 0.01             # drop floaters with less than this share of the faces
    max_faces: int = 20_000                 # DG: decimate_target 1e5
    texture_size: int = 256                 # DG: 1024
    bake_resolution: int = 128              # DG: 512
    refine_steps: int = 50                  # DG: iters_refine 50
    refine_views: int = 1                   # DG: batch_size 1
    refine_resolution: int = 64             # DG: 512
    texture_lr: float = 0.2                 # DG: texture_lr (on the texture's logits)
    refine_strength: tuple[float, float] = (0.8, 0.95)     # DG: 0.8 + 0.15 · step_ratio
    refine_sampler_steps: int = 50          # DG: refine(steps=50)
    refine_guidance: float = 10.0           # DG: 100; at 100 the book's prior's redraws lose the prompt's colours
    seed: int = 0

    def __post_init__(self) -> None:
        self.t_range = tuple(self.t_range)
        self.elevation_range, self.azimuth_range = tuple(self.elevation_range), tuple(self.azimuth_range)
        self.position_lr, self.refine_strength = tuple(self.position_lr), tuple(self.refine_strength)
        if self.steps < 1 or self.n_init < 4 or self.views < 1 or self.resolution < 8:
            raise ValueError("steps ≥ 1, n_init ≥ 4, views ≥ 1 and resolution ≥ 8 are needed, got "
                             f"steps={self.steps}, n_init={self.n_init}, views={self.views}, "
                             f"resolution={self.resolution}")
        if not 0.0 <= self.invert_background <= 1.0:
            raise ValueError(f"invert_background is a probability, got {self.invert_background}")
        if self.distillation not in ("sds", "ism"):
            raise ValueError(f"distillation must be 'sds' or 'ism', got {self.distillation!r}")
        if self.densify_every < 1:
            raise ValueError(f"densify_every must be ≥ 1, got {self.densify_every}")

    @classmethod
    def for_profile(cls, profile: str | None = None, **overrides) -> "DreamGaussianConfig":
        """The profile's sizes (``ci``: seconds; ``cpu``: under a minute a prompt on 2 cores;
        ``gpu``: DreamGaussian's own counts and mesh sizes, at the resolutions a 32² critic can use)."""
        sizes = {"ci": dict(steps=100, n_init=1000, mesh_resolution=32, max_faces=2000, texture_size=64,
                            bake_resolution=64, refine_steps=5, refine_sampler_steps=10, refine_resolution=32),
                 "cpu": {},
                 "gpu": dict(n_init=5000, resolution=128, mesh_resolution=128, max_faces=100_000, texture_size=1024,
                             bake_resolution=512, refine_resolution=256)}
        chosen = sizes[profile] if profile is not None else pick(**sizes)
        return cls(**{**chosen, **overrides})


def prune_size(config: DreamGaussianConfig) -> float:
    """The world size above which a Gaussian is pruned: DreamGaussian's ``prune_scale × extent``
    (0.05), which suits its 5,000 initial points (their nearest-neighbour scales are about
    0.04). Fewer points in the same ball are spaced wider, ``∝ n^(-1/3)``, and would all be
    "oversized" at the first refinement (200 points: 199 pruned); the limit is scaled by
    ``(5000 / n_init)^(1/3)`` so that its ratio to the initial spacing stays DreamGaussian's."""
    reference = PAPER_SETTINGS["n_init"]
    return config.prune_scale * config.extent * max(1.0, (reference / config.n_init) ** (1 / 3))


def position_lr(config: DreamGaussianConfig, step: int) -> float:
    """3DGS's exponential decay of the position learning rate (``get_expon_lr_func`` with no
    delay, as DreamGaussian calls it): log-linear from ``position_lr[0]`` to ``[1]`` over
    ``position_lr_steps``, then held."""
    start, end = config.position_lr
    r = min(max(step / config.position_lr_steps, 0.0), 1.0)
    return math.exp(math.log(start) * (1 - r) + math.log(end) * r)


@dataclass
class DreamGaussianStrategy(DefaultStrategy):
    """gsplat's ``DefaultStrategy`` (3DGS's clone / split / prune) with DreamGaussian's pruning:
    Gaussians larger than ``prune_scale3d × scene_scale`` in the world are removed at every
    refinement, not only after the first opacity reset. (DreamGaussian's screen-size test never
    fires: its ``max_radii2D`` is zeroed by the densification that runs just before it;
    ``refine_scale2d_stop_iter = 0`` leaves it out here too.) gsplat's strategies are plain
    PyTorch and run on the CPU; they keep each optimiser's state aligned with the parameters
    when Gaussians are added or removed."""

    @torch.no_grad()
    def _prune_gs(self, params, optimizers, state, step) -> int:
        is_prune = torch.sigmoid(params["opacities"].flatten()) < self.prune_opa
        is_prune |= torch.exp(params["scales"]).max(dim=-1).values > self.prune_scale3d * state["scene_scale"]
        n_prune = int(is_prune.sum())
        if n_prune:
            remove(params=params, optimizers=optimizers, state=state, mask=is_prune)
        return n_prune


@dataclass
class DreamGaussian:
    """Stage 1 of DreamGaussian for one prompt; :meth:`step` is one SDS update (with densification).

    Attributes (after steps): ``iteration``, ``history`` (per step: ``t``, ``n`` Gaussians after
    the step's densification, ``grad_norm`` ‖g‖, ``loss`` (the SDS loss value, ½‖g‖² per view: a
    diagnostic, not an objective that falls), ``seconds``), ``gaussians`` (the current scene,
    detached).
    """

    prior: DiffusionPrior
    prompt: str
    config: DreamGaussianConfig = field(default_factory=DreamGaussianConfig)
    init: Gaussians | None = None
    device: str | torch.device | None = None

    def __post_init__(self) -> None:
        c = self.config
        self.device = resolve_device(self.device if self.device is not None else getattr(self.prior, "device", None))
        self.generator = torch.Generator().manual_seed(c.seed)
        start = self.init if self.init is not None else init_ball(c.n_init, c.init_radius, generator=self.generator,
                                                                    device="cpu")
        self.params = start.to(self.device).parameter_dict()
        lrs = {"means": c.position_lr[0], "quats": c.rotation_lr, "scales": c.scale_lr, "opacities": c.opacity_lr,
               "sh0": c.colour_lr, "shN": c.colour_lr / 20}
        # One optimiser per parameter, as gsplat's strategies expect (they resize each one's state).
        self.optimizers = {k: torch.optim.Adam([{"params": self.params[k], "lr": lr, "name": k}], eps=1e-15)
                           for k, lr in lrs.items()}
        self.strategy = DreamGaussianStrategy(
            prune_opa=c.prune_opacity, grow_grad2d=c.grow_grad2d, grow_scale3d=c.percent_dense,
            prune_scale3d=prune_size(c) / c.extent, refine_start_iter=0, refine_stop_iter=c.densify_until,
            refine_every=c.densify_every, reset_every=c.opacity_reset_every, refine_scale2d_stop_iter=0)
        self.strategy.check_sanity(self.params, self.optimizers)
        self.state = self.strategy.initialize_state(scene_scale=c.extent)
        self.embeddings = self.prior.encode_prompts([self.prompt])
        self.schedule = make_schedule(c.schedule, self.prior.num_train_timesteps, total_steps=c.steps,
                                      t_range=c.t_range)
        self.iteration = 0
        self.history: list[dict] = []

    @property
    def gaussians(self) -> Gaussians:
        """The current scene (a detached copy of the parameters)."""
        return Gaussians.from_params({k: v.detach() for k, v in self.params.items()})

    @property
    def n(self) -> int:
        return int(self.params["means"].shape[0])

    def cameras(self) -> tuple[Cameras, Tensor]:
        """This step's random views and their backgrounds ``[V, 3]`` (white, or black with
        probability ``invert_background``), drawn from the run's generator."""
        c = self.config
        cams = random_cameras(c.views, c.elevation_range, c.azimuth_range, (c.radius, c.radius), c.fovy,
                              c.resolution, c.resolution, generator=self.generator, device=self.device)
        black = torch.rand(c.views, generator=self.generator) < c.invert_background
        return cams, (~black).float()[:, None].expand(c.views, 3).to(self.device)

    def step(self) -> float:
        """One update; returns ‖g‖, the SDS gradient's size."""
        c = self.config
        start = time.perf_counter()
        for group in self.optimizers["means"].param_groups:
            group["lr"] = position_lr(c, self.iteration)
        cams, backgrounds = self.cameras()
        out = render(Gaussians.from_params(self.params), cams, background=backgrounds)
        self.strategy.step_pre_backward(self.params, self.optimizers, self.state, self.iteration, out.info)
        distill = score_distillation if c.distillation == "sds" else interval_score_matching
        weighting = c.weighting if c.distillation == "sds" else "lucid"
        sds = distill(self.prior, out.image, self.embeddings, guidance_scale=c.guidance_scale, weighting=weighting,
                      schedule=self.schedule, step=self.iteration, generator=self.generator, reduction="batch_mean")
        sds.loss.backward()
        for opt in self.optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        # 3DGS and DreamGaussian densify after the optimiser step, from the gradients just used.
        # gsplat's split draws from torch's global generator: seed it from the run's own, so
        # that a seed gives the same run, without touching anyone else's random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=self.generator)))
            self.strategy.step_post_backward(self.params, self.optimizers, self.state, self.iteration + 1, out.info,
                                             packed=False)
        self.iteration += 1
        norm = float(sds.grad.norm())
        self.history.append({"t": int(sds.t[0]), "n": self.n, "grad_norm": norm, "loss": float(sds.loss.detach()),
                             "seconds": time.perf_counter() - start})
        return norm

    def run(self, steps: int | None = None, progress: bool = False) -> Gaussians:
        """The remaining ``steps`` (default: up to ``config.steps``); returns the Gaussians."""
        from tqdm.auto import tqdm

        steps = self.config.steps - self.iteration if steps is None else steps
        bar = tqdm(range(steps), desc=f"DreamGaussian stage 1 · {self.prompt}", disable=not progress, leave=False)
        for _ in bar:
            self.step()
            if self.iteration % 10 == 0:
                bar.set_postfix(n=self.n, t=self.history[-1]["t"])
        return self.gaussians

    @property
    def seconds(self) -> float:
        return sum(h["seconds"] for h in self.history)


# ============================================================================== stage 2
def extract_mesh(gaussians: Gaussians, config: DreamGaussianConfig) -> tuple[Tensor, Tensor]:
    """DreamGaussian's ``extract_mesh``: the opacity-weighted sum of the Gaussians on a grid
    around them, marching cubes at ``density_threshold``, floaters dropped, decimated to at
    most ``max_faces``. Returns ``vertices [V, 3]`` and ``faces [F, 3]``.

    Raises:
        ValueError: the Gaussians' density never reaches the threshold (nothing was generated).
    """
    grid, origin, spacing = gaussian_density(gaussians, config.mesh_resolution)
    mesh = level_set_mesh(grid.detach().cpu().numpy(), config.density_threshold, spacing,
                          origin.detach().cpu().numpy(), outside=0.0)
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=gaussians.device)
    faces = torch.as_tensor(mesh.faces, dtype=torch.long, device=gaussians.device)
    vertices, faces = clean_mesh(vertices, faces, config.min_component)
    return decimate_mesh(vertices, faces, config.max_faces)


def bake_cameras(config: DreamGaussianConfig, device: str | torch.device | None = None) -> Cameras:
    """DreamGaussian's 26 baking views: 8 azimuths at elevations 0°, −45° and 45°, then
    straight up and straight down (``main.py``'s ``vers``/``hors``)."""
    azimuths = [0, 45, -45, 90, -90, 135, -135, 180]
    elevations = [0.0] * 8 + [-45.0] * 8 + [45.0] * 8 + [-89.9, 89.9]
    return orbit(elevations, azimuths * 3 + [0, 0], config.radius, config.fovy, config.bake_resolution,
                 config.bake_resolution, device)


def bake_mesh(gaussians: Gaussians, vertices: Tensor, faces: Tensor, config: DreamGaussianConfig) -> TexturedMesh:
    """A UV atlas (xatlas) and a texture back-projected from renders of the Gaussians from
    :func:`bake_cameras` (a texel takes the first view that sees it face-on)."""
    vertices, faces, uvs = uv_unwrap(vertices, faces, texture_size=config.texture_size)
    cams = bake_cameras(config, gaussians.device)
    with torch.no_grad():
        images = render(gaussians, cams, background=1.0).image.clamp(0, 1)
    texture, _ = bake_texture(vertices, faces, uvs, cams, images, config.texture_size)
    return TexturedMesh(vertices, faces, uvs, texture)


@dataclass
class TextureRefiner:
    """DreamGaussian's stage 2 for one mesh (``main2.py``): :meth:`step` renders the textured
    mesh from random views, lets the prior redraw each render from a small timestep
    (:func:`gsbook.sds.refine_images`, ``strength`` rising 0.8 → 0.95) and fits the texture
    to the redrawn images by MSE. The geometry stays fixed; the texture is optimised through
    its logits (it stays in [0, 1])."""

    prior: DiffusionPrior
    prompt: str
    mesh: TexturedMesh
    config: DreamGaussianConfig = field(default_factory=DreamGaussianConfig)

    def __post_init__(self) -> None:
        c = self.config
        self.generator = torch.Generator().manual_seed(c.seed + 1)
        self.logits = torch.logit(self.mesh.texture.detach().clamp(1e-4, 1 - 1e-4)).requires_grad_()
        self.optimizer = torch.optim.Adam([self.logits], lr=c.texture_lr)
        self.embeddings = self.prior.encode_prompts([self.prompt])
        self.iteration = 0
        self.history: list[dict] = []

    def textured(self) -> TexturedMesh:
        """The mesh with the current texture (differentiable in :attr:`logits`)."""
        return TexturedMesh(self.mesh.vertices, self.mesh.faces, self.mesh.uvs, torch.sigmoid(self.logits))

    def step(self) -> float:
        """One update; returns the MSE between the renders and their redraws."""
        c = self.config
        start = time.perf_counter()
        ratio = min(1.0, (self.iteration + 1) / c.refine_steps)
        strength = c.refine_strength[0] + (c.refine_strength[1] - c.refine_strength[0]) * ratio
        cams = random_cameras(c.refine_views, c.elevation_range, c.azimuth_range, (c.radius, c.radius), c.fovy,
                              c.refine_resolution, c.refine_resolution, generator=self.generator,
                              device=self.logits.device)
        image, _, _ = render_textured_mesh(self.textured(), cams, background=1.0)
        target = refine_images(self.prior, image.detach(), self.embeddings, strength=strength,
                               steps=c.refine_sampler_steps, guidance_scale=c.refine_guidance,
                               generator=self.generator)
        target = torch.nn.functional.interpolate(target, size=image.shape[1:3], mode="bilinear",
                                                 align_corners=False).permute(0, 2, 3, 1)
        loss = torch.nn.functional.mse_loss(image, target.to(image))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.iteration += 1
        value = float(loss.detach())
        self.history.append({"loss": value, "strength": strength, "seconds": time.perf_counter() - start})
        return value

    def run(self, steps: int | None = None, progress: bool = False) -> TexturedMesh:
        from tqdm.auto import tqdm

        steps = self.config.refine_steps - self.iteration if steps is None else steps
        for _ in tqdm(range(steps), desc=f"DreamGaussian stage 2 · {self.prompt}", disable=not progress, leave=False):
            self.step()
        with torch.no_grad():
            return self.textured()


@dataclass
class DreamGaussianResult:
    """What :func:`dreamgaussian_text_to_3d` made: the Gaussians, the textured mesh (``None`` with one
    stage) before and after refinement, and the seconds each part took."""

    prompt: str
    config: DreamGaussianConfig
    gaussians: Gaussians
    mesh: TexturedMesh | None
    baked: TexturedMesh | None
    seconds: dict[str, float]
    stage1_history: list[dict]
    stage2_history: list[dict]


def dreamgaussian_text_to_3d(prior: DiffusionPrior, prompt: str, config: DreamGaussianConfig | None = None,
                             stages: int = 2, progress: bool = False) -> DreamGaussianResult:
    """Text → Gaussians (stage 1) → textured mesh (stage 2), DreamGaussian's whole recipe."""
    if stages not in (1, 2):
        raise ValueError(f"stages must be 1 or 2, got {stages}")
    config = config or DreamGaussianConfig.for_profile()
    seconds = {}
    start = time.perf_counter()
    run = DreamGaussian(prior, prompt, config)
    gaussians = run.run(progress=progress)
    seconds["stage1"] = time.perf_counter() - start
    mesh = baked = None
    history2: list[dict] = []
    if stages == 2:
        start = time.perf_counter()
        vertices, faces = extract_mesh(gaussians, config)
        baked = bake_mesh(gaussians, vertices, faces, config)
        seconds["mesh"] = time.perf_counter() - start
        start = time.perf_counter()
        refiner = TextureRefiner(prior, prompt, baked, config)
        mesh = refiner.run(progress=progress)
        history2 = refiner.history
        seconds["stage2"] = time.perf_counter() - start
    return DreamGaussianResult(prompt, config, gaussians, mesh, baked, seconds, run.history, history2)
