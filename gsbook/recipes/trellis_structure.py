"""TRELLIS stage 1's recipes: ``python -m gsbook.train trellis_ss_vae``, then ``python -m gsbook.train trellis_ss_flow``
(the models are :class:`gsbook.methods.trellis.StructureVAE` and :class:`~gsbook.methods.trellis.StructureFlow`;
taught in §4).

Data: ShapeWorld's ``train`` split (:func:`gsbook.world.asset_record`: the colour × category
pairs outside the held-out ones, a seed per asset), each object's solid occupancy at 32³,
computed once and cached bit-packed under ``$GSBOOK_CACHE/trellis``. A structure does not
depend on colour, so the VAE is evaluated on held-out *assets* (the ``val`` split: other
seeds, other proportions and turns).

* ``trellis_ss_vae``: occupancy → posterior → occupancy, BCE + Dice + a small KL; each batch turned
  by random quarter turns about +y and mirrored at random (a structure's caption does not
  change when it turns). Evaluation: the mean IoU of the round trip on held-out assets
  (issue criterion ≥ 0.95). Afterwards the recipe measures the standard deviation of the
  posterior means over the training data and stores ``1 / std`` as the VAE's
  ``latent_scale``, so that the flow's data has unit scale.
* ``trellis_ss_flow``: the shipped VAE's latents of the training assets (posterior means × scale),
  the rectified-flow loss at logit-normal times (:func:`gsbook.flow.flow_loss`), captions
  dropped to ``""`` 10 % of the time, an EMA of the weights (what is shipped). Evaluation:
  structures drawn for captions of seen and of held-out colour × category pairs, compared
  with ground-truth occupancies of many assets of every category: the IoU with the nearest
  one of the caption's category, how often the nearest of all is of the caption's category,
  and the occupied fraction against the data's.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..config import cache_root, resolve_device
from ..diffusion import EMPTY_CAPTION, caption_features
from ..flow import flow_loss
from ..methods.trellis import (StructureFlow, StructureFlowConfig, StructureVAE, StructureVAEConfig,
                               occupied_fraction, sample_structure, structure_vae_loss, voxel_iou)
from ..world import (CATEGORY_NAMES, GENERATOR_VERSION, DatasetConfig, ObjectSpec, asset_record, make_asset, parse,
                     split_captions)
from .common import hardware, load_checkpoint, save_checkpoint, warmup_cosine

__all__ = ["StructureData", "structure_data", "augment_structure", "category_references", "StructureVAERecipe",
           "train_ss_vae", "evaluate_ss_vae", "measure_latent_scale", "ss_vae_card", "run_ss_vae_recipe",
           "StructureFlowRecipe", "train_ss_flow", "evaluate_ss_flow", "ss_flow_card", "run_ss_flow_recipe"]

RESOLUTION = 32


# ----------------------------------------------------------------------------- data
@dataclass
class StructureData:
    """``occupancy [A, R, R, R]`` bool of ShapeWorld assets, with each one's ``captions`` and ``categories``."""

    occupancy: Tensor
    captions: list[str]
    categories: list[str]

    def __len__(self) -> int:
        return self.occupancy.shape[0]


def structure_data(n_assets: int, split: str = "train", seed: int = 0, resolution: int = RESOLUTION,
                   progress: bool = True) -> StructureData:
    """The occupancies of the first ``n_assets`` assets of a ShapeWorld split (the same assets
    :class:`gsbook.world.ShapeWorldDataset` renders for that split and seed), cached bit-packed in
    ``$GSBOOK_CACHE/trellis`` (32³: 4 kB an asset; computing one takes about 10 ms)."""
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm

    config = DatasetConfig(n_assets=n_assets, split=split, seed=seed)
    records = [asset_record(config, i) for i in range(n_assets)]
    path = (cache_root() / "trellis" /
            f"structure-v{GENERATOR_VERSION}-{split}-s{seed}-n{n_assets}-r{resolution}.safetensors")
    shape = (n_assets, resolution, resolution, resolution)
    packed = None
    if path.exists():
        try:
            packed = load_file(str(path))["packed"].numpy()
        except Exception:                       # a torn file: rebuild it
            packed = None
    if packed is None:
        grids = [make_asset(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"]).occupancy(resolution)
                 for r in tqdm(records, desc=f"ShapeWorld {split} occupancy {resolution}³", disable=not progress)]
        packed = np.packbits(torch.stack(grids).numpy().reshape(n_assets, -1), axis=1)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"packed": torch.from_numpy(packed)}, str(tmp))
        tmp.replace(path)
    occupancy = torch.from_numpy(np.unpackbits(packed, axis=1)[:, :resolution ** 3].reshape(shape).astype(bool))
    return StructureData(occupancy, [r["caption"] for r in records], [r["category"] for r in records])


def augment_structure(occ: Tensor, generator: torch.Generator) -> Tensor:
    """``occ [B, R, R, R]`` (axes x, y, z) each turned by a random quarter turn about +y and
    mirrored in x half of the time: new structures with the same caption."""
    turns = torch.randint(0, 4, (occ.shape[0],), generator=generator).tolist()
    mirror = (torch.rand(occ.shape[0], generator=generator) < 0.5).tolist()
    out = [torch.rot90(o, k, dims=(0, 2)) for o, k in zip(occ, turns)]
    return torch.stack([o.flip(0) if m else o for o, m in zip(out, mirror)])


def category_references(per_category: int = 16, seed: int = 900_000, resolution: int = RESOLUTION
                        ) -> tuple[Tensor, list[str]]:
    """``[16·K, R, R, R]`` ground-truth occupancies, ``per_category`` assets of every category
    (seeds unused by the splits), and the category of each: what generated structures are
    compared against."""
    grids, names = [], []
    for category in CATEGORY_NAMES:
        for s in range(per_category):
            grids.append(make_asset(ObjectSpec(category), seed + s).occupancy(resolution))
            names.append(category)
    return torch.stack(grids), names


def _batched(fn, x: Tensor, size: int = 32) -> Tensor:
    return torch.cat([fn(x[i:i + size]) for i in range(0, len(x), size)])


# ----------------------------------------------------------------------------- ss_vae
@dataclass
class StructureVAERecipe:
    """The structure VAE's training settings; the defaults are the shipped CPU recipe (estimated
    40-60 min on 2 idle cores: about 1 s a step on one core)."""

    steps: int = 3000
    batch: int = 8
    lr: float = 2e-3
    warmup: int = 100
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    kl_weight: float = 1e-3
    dice_weight: float = 1.0
    widths: tuple[int, int] = (32, 64)
    n_assets: int = 4000
    data_seed: int = 4000
    eval_assets: int = 200
    eval_seed: int = 4100
    seed: int = 0
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths)

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "StructureVAERecipe":
        sizes = {"ci": {"steps": 3, "batch": 2, "n_assets": 8, "eval_assets": 4, "checkpoint_every": 2},
                 "cpu": {}, "gpu": {"steps": 8000, "batch": 32, "n_assets": 8000}}[profile]
        return cls(**{**sizes, **overrides})

    def key(self) -> str:
        d = asdict(self)
        for volatile in ("steps", "checkpoint_every", "eval_assets", "eval_seed"):
            d.pop(volatile)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def train_ss_vae(recipe: StructureVAERecipe, resume: bool = True, progress: bool = True,
                 device: str | torch.device | None = None) -> tuple[StructureVAE, dict]:
    """Train the structure VAE; return it (eval mode, CPU, ``latent_scale`` still 1) and a report."""
    from tqdm.auto import tqdm

    device = resolve_device(device)
    folder = cache_root() / "checkpoints" / f"ss_vae-{recipe.key()}"
    torch.manual_seed(recipe.seed)
    t_data = time.perf_counter()
    data = structure_data(recipe.n_assets, "train", recipe.data_seed, progress=progress)
    t_data = time.perf_counter() - t_data
    model = StructureVAE(StructureVAEConfig(widths=recipe.widths)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    start, elapsed, history = 0, 0.0, []
    latest = folder / "latest.pt"
    state = load_checkpoint(latest, {"model": model, "opt": opt}, device, progress) if resume else None
    if state is not None:
        start, elapsed, history = state["step"], float(state["elapsed"]), list(state["history"])
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(range(start, recipe.steps), desc="trellis_ss_vae", initial=start, total=recipe.steps, disable=not progress)
    for step in bar:
        gen = torch.Generator().manual_seed(recipe.seed * 1_000_003 + step)
        idx = torch.randint(0, len(data), (recipe.batch,), generator=gen)
        occ = augment_structure(data.occupancy[idx], gen).to(device)
        loss, parts = structure_vae_loss(model, occ, gen, recipe.kl_weight, recipe.dice_weight)
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(recipe.lr, step, recipe.steps, recipe.warmup, recipe.min_lr_ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        history.append([round(loss.item(), 5), round(parts["dice"], 5), round(parts["kl"], 4)])
        if step % 25 == 0:
            recent = history[-100:]
            bar.set_postfix(loss=f"{sum(h[0] for h in recent) / len(recent):.4f}",
                            dice=f"{sum(h[1] for h in recent) / len(recent):.4f}")
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            save_checkpoint(latest, {"step": done, "elapsed": elapsed + time.perf_counter() - t0, "history": history,
                                     "model": model, "opt": opt})
    train_time = elapsed + time.perf_counter() - t0
    every = lambda col: [round(sum(h[col] for h in history[i:i + 250]) / len(history[i:i + 250]), 4)  # noqa: E731
                         for i in range(0, len(history), 250)]
    report = {**asdict(recipe), "widths": list(recipe.widths), "parameters": sum(p.numel() for p in model.parameters()),
              "wall_time_s": round(train_time, 1), "data_time_s": round(t_data, 1),
              "loss_every_250": every(0), "dice_every_250": every(1), "kl_every_250": every(2)}
    return model.cpu().eval(), report


@torch.no_grad()
def measure_latent_scale(vae: StructureVAE, occupancy: Tensor) -> float:
    """``1 / std`` of the posterior means of ``occupancy [A, R, R, R]``: the ``latent_scale`` that
    gives the flow unit-scale data (Stable Diffusion's 0.18215 is the same number for its VAE)."""
    means = _batched(lambda x: vae.encode(x)[0].cpu(), occupancy)
    return float(1.0 / means.std().clamp_min(1e-6))


@torch.no_grad()
def evaluate_ss_vae(vae: StructureVAE, n: int = 200, seed: int = 4100, progress: bool = False) -> dict:
    """The round trip on ``n`` held-out assets (``val`` split): mean, min and per-category IoU,
    the share of assets above 0.9 and 0.95, and the occupied fractions."""
    data = structure_data(n, "val", seed, progress=progress)
    recon = _batched(lambda x: vae.reconstruct(x).cpu(), data.occupancy)
    iou = voxel_iou(recon, data.occupancy)
    per_category = {c: round(float(iou[[k == c for k in data.categories]].mean()), 4)
                    for c in CATEGORY_NAMES if c in data.categories}
    return {"n": n, "split": "val", "seed": seed, "iou_mean": round(float(iou.mean()), 4),
            "iou_min": round(float(iou.min()), 4), "iou_at_least_0.9": round(float((iou >= 0.9).float().mean()), 4),
            "iou_at_least_0.95": round(float((iou >= 0.95).float().mean()), 4), "iou_per_category": per_category,
            "occupied_fraction_data": round(float(occupied_fraction(data.occupancy).mean()), 4),
            "occupied_fraction_reconstructed": round(float(occupied_fraction(recon).mean()), 4)}


def ss_vae_card(report: dict, quality: dict) -> str:
    cats = ", ".join(f"{k} {v:.3f}" for k, v in quality["iou_per_category"].items())
    return f"""# trellis_ss_vae — TRELLIS stage 1: the sparse-structure VAE (32³ → 8³ × 8)

§4's structure autoencoder: a ShapeWorld object's solid occupancy at 32³ (axes x, y, z, +y up)
→ a dense 8³ × 8 latent → occupancy logits (TRELLIS: 64³ → 16³ × 8). 3D convolutions with
residual blocks; the 2³ voxel blocks are folded into channels first, so no convolution runs at
32³. Widths {report['widths']}; {report['parameters']:,} parameters, stored as float16. Latent scale
{report['latent_scale']:.4f} (1 / std of the posterior means over {report['scale_assets']} training assets).

## Data
ShapeWorld `train` split, {report['n_assets']} assets (seed {report['data_seed']}), solid occupancy at 32³,
turned by random quarter turns about +y and mirrored at random.

## Training
{report['steps']} steps, batch {report['batch']}, AdamW (lr {report['lr']}, warm-up {report['warmup']}, cosine decay to
{report['min_lr_ratio']}×), gradients clipped at {report['grad_clip']}. Loss: BCE + {report['dice_weight']} × soft Dice
+ {report['kl_weight']} × KL. Loss by 250 steps: {', '.join(map(str, report['loss_every_250']))}.
Wall time {report['wall_time_s'] / 60:.1f} min of training (summed over resumed runs), {report['data_time_s'] / 60:.1f} min
of data, {report['eval_time_s'] / 60:.1f} min of evaluation, on {report['hardware']}.

Reproduce: `python -m gsbook.train trellis_ss_vae` (seed {report['seed']}).

## Measured quality
Round trip (posterior mean, logits > 0) on {quality['n']} held-out assets (`val` split, seed {quality['seed']}):

| mean IoU | min IoU | IoU ≥ 0.9 | IoU ≥ 0.95 | occupied (data) | occupied (round trip) |
|---|---|---|---|---|---|
| {quality['iou_mean']:.4f} | {quality['iou_min']:.4f} | {quality['iou_at_least_0.9']:.1%} | {quality['iou_at_least_0.95']:.1%} | {quality['occupied_fraction_data']:.2%} | {quality['occupied_fraction_reconstructed']:.2%} |

Per category: {cats}.
"""


def run_ss_vae_recipe(recipe: StructureVAERecipe, out: Path | str | None = None, resume: bool = True,
                      device: str | torch.device | None = None, scale_assets: int = 1000) -> StructureVAE:
    """Train, set the latent scale, evaluate, write ``trellis_ss_vae.safetensors``, ``.json`` and the card."""
    t0 = time.perf_counter()
    model, report = train_ss_vae(recipe, resume=resume, device=device)
    report["hardware"] = hardware(device)
    t_eval = time.perf_counter()
    scale_data = structure_data(recipe.n_assets, "train", recipe.data_seed, progress=False)
    scale_assets = min(scale_assets, len(scale_data))
    model.config.latent_scale = measure_latent_scale(model, scale_data.occupancy[:scale_assets])
    report.update(latent_scale=model.config.latent_scale, scale_assets=scale_assets)
    quality = evaluate_ss_vae(model, recipe.eval_assets, recipe.eval_seed)
    report["eval_time_s"] = round(time.perf_counter() - t_eval, 1)
    card = ss_vae_card(report, quality)
    model.save_shipped({**report, "total_time_s": round(time.perf_counter() - t0, 1), "quality": quality}, card,
                       folder=out)
    print(card)
    return model


# ----------------------------------------------------------------------------- ss_flow
@dataclass
class StructureFlowRecipe:
    """The structure flow's training settings; the defaults are the shipped CPU recipe (estimated
    30-45 min on 2 idle cores: about 0.6-0.9 s a step)."""

    steps: int = 1500
    batch: int = 32
    lr: float = 5e-4
    warmup: int = 200
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    caption_dropout: float = 0.1        # TRELLIS' p_uncond
    t_mean: float = 1.0                 # logit-normal times, TRELLIS' (1, 1)
    t_std: float = 1.0
    ema_max_decay: float = 0.999
    width: int = 160
    depth: int = 6
    heads: int = 4
    patch: int = 2
    n_assets: int = 6000
    data_seed: int = 5000
    eval_captions: int = 48
    eval_references: int = 16           # ground-truth assets per category to compare with
    guidance: float = 3.0
    sample_steps: int = 25
    seed: int = 0
    checkpoint_every: int = 250

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "StructureFlowRecipe":
        sizes = {"ci": {"steps": 3, "batch": 2, "n_assets": 8, "eval_captions": 2, "eval_references": 1,
                        "sample_steps": 2, "checkpoint_every": 2},
                 "cpu": {}, "gpu": {"steps": 10000, "batch": 128, "n_assets": 12000}}[profile]
        return cls(**{**sizes, **overrides})

    def key(self, vae_sha: str = "") -> str:
        d = asdict(self)
        for volatile in ("steps", "checkpoint_every", "eval_captions", "eval_references", "guidance", "sample_steps"):
            d.pop(volatile)
        d["vae"] = vae_sha
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class _FlowData:
    latents: Tensor            # [A, 8, r, r, r], flow units
    caption_index: Tensor      # [A] into tokens / mask; the last row is ""
    tokens: Tensor
    mask: Tensor
    captions: list[str]


def _flow_data(vae: StructureVAE, recipe: StructureFlowRecipe, progress: bool) -> _FlowData:
    data = structure_data(recipe.n_assets, "train", recipe.data_seed, progress=progress)
    latents = _batched(lambda x: vae.encode_latents(x).cpu(), data.occupancy)
    captions = sorted(set(data.captions)) + [EMPTY_CAPTION]
    lookup = {c: k for k, c in enumerate(captions)}
    tokens, mask = caption_features(captions)
    return _FlowData(latents, torch.tensor([lookup[c] for c in data.captions]), tokens, mask, captions)


def train_ss_flow(recipe: StructureFlowRecipe, vae: StructureVAE, resume: bool = True, progress: bool = True,
                  device: str | torch.device | None = None) -> tuple[StructureFlow, dict]:
    """Train the structure flow on ``vae``'s latents; return the EMA model (eval mode, CPU) and a report."""
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    device = resolve_device(device)
    vae_sha = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in vae.state_dict().values())
                             + str(vae.config.latent_scale).encode()).hexdigest()[:12]
    folder = cache_root() / "checkpoints" / f"ss_flow-{recipe.key(vae_sha)}"
    torch.manual_seed(recipe.seed)
    t_data = time.perf_counter()
    data = _flow_data(vae.cpu().eval(), recipe, progress)
    t_data = time.perf_counter() - t_data
    config = StructureFlowConfig(latent_resolution=vae.config.latent_resolution,
                                 latent_channels=vae.config.latent_channels, patch=recipe.patch, width=recipe.width,
                                 depth=recipe.depth, heads=recipe.heads)
    model = StructureFlow(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    ema = EMAModel(model.parameters(), decay=recipe.ema_max_decay, use_ema_warmup=True, power=3 / 4, foreach=True)
    start, elapsed, losses = 0, 0.0, []
    latest = folder / "latest.pt"
    state = load_checkpoint(latest, {"model": model, "ema": ema, "opt": opt}, device, progress) if resume else None
    if state is not None:
        start, elapsed, losses = state["step"], float(state["elapsed"]), list(state["losses"])
    model.train()
    t0 = time.perf_counter()
    empty = len(data.captions) - 1
    bar = tqdm(range(start, recipe.steps), desc="trellis_ss_flow", initial=start, total=recipe.steps, disable=not progress)
    for step in bar:
        gen = torch.Generator().manual_seed(recipe.seed * 1_000_003 + step)
        idx = torch.randint(0, len(data.latents), (recipe.batch,), generator=gen)
        rows = data.caption_index[idx].clone()
        rows[torch.rand(recipe.batch, generator=gen) < recipe.caption_dropout] = empty     # for guidance
        loss = flow_loss(model, data.latents[idx].to(device), data.tokens[rows].to(device),
                         data.mask[rows].to(device), generator=gen, mean=recipe.t_mean, std=recipe.t_std)
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(recipe.lr, step, recipe.steps, recipe.warmup, recipe.min_lr_ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        ema.step(model.parameters())
        losses.append(round(loss.item(), 5))
        if step % 25 == 0:
            bar.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.4f}")
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            save_checkpoint(latest, {"step": done, "elapsed": elapsed + time.perf_counter() - t0, "losses": losses,
                                     "model": model, "ema": ema, "opt": opt})
    train_time = elapsed + time.perf_counter() - t0
    final = StructureFlow(model.config)
    final.load_state_dict(model.state_dict())
    ema.copy_to(final.parameters())
    report = {**asdict(recipe), "parameters": sum(p.numel() for p in final.parameters()),
              "captions": len(data.captions) - 1, "wall_time_s": round(train_time, 1), "data_time_s": round(t_data, 1),
              "loss_every_250": [round(sum(losses[i:i + 250]) / len(losses[i:i + 250]), 4)
                                 for i in range(0, len(losses), 250)]}
    return final.cpu().eval(), report


@torch.no_grad()
def evaluate_ss_flow(vae: StructureVAE, flow: StructureFlow, n: int = 48, steps: int = 25, guidance: float = 3.0,
                     seed: int = 0, per_category: int = 16) -> dict:
    """Structures for ``n`` captions of seen (``train``) and of held-out (``unseen``) colour × category
    pairs, scored against :func:`category_references` (every reference also in its four quarter
    turns about +y): the IoU with the nearest reference of the caption's category, the share whose
    nearest reference of any category is of the caption's category, and the occupied fraction
    (the references' for comparison). Also the time of one caption → structure at batch 1."""
    refs, ref_categories = category_references(per_category)
    turned = torch.cat([torch.rot90(refs, k, dims=(1, 3)) for k in range(4)])
    turned_categories = ref_categories * 4
    out = {"references": {"per_category": per_category,
                          "occupied_fraction": round(float(occupied_fraction(refs).mean()), 4)}}
    for name, split in (("seen pairs", "train"), ("held-out pairs", "unseen")):
        captions = split_captions(n, split, seed + 11)
        occ = torch.cat([sample_structure(vae, flow, captions[i:i + 8], steps=steps, guidance=guidance,
                                          generator=torch.Generator().manual_seed(seed + i))
                         for i in range(0, n, 8)])
        wanted = [parse(c).category for c in captions]
        same, nearest_right = [], []
        for g, category in zip(occ, wanted):
            iou = voxel_iou(g.expand_as(turned), turned)
            same.append(float(iou[[c == category for c in turned_categories]].max()))
            nearest_right.append(turned_categories[int(iou.argmax())] == category)
        out[name] = {"n": n, "iou_nearest_same_category": round(sum(same) / n, 4),
                     "nearest_is_caption_category": round(sum(nearest_right) / n, 4),
                     "occupied_fraction": round(float(occupied_fraction(occ).mean()), 4)}
    times = []
    for _ in range(3):
        t = time.perf_counter()
        sample_structure(vae, flow, ["a red mushroom with a white stem"], steps=steps, guidance=guidance,
                         generator=torch.Generator().manual_seed(0))
        times.append(time.perf_counter() - t)
    out["seconds_per_structure"] = round(min(times), 3)
    out["threads"] = torch.get_num_threads()
    return out


def ss_flow_card(report: dict, quality: dict) -> str:
    rows = "\n".join(f"| {k} | {v['iou_nearest_same_category']:.3f} | {v['nearest_is_caption_category']:.1%} | "
                     f"{v['occupied_fraction']:.2%} | {v['n']} |"
                     for k, v in quality.items() if isinstance(v, dict) and "n" in v)
    return f"""# trellis_ss_flow — TRELLIS stage 1: the sparse-structure flow transformer

§4's first flow: caption → the 8³ × 8 latent of `trellis_ss_vae` (decoded to a 32³ occupancy). A DiT:
patches of {report['patch']}³ latent voxels → {(8 // report['patch']) ** 3} tokens of width {report['width']} with fixed 3D sine
positions; {report['depth']} blocks of adaLN-Zero-modulated self-attention (queries and keys RMS-normalised) and MLP,
with cross-attention to the caption's MiniLM tokens; the time (and the pooled caption) modulate every
block. {report['parameters']:,} parameters, stored as float16; an EMA of the weights is shipped.

## Data
ShapeWorld `train` split, {report['n_assets']} assets (seed {report['data_seed']}), {report['captions']} distinct captions;
the latents are `trellis_ss_vae`'s posterior means × its latent scale. The `unseen` colour × category pairs are
never shown.

## Training
Rectified flow (`gsbook.flow.flow_loss`): {report['steps']} steps, batch {report['batch']}, logit-normal times
(mean {report['t_mean']}, std {report['t_std']}), captions dropped to `""` {report['caption_dropout']:.0%} of the time;
AdamW (lr {report['lr']}, warm-up {report['warmup']}, cosine decay to {report['min_lr_ratio']}×), gradients clipped at
{report['grad_clip']}, EMA (max decay {report['ema_max_decay']}). Loss by 250 steps: {', '.join(map(str, report['loss_every_250']))}.
Wall time {report['wall_time_s'] / 60:.1f} min of training (summed over resumed runs), {report['data_time_s'] / 60:.1f} min
of data, {report['eval_time_s'] / 60:.1f} min of evaluation, on {report['hardware']}.

Reproduce: `python -m gsbook.train trellis_ss_flow` (seed {report['seed']}; needs the shipped `trellis_ss_vae`).

## Measured quality
{report['sample_steps']} Euler steps, guidance {report['guidance']}. Each structure compared with
{quality['references']['per_category']} ground-truth assets of every category, each in four quarter turns
(their occupied fraction: {quality['references']['occupied_fraction']:.2%}).

| captions | IoU with nearest of its category | nearest of all is its category | occupied | n |
|---|---|---|---|---|
{rows}

One caption → structure (batch 1, {report['sample_steps']} steps with guidance, decoded): {quality['seconds_per_structure']:.2f} s
on {quality['threads']} thread(s).
"""


def run_ss_flow_recipe(recipe: StructureFlowRecipe, out: Path | str | None = None, resume: bool = True,
                       device: str | torch.device | None = None, vae: StructureVAE | None = None) -> StructureFlow:
    """Train on the shipped ``trellis_ss_vae`` (or ``vae``; from ``out`` when that folder has one), evaluate,
    write ``trellis_ss_flow.safetensors``, ``.json`` and the card."""
    from ..zoo import weight_paths

    t0 = time.perf_counter()
    if vae is None:
        folder = out if out is not None and weight_paths("trellis_ss_vae", out)[0].exists() else None
        vae = StructureVAE.from_shipped(device="cpu", folder=folder)
    model, report = train_ss_flow(recipe, vae, resume=resume, device=device)
    report["hardware"] = hardware(device)
    t_eval = time.perf_counter()
    quality = evaluate_ss_flow(vae, model, recipe.eval_captions, recipe.sample_steps, recipe.guidance, recipe.seed,
                               recipe.eval_references)
    report["eval_time_s"] = round(time.perf_counter() - t_eval, 1)
    card = ss_flow_card(report, quality)
    model.save_shipped({**report, "total_time_s": round(time.perf_counter() - t0, 1), "quality": quality}, card,
                       folder=out)
    print(card)
    return model
