"""2D score distillation with the shipped prior, scored by the judge (issue acceptance for §1).

    python benchmarks/sds2d.py                    # the 10 held-back prompts, §1's settings
    python benchmarks/sds2d.py --steps 150        # shorter runs (the ci profile's length)
    python benchmarks/sds2d.py --save sds2d.png   # also write the results as one picture

The prompts below were fixed before any SDS setting was tuned, and no setting was
tuned on them: they measure how the defaults of ``ImageSDSConfig`` generalise. Every run
is one ``ImageSDS`` from the same seed. Wall time and CPU time are printed per run, with
the load average, because other processes on a 2-core machine slow everything down.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

UNTUNED_PROMPTS = [
    "a yellow cone",
    "a purple ring",
    "an orange pyramid",
    "a blue capsule",
    "a pink snowman with a blue hat",
    "a brown mushroom with a yellow stem",
    "a brown table with black legs",
    "a green house with a red roof",
    "a pink can",
    "a grey rocket with orange fins",
]


def main(argv: list[str] | None = None) -> None:
    from gsbook.judge import Judge, accuracy
    from gsbook.methods import ImageSDS, ImageSDSConfig
    from gsbook.sds import BookPrior
    from gsbook.world import caption

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=ImageSDSConfig.steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="PNG of the results")
    args = parser.parse_args(argv)

    critic, judge = BookPrior(), Judge.from_shipped()
    config = ImageSDSConfig(steps=args.steps, seed=args.seed)
    print(f"config: {config}\nthreads: {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    images, rows = [], []
    for prompt in UNTUNED_PROMPTS:
        run = ImageSDS(critic, prompt, config)
        wall, cpu = time.perf_counter(), time.process_time()
        image = run.run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        reading = judge.predict(image[None])[0]
        images.append(image)
        rows.append((prompt, caption(reading), wall, cpu))
        print(f"| {prompt} | {caption(reading)} | {wall:.1f} s | {cpu:.1f} CPU s | load {os.getloadavg()[0]:.2f} |",
              flush=True)
    scores = accuracy(judge, torch.stack(images), UNTUNED_PROMPTS)
    print(f"\njudge on the {len(UNTUNED_PROMPTS)} results: {scores}")
    print(f"slowest run: {max(r[2] for r in rows):.1f} s wall, {max(r[3] for r in rows):.1f} CPU s "
          f"({args.steps} steps)")
    if args.save:
        from widgets.images import image_grid

        image_grid(images, UNTUNED_PROMPTS, ncol=5, size=128, label_chars=22).save(args.save)
        print(f"wrote {args.save}")


if __name__ == "__main__":
    main()
