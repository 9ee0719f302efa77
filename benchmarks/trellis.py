"""§4's numbers: Trellis at book scale, from the four shipped networks.

    python benchmarks/trellis.py               # everything (about 10 min on 2 CPU cores)
    python benchmarks/trellis.py --only text   # one part: sparsity, vae, text, steps, edits, speed
    python benchmarks/trellis.py --tuning      # the text part on TUNING_PROMPTS; nothing is written
    python benchmarks/trellis.py --tuning --only edits --guidance 3 5   # edits on TUNING_EDITS

Parts (each writes its entry of ``chapters/data/trellis.json``; a picture beside some):

* **sparsity** — how empty ShapeWorld's space is: the occupied fraction of the solid and of its
  shell (TRELLIS' active voxels) at 16³, 32³ and 64³, over ``train`` assets;
* **vae** — the structure VAE's round trip on held-out (``val`` split) occupancies: voxel IoU
  (:func:`gsbook.recipes.trellis_structure.evaluate_ss_vae`);
* **text** — caption → Gaussians with 25 Euler steps per stage, on PROMPTS (fixed before any
  tuning, never tuned on), judged from the 8 turntable views every ``gsbook generate`` result
  is judged from (:func:`gsbook.generate.score`);
* **steps** — the same, at 1, 2, 5, 10, 25 and 50 Euler steps per stage: quality against the
  number of network evaluations (DDPM's side of the comparison is §4's toy, where both samplers
  share one network budget);
* **edits** — (a) appearance: each PROMPT's object recoloured by EDITS' caption, stage 2 only;
  judged against the new caption, and the structure's voxel IoU with the original; (b) region:
  the top third of each object redrawn, the voxels outside it compared with the original's,
  and the judge's category reading;
* **speed** — seconds for caption → Gaussians (25 steps per stage, batch 1, median over PROMPTS,
  after one warm-up), per stage. Run it with nothing else on the CPU.
"""

from __future__ import annotations

# Fixed before tuning (and before the models were trained); never tuned on. Ten categories,
# seen colour × category pairs; the first is the example.
PROMPTS = [
    "a red snowman with a black hat",
    "a blue ball",
    "a green tree with a brown trunk",
    "a yellow mushroom with a white stem",
    "a white table with black legs",
    "a purple lamp with a grey base",
    "an orange house with a red roof",
    "a grey dumbbell",
    "a pink cone",
    "a brown chair with white legs",
]

# The appearance edit of each prompt: the same object, another main colour. Fixed with PROMPTS;
# two of them ("a purple mushroom", "a green lamp") are held-out colour × category pairs
# (gsbook.world.held_out_pairs): no training caption ever joined those words.
EDITS = [
    "a blue snowman with a black hat",
    "a red ball",
    "a yellow tree with a brown trunk",
    "a purple mushroom with a white stem",
    "a black table with black legs",
    "a green lamp with a grey base",
    "a white house with a red roof",
    "a red dumbbell",
    "a blue cone",
    "a green chair with white legs",
]

# What settings (guidance, steps) may be chosen on: other categories and colours.
TUNING_PROMPTS = [
    "a black can",
    "a grey rocket with red fins",
    "an orange capsule",
    "a white ring",
    "a blue pyramid",
]

# Their edits, for choosing the edit settings: all five are held-out colour × category pairs,
# the hard case (a seen recolouring is read right at any guidance we tried).
TUNING_EDITS = [
    "a yellow can",
    "an orange rocket with red fins",
    "a pink capsule",
    "an orange ring",
    "a red pyramid",
]

PARTS = ("sparsity", "vae", "text", "steps", "edits", "speed")
STEP_COUNTS = (1, 2, 5, 10, 25, 50)


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
    ap.add_argument("--tuning", action="store_true",
                    help="text (default) or edits on the TUNING_ lists, 2 seeds each; nothing is written")
    ap.add_argument("--assets", type=int, default=200, help="assets for the sparsity and vae parts")
    ap.add_argument("--guidance", type=float, nargs=2, default=None, metavar=("STAGE1", "STAGE2"),
                    help="with --tuning: guidance scales to try (default: TrellisConfig's)")
    ap.add_argument("--out", type=Path, default=root / "chapters" / "data")
    args = ap.parse_args()
    parts = args.only or (["text"] if args.tuning else list(PARTS))
    if args.tuning and not set(parts) <= {"text", "edits"}:
        ap.error("--tuning applies to the text and edits parts only")
    path = args.out / "trellis.json"
    header = {"what": "§4: Trellis at book scale (benchmarks/trellis.py)", "profile": profile(),
              "hardware": hardware()}
    measured = {}
    models = load_models()
    for part in parts:
        start = time.perf_counter()
        result = globals()[f"measure_{part}"](models, args)
        result.update(date=dt.date.today().isoformat(), minutes=round((time.perf_counter() - start) / 60, 1),
                      command="python benchmarks/trellis.py --only " + part)
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
            save_grid(pictures, args.out / f"trellis_{part}.png", nrow=8)
    print(f"wrote {path}")


def load_models() -> dict:
    from gsbook.judge import Judge
    from gsbook.methods.trellis import TrellisModels

    return {"trellis": TrellisModels.from_shipped("cpu"), "judge": Judge.from_shipped("cpu")}


def judged(judge, gaussians, prompt: str) -> tuple[dict, object]:
    """The 8 turntable views every ``gsbook generate`` result is judged from, and their scores."""
    from gsbook.generate import Generated, score, turntable_views

    views = turntable_views(Generated(gaussians, {}, {}), "cpu")["gaussians"]
    return score(judge, views, prompt)["scores"], views


def mean_scores(rows: list[dict]) -> dict:
    return {k: round(100 * sum(r[k] for r in rows) / len(rows), 1) for k in ("category", "colour", "all")}


def measure_sparsity(models: dict, args) -> dict:
    import torch

    from gsbook.methods.trellis import occupied_fraction, surface_voxels
    from gsbook.world import DatasetConfig, ObjectSpec, asset_record, make_asset

    config = DatasetConfig(n_assets=args.assets, split="train", seed=7000)
    out = {"assets": args.assets, "split": "train", "seed": 7000}
    assets = [make_asset(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"])
              for r in (asset_record(config, i) for i in range(args.assets))]
    for R in (16, 32, 64):
        solid = torch.stack([a.occupancy(R) for a in assets])
        shell = surface_voxels(solid)
        out[str(R)] = {"solid_percent": round(100 * occupied_fraction(solid).mean().item(), 3),
                       "shell_percent": round(100 * occupied_fraction(shell).mean().item(), 3),
                       "shell_voxels_median": int(shell.flatten(1).sum(1).median())}
    return out


def measure_vae(models: dict, args) -> dict:
    from gsbook.recipes.trellis_structure import evaluate_ss_vae

    return evaluate_ss_vae(models["trellis"].ss_vae, n=args.assets)


def _text(models: dict, prompts: list[str], steps: int, pictures: list | None = None, **settings) -> dict:
    from gsbook.methods.trellis import TrellisConfig, trellis_text_to_3d

    rows = []
    for i, prompt in enumerate(prompts):
        result = trellis_text_to_3d(models["trellis"], prompt, TrellisConfig(steps=steps, seed=i, **settings))
        scores, views = judged(models["judge"], result.gaussians, prompt)
        rows.append({"prompt": prompt, "voxels": len(result.coords), **{k: scores[k] for k in ("category", "colour", "all")},
                     "seconds": round(sum(result.seconds.values()), 3)})
        if pictures is not None:
            pictures.append(views.permute(0, 3, 1, 2))
    return {"steps": steps, **mean_scores(rows), "rows": rows}


def measure_text(models: dict, args) -> dict:
    import torch

    prompts = [p for p in TUNING_PROMPTS for _ in range(2)] if args.tuning else PROMPTS   # tuning: 2 seeds each
    settings = {"guidance": args.guidance[0], "slat_guidance": args.guidance[1]} if args.guidance else {}
    pictures: list = []
    out = {"prompts": prompts, **settings, **_text(models, prompts, 25, pictures, **settings)}
    out["pictures"] = torch.cat(pictures)
    return out


def measure_steps(models: dict, args) -> dict:
    out = {"prompts": PROMPTS, "step_counts": list(STEP_COUNTS)}
    for steps in STEP_COUNTS:
        r = _text(models, PROMPTS, steps)
        out[str(steps)] = {k: r[k] for k in ("category", "colour", "all")}
        print(steps, out[str(steps)], flush=True)
    return out


def measure_edits(models: dict, args) -> dict:
    import torch

    from gsbook.methods.trellis import (TrellisConfig, edit_appearance, edit_region, top_region_mask,
                                        trellis_text_to_3d, voxel_iou)

    m, judge = models["trellis"], models["judge"]
    appearance, region_rows, pictures = [], [], []
    region = top_region_mask(32)
    pairs = ([p for p in zip(TUNING_PROMPTS, TUNING_EDITS) for _ in range(2)] if args.tuning   # 2 seeds each
             else list(zip(PROMPTS, EDITS)))
    settings = {"guidance": args.guidance[0], "slat_guidance": args.guidance[1]} if args.guidance else {}
    for i, (prompt, new) in enumerate(pairs):
        config = TrellisConfig(seed=i, **settings)
        original = trellis_text_to_3d(m, prompt, config)
        recoloured = edit_appearance(m, original, new, config)
        scores, views = judged(judge, recoloured.gaussians, new)
        appearance.append({"from": prompt, "to": new, "colour": scores["colour"], "category": scores["category"],
                           "iou": voxel_iou(original.occupancy, recoloured.occupancy).item()})
        redrawn = edit_region(m, original, region=region, config=config)
        r_scores, r_views = judged(judge, redrawn.gaussians, prompt)
        region_rows.append({"prompt": prompt, "category": r_scores["category"],
                            "outside_changed": int((redrawn.occupancy[~region] != original.occupancy[~region]).sum()),
                            "inside_changed": int((redrawn.occupancy[region] != original.occupancy[region]).sum())})
        _, before = judged(judge, original.gaussians, prompt)
        pictures.append(torch.stack([before[0], views[0], r_views[0]]).permute(0, 3, 1, 2))   # one row each
    return {"appearance": {"colour": round(100 * sum(r["colour"] for r in appearance) / len(appearance), 1),
                           "category": round(100 * sum(r["category"] for r in appearance) / len(appearance), 1),
                           "iou_min": min(r["iou"] for r in appearance), "rows": appearance},
            "region": {"region": "top third (y layers 21-31 of 32)",
                       "outside_changed_max": max(r["outside_changed"] for r in region_rows),
                       "inside_changed_mean": sum(r["inside_changed"] for r in region_rows) / len(region_rows),
                       "category": round(100 * sum(r["category"] for r in region_rows) / len(region_rows), 1),
                       "rows": region_rows},
            "pictures": torch.cat(pictures)}


def measure_speed(models: dict, args) -> dict:
    import statistics

    import torch

    from gsbook.methods.trellis import TrellisConfig, trellis_text_to_3d

    trellis_text_to_3d(models["trellis"], "a red ball", TrellisConfig(steps=25))          # warm-up
    rows = [trellis_text_to_3d(models["trellis"], p, TrellisConfig(steps=25, seed=i)).seconds
            for i, p in enumerate(PROMPTS)]
    total = [sum(r.values()) for r in rows]
    return {"steps_per_stage": 25, "threads": torch.get_num_threads(),
            "median_seconds": round(statistics.median(total), 3), "max_seconds": round(max(total), 3),
            "per_stage_median": {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}}


if __name__ == "__main__":
    main()
