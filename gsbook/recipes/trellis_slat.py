"""TRELLIS stage 2's recipes: ``python -m gsbook.train trellis_slat_vae``, then ``… trellis_slat_flow`` (§4).

The models are :class:`~gsbook.methods.trellis.slat.SLatVAE` and
:class:`~gsbook.methods.trellis.slat.SLatFlow`.

**Data** (:func:`load_slat_data`, cached under the cache root). For every asset of a ShapeWorld
split: its active voxels at 32³ (:func:`~gsbook.methods.trellis.slat.shell_coords`), their
features averaged over 16 views at 64² (:func:`~gsbook.methods.trellis.slat.voxel_features`),
and ``views`` ground-truth renders at ``view_size``² with their cameras (ShapeWorld's cached
random-view dataset, elevation −20°…40°, on white). The feature views and the supervision
views are different cameras.

**slat_vae.** Each step takes ``batch`` objects and ``supervise`` of their cached views,
encodes their voxel features, samples the latents, decodes K Gaussians per voxel, renders them
with the book's rasterizer and fits LGM's loss (image MSE + alpha MSE) plus ``kl_weight · KL``.
AdamW, warm-up and cosine decay, gradient clipping; a checkpoint every ``checkpoint_every``
steps lets an interrupted run resume exactly. Evaluation (:func:`evaluate_slat_vae`): assets
of the ``unseen`` split (colour × category pairs never trained on) encoded (the latent mean) and
decoded, rendered from 8 views at 64² that neither the features nor training used, PSNR against
the ray-cast ground truth; beside it, ShapeWorld's own ground-truth Gaussians on the same
views (for scale).

**slat_flow.** The shipped VAE encodes every training asset (latent means), normalised by
their mean and standard deviation per channel (stored in the model's config, so sampling can
undo it); the flow learns their velocity given the structure and the caption (dropped to
``""`` 10 % of the time, for guidance) with :func:`~gsbook.methods.trellis.slat.slat_flow_loss`
(the rectified-flow loss of :mod:`gsbook.flow`, averaged over real voxels only).
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..cameras import Cameras
from ..config import cache_root, resolve_device
from ..images import psnr
from ..methods.trellis.slat import (SLatFlow, SLatFlowConfig, SLatVAE, SLatVAEConfig, feature_cameras, pad_voxels,
                                    shell_coords, slat_flow_loss, slat_vae_loss, voxel_features)
from ..world import GENERATOR_VERSION, DatasetConfig, ObjectSpec, ShapeWorldDataset, make_asset
from .common import hardware, load_checkpoint, save_checkpoint, warmup_cosine

__all__ = ["SLatData", "load_slat_data", "SLatVAERecipe", "train_slat_vae", "SLatVAEScores", "evaluate_slat_vae",
           "slat_vae_card", "run_slat_vae_recipe", "SLatFlowRecipe", "encode_slat_data", "train_slat_flow",
           "SLatFlowScores", "evaluate_slat_flow", "slat_flow_card", "run_slat_flow_recipe"]


# ----------------------------------------------------------------------------- data
@dataclass
class SLatData:
    """Per asset: ``coords[a] [N_a, 3]`` long, ``feats[a] [N_a, C]`` float32; its cached views
    ``rgb [A, V, S, S, 3]`` and ``alpha [A, V, S, S]`` (uint8, on white), ``viewmats [A, V, 4, 4]``,
    ``Ks [A, V, 3, 3]``; ``records`` (caption, spec, seed)."""

    coords: list[Tensor]
    feats: list[Tensor]
    rgb: Tensor
    alpha: Tensor
    viewmats: Tensor
    Ks: Tensor
    records: list[dict]

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def size(self) -> int:
        return self.rgb.shape[2]

    def cameras(self, a: int, views: Tensor | None = None) -> Cameras:
        views = torch.arange(self.rgb.shape[1]) if views is None else views
        return Cameras(self.viewmats[a, views], self.Ks[a, views], self.size, self.size)

    def batch(self, assets: Tensor, views: Tensor) -> tuple[Tensor, Tensor, Tensor, list[Cameras], Tensor, Tensor]:
        """``feats [B, L, C]``, ``coords [B, L, 3]``, ``mask [B, L]``, B cameras, ``images
        [B, V, S, S, 3]`` and ``alphas [B, V, S, S]`` in [0, 1] for assets ``[B]`` and views ``[B, V]``."""
        a = assets.tolist()
        feats, mask = pad_voxels([self.feats[i] for i in a])
        coords, _ = pad_voxels([self.coords[i] for i in a])
        rows = assets[:, None]
        return (feats, coords, mask, [self.cameras(i, v) for i, v in zip(a, views)],
                self.rgb[rows, views].float() / 255, self.alpha[rows, views].float() / 255)


def load_slat_data(n_assets: int, split: str = "train", seed: int = 4000, views: int = 12, view_size: int = 32,
                   feature_views: int = 16, feature_size: int = 64, judge_channels: int = 0,
                   progress: bool = True) -> SLatData:
    """Build (first call) or load the cached stage-2 data of ``n_assets`` assets of ``split``."""
    from tqdm.auto import tqdm

    config = DatasetConfig(n_assets=n_assets, views=views, resolution=view_size, split=split, seed=seed)
    ds = ShapeWorldDataset(config, progress=progress)
    tag = f"f{feature_views}x{feature_size}-j{judge_channels}"
    path = cache_root() / "trellis" / f"slat-{config.folder_name()}-{tag}.pt"
    if path.exists():
        cached = torch.load(path, weights_only=True)
    else:
        judge = None
        if judge_channels:
            from ..judge import Judge
            judge = Judge.from_shipped(device="cpu")
        cams = feature_cameras(feature_views, feature_size)
        coords, feats = [], []
        for r in tqdm(ds.records, desc=f"SLat features ({split})", disable=not progress):
            asset = make_asset(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"])
            c = shell_coords(asset.occupancy(32))
            coords.append(c.to(torch.int16))
            feats.append(voxel_features(asset, c, cams, judge=judge, judge_channels=judge_channels).half())
        cached = {"coords": torch.cat(coords), "feats": torch.cat(feats),
                  "counts": torch.tensor([len(c) for c in coords]), "generator_version": GENERATOR_VERSION}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(cached, tmp)
        tmp.replace(path)
    counts = cached["counts"].tolist()
    arrays = ds.tensors("rgb", "alpha", "viewmats", "Ks")
    return SLatData([c.long() for c in cached["coords"].split(counts)],
                    [f.float() for f in cached["feats"].split(counts)], arrays["rgb"], arrays["alpha"],
                    arrays["viewmats"].float(), arrays["Ks"].float(), list(ds.records))


# ----------------------------------------------------------------------------- the VAE
@dataclass
class SLatVAERecipe:
    """Training settings of the SLat VAE; the defaults are the CPU recipe (about 1 h on 2 cores:
    ~1.3 s a step on one contended core, plus ~3 min of data and 1 min of evaluation).

    A short check (50 assets, 330 steps, ~6 min on one shared core) measured 23.8 dB on 6
    ``unseen`` assets at 64² (untrained: 19.6 dB; one Gaussian per voxel at its centre in its
    feature colour: 21.4 dB; ShapeWorld's ground-truth Gaussians: 20.7 dB).

    Attributes:
        batch: objects per step. supervise: of each object's ``views`` cached views, how many
            are rendered per step. view_size: their side in pixels.
        kl_weight: weight of the KL term (per voxel and channel).
        model: overrides of :class:`~gsbook.methods.trellis.slat.SLatVAEConfig`.
    """

    steps: int = 3000
    batch: int = 4
    supervise: int = 3
    views: int = 12
    view_size: int = 64             # the size it is judged at: trained at 32², it scored 17.6 dB at 64²
    feature_views: int = 16
    feature_size: int = 64
    judge_channels: int = 0
    lr: float = 1e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    kl_weight: float = 1e-6        # TRELLIS' lambda_kl; at 1e-4 the KL fell to 0.05 nats per channel (latents unused)
    n_assets: int = 500
    data_seed: int = 4000
    seed: int = 0
    checkpoint_every: int = 250
    model: dict = field(default_factory=dict)

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "SLatVAERecipe":
        sizes = {"ci": {"steps": 3, "batch": 2, "supervise": 2, "views": 4, "n_assets": 4, "checkpoint_every": 2},
                 "cpu": {}, "gpu": {"steps": 20000, "batch": 16, "n_assets": 4000}}[profile]
        return cls(**{**sizes, **overrides})

    def key(self) -> str:
        """The checkpoint folder's identity: every setting but the length, and the resolved model
        config (so a changed default never resumes a checkpoint of another shape)."""
        d = asdict(self)
        d.pop("steps"), d.pop("checkpoint_every")
        d["model"] = self.model_config().to_dict()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def model_config(self) -> SLatVAEConfig:
        return SLatVAEConfig(**{"feature_channels": 3 + self.judge_channels, **self.model})

    def data(self, n_assets: int, split: str, seed: int, progress: bool = True) -> SLatData:
        return load_slat_data(n_assets, split, seed, self.views, self.view_size, self.feature_views,
                              self.feature_size, self.judge_channels, progress)


def train_slat_vae(recipe: SLatVAERecipe, resume: bool = True, progress: bool = True,
                   device: str | torch.device | None = None, data: SLatData | None = None,
                   folder: Path | None = None) -> tuple[SLatVAE, dict]:
    """Train the SLat VAE; return it (eval mode, on the CPU) and a report for the card.
    ``data`` (default: built from the recipe) and ``folder`` (checkpoints; default under the
    cache root) are for tests."""
    from tqdm.auto import tqdm

    device = resolve_device(device)
    torch.manual_seed(recipe.seed)
    t_data = time.perf_counter()
    data = data or recipe.data(recipe.n_assets, "train", recipe.data_seed, progress)
    t_data = time.perf_counter() - t_data
    model = SLatVAE(recipe.model_config()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    latest = (folder or cache_root() / "checkpoints" / f"slat_vae-{recipe.key()}") / "latest.pt"
    start, elapsed, history = 0, 0.0, []
    state = load_checkpoint(latest, {"model": model, "opt": opt}, device, progress) if resume else None
    if state is not None:
        start, elapsed, history = state["step"], float(state["elapsed"]), list(state["history"])
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(range(start, recipe.steps), desc="trellis_slat_vae", initial=start, total=recipe.steps, disable=not progress)
    for step in bar:
        gen = torch.Generator().manual_seed(recipe.seed * 1_000_003 + step)
        assets = torch.randint(0, len(data), (recipe.batch,), generator=gen)
        views = torch.stack([torch.randperm(data.rgb.shape[1], generator=gen)[:recipe.supervise]
                             for _ in range(recipe.batch)])
        feats, coords, mask, cams, images, alphas = data.batch(assets, views)
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(recipe.lr, step, recipe.steps, recipe.warmup, recipe.min_lr_ratio)
        opt.zero_grad(set_to_none=True)
        # One object at a time, gradients summed: padding a batch to its largest object would
        # spend most of the attention's L² work on padding (object sizes vary 7×).
        terms = torch.zeros(3)
        for b in range(recipe.batch):
            n = int(mask[b].sum())
            out = slat_vae_loss(model, feats[b:b + 1, :n].to(device), coords[b:b + 1, :n].to(device),
                                mask[b:b + 1, :n].to(device), [cams[b].to(device)], images[b:b + 1].to(device),
                                alphas[b:b + 1].to(device), kl_weight=recipe.kl_weight, generator=gen)
            (out["loss"] / recipe.batch).backward()
            terms += torch.stack([out["mse"].detach(), out["alpha"].detach(), out["kl"].detach()]).cpu() / recipe.batch
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        history.append([round(terms[0].item(), 6), round(terms[1].item(), 6), round(terms[2].item(), 4)])
        if step % 10 == 0:
            recent = history[-50:]
            bar.set_postfix(mse=f"{sum(h[0] for h in recent) / len(recent):.4f}")
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            save_checkpoint(latest, {"step": done, "elapsed": elapsed + time.perf_counter() - t0, "history": history,
                                     "model": model, "opt": opt})
    train_time = elapsed + time.perf_counter() - t0
    counts = [len(c) for c in data.coords]
    every = lambda k: [round(sum(h[k] for h in history[i:i + 100]) / len(history[i:i + 100]), 5)  # noqa: E731
                       for i in range(0, len(history), 100)]
    report = {**asdict(recipe), "model_config": model.config_dict(),
              "parameters": sum(p.numel() for p in model.parameters()),
              "voxels": {"min": min(counts), "median": int(statistics.median(counts)), "max": max(counts)},
              "wall_time_s": round(train_time, 1), "data_time_s": round(t_data, 1),
              "mse_every_100": every(0), "kl_every_100": every(2)}
    return model.cpu().eval(), report


@dataclass
class SLatVAEScores:
    """Mean PSNR (dB) over views of decoded Gaussians, of ShapeWorld's ground-truth Gaussians on the
    same views (for scale), median encode + decode seconds per object, Gaussians per object."""

    psnr: float
    psnr_ceiling: float
    seconds: float
    gaussians: int
    n: int


def evaluate_slat_vae(model: SLatVAE, n_assets: int = 50, split: str = "unseen", seed: int = 2000,
                      recipe: SLatVAERecipe | None = None, ceiling: bool = True, progress: bool = True) -> SLatVAEScores:
    """Encode (latent mean) and decode ``n_assets`` objects of ``split``; PSNR of the Gaussians
    rendered from 8 held-out views at 64² against the ray-cast ground truth."""
    from tqdm.auto import tqdm

    from ..render import render

    recipe = recipe or SLatVAERecipe()
    data = load_slat_data(n_assets, split, seed, 8, 64, recipe.feature_views, recipe.feature_size,
                          recipe.judge_channels, progress)
    model = model.cpu().eval()
    scores, ceilings, seconds, counts = [], [], [], []
    for a in tqdm(range(len(data)), desc=f"evaluating on {split}", disable=not progress):
        feats, coords, mask, cams, images, _ = data.batch(torch.tensor([a]), torch.arange(8)[None])
        with torch.no_grad():
            t = time.perf_counter()
            enc = model.encode(feats, coords, mask, sample=False)
            gaussians = model.decode(enc.z, coords, mask)[0]
            seconds.append(time.perf_counter() - t)
            counts.append(gaussians.n)
            scores.append(psnr(render(gaussians, cams[0]).image, images[0]).mean().item())
            if ceiling:
                r = data.records[a]
                gt = make_asset(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"]).gaussians()
                ceilings.append(psnr(render(gt, cams[0]).image, images[0]).mean().item())
    mean = lambda xs: sum(xs) / len(xs) if xs else math.nan  # noqa: E731
    return SLatVAEScores(mean(scores), mean(ceilings), statistics.median(seconds), int(statistics.median(counts)),
                         len(data))


def slat_vae_card(report: dict, unseen: SLatVAEScores, seen: SLatVAEScores) -> str:
    cfg = report["model_config"]
    v = report["voxels"]
    features = "RGB" + (f" + {report['judge_channels']} channels of the judge's stem" if report["judge_channels"] else "")
    return f"""# trellis_slat_vae — TRELLIS' structured-latent VAE at book scale

§4, stage 2. A transformer over the active voxels of one object (the 32³ surface shell:
{v['min']}–{v['max']} voxels, median {v['median']}, in the training data) encodes per-voxel features
({features}, averaged over {report['feature_views']} ray-cast views at {report['feature_size']}² where each voxel
is visible: the book's stand-in for TRELLIS' averaged DINOv2 features) into {cfg['latent_channels']} latent
channels per voxel; a second transformer decodes {cfg['gaussians_per_voxel']} Gaussians per voxel (offsets within
±{cfg['offset_reach'] / 2:g} voxel, bounded scales, opacity, colour). Width {cfg['width']}, {cfg['encoder_depth']} encoder and
{cfg['decoder_depth']} decoder blocks, full attention within each object; {report['parameters']:,} parameters,
stored as float16.

## Data
ShapeWorld `train` split, {report['n_assets']} assets (seed {report['data_seed']}); {report['views']} random views per
asset at {report['view_size']}² on white (elevation −20°…40°) to supervise, {report['supervise']} of them per step.

## Training
{report['steps']} steps, batch {report['batch']} objects, AdamW (lr {report['lr']}, weight decay {report['weight_decay']},
warm-up {report['warmup']}, cosine decay to {report['min_lr_ratio']}×), gradients clipped at {report['grad_clip']}.
Loss: image MSE + alpha MSE of the rendered Gaussians (LGM's loss) + {report['kl_weight']} × KL.
Image MSE by 100 steps: {', '.join(map(str, report['mse_every_100']))}.
Wall time {report['wall_time_s'] / 60:.1f} min of training (summed over resumed runs), {report['data_time_s'] / 60:.1f} min
of data, on {report['hardware']}.

Reproduce: `{report['command']}` (seed {report['seed']}).

## Measured quality
Latent mean decoded, rendered from 8 views at 64² that neither the features nor training used,
PSNR against ShapeWorld's ray-cast ground truth. For scale, ShapeWorld's own ground-truth
Gaussians (4,096 per object, sampled on the surface, not fitted to the views) on the same views.

| split | PSNR (dB) | ShapeWorld's Gaussians (dB) | Gaussians per object | encode + decode (s, median) | objects |
|---|---|---|---|---|---|
| unseen | {unseen.psnr:.2f} | {unseen.psnr_ceiling:.2f} | {unseen.gaussians:,} | {unseen.seconds:.3f} | {unseen.n} |
| train | {seen.psnr:.2f} | {seen.psnr_ceiling:.2f} | {seen.gaussians:,} | {seen.seconds:.3f} | {seen.n} |
"""


def run_slat_vae_recipe(recipe: SLatVAERecipe, out: Path | str | None = None, resume: bool = True,
                        device: str | torch.device | None = None, eval_assets: int = 50,
                        command: str = "python -m gsbook.train trellis_slat_vae") -> SLatVAE:
    """Train, evaluate, write ``trellis_slat_vae.safetensors``, ``.json`` and the card."""
    t0 = time.perf_counter()
    model, report = train_slat_vae(recipe, resume=resume, device=device)
    report["hardware"] = hardware(device)
    report["command"] = command
    t_eval = time.perf_counter()
    unseen = evaluate_slat_vae(model, eval_assets, "unseen", recipe=recipe)
    seen = evaluate_slat_vae(model, eval_assets, "train", seed=recipe.data_seed, recipe=recipe)
    report["eval_time_s"] = round(time.perf_counter() - t_eval, 1)
    card = slat_vae_card(report, unseen, seen)
    model.save_shipped({**report, "total_time_s": round(time.perf_counter() - t0, 1),
                        "quality": {"unseen": asdict(unseen), "train": asdict(seen)}}, card, folder=out)
    print(card)
    return model


# ----------------------------------------------------------------------------- the flow
@dataclass
class SLatFlowRecipe:
    """Training settings of the SLat flow (needs the shipped ``trellis_slat_vae``)."""

    steps: int = 8000
    batch: int = 8
    lr: float = 5e-4
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    caption_dropout: float = 0.1
    n_assets: int = 1000
    data_seed: int = 4000
    seed: int = 0
    checkpoint_every: int = 250
    model: dict = field(default_factory=dict)

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "SLatFlowRecipe":
        sizes = {"ci": {"steps": 3, "batch": 2, "n_assets": 4, "checkpoint_every": 2},
                 "cpu": {}, "gpu": {"steps": 20000, "batch": 32, "n_assets": 4000}}[profile]
        return cls(**{**sizes, **overrides})

    def key(self) -> str:
        d = asdict(self)
        d.pop("steps"), d.pop("checkpoint_every")
        d["model"] = SLatFlowConfig(**self.model).to_dict()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def encode_slat_data(vae: SLatVAE, data: SLatData) -> tuple[list[Tensor], Tensor, Tensor]:
    """Latent means ``[N_a, 8]`` of every asset, and their per-channel ``mean [8]`` and ``std [8]``."""
    latents = []
    with torch.no_grad():
        for a in range(len(data)):
            feats, coords, mask, *_ = data.batch(torch.tensor([a]), torch.zeros(1, 1, dtype=torch.long))
            latents.append(vae.encode(feats, coords, mask, sample=False).mean[0])
    flat = torch.cat(latents)
    return latents, flat.mean(0), flat.std(0).clamp_min(1e-4)


def train_slat_flow(recipe: SLatFlowRecipe, vae: SLatVAE | None = None, resume: bool = True, progress: bool = True,
                    device: str | torch.device | None = None, folder: Path | None = None) -> tuple[SLatFlow, dict]:
    """Train the SLat flow on the VAE's normalised latents (default: the shipped VAE's); return it
    (eval, CPU) and a report. ``folder``: checkpoints (default under the cache root)."""
    from tqdm.auto import tqdm

    from ..diffusion import EMPTY_CAPTION, caption_features

    device = resolve_device(device)
    torch.manual_seed(recipe.seed)
    vae = (vae or SLatVAE.from_shipped(device="cpu")).cpu().eval()
    t_data = time.perf_counter()
    # The VAE recipe's data (the same cache): only the voxels and their features are used here.
    data = SLatVAERecipe(judge_channels=vae.config.feature_channels - 3).data(recipe.n_assets, "train",
                                                                              recipe.data_seed, progress)
    latents, mean, std = encode_slat_data(vae, data)
    latents = [(z - mean) / std for z in latents]
    names = [r["caption"] for r in data.records]
    captions = sorted(set(names)) + [EMPTY_CAPTION]
    lookup = {c: k for k, c in enumerate(captions)}
    caption_index = torch.tensor([lookup[c] for c in names])
    tokens, token_mask = caption_features(captions)
    t_data = time.perf_counter() - t_data
    config = SLatFlowConfig(**{"latent_channels": vae.config.latent_channels, **recipe.model})
    model = SLatFlow(config).to(device)
    model.latent_mean.copy_(mean)
    model.latent_std.copy_(std)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    # The latents depend on the VAE: its weights enter the checkpoint folder's name.
    vae_key = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in vae.state_dict().values()))
    folder = folder or cache_root() / "checkpoints" / f"slat_flow-{recipe.key()}-{vae_key.hexdigest()[:8]}"
    latest = folder / "latest.pt"
    start, elapsed, losses = 0, 0.0, []
    state = load_checkpoint(latest, {"model": model, "opt": opt}, device, progress) if resume else None
    if state is not None:
        start, elapsed, losses = state["step"], float(state["elapsed"]), list(state["losses"])
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(range(start, recipe.steps), desc="trellis_slat_flow", initial=start, total=recipe.steps, disable=not progress)
    for step in bar:
        gen = torch.Generator().manual_seed(recipe.seed * 1_000_003 + step)
        assets = torch.randint(0, len(data), (recipe.batch,), generator=gen).tolist()
        x0, mask = pad_voxels([latents[a] for a in assets])
        coords, _ = pad_voxels([data.coords[a] for a in assets])
        rows = caption_index[assets].clone()
        rows[torch.rand(recipe.batch, generator=gen) < recipe.caption_dropout] = len(captions) - 1
        loss = slat_flow_loss(model, x0.to(device), coords.to(device), mask.to(device), tokens[rows].to(device),
                              token_mask[rows].to(device), generator=gen)
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(recipe.lr, step, recipe.steps, recipe.warmup, recipe.min_lr_ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        opt.step()
        losses.append(round(loss.item(), 5))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            save_checkpoint(latest, {"step": done, "elapsed": elapsed + time.perf_counter() - t0, "losses": losses,
                                     "model": model, "opt": opt})
    report = {**asdict(recipe), "model_config": model.config_dict(),
              "parameters": sum(p.numel() for p in model.parameters()), "captions": len(captions) - 1,
              "wall_time_s": round(elapsed + time.perf_counter() - t0, 1), "data_time_s": round(t_data, 1),
              "loss_every_100": [round(sum(losses[i:i + 100]) / len(losses[i:i + 100]), 4)
                                 for i in range(0, len(losses), 100)]}
    return model.cpu().eval(), report


@dataclass
class SLatFlowScores:
    """Structure of ``n`` ground-truth assets + their caption → SLat (25 Euler steps, CFG) → VAE
    decoder → 8 views at 64²: the judge's reading (category, colour, part colour) and the PSNR
    against the asset's own renders (the caption does not fix shades or the part's layout, so
    this is a loose check), and the median seconds of sampling and decoding."""

    judged: dict
    psnr: float
    seconds: float
    n: int


def evaluate_slat_flow(flow: SLatFlow, vae: SLatVAE, n_assets: int = 20, split: str = "unseen", seed: int = 2000,
                       steps: int = 25, guidance: float = 3.0, progress: bool = True) -> SLatFlowScores:
    """Generate the appearance of ``n_assets`` objects of ``split`` on their true structure."""
    from tqdm.auto import tqdm

    from ..judge import Judge, accuracy
    from ..methods.trellis.slat import sample_slat
    from ..render import render

    judge = Judge.from_shipped(device="cpu")
    data = load_slat_data(n_assets, split, seed, 8, 64, judge_channels=vae.config.feature_channels - 3,
                          progress=progress)
    flow, vae = flow.cpu().eval(), vae.cpu().eval()
    images, scores, seconds = [], [], []
    for a in tqdm(range(len(data)), desc=f"SLat flow on {split}", disable=not progress):
        coords = data.coords[a]
        with torch.no_grad():
            t = time.perf_counter()
            z = sample_slat(flow, [coords], [data.records[a]["caption"]], steps, guidance,
                            torch.Generator().manual_seed(seed + a))[0]
            mask = torch.ones(1, len(coords), dtype=torch.bool)
            gaussians = vae.decode(z[None], coords[None], mask)[0]
            seconds.append(time.perf_counter() - t)
            image = render(gaussians, data.cameras(a)).image
        images.append(image)
        scores.append(psnr(image, data.rgb[a].float() / 255).mean().item())
    captions = [r["caption"] for r in data.records for _ in range(8)]
    judged = accuracy(judge, torch.cat(images).permute(0, 3, 1, 2), captions)
    return SLatFlowScores(asdict(judged), sum(scores) / len(scores), statistics.median(seconds), len(data))


def slat_flow_card(report: dict, scores: SLatFlowScores | None = None) -> str:
    cfg = report["model_config"]
    return f"""# trellis_slat_flow — TRELLIS' structured-latent flow at book scale

§4, stage 2's generator: the rectified-flow velocity of the SLat (the normalised latent means of
`trellis_slat_vae`) on a given structure, from a caption. Per-voxel input blocks, a ×2
coarsening (each 2³ block of active voxels pooled to one token), {cfg['depth']} transformer blocks of
width {cfg['width']} (adaLN-Zero on the time and pooled caption, cross-attention to MiniLM tokens, full
attention within the object), ×2 upsampling with a skip connection; {report['parameters']:,} parameters.

## Data and training
ShapeWorld `train` split, {report['n_assets']} assets (seed {report['data_seed']}), {report['captions']} captions, dropped to
`""` {report['caption_dropout']:.0%} of the time. {report['steps']} steps, batch {report['batch']}, AdamW (lr {report['lr']}, warm-up
{report['warmup']}, cosine decay to {report['min_lr_ratio']}×), logit-normal times (mean 1, std 1). Flow loss by 100
steps: {', '.join(map(str, report['loss_every_100']))}. Wall time {report['wall_time_s'] / 60:.1f} min of training,
{report['data_time_s'] / 60:.1f} min of data, on {report['hardware']}.

Reproduce: `{report['command']}` (seed {report['seed']}; needs the shipped `trellis_slat_vae`).
""" + ("" if scores is None else f"""
## Measured quality
{scores.n} `unseen` assets (colour × category pairs never trained on): their true structure and
caption → SLat (25 Euler steps, guidance 3) → the VAE's Gaussian decoder → 8 views at 64².

| judge category | judge colour | judge part colour | PSNR vs the asset's renders | seconds per object (median) |
|---|---|---|---|---|
| {scores.judged['category']:.1%} | {scores.judged['colour']:.1%} | {scores.judged['part_colour']:.1%} | {scores.psnr:.2f} dB | {scores.seconds:.2f} |
""")


def run_slat_flow_recipe(recipe: SLatFlowRecipe, out: Path | str | None = None, resume: bool = True,
                         device: str | torch.device | None = None, eval_assets: int = 20,
                         command: str = "python -m gsbook.train trellis_slat_flow") -> SLatFlow:
    """Train and write ``trellis_slat_flow.safetensors``, ``.json`` and the card."""
    vae = SLatVAE.from_shipped(device="cpu", folder=out)
    model, report = train_slat_flow(recipe, vae, resume=resume, device=device)
    report["hardware"] = hardware(device)
    report["command"] = command
    scores = evaluate_slat_flow(model, vae, eval_assets)
    card = slat_flow_card(report, scores)
    model.save_shipped({**report, "quality": asdict(scores)}, card, folder=out)
    print(card)
    return model

