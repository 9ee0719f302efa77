"""§3's numbers: LGM and GRM reconstructing, and the multi-view prior in front of them.

    python benchmarks/feedforward.py              # everything (about 15 min on 2 CPU cores)
    python benchmarks/feedforward.py --only speed # one part: reconstruction, text, image, prior, speed
    python benchmarks/feedforward.py --tuning     # TUNING_PROMPTS instead (for choosing settings)

Parts (each writes its entry of ``chapters/data/feedforward.json``; a picture beside it):

* **reconstruction** — ``unseen``-split assets (colour × category pairs never trained on), four
  ground-truth views in, 8 other views rendered at 64²: mean PSNR against the ray-cast ground
  truth and the judge's reading, for LGM and GRM, with ShapeWorld's own ground-truth Gaussians
  on the same views for scale (:func:`gsbook.recipes.reconstructor.evaluate_reconstructor`);
* **text** — text → the multi-view prior's 4 views → LGM (and GRM), on PROMPTS (fixed before any
  tuning, never tuned on), judged from the 8 turntable views every ``gsbook generate`` result is
  judged from (:func:`gsbook.generate.score`);
* **image** — image → 3D: the ground-truth front view of ``unseen`` assets → the prior draws
  the other three → LGM, judged the same way;
* **prior** — the prior's views judged one by one, and how consistent the four are: LGM's PSNR
  when re-rendering the views it was given (ground-truth views give the reference);
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

PARTS = ("reconstruction", "text", "image", "prior", "speed")


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
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update({"what": "§3: LGM, GRM and the multi-view prior (benchmarks/feedforward.py)",
                   "profile": profile(), "hardware": hardware()})
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
        record[part] = result
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
        if pictures is not None:
            from gsbook.images import save_grid
            save_grid(pictures, args.out / f"feedforward_{part}.png", nrow=8, scale=1)
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


def _text_rows(models: dict, prompts: list[str], image_of=None) -> dict:
    import torch

    from gsbook.methods.feedforward import FeedForwardConfig, feedforward_text_to_3d

    config = FeedForwardConfig.for_profile("cpu")
    rows, pictures = [], []
    for i, prompt in enumerate(prompts):
        image = image_of(i) if image_of else None
        for name in ("lgm", "grm"):
            if models[name] is None:
                continue
            result = feedforward_text_to_3d(models[name], models["prior"], "" if image is not None else prompt,
                                            config, image=image)
            judged, views = judged_turntable(models["judge"], result.gaussians, prompt)
            rows.append({"prompt": prompt, "model": name, "scores": judged["scores"],
                         "seconds": {k: round(v, 2) for k, v in result.seconds.items()}})
            pictures += list(views)
            s = judged["scores"]
            print(f"{name} {prompt:36s} category {s['category']:.0%} colour {s['colour']:.0%} {rows[-1]['seconds']}",
                  flush=True)
    mean = {name: {f: sum(r["scores"][f] for r in rows if r["model"] == name) / max(1, len(prompts))
                   for f in ("category", "colour", "part_colour")} for name in ("lgm", "grm") if models[name]}
    return {"rows": rows, "mean": mean, "config": vars(config),
            "pictures": torch.stack(pictures).permute(0, 3, 1, 2) if pictures else None}


def measure_text(models: dict, args) -> dict:
    prompts = TUNING_PROMPTS if args.tuning else PROMPTS
    return {"prompts": prompts, **_text_rows(models, prompts)}


def measure_image(models: dict, args) -> dict:
    from gsbook.recipes.reconstructor import _down, load_reconstruction_data

    data = load_reconstruction_data(20, "unseen", 2000)
    captions = [r["caption"] for r in data.records]
    fronts = lambda i: _down(data.inputs[i, 0].float() / 255, 32)  # noqa: E731  the prior's 32² input
    return {"captions": captions, **_text_rows(models, captions, image_of=fronts)}


def measure_prior(models: dict, args) -> dict:
    import torch

    from gsbook.diffusion.multiview import sample_views
    from gsbook.images import psnr
    from gsbook.methods.feedforward import ground_truth_views, reconstruct, upsample_views
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
        out[name]["lgm_self_psnr"] = sum(self_psnr(v) for v in views) / len(views)
    gt = [ground_truth_views(c, seed=i) for i, c in enumerate(split_captions(50, "train", 11))]
    out["ground_truth_lgm_self_psnr"] = sum(self_psnr(v) for v in gt) / len(gt)
    return out


def measure_speed(models: dict, args) -> dict:
    import statistics
    import time

    import torch

    from gsbook.methods.feedforward import FeedForwardConfig, feedforward_text_to_3d, reconstruct

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
    return out


if __name__ == "__main__":
    main()
