"""The feed-forward reconstructors' recipe: ``python -m gsbook.train lgm`` and ``… grm`` (§3).

One recipe trains either network (:class:`~gsbook.methods.lgm.LGM` or
:class:`~gsbook.methods.grm.GRM`) on the same data with the same loss, so that §3 compares the
networks and nothing else.

Data: ShapeWorld's ``train`` split rendered twice with one seed, so that the assets are the same
(:func:`~gsbook.world.dataset.asset_record` does not depend on the cameras): LGM's four input
views (``view_mode="four"``: azimuth 0/90/180/270 at elevation 0, 64²) and 8 random views
(elevation −20°…40°). Each step takes ``batch`` objects, feeds their four views to the network,
renders the predicted Gaussians with the book's rasterizer from the four input cameras and
``other_views`` random ones (at ``render_size``², the targets area-downsampled to match), and
fits them with LGM's loss: MSE on the image, MSE of the alpha against the mask, and a
perceptual term. LGM's perceptual term is LPIPS, whose VGG weights the book cannot download,
so the book uses 3DGS's D-SSIM (``1 − SSIM``, :func:`gsbook.images.ssim`) in its place.

Optimiser: AdamW (LGM: weight decay 0.05, gradients clipped at 1), linear warm-up and cosine
decay. A checkpoint every ``checkpoint_every`` steps lets an interrupted run resume exactly.

Evaluation (:func:`evaluate_reconstructor`): assets of the ``unseen`` split (colour × category
pairs never trained on), 4 ground-truth input views in, 8 other views rendered at 64² and
compared with ShapeWorld's ground-truth renders (PSNR), and read by the judge; beside them the
PSNR of ShapeWorld's own ground-truth Gaussians on the same views: the ceiling.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras, four_views
from ..config import cache_root, resolve_device
from ..images import psnr, ssim
from ..methods.grm import GRM, GRMConfig
from ..methods.lgm import LGM, LGM_VIEWS, LGMConfig, lgm_loss
from ..world import DatasetConfig, ShapeWorldDataset
from .common import hardware, load_checkpoint, save_checkpoint, warmup_cosine

__all__ = ["RECONSTRUCTORS", "SHIPPED_REFINE_STEPS", "ReconstructorRecipe", "ReconstructionData", "load_reconstruction_data",
           "reconstruction_batch", "make_reconstructor", "soften", "d_ssim", "refined_model", "train_reconstructor", "ReconstructionScores",
           "evaluate_reconstructor", "reconstructor_card", "run_reconstructor_recipe"]

RECONSTRUCTORS: dict[str, tuple[type, type]] = {"lgm": (LGM, LGMConfig), "grm": (GRM, GRMConfig)}
INPUT_SIZE = 64          # the views the networks read, and the size they are judged at
# Stage two's length in the shipped CPU recipes. LGM's was 1,200 steps, like GRM's, and stopped
# short of 24 dB on unseen objects while still improving (benchmarks/candidates/lgm_longer_stage_two:
# +0.15 dB per 600 steps); 3,800 reached 24.54 dB. GRM's 1,200 already give 24.08 dB (both: their cards).
SHIPPED_REFINE_STEPS = {"lgm": 3800, "grm": 1200}


# ----------------------------------------------------------------------------- settings
@dataclass
class ReconstructorRecipe:
    """Training settings of LGM or GRM. The defaults are the shipped CPU recipe; :meth:`for_profile`
    gives each profile's (``ci``: a smoke run for tests; ``gpu``: longer, rendered at 64²).

    Attributes:
        model: ``"lgm"`` or ``"grm"``.
        model_config: overrides of the network's config (``LGMConfig``/``GRMConfig`` fields).
        other_views: random views supervised per object besides its 4 input views.
        render_size: side of the supervised renders (targets area-downsampled from 64²).
        ssim_weight: weight of the D-SSIM term (the stand-in for LGM's LPIPS, weight 1 there).
        soft_inputs: fraction of objects whose input views are blurred through 32² (area down,
            bilinear up). The multi-view prior draws 32² views; LGM's paper, too, degrades its
            training inputs (grid distortion, camera jitter) so that the network accepts a
            diffusion model's imperfect views, not only clean renders.
        refine_steps: a second stage of this many steps that starts from the first stage's
            weights (0: none; ``None``: the shipped recipe's, ``SHIPPED_REFINE_STEPS[model]``).
            Large reconstructors are trained the same way: at a low render resolution first,
            then fine-tuned at a higher one (GS-LRM, Zhang et al. 2024, Sec. 4).
        refine_render_size, refine_batch, refine_lr, refine_warmup: the second stage's render
            size, batch, peak learning rate and warm-up (then cosine decay, as stage one).
        refine_config: model-config fields switched on for the second stage; they must add
            modules that start at zero (``{"rgb_skip": True}``: the colour shortcut), so the
            refined network starts exactly where stage one ended.
        refine_new_lr_scale: the learning rate of those new modules, as a multiple of
            ``refine_lr``. They start at zero and must grow to order one within the stage;
            at ``refine_lr`` Adam's steps of about ``lr`` each would take thousands of steps.
    """

    model: str = "lgm"
    model_config: dict = field(default_factory=dict)
    steps: int = 1500
    batch: int = 8
    lr: float = 1e-3
    warmup: int = 50
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    n_assets: int = 2000
    other_views: int = 4
    render_size: int = 32
    ssim_weight: float = 0.2
    soft_inputs: float = 0.5
    data_seed: int = 0
    seed: int = 0
    checkpoint_every: int = 100
    refine_steps: int | None = None
    refine_render_size: int = 64
    refine_batch: int = 4
    refine_lr: float = 3e-4
    refine_warmup: int = 20
    refine_config: dict = field(default_factory=lambda: {"rgb_skip": True})
    refine_new_lr_scale: float = 30.0

    def __post_init__(self) -> None:
        if self.model not in RECONSTRUCTORS:
            raise ValueError(f"unknown reconstructor {self.model!r}; choose one of {', '.join(RECONSTRUCTORS)}")
        if self.refine_steps is None:
            self.refine_steps = SHIPPED_REFINE_STEPS[self.model]
        if not 0 <= self.other_views <= 8:
            raise ValueError(f"other_views must be in 0..8 (the dataset has 8 random views), got {self.other_views}")
        for size in (self.render_size, self.refine_render_size):
            if INPUT_SIZE % size:
                raise ValueError(f"render_size and refine_render_size must divide {INPUT_SIZE}, got {size}")

    @classmethod
    def for_profile(cls, profile: str, model: str = "lgm", **overrides) -> "ReconstructorRecipe":
        sizes = {"ci": {"steps": 3, "batch": 2, "n_assets": 8, "other_views": 2, "checkpoint_every": 2,
                        "refine_steps": 2, "refine_batch": 2, "refine_warmup": 1},
                 "cpu": {},
                 "gpu": {"steps": 20000, "batch": 16, "render_size": 64, "checkpoint_every": 1000,
                         "refine_steps": 2000, "refine_batch": 16}}[profile]
        return cls(**{"model": model, **sizes, **overrides})

    def key(self) -> str:
        """Hash of stage one's fields but ``steps`` and ``checkpoint_every``: a longer run of the
        same recipe resumes from a shorter one's checkpoint, whatever the second stage is."""
        d = {k: v for k, v in asdict(self).items() if not k.startswith("refine_")}
        d.pop("steps"), d.pop("checkpoint_every")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def refine_key(self) -> str:
        """Hash of the whole recipe but ``refine_steps`` and ``checkpoint_every`` (stage two's checkpoints)."""
        d = asdict(self)
        d.pop("refine_steps"), d.pop("checkpoint_every")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def learning_rate(self, step: int) -> float:
        """Linear warm-up, then cosine decay to ``min_lr_ratio · lr``."""
        return warmup_cosine(self.lr, step, self.steps, self.warmup, self.min_lr_ratio)

    def refine_stage(self) -> "ReconstructorRecipe":
        """Stage two as a recipe of its own: the ``refine_*`` settings in place of stage one's
        (its batches are drawn from generators seeded past stage one's)."""
        return dataclasses.replace(self, steps=self.refine_steps, render_size=self.refine_render_size,
                                   batch=self.refine_batch, lr=self.refine_lr, warmup=self.refine_warmup,
                                   model_config={**self.model_config, **self.refine_config},
                                   seed=self.seed + 1, refine_steps=0)


def make_reconstructor(name: str, config: dict | None = None) -> LGM | GRM:
    """A fresh ``"lgm"`` or ``"grm"`` network, with its config's fields overridden by ``config``."""
    if name not in RECONSTRUCTORS:
        raise ValueError(f"unknown reconstructor {name!r}; choose one of {', '.join(RECONSTRUCTORS)}")
    model_class, config_class = RECONSTRUCTORS[name]
    return model_class(config_class.from_dict({**config_class().to_dict(), **(config or {})}))


# ----------------------------------------------------------------------------- data
@dataclass
class ReconstructionData:
    """One split's objects, in memory as stored (uint8 images on white).

    Attributes:
        inputs, input_alpha: ``[A, 4, 64, 64, 3]`` and ``[A, 4, 64, 64]``, the four input views.
        others, other_alpha: ``[A, 8, 64, 64, 3]`` and ``[A, 8, 64, 64]``, random views.
        viewmats, Ks: ``[A, 8, 4, 4]`` and ``[A, 8, 3, 3]``, the random views' cameras at 64².
        records: one dict per asset (caption, category, colour, part colour, seed).
    """

    inputs: Tensor
    input_alpha: Tensor
    others: Tensor
    other_alpha: Tensor
    viewmats: Tensor
    Ks: Tensor
    records: list[dict]

    def __len__(self) -> int:
        return len(self.records)

    def input_cameras(self) -> Cameras:
        """The four input cameras (the same for every object)."""
        return four_views(0.0, width=INPUT_SIZE, height=INPUT_SIZE, device="cpu")

    def other_cameras(self, i: int, views: list[int] | None = None, size: int = INPUT_SIZE) -> Cameras:
        """Random views of object ``i`` (all 8, or ``views``), for ``size``² images."""
        idx = slice(None) if views is None else torch.as_tensor(views)
        Ks = self.Ks[i][idx].clone()
        Ks[:, :2] *= size / INPUT_SIZE                   # principal point at the centre: scaling is exact
        return Cameras(self.viewmats[i][idx], Ks, size, size)


def load_reconstruction_data(n_assets: int, split: str = "train", seed: int = 0,
                             progress: bool = True) -> ReconstructionData:
    """Render (first time) and load ``n_assets`` objects of ``split``: four input views and 8 random views each."""
    four = ShapeWorldDataset(DatasetConfig(n_assets=n_assets, views=LGM_VIEWS, view_mode="four", split=split,
                                           seed=seed, resolution=INPUT_SIZE), progress=progress)
    rand = ShapeWorldDataset(DatasetConfig(n_assets=n_assets, views=8, split=split, seed=seed,
                                           resolution=INPUT_SIZE), progress=progress)
    if [r["seed"] for r in four.records] != [r["seed"] for r in rand.records]:
        raise RuntimeError("the four-view and random-view datasets hold different assets")
    a, b = four.tensors("rgb", "alpha"), rand.tensors("rgb", "alpha", "viewmats", "Ks")
    return ReconstructionData(a["rgb"], a["alpha"], b["rgb"], b["alpha"], b["viewmats"], b["Ks"], four.records)


def _down(images: Tensor, size: int) -> Tensor:
    """``[..., H, W, C]`` float images area-downsampled to ``size``² (2×2 averages for 64 → 32)."""
    if images.shape[-2] == size:
        return images
    lead, (H, W, C) = images.shape[:-3], images.shape[-3:]
    x = F.interpolate(images.reshape(-1, H, W, C).permute(0, 3, 1, 2), size=(size, size), mode="area")
    return x.permute(0, 2, 3, 1).reshape(*lead, size, size, C)


def reconstruction_batch(data: ReconstructionData, index: Tensor, recipe: ReconstructorRecipe,
                         generator: torch.Generator) -> tuple[Tensor, list[Cameras], Tensor, Tensor]:
    """One training batch.

    Returns:
        ``inputs [B, 4, 64, 64, 3]`` in [0, 1]; per object the supervision cameras (4 input
        views, then ``other_views`` random ones, at ``render_size``²); the target images
        ``[B, V, S, S, 3]`` and masks ``[B, V, S, S]``.
    """
    S = recipe.render_size
    inputs = data.inputs[index].float() / 255
    soft = torch.rand(len(index), generator=generator) < recipe.soft_inputs
    if soft.any():
        inputs[soft] = soften(inputs[soft])
    input_cams = four_views(0.0, width=S, height=S, device="cpu")
    cameras, images, alphas = [], [], []
    for n, i in enumerate(index.tolist()):
        pick = torch.randperm(8, generator=generator)[:recipe.other_views].tolist()
        cameras.append(Cameras.cat([input_cams, data.other_cameras(i, pick, S)]))
        images.append(torch.cat([inputs[n], data.others[i, pick].float() / 255]))
        alphas.append(torch.cat([data.input_alpha[i], data.other_alpha[i, pick]]).float() / 255)
    images = _down(torch.stack(images), S)
    alphas = _down(torch.stack(alphas)[..., None], S)[..., 0]
    return inputs, cameras, images, alphas


def soften(views: Tensor, size: int = 32) -> Tensor:
    """``[..., H, W, 3]`` views blurred through ``size``²: area-downsampled, then bilinearly
    upsampled back (what the 32² multi-view prior's views look like at LGM's input size)."""
    lead, (H, W, C) = views.shape[:-3], views.shape[-3:]
    x = _down(views, size).reshape(-1, size, size, C).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(*lead, H, W, C)


def d_ssim(pred: Tensor, target: Tensor) -> Tensor:
    """3DGS's D-SSIM, ``1 − SSIM`` per image ``[N]`` of ``[N, 3, H, W]``: the book's perceptual term."""
    return 1 - ssim(pred, target)


# ----------------------------------------------------------------------------- the loop
def checkpoint_folder(recipe: ReconstructorRecipe, stage: int = 1) -> Path:
    """Where stage one (``<model>-<key>``) or stage two (``<model>-<key>-refine-<refine key>``) keeps ``latest.pt``."""
    name = f"{recipe.model}-{recipe.key()}"
    return cache_root() / "checkpoints" / (name if stage == 1 else f"{name}-refine-{recipe.refine_key()}")


NEW_MODULES = ("colour_shortcut",)      # what stage two adds (zero-initialised); see ``refine_new_lr_scale``


def _train_stage(model: LGM | GRM, recipe: ReconstructorRecipe, data: ReconstructionData, latest: Path,
                 resume: bool, progress: bool, device: torch.device, desc: str,
                 new_lr_scale: float = 1.0) -> tuple[list, float]:
    """``recipe.steps`` steps of LGM's loss on ``model`` (in place); returns the history
    ``[(loss, psnr)]`` and the training seconds (both including a resumed checkpoint's).
    Parameters of :data:`NEW_MODULES` learn at ``new_lr_scale`` times the schedule's rate."""
    from tqdm.auto import tqdm

    new = [p for n, p in model.named_parameters() if n.startswith(NEW_MODULES)]
    old = [p for n, p in model.named_parameters() if not n.startswith(NEW_MODULES)]
    groups = [{"params": old, "scale": 1.0}] + ([{"params": new, "scale": new_lr_scale}] if new else [])
    opt = torch.optim.AdamW(groups, lr=recipe.lr, betas=(0.9, 0.95), weight_decay=recipe.weight_decay)
    start, elapsed, history = 0, 0.0, []
    state = load_checkpoint(latest, {"model": model, "opt": opt}, device, progress) if resume else None
    if state is not None:
        start, elapsed, history = state["step"], float(state["elapsed"]), list(state["history"])
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(range(start, recipe.steps), desc=desc, initial=start, total=recipe.steps, disable=not progress)
    input_cams = four_views(0.0, width=INPUT_SIZE, height=INPUT_SIZE, device="cpu")
    for step in bar:
        gen = torch.Generator().manual_seed(recipe.seed * 1_000_003 + step)
        index = torch.randint(0, len(data), (recipe.batch,), generator=gen)
        inputs, cameras, images, alphas = reconstruction_batch(data, index, recipe, gen)
        x = model.prepare_inputs(inputs.to(device), input_cams)
        out = lgm_loss(model.gaussians(x), [c.to(device=device) for c in cameras], images.to(device),
                       alphas.to(device), perceptual=d_ssim, perceptual_weight=recipe.ssim_weight)
        for group in opt.param_groups:
            group["lr"] = recipe.learning_rate(step) * group.get("scale", 1.0)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        with torch.no_grad():
            step_psnr = psnr(out["images"].flatten(0, 1), images.to(device).flatten(0, 1)).mean().item()
        history.append((round(out["loss"].item(), 5), round(step_psnr, 3)))
        if step % 10 == 0:
            recent = history[-50:]
            bar.set_postfix(loss=f"{sum(h[0] for h in recent) / len(recent):.4f}",
                            psnr=f"{sum(h[1] for h in recent) / len(recent):.2f}")
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            save_checkpoint(latest, {"step": done, "elapsed": elapsed + time.perf_counter() - t0,
                                     "history": history, "model": model, "opt": opt})
    return history, elapsed + time.perf_counter() - t0


def refined_model(model: LGM | GRM, recipe: ReconstructorRecipe) -> LGM | GRM:
    """Stage two's network: stage one's ``model`` rebuilt with ``recipe.refine_config`` switched on.
    Stage one's weights are copied; the modules the new config adds must start at zero, so the
    two networks give the same output (checked here on a random input)."""
    refined = make_reconstructor(recipe.model, recipe.refine_stage().model_config)
    missing, unexpected = refined.load_state_dict(model.state_dict(), strict=False)
    if unexpected:
        raise ValueError(f"refine_config {recipe.refine_config} removes weights: {unexpected}")
    with torch.no_grad():
        x = torch.randn(1, LGM_VIEWS, 9, INPUT_SIZE, INPUT_SIZE)
        if not torch.allclose(refined.eval()(x), model.eval()(x), atol=1e-5):
            raise ValueError(f"refine_config {recipe.refine_config} changes the network's output (new modules: "
                             f"{missing or 'none'}); it may only add modules that start at zero")
    return refined


def train_reconstructor(recipe: ReconstructorRecipe, data: ReconstructionData | None = None, resume: bool = True,
                        progress: bool = True, device: str | torch.device | None = None,
                        folder: Path | str | None = None) -> tuple[LGM | GRM, dict]:
    """Train LGM or GRM from scratch on ShapeWorld (stage one, then ``refine_steps`` of stage two);
    return it (eval mode, on the CPU) and a report.

    Batches come from a generator seeded by the step, so a run resumed from its checkpoint
    (``$GSBOOK_CACHE/checkpoints/<model>-<hash>/latest.pt``, one folder per stage; ``folder``
    replaces that root) continues exactly.
    """
    device = resolve_device(device)
    root = Path(folder) if folder is not None else None
    torch.manual_seed(recipe.seed)
    t_data = time.perf_counter()
    data = data or load_reconstruction_data(recipe.n_assets, "train", recipe.data_seed, progress)
    t_data = time.perf_counter() - t_data
    model = make_reconstructor(recipe.model, recipe.model_config).to(device)
    latest = (root or checkpoint_folder(recipe)) / "latest.pt"
    history, train_time = _train_stage(model, recipe, data, latest, resume, progress, device, recipe.model)
    refine_history, refine_time = [], 0.0
    if recipe.refine_steps > 0:
        stage = recipe.refine_stage()
        model = refined_model(model.cpu(), recipe).to(device)
        latest = (root / f"refine-{recipe.refine_key()}" if root else checkpoint_folder(recipe, 2)) / "latest.pt"
        refine_history, refine_time = _train_stage(model, stage, data, latest, resume, progress, device,
                                                   f"{recipe.model} (refine at {stage.render_size}²)",
                                                   new_lr_scale=recipe.refine_new_lr_scale)
    tail = (refine_history or history)[-100:]
    report = {**asdict(recipe), "model_config": model.config.to_dict(),
              "parameters": sum(p.numel() for p in model.parameters()),
              "wall_time_s": round(train_time + refine_time, 1), "stage_times_s": [round(train_time, 1), round(refine_time, 1)],
              "data_time_s": round(t_data, 1),
              "final_loss": round(sum(h[0] for h in tail) / max(1, len(tail)), 5),
              "final_train_psnr": round(sum(h[1] for h in tail) / max(1, len(tail)), 2),
              "history_every_50": history[::50], "refine_history_every_25": refine_history[::25],
              "checkpoints": str(latest.parent)}
    return model.cpu().eval(), report


# ----------------------------------------------------------------------------- evaluation
@dataclass
class ReconstructionScores:
    """How well a reconstructor rebuilds unseen objects from their four views.

    Attributes:
        psnr: mean PSNR (dB) of its renders against ground truth, 8 random views per object, 64².
        psnr_inputs: the same on the four input views (how well it keeps what it was shown).
        psnr_ceiling: ShapeWorld's own ground-truth Gaussians on the 8 views (the best a set
            of Gaussians of that kind reaches against the ray-cast renders).
        category, colour: the judge's accuracy on the renders of the 8 views.
        seconds: median wall time of one object's reconstruction (network and decoding).
        n_assets: objects evaluated.
    """

    psnr: float
    psnr_inputs: float
    psnr_ceiling: float
    category: float
    colour: float
    seconds: float
    n_assets: int

    def __str__(self) -> str:
        return (f"PSNR {self.psnr:.2f} dB (inputs {self.psnr_inputs:.2f}, ceiling {self.psnr_ceiling:.2f}) · "
                f"judge category {self.category:.1%}, colour {self.colour:.1%} · {self.seconds * 1000:.0f} ms/object "
                f"(n = {self.n_assets})")


def evaluate_reconstructor(model: LGM | GRM, n_assets: int = 100, split: str = "unseen", seed: int = 2000,
                           judge=None, progress: bool = True, ceiling: bool = True,
                           data: ReconstructionData | None = None) -> ReconstructionScores:
    """Reconstruct ``n_assets`` objects of ``split`` from their 4 ground-truth views; score the
    renders from 8 other views (PSNR against the ray-cast ground truth, and the judge)."""
    from tqdm.auto import tqdm

    from ..judge import Judge, accuracy
    from ..render import render
    from ..world import make_asset
    from ..world.captions import ObjectSpec

    judge = judge or Judge.from_shipped(device="cpu")
    data = data or load_reconstruction_data(n_assets, split, seed, progress)
    model = model.cpu().eval()
    input_cams = data.input_cameras()
    scores, scores_in, scores_gt, renders, seconds = [], [], [], [], []
    for i in tqdm(range(len(data)), desc=f"evaluating on {split}", disable=not progress):
        inputs = data.inputs[i:i + 1].float() / 255
        with torch.no_grad():
            t = time.perf_counter()
            gaussians = model.gaussians(model.prepare_inputs(inputs, input_cams))[0]
            seconds.append(time.perf_counter() - t)
            cams = data.other_cameras(i)
            target = data.others[i].float() / 255
            image = render(gaussians, cams).image
            scores.append(psnr(image, target).mean().item())
            scores_in.append(psnr(render(gaussians, input_cams).image, inputs[0]).mean().item())
            if ceiling:
                r = data.records[i]
                gt = make_asset(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"]).gaussians()
                scores_gt.append(psnr(render(gt, cams).image, target).mean().item())
        renders.append(image)
    captions = [r["caption"] for r in data.records for _ in range(8)]
    judged = accuracy(judge, torch.cat(renders).permute(0, 3, 1, 2), captions)
    mean = lambda xs: sum(xs) / len(xs) if xs else math.nan  # noqa: E731
    return ReconstructionScores(mean(scores), mean(scores_in), mean(scores_gt), judged.category, judged.colour,
                                statistics.median(seconds), len(data))


# ----------------------------------------------------------------------------- card and files
def reconstructor_card(model: LGM | GRM, report: dict, scores: ReconstructionScores, seen: ReconstructionScores,
                       total_s: float) -> str:
    """The model card ``lgm.md`` / ``grm.md``."""
    name = report["model"]
    title = {"lgm": "LGM — four views to Gaussians with a multi-view U-Net",
             "grm": "GRM — four views to Gaussians with a transformer"}[name]
    cfg = model.config
    shape = (f"{cfg.input_size}² input views (RGB + Plücker rays), {cfg.output_size}² Gaussians per view: "
             f"{cfg.n_gaussians:,} Gaussians per object")
    curve = ", ".join(f"{i * 200}: {p:.1f}" for i, (_, p) in enumerate(report["history_every_50"][::4]))
    if report.get("refine_history_every_25"):
        curve += "; stage two: " + ", ".join(f"{i * 100}: {p:.1f}" for i, (_, p)
                                             in enumerate(report["refine_history_every_25"][::4]))
    note = f" {report['note']}" if report.get("note") else ""
    refine = ""
    if report.get("refine_steps"):
        minutes = [t / 60 for t in report["stage_times_s"]]
        refine = (f"Then stage two, from those weights: {report['refine_steps']} steps, batch {report['refine_batch']}, "
                  f"renders at {report['refine_render_size']}², peak lr {report['refine_lr']} "
                  f"({report['refine_warmup']} warm-up steps, cosine decay), with `{json.dumps(report['refine_config'])}` "
                  "switched on (`rgb_skip`: the book's colour shortcut, a zero-initialised linear map from each "
                  "Gaussian's input pixels' colour to its colour; not in the paper). "
                  f"Stage one {minutes[0]:.1f} min, stage two {minutes[1]:.1f} min.\n")
    return f"""# {name} — {title.split(' — ')[1]}

{title}. Reads the four views of an object (azimuth 0°, 90°, 180°, 270° at elevation 0°)
and writes its 3D Gaussians in one network pass (§3, `chapters/03_lgm_grm.ipynb`);
{shape}; {report['parameters']:,} parameters, stored as float16. Config: `{json.dumps(report['model_config'])}`.

## Data
ShapeWorld `train` split, {report['n_assets']} assets (seed {report['data_seed']}), each rendered from the four
input views and from 8 random views (elevation −20°…40°), 64² on white. The input views of
{report['soft_inputs']:.0%} of the objects are blurred through 32² (as the 32² multi-view prior's views are).

## Training
{report['steps']} steps, batch {report['batch']} objects; each object supervised on its 4 input views and
{report['other_views']} random ones rendered at {report['render_size']}² by the book's rasterizer. Loss: MSE(image)
+ MSE(alpha, mask) + {report['ssim_weight']} · D-SSIM (the stand-in for LGM's LPIPS, which needs VGG
weights the book does not download). AdamW (β = 0.9, 0.95; weight decay {report['weight_decay']}), peak lr
{report['lr']}, {report['warmup']} warm-up steps then cosine decay, gradients clipped at {report['grad_clip']}.
{refine}Wall time {report['wall_time_s'] / 60:.1f} min of training (summed over resumed runs), {report['eval_time_s'] / 60:.1f} min
of evaluation, on {report['hardware']}.{note} Training PSNR (render size, by step): {curve}.

Reproduce: `python -m gsbook.train {name}` (seed {report['seed']}).

## Measured quality
Four ground-truth views in; 8 other random views rendered at 64² and compared with ShapeWorld's
ray-cast renders; the judge reads the same renders.

| objects | PSNR (8 other views) | PSNR (4 input views) | ceiling (ground-truth Gaussians) | judge category | judge colour | time per object |
|---|---|---|---|---|---|---|
| `unseen` split ({scores.n_assets}: colour × category pairs never trained on) | {scores.psnr:.2f} dB | {scores.psnr_inputs:.2f} dB | {scores.psnr_ceiling:.2f} dB | {scores.category:.1%} | {scores.colour:.1%} | {scores.seconds * 1000:.0f} ms |
| `test` split ({seen.n_assets}: trained pairs, new assets) | {seen.psnr:.2f} dB | {seen.psnr_inputs:.2f} dB | {seen.psnr_ceiling:.2f} dB | {seen.category:.1%} | {seen.colour:.1%} | {seen.seconds * 1000:.0f} ms |

Time per object: the median of one reconstruction (network and decoding, batch 1) on the
machine above.
"""


def run_reconstructor_recipe(recipe: ReconstructorRecipe, out: Path | str | None = None, resume: bool = True,
                             device: str | torch.device | None = None, eval_assets: int = 100,
                             note: str = "") -> LGM | GRM:
    """Train, evaluate on ``unseen`` and ``test``, and write ``NAME.safetensors``, ``NAME.json`` and the card
    (``note``: how the run went, e.g. what else shared the machine, put in the card as given)."""
    t0 = time.perf_counter()
    model, report = train_reconstructor(recipe, resume=resume, device=device)
    report["hardware"], report["note"] = hardware(device), note
    t_eval = time.perf_counter()
    scores = evaluate_reconstructor(model, n_assets=eval_assets, split="unseen")
    seen = evaluate_reconstructor(model, n_assets=eval_assets, split="test")
    total = time.perf_counter() - t0
    report["eval_time_s"] = round(time.perf_counter() - t_eval, 1)
    card = reconstructor_card(model, report, scores, seen, total)
    model.save_shipped({**report, "total_time_s": round(total, 1),
                        "quality": {"unseen": dataclasses.asdict(scores), "test": dataclasses.asdict(seen)}},
                       card, folder=out, half=True)
    print(card)
    return model
