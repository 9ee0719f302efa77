"""The multi-view prior's recipe: ``python -m gsbook.train prior_mv`` (the model is
:class:`gsbook.diffusion.multiview.MultiViewPrior`; taught in §3).

Fine-tuning, as MVDream fine-tunes Stable Diffusion: the network starts as the shipped 2D
prior (``prior2d``) with its self-attention stretched across the four views and zero-initialised
camera and image inputs, and learns on ShapeWorld's four orthogonal views (``view_mode="four"``,
32², on white) of the ``train`` split. Per object: the four views noised to one timestep; the
caption dropped to ``""`` 10 % of the time (for guidance); the clean front view given as a
condition half of the time (image → 3D). Loss: ε-MSE over the four views; AdamW, warm-up and
cosine decay, gradient clipping, an EMA of the weights (what is shipped).

An optional stage two (``refine_steps``, off in the shipped recipe) goes on from stage one's
EMA weights with more rows that give the front view *without* a caption. In stage one only
5 % of rows are image-only (half have the image, a tenth of those lose the caption too), and
from an image alone the prior draws objects of other categories. Stage two was tried twice on a
CPU and not adopted. From an earlier prior (3,000 steps × 16 objects), 1,000 steps at lr 1e-4
with half of the image rows captionless left image → 3D on 10 tuning assets (``unseen``, seed
3000) at 63.7 % category for LGM, against 78.8 % before. From the shipped weights, 400 steps × 64
objects moved image → 3D on the benchmark's 20 fronts from 14.4 % to 17.5 % category
(``benchmarks/candidates/prior_mv_b64/README.md``). §3's image mode reads a caption out of the
front view instead (:func:`gsbook.diffusion.classify.read_caption`) and draws from both, as
ImageDream draws from an image and a prompt. The lever is kept for a longer run on a GPU
(``--refine-steps``).

Evaluation (:func:`evaluate_prior_mv`): four views for each of ``n`` captions of seen and of
held-out colour × category pairs, every view judged one by one; and, given the ground-truth
front view of ``unseen`` assets, the three views it draws judged against their captions.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..config import cache_root, resolve_device
from ..diffusion.classify import read_caption
from ..diffusion.multiview import MultiViewPrior, multiview_loss, sample_views
from ..diffusion.prior2d import EMPTY_CAPTION, TextToImagePrior, caption_features
from ..images import save_grid
from ..judge import Judge, Scores, accuracy
from ..world import DatasetConfig, ShapeWorldDataset, split_captions
from .common import hardware, load_checkpoint, save_checkpoint, warmup_cosine

__all__ = ["PriorMVRecipe", "MultiViewData", "load_multiview_data", "multiview_batch", "train_prior_mv",
           "refine_prior_mv", "evaluate_prior_mv", "prior_mv_card", "run_prior_mv_recipe", "remeasure_prior_mv"]

GRID_PROMPTS = ["a red ball", "a blue lamp with a grey base", "a green mushroom with a white stem",
                "a yellow rocket with blue fins"]


@dataclass
class PriorMVRecipe:
    """Training settings; the defaults are the shipped CPU recipe (2,500 steps of 64 objects: about
    71 min on 2 idle AMD EPYC cores, 1.7 s a step; a slower 2-core machine takes longer)."""

    steps: int = 2500
    batch: int = 64                 # objects (× 4 views)
    lr: float = 3e-4
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    caption_dropout: float = 0.1
    image_condition: float = 0.5    # fraction of objects whose front view is given
    ema_max_decay: float = 0.999
    n_assets: int = 8000
    data_seed: int = 3000
    seed: int = 0
    checkpoint_every: int = 250
    refine_steps: int = 0           # stage two, from stage one's EMA weights (0: none; see the module's note)
    refine_lr: float = 1e-4
    refine_warmup: int = 50
    refine_image_only: float = 0.5  # of the rows given the front view, the fraction whose caption is dropped too

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "PriorMVRecipe":
        sizes = {"ci": {"steps": 3, "batch": 2, "n_assets": 16, "checkpoint_every": 2, "refine_warmup": 1},
                 "cpu": {}, "gpu": {"steps": 6000, "batch": 64}}[profile]
        return cls(**{**sizes, **overrides})

    def key(self) -> str:
        """Stage one's checkpoint key: every setting but the step counts and stage two's."""
        d = {k: v for k, v in asdict(self).items() if not k.startswith("refine_")}
        d.pop("steps"), d.pop("checkpoint_every")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def refine_key(self) -> str:
        """Stage two's: the whole recipe but ``refine_steps`` and ``checkpoint_every``."""
        d = asdict(self)
        d.pop("refine_steps"), d.pop("checkpoint_every")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- data
@dataclass
class MultiViewData:
    """``rgb [A, 4, 32, 32, 3]`` uint8 on white; ``caption_index [A]`` into ``tokens``/``mask``
    (the distinct captions, then ``""`` last)."""

    rgb: Tensor
    caption_index: Tensor
    captions: list[str]
    tokens: Tensor
    mask: Tensor


def load_multiview_data(n_assets: int, seed: int, split: str = "train", progress: bool = True) -> MultiViewData:
    ds = ShapeWorldDataset(DatasetConfig(n_assets=n_assets, views=4, view_mode="four", resolution=32,
                                         split=split, seed=seed), progress=progress)
    names = [r["caption"] for r in ds.records]
    captions = sorted(set(names)) + [EMPTY_CAPTION]
    lookup = {c: k for k, c in enumerate(captions)}
    tokens, mask = caption_features(captions)
    return MultiViewData(ds.tensors("rgb")["rgb"], torch.tensor([lookup[c] for c in names]), captions, tokens, mask)


def multiview_batch(data: MultiViewData, recipe: PriorMVRecipe, generator: torch.Generator, image_only: float = 0.0
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``x0 [B, 4, 3, 32, 32]`` in [-1, 1], ``tokens``, ``mask`` (captions dropped to ``""`` with
    probability ``caption_dropout``) and ``cond_mask [B, 4]`` (the front view known with
    probability ``image_condition``). ``image_only``: the probability that a row given the front
    view loses its caption as well (stage two)."""
    B = recipe.batch
    idx = torch.randint(0, len(data.rgb), (B,), generator=generator)
    rows = data.caption_index[idx].clone()
    rows[torch.rand(B, generator=generator) < recipe.caption_dropout] = len(data.captions) - 1
    cond_mask = torch.zeros(B, 4, dtype=torch.bool)
    cond_mask[:, 0] = torch.rand(B, generator=generator) < recipe.image_condition
    if image_only > 0:                  # drawn only then, so stage one's batches are as they were
        rows[cond_mask[:, 0] & (torch.rand(B, generator=generator) < image_only)] = len(data.captions) - 1
    x0 = data.rgb[idx].float().permute(0, 1, 4, 2, 3) / 127.5 - 1
    return x0, data.tokens[rows], data.mask[rows], cond_mask


# ----------------------------------------------------------------------------- the loop
def train_prior_mv(recipe: PriorMVRecipe, resume: bool = True, progress: bool = True,
                   device: str | torch.device | None = None, base: TextToImagePrior | None = None
                   ) -> tuple[MultiViewPrior, dict]:
    """Fine-tune the shipped 2D prior (or ``base``) into the multi-view prior (stage one), then
    run stage two if ``recipe.refine_steps``; return the EMA model (eval mode, on the CPU) and a
    report for the card."""
    device = resolve_device(device)
    torch.manual_seed(recipe.seed)
    t_data = time.perf_counter()
    data = load_multiview_data(recipe.n_assets, recipe.data_seed, progress=progress)
    t_data = time.perf_counter() - t_data
    start = MultiViewPrior.from_prior2d(base or TextToImagePrior.from_shipped(device="cpu"))
    model, report = _train_stage(start, data, recipe, "one", resume, progress, device)
    report = {**asdict(recipe), "parameters": sum(p.numel() for p in model.parameters()),
              "captions": len(data.captions) - 1, "data_time_s": round(t_data, 1), **report}
    if recipe.refine_steps:
        model, stage_two = _train_stage(model, data, recipe, "two", resume, progress, device)
        report["refine"] = stage_two
    report["wall_time_s"] = round(report["wall_time_s"] + report.get("refine", {}).get("wall_time_s", 0.0), 1)
    return model, report


def refine_prior_mv(model: MultiViewPrior, recipe: PriorMVRecipe, resume: bool = True, progress: bool = True,
                    device: str | torch.device | None = None) -> tuple[MultiViewPrior, dict]:
    """Stage two alone, from ``model`` (stage one's weights): the refined EMA model and its report."""
    data = load_multiview_data(recipe.n_assets, recipe.data_seed, progress=progress)
    return _train_stage(model, data, recipe, "two", resume, progress, resolve_device(device))


def _train_stage(start: MultiViewPrior, data: MultiViewData, recipe: PriorMVRecipe, stage: str, resume: bool,
                 progress: bool, device: torch.device) -> tuple[MultiViewPrior, dict]:
    """One stage's loop from ``start``'s weights: ε-MSE, AdamW with warm-up and cosine decay,
    an EMA (returned), checkpoints to resume from."""
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    one = stage == "one"
    steps, lr, warmup = (recipe.steps, recipe.lr, recipe.warmup) if one else \
        (recipe.refine_steps, recipe.refine_lr, recipe.refine_warmup)
    image_only, seed = (0.0, recipe.seed) if one else (recipe.refine_image_only, recipe.seed + 1)
    folder = cache_root() / "checkpoints" / (f"prior_mv-{recipe.key()}" if one else
                                             f"prior_mv-{recipe.key()}-refine-{recipe.refine_key()}")
    model = MultiViewPrior(start.config)
    model.load_state_dict(start.state_dict())
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=recipe.weight_decay)
    ema = EMAModel(model.parameters(), decay=recipe.ema_max_decay, use_ema_warmup=True, power=3 / 4, foreach=True)
    first, elapsed, losses = 0, 0.0, []
    latest = folder / "latest.pt"
    state = load_checkpoint(latest, {"model": model, "ema": ema, "opt": opt}, device, progress) if resume else None
    if state is not None:
        first, elapsed, losses = state["step"], float(state["elapsed"]), list(state["losses"])
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(range(first, steps), desc="prior_mv" if one else "prior_mv (stage two)", initial=first, total=steps,
               disable=not progress)
    for step in bar:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        x0, tokens, mask, cond_mask = multiview_batch(data, recipe, gen, image_only)
        loss = multiview_loss(model, x0.to(device), tokens.to(device), mask.to(device), cond_mask.to(device), gen)
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(lr, step, steps, warmup, recipe.min_lr_ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        ema.step(model.parameters())
        losses.append(round(loss.item(), 5))
        if step % 25 == 0:
            bar.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.4f}")
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == steps:
            save_checkpoint(latest, {"step": done, "elapsed": elapsed + time.perf_counter() - t0, "losses": losses,
                                     "model": model, "ema": ema, "opt": opt})
    train_time = elapsed + time.perf_counter() - t0
    final = MultiViewPrior(model.config)
    final.load_state_dict(model.state_dict())
    ema.copy_to(final.parameters())
    report = {"wall_time_s": round(train_time, 1),
              "final_loss": round(sum(losses[-200:]) / max(1, len(losses[-200:])), 5) if losses else None,
              "loss_every_100": [round(sum(losses[i:i + 100]) / len(losses[i:i + 100]), 4)
                                 for i in range(0, len(losses), 100)]}
    return final.cpu().eval(), report


# ----------------------------------------------------------------------------- evaluation
def _judge_views(judge: Judge, views: Tensor, captions: list[str]) -> Scores:
    """Every view of ``views [B, V, S, S, 3]`` judged against its object's caption."""
    V = views.shape[1]
    return accuracy(judge, views.flatten(0, 1).permute(0, 3, 1, 2), [c for c in captions for _ in range(V)])


def evaluate_prior_mv(model: MultiViewPrior, judge: Judge | None = None, n: int = 50, steps: int = 50,
                      guidance: float = 3.0, seed: int = 0, progress: bool = False,
                      sampler: str = "ddpm", image_sampler: str = "ddim", read_trials: int = 8) -> dict[str, Scores]:
    """The judge on every view: text → 4 views for ``n`` seen-pair and ``n`` held-out-pair captions;
    image → 4 views from the ground-truth front views of ``n`` ``unseen`` assets (the three drawn
    views), with their true captions, from the image alone (caption ``""``, ``image_sampler``),
    and with the caption the shipped 2D prior reads in the front view (``read_trials`` trials,
    :func:`~gsbook.diffusion.classify.read_caption`; what §3's image → 3D runs; 0 skips it)."""
    judge = judge or Judge.from_shipped(device="cpu")
    gen = lambda: torch.Generator().manual_seed(seed)  # noqa: E731
    out = {}
    for name, split in (("text/seen", "train"), ("text/held-out", "unseen")):
        captions = split_captions(n, split, seed + 7)
        views = sample_views(model, captions, steps=steps, guidance=guidance, sampler=sampler, generator=gen(),
                             progress=progress)
        out[name] = _judge_views(judge, views, captions)
    data = load_multiview_data(n, seed=2000 + seed, split="unseen", progress=progress)
    captions = [data.captions[i] for i in data.caption_index.tolist()]
    fronts = data.rgb[:, 0].float() / 255
    views = sample_views(model, captions, images=fronts, steps=steps, guidance=guidance, sampler=sampler,
                         generator=gen(), progress=progress)
    out["image/unseen (views 2-4)"] = _judge_views(judge, views[:, 1:], captions)
    views = sample_views(model, [""] * len(captions), images=fronts, steps=steps, guidance=guidance,
                         sampler=image_sampler, generator=gen(), progress=progress)
    out["image alone/unseen (views 2-4)"] = _judge_views(judge, views[:, 1:], captions)
    if read_trials:                     # §3's image → 3D: the 2D prior reads the caption first
        reader = TextToImagePrior.from_shipped(device=next(model.parameters()).device)
        read = [read_caption(reader, f, trials=read_trials, seed=0).caption for f in fronts]
        views = sample_views(model, read, images=fronts, steps=steps, guidance=guidance, sampler=sampler,
                             generator=gen(), progress=progress)
        out["image + read caption/unseen (views 2-4)"] = _judge_views(judge, views[:, 1:], captions)
    return out


_SAMPLER_WORDS = {"ddpm": "DDPM (ancestral)", "ddim": "DDIM (deterministic)"}


def prior_mv_card(report: dict, scores: dict[str, Scores], total_s: float, grid: str) -> str:
    rows = "\n".join(f"| {k} | {v.category:.1%} | {v.colour:.1%} | {v.part_colour:.1%} | {v.n} |"
                     for k, v in scores.items())
    return f"""# prior_mv — ShapeWorld multi-view diffusion prior (4 views × 32²)

§3's front end: draws the four views LGM reads (azimuth 0°, 90°, 180°, 270° at elevation 0°)
jointly, from a caption and optionally the front view. The shipped 2D prior (`prior2d`) with
its self-attention stretched across the four views (MVDream's 3D attention, same weights),
a camera MLP added to the pooled caption vector, and the known view and its mask concatenated
to the input (zero-initialised); {report['parameters']:,} parameters, stored as float16.

## Data
ShapeWorld `train` split, {report['n_assets']} assets (seed {report['data_seed']}), the four views at 32²
on white; {report['captions']} distinct captions. The `unseen` colour × category pairs are never shown.

## Training
Fine-tuned from `prior2d`: {report['steps']} steps, batch {report['batch']} objects (× 4 views), AdamW (lr
{report['lr']}, warm-up {report['warmup']}, cosine decay to {report['min_lr_ratio']}×), gradients clipped at
{report['grad_clip']}, EMA (max decay {report['ema_max_decay']}); captions dropped to `""` {report['caption_dropout']:.0%}
of the time, the clean front view given {report['image_condition']:.0%} of the time. ε-MSE by 100 steps:
{', '.join(map(str, report['loss_every_100']))}.{_stage_two_words(report)}
Wall time {report['wall_time_s'] / 60:.1f} min of training (summed over resumed runs), {report['data_time_s'] / 60:.1f} min
of data, {report['eval_time_s'] / 60:.1f} min of evaluation and samples, on {report['hardware']}.

Reproduce: `{report.get('command', 'python -m gsbook.train prior_mv')}` (seed {report['seed']}; needs the shipped `prior2d`).

## Measured quality
{_SAMPLER_WORDS[report.get('sampler', 'ddim')]}, 50 steps, guidance 3 (over caption and image together); from the
image alone (caption `""`) {_SAMPLER_WORDS[report.get('image_sampler', 'ddim')]}. §3's image → 3D draws from the image and
the caption the shipped `prior2d` reads in it (8 trials; `gsbook.diffusion.classify.read_caption`). Every
view judged on its own.

| what | category | colour | part colour | views |
|---|---|---|---|---|
{rows}

Samples: `{grid}` (rows: {', '.join(GRID_PROMPTS)}).
"""


def _stage_two_words(report: dict) -> str:
    two = report.get("refine")
    if not two:
        return ""
    words = (f"\nThen stage two, from those EMA weights: {report['refine_steps']} steps at lr {report['refine_lr']} "
             f"(warm-up {report['refine_warmup']}, cosine decay), a fresh EMA; of the objects given the front view, "
             f"{report['refine_image_only']:.0%} also lose their caption (image → 4 views from the image alone; "
             f"stage one had {report['caption_dropout']:.0%} of them). Stage two {two['wall_time_s'] / 60:.1f} min; "
             f"ε-MSE by 100 steps: {', '.join(map(str, two['loss_every_100']))}.")
    if report.get("refine_note"):
        words += "\n" + report["refine_note"]
    return words


def run_prior_mv_recipe(recipe: PriorMVRecipe, out: Path | str | None = None, resume: bool = True,
                        device: str | torch.device | None = None, eval_n: int = 50, read_trials: int = 8,
                        command: str = "python -m gsbook.train prior_mv") -> MultiViewPrior:
    """Train, evaluate, write ``prior_mv.safetensors``, ``.json``, the card and a sample grid.
    ``command``: what the card gives as the way to reproduce these weights (with the run's flags)."""
    t0 = time.perf_counter()
    model, report = train_prior_mv(recipe, resume=resume, device=device)
    report["hardware"], report["command"] = hardware(device), command
    _measure_and_ship(model, report, out, eval_n, started=t0, read_trials=read_trials)
    return model


def _measure_and_ship(model: MultiViewPrior, report: dict, out: Path | str | None, eval_n: int,
                      sampler: str = "ddpm", started: float | None = None, read_trials: int = 8) -> None:
    """Judge ``model``, draw the sample grid, write the weights, JSON and card. ``started``: when
    the run began (``perf_counter``), for the total time; ``None`` keeps the report's."""
    from ..zoo import WEIGHTS_DIR

    t_eval = time.perf_counter()
    report["sampler"], report["image_sampler"] = sampler, "ddim"
    scores = evaluate_prior_mv(model, n=eval_n, sampler=sampler, image_sampler="ddim", read_trials=read_trials)
    folder = Path(out) if out is not None else WEIGHTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    views = sample_views(model, GRID_PROMPTS, steps=50, sampler=sampler, generator=torch.Generator().manual_seed(0))
    grid = folder / "prior_mv_samples.png"
    save_grid(views.flatten(0, 1).permute(0, 3, 1, 2), grid, nrow=4, scale=3)
    report["eval_time_s"] = round(time.perf_counter() - t_eval, 1)
    if started is not None:
        report["total_time_s"] = round(time.perf_counter() - started, 1)
    card = prior_mv_card(report, scores, report.get("total_time_s", 0.0), grid.name)
    model.save_shipped({**report, "quality": {k: vars(v) for k, v in scores.items()}}, card, folder=out)
    print(card)


def remeasure_prior_mv(out: Path | str | None = None, eval_n: int = 50, sampler: str = "ddpm",
                       read_trials: int = 8) -> MultiViewPrior:
    """Measure the shipped prior again and rewrite its card, JSON and sample grid, weights unchanged.

    For a change in how the prior is *sampled* (the card's numbers depend on the sampler), not in
    how it was trained: the training report in its JSON is kept as it is.
    """
    from ..zoo import read_config

    model = MultiViewPrior.from_shipped(device="cpu")
    report = dict(read_config("prior_mv")["recipe"])
    report.pop("quality", None)
    _measure_and_ship(model, report, out, eval_n, sampler, read_trials=read_trials)
    return model
