"""The 2D prior's recipe: ``python -m gsbook.train prior2d`` (the model is
:class:`gsbook.diffusion.TextToImagePrior`; taught in §1).

The loop is DDPM's (Ho et al. 2020), with the three additions every modern recipe has:

1. **Caption dropout.** 10 % of captions become ``""`` so that one network is both the
   conditional and the unconditional model classifier-free guidance needs.
2. **An exponential moving average (EMA)** of the weights, which is what gets shipped.
3. **Optional min-SNR-γ loss weighting** (Hang et al. 2023): the ε-MSE at timestep t
   weighted by ``min(SNR_t, γ) / SNR_t``. Off in the shipped recipe: it nearly ignores the
   low-noise timesteps, and those are where SDS's timestep anneal ends (with γ = 5, a
   600-step run still left visible noise in its samples).

Data: random views of ShapeWorld's ``train`` split rendered at 32², each re-composited
onto a white or a black background (half and half) and mirrored half the time. The
``unseen`` colour × category pairs are never shown, so the prior can be tested on
captions it never read.

The loop writes a checkpoint (weights, EMA, optimiser, step) every ``checkpoint_every``
steps, with a sample grid beside it, and :func:`train` resumes from the newest one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ..config import cache_root, resolve_device
from ..diffusion import EMPTY_CAPTION, Prior2DConfig, TextToImagePrior, caption_features, diffusion_loss, sample
from ..images import over_background, save_grid
from ..world import GRID_CAPTIONS, DatasetConfig, ShapeWorldDataset
from .common import load_checkpoint, save_checkpoint, warmup_cosine

__all__ = ["TrainConfig", "LAPTOP_RECIPE", "cpu_hours", "TrainingData", "load_training_data", "prior_batch",
           "learning_rate", "checkpoint_folder", "train_prior2d"]


@dataclass
class TrainConfig:
    """Everything :func:`train_prior2d` needs; the defaults are the shipped recipe (about 7 min on
    one H200 GPU, about 5 h on 2 CPU cores). :meth:`for_profile` gives each profile's recipe:
    ``gpu`` the shipped one, ``cpu`` the one that fits 90 minutes on 2 CPU cores with a weaker
    result (both measured in ``gsbook/weights/prior2d.md``), ``ci`` a smoke run for tests."""

    steps: int = 6500
    batch: int = 256
    lr: float = 6e-4
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    caption_dropout: float = 0.1
    min_snr_gamma: float | None = None
    ema_max_decay: float = 0.9995
    checkpoint_every: int = 300
    n_assets: int = 24000
    views: int = 8
    data_seed: int = 3000
    seed: int = 0
    model: Prior2DConfig = field(default_factory=Prior2DConfig)

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "TrainConfig":
        """The recipe of ``profile``: ``gpu`` = the shipped recipe; ``cpu`` = the ≤ 90-minute
        recipe for 2 CPU cores (a quarter of the batch, a third of the data); ``ci`` = a
        few steps on a few assets, to test the loop."""
        sizes = {"gpu": {}, "cpu": LAPTOP_RECIPE, "ci": CI_RECIPE}[profile]
        return cls(**{**sizes, **overrides})

    @classmethod
    def laptop(cls, **overrides) -> "TrainConfig":
        """The ``cpu`` profile's recipe (the name the ``--laptop`` flag keeps)."""
        return cls.for_profile("cpu", **overrides)

    def key(self) -> str:
        """Hash of every field except ``steps`` and ``checkpoint_every`` (a longer run of the same
        recipe resumes from a shorter one's checkpoints)."""
        d = asdict(self)
        d.pop("steps"), d.pop("checkpoint_every")
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=list).encode()).hexdigest()[:10]


LAPTOP_RECIPE = {"steps": 4500, "batch": 64, "n_assets": 8000}
CI_RECIPE = {"steps": 20, "batch": 8, "n_assets": 48, "checkpoint_every": 10}
# Training cost on 2 CPU cores (AMD EPYC, torch 2.13.0): 2.87 s per step of 256 images.
CPU_SECONDS_PER_IMAGE = 0.0112


def cpu_hours(config: TrainConfig) -> float:
    """Roughly how long ``config`` trains on 2 CPU cores."""
    return config.steps * config.batch * CPU_SECONDS_PER_IMAGE / 3600


# ----------------------------------------------------------------------------- data
@dataclass
class TrainingData:
    """Renders and captions, held in memory.

    Attributes:
        rgb: ``[M, S, S, 3]`` uint8, on white.
        alpha: ``[M, S, S]`` uint8.
        caption_index: ``[M]`` row of ``tokens`` for each image.
        captions: the K distinct captions, then ``""`` at index K.
        tokens, mask: ``[K + 1, L, 384]`` and ``[K + 1, L]`` MiniLM features of ``captions``.
    """

    rgb: Tensor
    alpha: Tensor
    caption_index: Tensor
    captions: list[str]
    tokens: Tensor
    mask: Tensor

    @property
    def empty_index(self) -> int:
        return len(self.captions) - 1

    def to(self, device: str | torch.device) -> "TrainingData":
        """The images and caption features on ``device`` (``caption_index`` stays on the CPU,
        beside the generator that draws from it)."""
        return TrainingData(self.rgb.to(device), self.alpha.to(device), self.caption_index, self.captions,
                            self.tokens.to(device), self.mask.to(device))


def load_training_data(config: TrainConfig, progress: bool = True, workers: int | None = None) -> TrainingData:
    """Render (or read from the cache) the training views and encode their captions.
    ``workers``: rendering processes (default: ShapeWorld's, at most 2)."""
    size = config.model.image_size
    ds = ShapeWorldDataset(DatasetConfig(n_assets=config.n_assets, views=config.views, resolution=size,
                                         split="train", seed=config.data_seed), workers=workers, progress=progress)
    views = ds.stacked()
    names = views.captions()
    captions = sorted(set(names)) + [EMPTY_CAPTION]
    lookup = {c: k for k, c in enumerate(captions)}
    tokens, mask = caption_features(captions)
    return TrainingData(views.rgb, views.alpha, torch.tensor([lookup[c] for c in names]), captions, tokens, mask)


def prior_batch(data: TrainingData, batch: int, caption_dropout: float,
                   generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """``x0 [B, 3, S, S]`` in [-1, 1] (white or black background, maybe mirrored),
    ``tokens [B, L, 384]`` and ``mask [B, L]`` (captions dropped to ``""`` with probability
    ``caption_dropout``), on the device ``data`` lives on. The random draws come from the CPU
    ``generator`` wherever the data is, so a run is the same on every device."""
    device = data.rgb.device
    idx = torch.randint(0, len(data.rgb), (batch,), generator=generator)
    background = (torch.rand(batch, generator=generator) < 0.5).float()[:, None, None, None]
    flip = torch.rand(batch, generator=generator) < 0.5
    rows = data.caption_index[idx].clone()
    rows[torch.rand(batch, generator=generator) < caption_dropout] = data.empty_index
    idx, background, flip, rows = idx.to(device), background.to(device), flip.to(device), rows.to(device)
    rgb = data.rgb[idx].float() / 255
    alpha = data.alpha[idx].float() / 255
    image = over_background(rgb, alpha, background)        # renders are on white: swap in the background
    image = torch.where(flip[:, None, None, None], image.flip(2), image)
    return image.permute(0, 3, 1, 2) * 2 - 1, data.tokens[rows], data.mask[rows]


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio · lr`` (:func:`~gsbook.recipes.common.warmup_cosine`)."""
    return warmup_cosine(config.lr, step, config.steps, config.warmup, config.min_lr_ratio)


# ----------------------------------------------------------------------------- the loop
def checkpoint_folder(config: TrainConfig) -> Path:
    return cache_root() / "checkpoints" / f"prior2d-{config.key()}"


def _save_checkpoint(folder: Path, step: int, elapsed: float, model, ema, opt) -> None:
    save_checkpoint(folder / "latest.pt", {"step": step, "elapsed": elapsed, "model": model, "ema": ema, "opt": opt})


def train_prior2d(config: TrainConfig | None = None, folder: Path | str | None = None, resume: bool = True,
                  progress: bool = True, data: TrainingData | None = None, device: str | torch.device | None = None,
                  workers: int | None = None,
                  on_checkpoint: Callable[[int, TextToImagePrior], None] | None = None
                  ) -> tuple[TextToImagePrior, dict]:
    """Train the prior; return its EMA weights (eval mode, on ``device``) and a report for the model card.

    Checkpoints and sample grids go to ``folder`` (default
    ``$GSBOOK_CACHE/checkpoints/prior2d-<hash>``); with ``resume`` the newest checkpoint
    there is picked up, and the run continues exactly where it stopped (batches are
    drawn from a generator seeded by the step number). ``device`` is where the model and
    the data live (default: the profile's; the recipe is the same on every device). ``workers``:
    processes that render the data. ``on_checkpoint(step, ema_model)`` is called after
    each checkpoint, e.g. to copy the weights somewhere safe.
    """
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    device = resolve_device(device)
    folder = Path(folder) if folder is not None else checkpoint_folder(config)
    torch.manual_seed(config.seed)
    t_data = time.perf_counter()
    data = (data or load_training_data(config, progress=progress, workers=workers)).to(device)
    t_data = time.perf_counter() - t_data
    model = TextToImagePrior(config.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = EMAModel(model.parameters(), decay=config.ema_max_decay, use_ema_warmup=True, power=3 / 4,
                   foreach=True)
    start, elapsed = 0, 0.0
    latest = folder / "latest.pt"
    state = load_checkpoint(latest, {"model": model, "ema": ema, "opt": opt}, device, progress) if resume else None
    if state is not None:
        start, elapsed = state["step"], float(state.get("elapsed", 0.0))
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(range(start, config.steps), desc="prior2d", initial=start, total=config.steps, disable=not progress)
    losses: list[float] = []
    for step in bar:
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        x0, tokens, mask = prior_batch(data, config.batch, config.caption_dropout, gen)
        loss = diffusion_loss(model, x0, tokens, mask, gen, config.min_snr_gamma)
        for group in opt.param_groups:
            group["lr"] = learning_rate(config, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        ema.step(model.parameters())
        losses.append(loss.item())
        if step % 25 == 0:
            bar.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.4f}", lr=f"{learning_rate(config, step):.1e}")
        done = step + 1
        if done % config.checkpoint_every == 0 or done == config.steps:
            _save_checkpoint(folder, done, elapsed + time.perf_counter() - t0, model, ema, opt)
            ema_model = _ema_copy(model, ema)
            save_grid(sample(ema_model, GRID_CAPTIONS, steps=25, guidance=3.0,
                             generator=torch.Generator().manual_seed(0)), folder / f"samples-{done:05d}.png")
            if on_checkpoint is not None:
                on_checkpoint(done, ema_model)
            model.train()
    train_time = elapsed + time.perf_counter() - t0
    final = _ema_copy(model, ema)
    report = {"steps": config.steps, "batch": config.batch, "lr": config.lr, "train_images": len(data.rgb),
              "captions": len(data.captions) - 1, "n_assets": config.n_assets, "views": config.views,
              "data_seed": config.data_seed, "seed": config.seed, "wall_time_s": round(train_time, 1),
              "data_time_s": round(t_data, 1), "final_loss": round(sum(losses[-200:]) / max(1, len(losses[-200:])), 5)
              if losses else None, "checkpoints": str(folder)}
    return final, report


def _ema_copy(model: TextToImagePrior, ema) -> TextToImagePrior:
    copy = TextToImagePrior(model.config).to(next(model.parameters()).device)
    copy.load_state_dict(model.state_dict())
    ema.copy_to(copy.parameters())
    return copy.eval()
