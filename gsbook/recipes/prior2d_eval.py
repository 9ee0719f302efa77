"""Measuring the 2D prior with the judge, and writing its model card (the end of
``python -m gsbook.train prior2d``; §1 reads the card).

The prior is asked for images of random captions and the independent judge
(:mod:`gsbook.judge`) reads them back. Two caption sets are kept apart:

* **seen pairs** — colour × category pairs of ShapeWorld's ``train`` split;
* **held-out pairs** — the ``unseen`` split's pairs, which the prior never read: a
  test of whether it composes "colour" and "shape" or only memorised combinations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..diffusion import TextToImagePrior, sample
from ..images import save_grid
from ..judge import Judge, Scores, accuracy
from ..world import GRID_CAPTIONS, split_captions
from .prior2d import LAPTOP_RECIPE, TrainConfig, cpu_hours

__all__ = ["PriorScores", "evaluate_prior", "LAPTOP_MEASURED", "laptop_note", "finish_prior2d_recipe"]


@dataclass
class PriorScores:
    guidance: float
    sampler: str
    steps: int
    seen: Scores
    held_out: Scores

    def row(self) -> str:
        s, h = self.seen, self.held_out
        return (f"| {self.sampler.upper()} {self.steps} | {self.guidance:g} | {s.category:.0%} | {s.colour:.0%} | "
                f"{s.part_colour:.0%} | {h.category:.0%} | {h.colour:.0%} | {h.part_colour:.0%} |")


def evaluate_prior(model: TextToImagePrior, judge: Judge | None = None, n: int = 100,
                   guidances: tuple[float, ...] = (3.0,), steps: int = 100, sampler: str = "ddpm", seed: int = 0,
                   progress: bool = False) -> list[PriorScores]:
    """Judge ``n`` samples of seen-pair and ``n`` of held-out-pair captions at each guidance scale."""
    judge = judge or Judge.from_shipped(next(model.parameters()).device)
    seen, held = split_captions(n, "train", seed), split_captions(n, "unseen", seed)
    results = []
    for s in guidances:
        scores = []
        for captions in (seen, held):
            images = sample(model, captions, steps=steps, guidance=s, sampler=sampler,
                            generator=torch.Generator().manual_seed(seed), progress=progress)
            scores.append(accuracy(judge, images, captions))
        results.append(PriorScores(s, sampler, steps, *scores))
    return results


# The 90-minute CPU recipe (`python -m gsbook.train prior2d --laptop`), as measured when it was
# last run in full: 2026-11-25, AMD EPYC, 2 cores, torch 2.13.0 CPU build; DDPM, 100 steps.
LAPTOP_MEASURED = {"train_min": 59.8, "eval_min": 7.6,
                   "guidance 3": {"seen": (0.79, 0.83), "held_out": (0.85, 0.89)},
                   "guidance 5": {"seen": (0.81, 0.80), "held_out": (0.90, 0.89)}}


def laptop_note(config: TrainConfig) -> str:
    """The card's paragraph on the CPU recipe (empty for a card of that recipe itself)."""
    if all(getattr(config, k) == v for k, v in LAPTOP_RECIPE.items()):
        return ""
    m = LAPTOP_MEASURED
    cells = "; ".join(f"{g}: seen {s[0]:.0%} / {s[1]:.0%}, held-out {h[0]:.0%} / {h[1]:.0%}"
                      for g in ("guidance 3", "guidance 5") for s, h in [(m[g]["seen"], m[g]["held_out"])])
    return f"""
## Without a GPU
The same command runs on a CPU, but this recipe needs about {cpu_hours(config):.0f} hours on 2 cores.
`python -m gsbook.train prior2d --profile cpu` (the default on a machine without CUDA) is the recipe that fits 90 minutes there:
{LAPTOP_RECIPE['steps']} steps at batch {LAPTOP_RECIPE['batch']} on {LAPTOP_RECIPE['n_assets']} assets, {m['train_min']} min of training on 2 AMD EPYC
cores. Its prior is weaker; judged as below (DDPM, 100 steps; category / colour): {cells}.
"""


def finish_prior2d_recipe(model: TextToImagePrior, report: dict, config: TrainConfig, out: Path | None, hardware: str,
                          guidances: tuple[float, ...] = (3.0, 5.0),
                          command: str = "python -m gsbook.train prior2d") -> None:
    """Measure the trained prior, then write its weights, config, model card and sample grid.
    ``command`` is the line that reproduces it, for the card; ``hardware`` names the machine
    that evaluates (``report["hardware"]``, if there, the one that trained)."""
    import time

    from ..zoo import WEIGHTS_DIR

    t0 = time.perf_counter()
    scores = evaluate_prior(model, guidances=guidances, progress=True)
    # The deterministic sampler, for comparison (see gsbook.diffusion.sampling).
    scores += evaluate_prior(model, guidances=(3.0,), steps=50, sampler="ddim", progress=True)
    eval_time = time.perf_counter() - t0
    folder = Path(out) if out is not None else WEIGHTS_DIR
    grid = sample(model, GRID_CAPTIONS * 4, guidance=3.0, generator=torch.Generator().manual_seed(0))
    # 4 rows of 16: the same 16 captions, four different starting noises.
    save_grid(grid, folder / "prior2d_samples.png", nrow=16, scale=2)
    rows = "\n".join(s.row() for s in scores)
    m = config.model
    total = report["wall_time_s"] + report["data_time_s"] + eval_time
    loss_text = (f"ε-MSE weighted by min-SNR-{config.min_snr_gamma:g}" if config.min_snr_gamma
                 else "unweighted ε-MSE (DDPM's L_simple)")
    card = f"""# prior2d — ShapeWorld text-to-image diffusion prior (32²)

The critic of §1's score distillation. An ε-prediction diffusion model on diffusers'
`UNet2DConditionModel`, in pixel space at {m.image_size}² with {m.patch}×{m.patch} pixels folded into channels
(the UNet's levels are {' → '.join(str(m.image_size // m.patch // 2 ** i) + '²' for i in range(len(m.channels)))},
widths {'-'.join(map(str, m.channels))}; cross-attention to MiniLM token features at the coarser levels; the
pooled caption vector added to the time embedding). Cosine noise schedule ({m.num_train_timesteps} steps).
{model.num_parameters:,} parameters, stored as float16.

## Data
ShapeWorld `train` split: {config.n_assets} assets × {config.views} random views at {m.image_size}² (seed
{config.data_seed}), {report['train_images']:,} images, {report['captions']} distinct captions. Each batch puts
every render on a white or a black background (half and half) and mirrors half of them. The
`unseen` split's colour × category pairs are never shown.

## Training
{report['steps']} steps, batch {report['batch']}, AdamW (lr {report['lr']}, warm-up {config.warmup}, cosine
decay to {config.min_lr_ratio:g}×), {loss_text}, {config.caption_dropout:.0%}
caption dropout (to `""`, the unconditional caption), EMA of the weights (warm-up, max decay
{config.ema_max_decay}). Final training loss {report['final_loss']}.

Wall time: {report['wall_time_s'] / 60:.1f} min of training and {report['data_time_s'] / 60:.1f} min of data on
{report.get('hardware', hardware)}; {eval_time / 60:.1f} min of evaluation on {hardware}; {total / 60:.1f} min in all.

Reproduce: `{command}` (seed {config.seed}; resumes from its
checkpoints in `$GSBOOK_CACHE/checkpoints` unless `--fresh`).
{laptop_note(config)}

## Measured quality
100 captions drawn from the seen pairs and 100 from the held-out pairs (a random part colour
where the category has a part), one sample each (seed 0), read by the shipped judge
(`gsbook/weights/judge.md`). DDPM is the ancestral sampler that `gsbook.diffusion.sample`
uses by default; DDIM is deterministic (see `TextToImagePrior.make_scheduler` for how it is set up).

| sampler, steps | guidance | seen: category | seen: colour | seen: part colour | held-out: category | held-out: colour | held-out: part colour |
|---|---|---|---|---|---|---|---|
{rows}

![samples](prior2d_samples.png)

`prior2d_samples.png`: the 16 captions of `gsbook.world.GRID_CAPTIONS` (one per
category) in columns, four seeds in rows, DDPM 100 steps, guidance 3.
"""
    recipe = {**report, "eval_time_s": round(eval_time, 1), "total_time_s": round(total, 1),
              "hardware": report.get("hardware", hardware), "eval_hardware": hardware,
              "quality": [{"guidance": s.guidance, "sampler": s.sampler, "steps": s.steps, "seen": vars(s.seen),
                           "held_out": vars(s.held_out)} for s in scores],
              "train_config": json.loads(json.dumps({k: v for k, v in vars(config).items() if k != "model"}))}
    model.save_shipped(recipe, card, folder=folder)
    print(card)
