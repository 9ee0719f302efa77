"""§5's numbers: every generator on the same prompts, timed and judged on this machine.

    python benchmarks/harness.py                              # every generator, the active profile (cpu on a laptop)
    python benchmarks/harness.py --only lgm --only trellis    # some of them (repeatable; merged into the file)
    python benchmarks/harness.py --profile ci --out /tmp/h    # a quick check that it all runs (seconds per asset)
    python benchmarks/harness.py --assets out/harness         # also each asset's gsbook generate files

Runs :func:`gsbook.harness.run_harness` — 2D SDS, DreamGaussian (stage 1, and both stages),
LGM, GRM, Trellis and the DreamFusion NeRF baseline, each through ``gsbook generate``'s own
registry — on PROMPTS, and writes ``chapters/data/harness.json``: a header (profile, hardware,
threads, date, command), one row per asset (wall and CPU seconds, loading apart, seconds per
SDS step, the judge over the 8 turntable views, primitives, ``.splat`` bytes, network calls and
the method's own counts), the medians per generator and the ratios between them beside the
essay's and the papers' (:func:`gsbook.harness.ratios`). It prints the tables §5 shows.

Times depend on the machine and on what else runs on it: run it with nothing else on the CPU.
The ratios and the counts travel between machines far better than the seconds.
"""

from __future__ import annotations

from gsbook.harness import HARNESS_PROMPTS as PROMPTS  # fixed before the harness first ran


def main() -> None:
    import argparse
    import datetime as dt
    import json
    import os
    import shlex
    import sys
    import time
    from pathlib import Path

    import torch

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from gsbook.config import PROFILES, profile as active_profile
    from gsbook.harness import CONTENDERS, HarnessRow, medians, ratio_table, ratios, run_harness, times_table
    from gsbook.recipes import hardware

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=list(CONTENDERS), action="append",
                    help="run only these generators (repeatable); the file keeps the others' rows")
    ap.add_argument("--profile", choices=PROFILES, default=None,
                    help="workload size (default: the active profile, GSBOOK_PROFILE or cpu/gpu by machine)")
    ap.add_argument("--prompts", type=int, default=len(PROMPTS), help=f"how many of the {len(PROMPTS)} prompts to run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--assets", type=Path, default=None, metavar="DIR",
                    help="also write each asset's gsbook generate files into DIR/GENERATOR/PROMPT")
    ap.add_argument("--out", type=Path, default=root / "chapters" / "data", help="where harness.json goes")
    args = ap.parse_args()
    if not 1 <= args.prompts <= len(PROMPTS):
        ap.error(f"--prompts is between 1 and {len(PROMPTS)}, got {args.prompts}")
    profile = args.profile or active_profile()
    prompts, keys = PROMPTS[:args.prompts], args.only or list(CONTENDERS)

    start, load_before = time.perf_counter(), os.getloadavg()
    rows = run_harness(prompts, keys, profile=profile, seed=args.seed, device=args.device, out_dir=args.assets)
    path = args.out / "harness.json"
    header = {"what": "§5: every generator on the same prompts, timed and judged (benchmarks/harness.py)",
              "profile": profile, "hardware": hardware(args.device), "threads": torch.get_num_threads(),
              "date": dt.date.today().isoformat(), "minutes": round((time.perf_counter() - start) / 60, 1),
              "command": "python benchmarks/harness.py " + shlex.join(sys.argv[1:]), "prompts": prompts,
              # 1-minute load averages before and after: above the threads used, other work shared the CPU
              "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}
    # Re-read before writing: keep the other generators' rows from an earlier run of the same profile.
    old = json.loads(path.read_text()) if path.exists() else {}
    kept = [r for r in old.get("rows", []) if old.get("profile") == profile and r["key"] not in keys]
    record = {**header, "rows": kept + [r.to_dict() for r in rows]}
    all_rows = [HarnessRow.from_dict(r) for r in record["rows"]]
    record["medians"] = medians(all_rows)
    record["ratios"] = [{"slow": r.slow, "fast": r.fast, "essay": r.essay, "papers": r.papers, "book": r.book,
                         "book_log10": r.magnitude(r.book)} for r in ratios(all_rows)]
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(times_table(all_rows), ratio_table(all_rows), sep="\n\n")
    print(f"wrote {path} ({record['minutes']} min)")


if __name__ == "__main__":
    main()
