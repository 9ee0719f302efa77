"""§3's numbers: LGM and GRM reconstructing, and the multi-view prior in front of them.

    python benchmarks/feedforward.py              # everything (about 15 min on 2 CPU cores)
    python benchmarks/feedforward.py --only speed # one part: reconstruction, text, image, prior, speed
    python benchmarks/feedforward.py --tuning     # TUNING_PROMPTS instead (for choosing settings)

Parts (each writes its entry of ``chapters/data/feedforward.json``; a picture beside it):

* **sampler** — how the prior is sampled, chosen here on TUNING_PROMPTS (4 draws each, 50 steps,
  guidance 3): DDIM against DDPM, every view judged on its own, from the caption and (the three
  drawn views) from the ground-truth front view alone. DDIM's deterministic path keeps
  the error of its first, almost pure-noise step, and some starting noises end as a grainy blob
  on a tinted background; the front end uses the better of the two;
* **framing** — how large the prior draws objects: the object's half-extent (98th percentile of
  its pixels' Chebyshev distance from the image centre, as a fraction of the image side) in the
  prior's keyed views and in ShapeWorld's views of the same captions;
* **reconstruction** — ``unseen``-split assets (colour × category pairs never trained on), four
  ground-truth views in, 8 other views rendered at 64²: mean PSNR against the ray-cast ground
  truth and the judge's reading, for LGM and GRM, with ShapeWorld's own ground-truth Gaussians
  on the same views for scale (:func:`gsbook.recipes.reconstructor.evaluate_reconstructor`);
* **text** — text → the multi-view prior's 4 views → LGM (and GRM), on PROMPTS (fixed before any
  tuning, never tuned on), judged from the 8 turntable views every ``gsbook generate`` result is
  judged from (:func:`gsbook.generate.score`);
* **image** — image → 3D: the ground-truth front view of ``unseen`` assets → the 2D prior reads
  a caption from it (:func:`gsbook.diffusion.classify.read_caption`) → the prior draws the other
  three from the front view and that caption, zoomed to the front's scale → LGM, judged the same
  way; how often the caption was read right; and, for comparison, the same with no caption (the
  image alone) and without the zoom;
* **reading** — how the number of noise draws was chosen for image → 3D's caption reading
  (:attr:`gsbook.methods.feedforward.FeedForwardConfig.caption_trials`): 40 *other* ``unseen``
  fronts (seed 4000, not the image part's seed 2000) read with 2 and with 8 trials; category,
  colour, part colour and whole-caption accuracy, seconds per front;
* **prior** — the prior's views judged one by one, and how consistent the four are: LGM's PSNR
  when re-rendering the views it was given, background keyed out; the references are ground-truth
  views at 64² and through the prior's 32², and an inconsistent set (each view of another object
  with the same caption) through 32²;
* **views** — quality against the number of real input views (1, 2, 4, 6): ``unseen`` assets,
  the views that are not real drawn by the prior from the front view
  (:func:`gsbook.methods.feedforward.reconstruct_from_views`); PSNR on the 8 random views at 64²,
  split into views facing the front half and the back half of the object, and the judge;
* **recipes** — seconds per training step of each stage of ``python -m gsbook.train lgm`` / ``grm``
  (10 timed steps after 2 warm-up steps, on the recipe's own data; stage one from a fresh network,
  whose Gaussians are larger than a trained one's, so that stage errs high; stage two from the shipped
  weights, as it starts from trained ones), and the recipe's projected
  training time on this machine when nothing else runs: the cards' wall times include whatever
  shared the machine during the shipped run;
* **speed** — seconds for 4 views → Gaussians (LGM, GRM; batch 1, median of 20) and for
  text → Gaussians (median of 5), on this machine. Run it with nothing else on the CPU.
"""

from __future__ import annotations

# Fixed before tuning; never tuned on. Ten categories, seen colour × category pairs.
PROMPTS = [
    "a blue lamp with a grey base",
    "an orange ball",
    "a red box",
    "a green can",
    "a yellow cone",
    "a white ring",
    "a purple capsule",
    "a brown chair with black legs",
    "a red rocket with white fins",
    "a pink mushroom with a white stem",
]

# What settings (sampler steps, guidance) were chosen on: other categories and colours.
TUNING_PROMPTS = [
    "a black ball",
    "a grey box",
    "a blue snowman with a red hat",
    "a green house with a brown roof",
    "a yellow pyramid",
]

PARTS = ("sampler", "framing", "reconstruction", "text", "image", "reading", "prior", "views", "speed", "recipes")
VIEW_COUNTS = (1, 2, 4, 6)


def main() -> None:
    import argparse
    import datetime as dt
    import json
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from gsbook.config import profile
    from gsbook.recipes import hardware

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=PARTS, action="append", help="run only these parts (repeatable)")
    ap.add_argument("--tuning", action="store_true", help="the text part on TUNING_PROMPTS; nothing is written")
    ap.add_argument("--assets", type=int, default=100, help="unseen assets for the reconstruction part")
    ap.add_argument("--out", type=Path, default=root / "chapters" / "data")
    args = ap.parse_args()
    parts = args.only or list(PARTS)
    path = args.out / "feedforward.json"
    header = {"what": "§3: LGM, GRM and the multi-view prior (benchmarks/feedforward.py)",
              "profile": profile(), "hardware": hardware()}
    measured = {}                                  # this run's parts; the file keeps the others
    models = load_models()
    for part in parts:
        start = time.perf_counter()
        result = globals()[f"measure_{part}"](models, args)
        result.update(date=dt.date.today().isoformat(), minutes=round((time.perf_counter() - start) / 60, 1),
                      command="python benchmarks/feedforward.py --only " + part)
        print(json.dumps({k: v for k, v in result.items() if k not in ("rows", "pictures")}, indent=1), flush=True)
        if args.tuning:
            continue
        pictures = result.pop("pictures", None)
        measured[part] = result
        # Re-read before writing: another run may have written other parts meanwhile.
        record = {**(json.loads(path.read_text()) if path.exists() else {}), **header, **measured}
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
        if pictures is not None:
            from gsbook.images import save_grid
            save_grid(pictures, args.out / f"feedforward_{part}.png", nrow=16 if part == "sampler" else 8,
                      scale=2 if part == "sampler" else 1)
    print(f"wrote {path}")


def load_models() -> dict:
    from gsbook.diffusion.multiview import MultiViewPrior
    from gsbook.judge import Judge
    from gsbook.methods.grm import GRM
    from gsbook.methods.lgm import LGM
    from gsbook.zoo import model_names

    shipped = model_names()
    return {"lgm": LGM.from_shipped(device="cpu"),
            "grm": GRM.from_shipped(device="cpu") if "grm" in shipped else None,
            "prior": MultiViewPrior.from_shipped(device="cpu") if "prior_mv" in shipped else None,
            "judge": Judge.from_shipped(device="cpu")}


def judged_turntable(judge, gaussians, prompt: str) -> tuple[dict, object]:
    """The 8 turntable views every ``gsbook generate`` result is judged from, and the scores."""
    from gsbook.generate import Generated, score, turntable_views

    views = turntable_views(Generated(gaussians, {}, {}), "cpu")["gaussians"]
    return score(judge, views, prompt), views


def measure_sampler(models: dict, args) -> dict:
    import torch

    from gsbook.diffusion.multiview import sample_views
    from gsbook.recipes.prior_mv import _judge_views

    captions = [p for p in TUNING_PROMPTS for _ in range(4)]
    out, pictures = {"prompts": TUNING_PROMPTS, "draws": 4, "steps": 50, "guidance": 3.0}, []
    for sampler in ("ddim", "ddpm"):
        views = sample_views(models["prior"], captions, steps=50, guidance=3.0, sampler=sampler,
                             generator=torch.Generator().manual_seed(0))
        out[sampler] = vars(_judge_views(models["judge"], views, captions))
        pictures.append(views.flatten(0, 1))
    # From an image alone (caption ""): front views of the tuning prompts' objects, the three
    # drawn views judged against the object's caption.
    from gsbook.methods.feedforward import ground_truth_views, upsample_views

    fronts = torch.stack([upsample_views(ground_truth_views(c, seed=i), 32)[0] for i, c in enumerate(captions)])
    for sampler in ("ddim", "ddpm"):
        views = sample_views(models["prior"], [""] * len(captions), images=fronts, steps=50, guidance=3.0,
                             sampler=sampler, generator=torch.Generator().manual_seed(0))
        out[f"image_{sampler}"] = vars(_judge_views(models["judge"], views[:, 1:], captions))
    out["pictures"] = torch.cat(pictures).permute(0, 3, 1, 2)
    return out


def object_extent(views, threshold: float = 0.2, quantile: float = 0.98) -> float:
    """Half-extent of the object in ``views [V, S, S, 3]`` on white, as a fraction of the side S:
    the ``quantile`` of the Chebyshev distance from the image centre over pixels whose darkest
    channel is more than ``threshold`` below white (a quantile, so stray specks do not count)."""
    import torch

    S = views.shape[-2]
    offset = (torch.arange(S, dtype=torch.float32) - (S - 1) / 2).abs()
    chebyshev = torch.maximum(offset.view(-1, 1), offset.view(1, -1)).expand(views.shape[:-1])
    distances = chebyshev[(1 - views).amax(-1) > threshold]
    return 0.0 if distances.numel() == 0 else (torch.quantile(distances, quantile).item() + 0.5) / S


def largest_box(views, threshold: float = 0.1) -> float:
    """The largest side of the object's bounding box over ``views [V, S, S, 3]`` on white, as a
    fraction of S (what LGM's ``recenter`` sets to ``1 − 2 · border_ratio``)."""
    mask = (1 - views).amax(-1) > threshold
    sides = []
    for rows, cols in zip(mask.any(-1), mask.any(-2)):
        if rows.any():
            r, c = rows.nonzero(), cols.nonzero()
            sides.append(max(int(r[-1] - r[0]), int(c[-1] - c[0])) + 1)
    return max(sides, default=0) / views.shape[-2]


def measure_framing(models: dict, args) -> dict:
    import statistics

    import torch

    from gsbook.diffusion.multiview import sample_views
    from gsbook.methods.feedforward import ground_truth_views, key_background
    from gsbook.world import split_captions

    captions = split_captions(20, "train", 11)
    drawn = key_background(sample_views(models["prior"], captions, steps=50, guidance=3.0,
                                        generator=torch.Generator().manual_seed(0)))
    prior = [object_extent(v) for v in drawn]
    truth = [object_extent(ground_truth_views(c, seed=i, size=32)) for i, c in enumerate(captions)]
    # ShapeWorld's framing as LGM's border ratio: the largest bounding box of each object's four
    # views at 64², median over 200 train assets (SHAPEWORLD_BORDER in gsbook.methods.feedforward).
    boxes = [largest_box(ground_truth_views(c, seed=i, size=64)) for i, c in enumerate(split_captions(200, "train", 11))]
    return {"captions": captions, "prior_extent": statistics.median(prior), "truth_extent": statistics.median(truth),
            "prior_extents": [round(e, 3) for e in prior], "truth_extents": [round(e, 3) for e in truth],
            "truth_box": statistics.median(boxes), "truth_border": (1 - statistics.median(boxes)) / 2,
            "truth_box_deciles": [round(q, 3) for q in statistics.quantiles(boxes, n=10)],
            "prior_box": statistics.median(largest_box(v) for v in drawn)}


def measure_reconstruction(models: dict, args) -> dict:
    from dataclasses import asdict

    from gsbook.recipes.reconstructor import evaluate_reconstructor, load_reconstruction_data

    data = load_reconstruction_data(args.assets, "unseen", 2000)
    out = {}
    for name in ("lgm", "grm"):
        if models[name] is not None:
            out[name] = asdict(evaluate_reconstructor(models[name], judge=models["judge"], data=data,
                                                      ceiling=name == "lgm"))
            out[name]["parameters"] = sum(p.numel() for p in models[name].parameters())
    out["ceiling_psnr"] = out["lgm"]["psnr_ceiling"]
    return out


def _text_rows(models: dict, prompts: list[str], image_of=None, **overrides) -> dict:
    """Each prompt through the pipeline once (the prior's draw and LGM), GRM on the same four
    views; both judged over the 8 turntable views. ``overrides``: FeedForwardConfig fields."""
    import dataclasses
    import time

    import torch

    from gsbook.methods.feedforward import FeedForwardConfig, feedforward_text_to_3d, reconstruct

    config = FeedForwardConfig.for_profile("cpu", **overrides)
    rows, pictures = [], []
    names = [name for name in ("lgm", "grm") if models[name] is not None]
    for i, prompt in enumerate(prompts):
        image = image_of(i) if image_of else None
        result = feedforward_text_to_3d(models[names[0]], models["prior"], "" if image is not None else prompt,
                                        config, image=image)
        for name in names:
            if name != names[0]:                       # the same four views, read by the other network
                t0 = time.perf_counter()
                gaussians = reconstruct(models[name], result.views)
                result = dataclasses.replace(result, gaussians=gaussians,
                                             seconds={**result.seconds, "reconstruct": time.perf_counter() - t0})
            judged, views = judged_turntable(models["judge"], result.gaussians, prompt)
            rows.append({"prompt": prompt, "model": name, "scores": judged["scores"], "drawn_from": result.caption,
                         "seconds": {k: round(v, 2) for k, v in result.seconds.items()}})
            pictures += list(views)
            s = judged["scores"]
            print(f"{name} {prompt:36s} category {s['category']:.0%} colour {s['colour']:.0%} {rows[-1]['seconds']}",
                  flush=True)
    mean = {name: {f: sum(r["scores"][f] for r in rows if r["model"] == name) / max(1, len(prompts))
                   for f in ("category", "colour", "part_colour")} for name in names}
    return {"rows": rows, "mean": mean, "config": vars(config),
            "pictures": torch.stack(pictures).permute(0, 3, 1, 2) if pictures else None}


def measure_text(models: dict, args) -> dict:
    """Text → 3D on PROMPTS (or TUNING_PROMPTS), the pipeline as shipped; and, for the chapter,
    the same draws recentred as LGM's pipeline does (``recenter=True``)."""
    prompts = TUNING_PROMPTS if args.tuning else PROMPTS
    recentred = _text_rows(models, prompts, recenter=True)
    return {"prompts": prompts, **_text_rows(models, prompts), "recentred": {"mean": recentred["mean"],
                                                                              "rows": recentred["rows"]}}


def measure_image(models: dict, args) -> dict:
    from gsbook.recipes.reconstructor import _down, load_reconstruction_data

    from gsbook.world.captions import parse

    data = load_reconstruction_data(20, "unseen", 2000)
    captions = [r["caption"] for r in data.records]
    fronts = lambda i: _down(data.inputs[i, 0].float() / 255, 32)  # noqa: E731  the prior's 32² input
    shipped = _text_rows(models, captions, image_of=fronts)
    read = [row["drawn_from"] for row in shipped["rows"] if row["model"] == "lgm"]
    truth, got = [parse(c) for c in captions], [parse(c) for c in read]
    reading = {f: sum(getattr(a, f) == getattr(b, f) for a, b in zip(truth, got)) / len(captions)
               for f in ("category", "colour", "part_colour")}
    reading["exact"] = sum(a == b for a, b in zip(captions, read)) / len(captions)
    alone = _text_rows(models, captions, image_of=fronts, caption_trials=0)     # the image alone, caption ""
    unzoomed = _text_rows(models, captions, image_of=fronts, match_front=False)  # drawn views at the prior's scale
    return {"captions": captions, "read": read, "reading": reading, **shipped,
            "alone": {"mean": alone["mean"], "rows": alone["rows"]},
            "unzoomed": {"mean": unzoomed["mean"], "rows": unzoomed["rows"]}}


def measure_reading(models: dict, args) -> dict:
    import statistics
    import time

    from gsbook.diffusion import TextToImagePrior, read_caption
    from gsbook.recipes.reconstructor import _down
    from gsbook.world import DatasetConfig, ShapeWorldDataset

    ds = ShapeWorldDataset(DatasetConfig(n_assets=40, views=4, view_mode="four", split="unseen", seed=4000,
                                         resolution=64), progress=False)
    fronts = _down(ds.tensors("rgb")["rgb"][:, 0].float() / 255, 32)
    reader = TextToImagePrior.from_shipped(device="cpu")
    out = {"n": len(fronts), "split": "unseen", "seed": 4000}
    for trials in (2, 8):
        seconds, readings = [], []
        for front in fronts:
            t = time.perf_counter()
            readings.append(read_caption(reader, front, trials=trials))
            seconds.append(time.perf_counter() - t)
        right = {f: sum(getattr(r.spec, f) == rec[f] for r, rec in zip(readings, ds.records)) / len(fronts)
                 for f in ("category", "colour", "part_colour")}
        out[str(trials)] = {**right, "exact": sum(r.caption == rec["caption"] for r, rec in zip(readings, ds.records))
                            / len(fronts), "seconds_per_front": statistics.median(seconds),
                            "evaluations": statistics.median(r.evaluations for r in readings)}
        print(f"{trials} trials: {out[str(trials)]}", flush=True)
    return out


def measure_prior(models: dict, args) -> dict:
    import torch

    from gsbook.diffusion.multiview import sample_views
    from gsbook.images import psnr
    from gsbook.methods.feedforward import ground_truth_views, key_background, reconstruct, upsample_views
    from gsbook.recipes.prior_mv import _judge_views
    from gsbook.render import render
    from gsbook.cameras import four_views
    from gsbook.world import split_captions

    prior, lgm, judge = models["prior"], models["lgm"], models["judge"]
    out = {}
    cams = four_views(0.0, width=64, height=64, device="cpu")

    def self_psnr(views):
        views = upsample_views(views, 64)
        with torch.no_grad():
            return psnr(render(reconstruct(lgm, views), cams).image, views).mean().item()

    for name, split in (("seen", "train"), ("held_out", "unseen")):
        captions = split_captions(50, split, 11)
        views = sample_views(prior, captions, steps=50, generator=torch.Generator().manual_seed(0))
        out[name] = vars(_judge_views(judge, views, captions))
        # what LGM reads: the views with their background keyed out (and, for reference, as drawn)
        out[name]["lgm_self_psnr"] = sum(self_psnr(key_background(v)) for v in views) / len(views)
        out[name]["lgm_self_psnr_as_drawn"] = sum(self_psnr(v) for v in views) / len(views)
    gt = [ground_truth_views(c, seed=i) for i, c in enumerate(split_captions(50, "train", 11))]
    out["ground_truth_lgm_self_psnr"] = sum(self_psnr(v) for v in gt) / len(gt)
    # Two references at the prior's resolution (its 32² views are smoother than 64² renders, and
    # smooth views are easier to re-render): the same true views through 32², consistent; and an
    # inconsistent set, each of the four views from a different object with the same caption.
    from gsbook.recipes.reconstructor import _down

    out["ground_truth_32_lgm_self_psnr"] = sum(self_psnr(_down(v, 32)) for v in gt) / len(gt)
    mixed = [torch.stack([ground_truth_views(c, seed=100 * i + k)[k] for k in range(4)])
             for i, c in enumerate(split_captions(50, "train", 11))]
    out["mixed_objects_32_lgm_self_psnr"] = sum(self_psnr(_down(v, 32)) for v in mixed) / len(mixed)
    return out


def camera_azimuths(viewmats) -> list[float]:
    """Azimuth in degrees (0 = the front view's camera, in (−180, 180]) of cameras ``[C, 4, 4]``."""
    import math

    import torch

    centres = -torch.einsum("cji,cj->ci", viewmats[:, :3, :3], viewmats[:, :3, 3])
    return [math.degrees(math.atan2(x, z)) for x, _, z in centres.tolist()]


def measure_views(models: dict, args) -> dict:
    import torch

    from gsbook.images import psnr
    from gsbook.judge import accuracy
    from gsbook.methods.feedforward import FeedForwardConfig, ground_truth_views, reconstruct_from_views
    from gsbook.recipes.reconstructor import load_reconstruction_data
    from gsbook.render import render
    from gsbook.world.captions import ObjectSpec

    n_assets = min(args.assets, 20)
    data = load_reconstruction_data(n_assets, "unseen", 2000)
    config = FeedForwardConfig.for_profile("cpu")
    out = {"n_assets": n_assets, "counts": list(VIEW_COUNTS), "config": vars(config)}
    for name in ("lgm", "grm"):
        model = models[name]
        if model is None:
            continue
        rows = {n: {"psnr": [], "front": [], "back": [], "renders": []} for n in VIEW_COUNTS}
        for i, r in enumerate(data.records):
            real = {0.0: data.inputs[i].float() / 255,
                    45.0: ground_truth_views(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"],
                                             azimuth_offset_deg=45.0)}
            cams, target = data.other_cameras(i), data.others[i].float() / 255
            back = torch.tensor([abs(a) > 90 for a in camera_azimuths(cams.viewmats)])
            drawn = {}
            for n in VIEW_COUNTS:
                g = reconstruct_from_views(model, models["prior"], real, n, config=config, drawn=drawn)
                with torch.no_grad():
                    image = render(g, cams).image
                p = psnr(image, target)
                rows[n]["psnr"].append(p.mean().item())
                rows[n]["front"] += p[~back].tolist()
                rows[n]["back"] += p[back].tolist()
                rows[n]["renders"].append(image)
            print(f"{name} {i + 1}/{n_assets} " + " ".join(f"{n}: {rows[n]['psnr'][-1]:.1f}" for n in VIEW_COUNTS),
                  flush=True)
        captions = [r["caption"] for r in data.records for _ in range(8)]
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        out[name] = {}
        for n in VIEW_COUNTS:
            judged = accuracy(models["judge"], torch.cat(rows[n]["renders"]).permute(0, 3, 1, 2), captions)
            out[name][str(n)] = {"psnr": mean(rows[n]["psnr"]), "psnr_front_half": mean(rows[n]["front"]),
                                 "psnr_back_half": mean(rows[n]["back"]), "category": judged.category,
                                 "colour": judged.colour}
    return out


def measure_recipes(models: dict, args) -> dict:
    import copy
    import dataclasses
    import tempfile
    import time
    from pathlib import Path

    import torch

    from gsbook.recipes.reconstructor import (ReconstructorRecipe, _train_stage, load_reconstruction_data,
                                              make_reconstructor)

    out = {"threads": torch.get_num_threads()}
    data = load_reconstruction_data(2000, "train", 0, progress=False)
    for name in ("lgm", "grm"):
        recipe = ReconstructorRecipe.for_profile("cpu", model=name)
        stages = {"stage_one": recipe, "stage_two": recipe.refine_stage()}
        row = {}
        for stage_name, stage in stages.items():
            if stage_name == "stage_two" and models.get(name) is not None:
                # stage two starts from trained weights, whose Gaussians are smaller (fewer pixel-Gaussian
                # pairs) than a fresh network's: the shipped network stands in for stage one's end
                model = copy.deepcopy(models[name]).float()
            else:
                model = make_reconstructor(name, stage.model_config)
            timed = {}
            for steps in (2, 12):            # 2 warm-up steps, then 10 more: the difference is 10 steps' time
                short = dataclasses.replace(stage, steps=steps, checkpoint_every=10 ** 9)
                with tempfile.TemporaryDirectory() as tmp:          # the last step's checkpoint goes here
                    t = time.perf_counter()
                    _train_stage(model, short, data, Path(tmp) / "latest.pt", resume=False, progress=False,
                                 device=torch.device("cpu"), desc=name)
                    timed[steps] = time.perf_counter() - t
            per_step = (timed[12] - timed[2]) / 10
            row[stage_name] = {"seconds_per_step": round(per_step, 3), "steps": stage.steps,
                               "minutes": round(per_step * stage.steps / 60, 1)}
        row["minutes"] = round(row["stage_one"]["minutes"] + row["stage_two"]["minutes"], 1)
        out[name] = row
        print(name, row, flush=True)
    return out


def measure_speed(models: dict, args) -> dict:
    import statistics
    import time

    import torch

    from gsbook.methods.feedforward import (FeedForwardConfig, feedforward_text_to_3d, ground_truth_views, reconstruct,
                                            upsample_views)

    out = {"threads": torch.get_num_threads()}
    views = torch.rand(4, 64, 64, 3)
    for name in ("lgm", "grm"):
        if models[name] is None:
            continue
        reconstruct(models[name], views)                        # warm-up
        times = []
        for _ in range(20):
            t = time.perf_counter()
            reconstruct(models[name], views)
            times.append(time.perf_counter() - t)
        out[f"{name}_reconstruct_s"] = statistics.median(times)
    if models["prior"] is not None:
        config = FeedForwardConfig.for_profile("cpu")
        times, parts = [], []
        for i in range(5):
            t = time.perf_counter()
            result = feedforward_text_to_3d(models["lgm"], models["prior"], PROMPTS[i], config)
            times.append(time.perf_counter() - t)
            parts.append(result.seconds)
        out["text_to_gaussians_s"] = statistics.median(times)
        out["prior_views_s"] = statistics.median(p["views"] for p in parts)
        out["prior_calls"] = config.sampler_steps              # one batched call a step: 2 (CFG) × 4 views
        times, reads = [], []
        for i in range(3):                                       # image → Gaussians: reading the caption first
            front = upsample_views(ground_truth_views(PROMPTS[i], seed=i), 32)[0]
            t = time.perf_counter()
            result = feedforward_text_to_3d(models["lgm"], models["prior"], "", config, image=front)
            times.append(time.perf_counter() - t)
            reads.append(result.seconds["read"])
        out["image_to_gaussians_s"] = statistics.median(times)
        out["read_caption_s"] = statistics.median(reads)
        out["caption_trials"] = config.caption_trials
    return out


if __name__ == "__main__":
    main()
