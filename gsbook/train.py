"""``python -m gsbook.train NAME``: reproduce one of the book's shipped models.

Each recipe (:mod:`gsbook.recipes`) trains from scratch on ShapeWorld (building the data sets
it needs into the cache first), measures the model, and writes
``gsbook/weights/NAME.safetensors``, ``NAME.json`` and the model card ``NAME.md`` (data,
steps, wall time, hardware, measured quality). Recipes are seeded: the same command on the
same machine gives the same model.

The profile picks the recipe's size, as it picks every workload in the book: ``gpu`` (the
default on a CUDA machine) is the shipped recipe, ``cpu`` (the default elsewhere) the one
that fits a laptop, ``ci`` a smoke run. ``--profile`` chooses one explicitly, and ``--device``
where it runs (the shipped prior's recipe runs on a CPU too, in about 5 h on 2 cores).

    python -m gsbook.train --list
    python -m gsbook.train judge                          # ~10 min on 2 CPU cores (every profile but ci)
    python -m gsbook.train prior2d                        # cpu profile: the 90-minute laptop recipe
    python -m gsbook.train prior2d --profile gpu          # the shipped recipe: ~7 min on an H200
    python -m gsbook.train prior2d --laptop               # the same as --profile cpu
    python -m gsbook.train lgm                            # §3's LGM (cpu profile: the shipped recipe)
    python -m gsbook.train grm                            # §3's GRM, same data and loss
    python -m gsbook.train prior_mv                       # §3's multi-view prior, fine-tuned from prior2d
    python -m gsbook.train trellis_ss_vae                 # §4's structure VAE (TRELLIS stage 1)
    python -m gsbook.train trellis_ss_flow                # §4's structure flow, on the shipped trellis_ss_vae
    python -m gsbook.train trellis_slat_vae               # §4's structured-latent VAE (TRELLIS stage 2)
    python -m gsbook.train trellis_slat_flow              # §4's SLat flow, on the shipped trellis_slat_vae's latents

The prior resumes from its checkpoints unless ``--fresh``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch

from .config import PROFILES, cuda_available, profile
from .recipes import (JudgeRecipe, TrainConfig, cpu_hours, finish_prior2d_recipe, hardware, run_judge_recipe,
                      train_prior2d)
from .recipes.prior2d import LAPTOP_RECIPE
from .recipes.prior_mv import PriorMVRecipe, remeasure_prior_mv, run_prior_mv_recipe
from .recipes.reconstructor import ReconstructorRecipe, run_reconstructor_recipe
from .recipes.trellis_structure import StructureFlowRecipe, StructureVAERecipe, run_ss_flow_recipe, run_ss_vae_recipe
from .recipes.trellis_slat import SLatFlowRecipe, SLatVAERecipe, run_slat_flow_recipe, run_slat_vae_recipe

__all__ = ["RECIPES", "prior2d_cpu_notice", "reproduce_command", "main"]


def reproduce_command(name: str, profile: str, overrides: dict) -> str:
    """The command a model card gives for these weights: the recipe, its profile and the flags that
    changed it (``checkpoint_every`` changes nothing in the weights, so it is left out)."""
    flags = [f"--profile {profile}"] + [f"--{k.replace('_', '-')} {v}" for k, v in overrides.items()
                                        if k != "checkpoint_every"]
    return " ".join([f"python -m gsbook.train {name}", *flags])


def judge_recipe(args: argparse.Namespace) -> None:
    recipe = JudgeRecipe.for_profile(args.profile, seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    run_judge_recipe(recipe, args.out)


def prior2d_cpu_notice(config: TrainConfig, device: str) -> str | None:
    """A warning when a run about 4× the laptop recipe's images or more starts on a CPU."""
    laptop_images = LAPTOP_RECIPE["steps"] * LAPTOP_RECIPE["batch"]
    if str(device).startswith("cuda") or config.steps * config.batch < 4 * laptop_images:
        return None
    return (f"[gsbook] prior2d: {config.steps} steps of {config.batch} images on the CPU: roughly "
            f"{cpu_hours(config):.0f} h on 2 cores (the shipped weights were trained on a GPU). "
            "For the 90-minute recipe, use --profile cpu.")


def prior2d_recipe(args: argparse.Namespace) -> None:
    overrides = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "n_assets": args.n_assets,
                 "checkpoint_every": args.checkpoint_every}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    config = TrainConfig.for_profile(args.profile, seed=args.seed, **overrides)
    notice = prior2d_cpu_notice(config, args.device)
    if notice:
        print(notice, file=sys.stderr)
    model, report = train_prior2d(config, resume=not args.fresh, device=args.device, workers=args.workers)
    report["hardware"] = hardware(args.device)
    command = reproduce_command("prior2d", args.profile, overrides)
    finish_prior2d_recipe(model, report, config, args.out, hardware(args.device), command=command)


def reconstructor_recipe(args: argparse.Namespace) -> None:
    overrides = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "n_assets": args.n_assets,
                 "checkpoint_every": args.checkpoint_every, "refine_steps": args.refine_steps}
    recipe = ReconstructorRecipe.for_profile(args.profile, model=args.name, seed=args.seed,
                                             **{k: v for k, v in overrides.items() if v is not None})
    run_reconstructor_recipe(recipe, args.out, resume=not args.fresh, device=args.device,
                             eval_assets=8 if args.profile == "ci" else 100, note=args.note)


def prior_mv_recipe(args: argparse.Namespace) -> None:
    if args.eval_only:
        remeasure_prior_mv(args.out, eval_n=4 if args.profile == "ci" else 50, read_trials=1 if args.profile == "ci" else 8)
        return
    overrides = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "n_assets": args.n_assets,
                 "checkpoint_every": args.checkpoint_every, "refine_steps": args.refine_steps}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    recipe = PriorMVRecipe.for_profile(args.profile, seed=args.seed, **overrides)
    run_prior_mv_recipe(recipe, args.out, resume=not args.fresh, device=args.device,
                        eval_n=4 if args.profile == "ci" else 50, read_trials=1 if args.profile == "ci" else 8,
                        command=reproduce_command("prior_mv", args.profile, overrides))


def slat_recipe(args: argparse.Namespace) -> None:
    overrides = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "n_assets": args.n_assets,
                 "checkpoint_every": args.checkpoint_every}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    command = reproduce_command(args.name, args.profile, overrides)
    if args.name == "trellis_slat_vae":
        recipe = SLatVAERecipe.for_profile(args.profile, seed=args.seed, **overrides)
        run_slat_vae_recipe(recipe, args.out, resume=not args.fresh, device=args.device,
                            eval_assets=4 if args.profile == "ci" else 50, command=command)
    else:
        recipe = SLatFlowRecipe.for_profile(args.profile, seed=args.seed, **overrides)
        run_slat_flow_recipe(recipe, args.out, resume=not args.fresh, device=args.device,
                             eval_assets=4 if args.profile == "ci" else 20, command=command)


def ss_recipe(args: argparse.Namespace) -> None:
    overrides = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "n_assets": args.n_assets,
                 "checkpoint_every": args.checkpoint_every}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.name == "trellis_ss_vae":
        run_ss_vae_recipe(StructureVAERecipe.for_profile(args.profile, seed=args.seed, **overrides), args.out,
                          resume=not args.fresh, device=args.device)
    else:
        run_ss_flow_recipe(StructureFlowRecipe.for_profile(args.profile, seed=args.seed, **overrides), args.out,
                           resume=not args.fresh, device=args.device)


RECIPES: dict[str, Callable[[argparse.Namespace], None]] = {
    "judge": judge_recipe,
    "prior2d": prior2d_recipe,
    "lgm": reconstructor_recipe,
    "grm": reconstructor_recipe,
    "prior_mv": prior_mv_recipe,
    "trellis_ss_vae": ss_recipe,
    "trellis_ss_flow": ss_recipe,
    "trellis_slat_vae": slat_recipe,
    "trellis_slat_flow": slat_recipe,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gsbook.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="model to train: " + ", ".join(RECIPES))
    parser.add_argument("--list", action="store_true", help="list the recipes")
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="recipe size: gpu = the shipped recipe, cpu = the laptop recipe, ci = a smoke run "
                             "(default: the active profile, GSBOOK_PROFILE or cuda/cpu by machine)")
    parser.add_argument("--laptop", action="store_true", help="the same as --profile cpu")
    parser.add_argument("--device", default=None, help="where to train: cuda or cpu (default: cuda if there is one)")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder for the three files (default gsbook/weights)")
    parser.add_argument("--fresh", action="store_true", help="ignore checkpoints of an earlier run and start over")
    parser.add_argument("--note", default="", help="a sentence for the model card on how the run went (lgm, grm)")
    parser.add_argument("--refine-steps", type=int, default=None,
                        help="override the second stage's step count (lgm, grm, prior_mv; 0: stage one only)")
    parser.add_argument("--batch", type=int, default=None, help="override the batch size (prior2d, lgm, grm, prior_mv)")
    parser.add_argument("--lr", type=float, default=None, help="override the peak learning rate (prior2d, lgm, grm, prior_mv)")
    parser.add_argument("--n-assets", type=int, default=None, help="override the number of training assets (prior2d, lgm, grm, prior_mv)")
    parser.add_argument("--eval-only", action="store_true",
                        help="measure the shipped model again and rewrite its card, without training (prior_mv)")
    parser.add_argument("--workers", type=int, default=None, help="processes that render the data (default ≤ 2)")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (prior2d, lgm, grm, prior_mv)")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        for name in RECIPES:
            print(name)
        return
    if args.name not in RECIPES:
        parser.error(f"no recipe named {args.name!r}; recipes: {', '.join(RECIPES)}")
    if args.eval_only and args.name != "prior_mv":
        parser.error(f"--eval-only is for prior_mv; {args.name} measures itself at the end of its recipe")
    if args.laptop:
        if args.profile not in (None, "cpu"):
            parser.error(f"--laptop is --profile cpu; it contradicts --profile {args.profile}")
        args.profile = "cpu"
    # The recipe's size follows the profile; only the gpu profile's device needs CUDA, and a
    # gpu-sized recipe may still be asked to run on the CPU (--profile gpu --device cpu).
    args.profile = args.profile or profile()
    args.device = args.device or ("cuda" if cuda_available() else "cpu")
    if str(args.device).startswith("cuda") and not cuda_available():
        parser.error("--device cuda, but PyTorch sees no CUDA device; use --device cpu")
    torch.manual_seed(args.seed)
    RECIPES[args.name](args)


if __name__ == "__main__":
    main(sys.argv[1:])
