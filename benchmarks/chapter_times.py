"""Seconds per code cell of every chapter, against the profile's budgets (a table, not a test).

    python benchmarks/chapter_times.py                        # every chapter, ci profile, executed now
    python benchmarks/chapter_times.py --profile cpu 01_sds   # one chapter in the cpu profile
    python benchmarks/chapter_times.py --cached               # the seconds recorded in the execution cache
    python benchmarks/chapter_times.py --json times.json      # also write the numbers as JSON

Executed chapters are run with tools/notebooks.py (nbclient, the profile's per-cell timeout)
and stored in the execution cache, so a following ``./run.sh book`` reuses them. ``--cached``
executes nothing: it reads the per-cell seconds that nbval (``./run.sh test``) or the book
build recorded with the library as it is now; chapters not cached are listed as such.

Each cell's share of the profile's cell budget (``gsbook.config.cell_budget``, a quarter of
the timeout) is printed; cells over it are marked, and in the ci profile so are chapters over
``gsbook.config.CI_CHAPTER_BUDGET_S``. Wall-clock seconds depend on the machine and on what
else runs on it: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402

from gsbook import config as gsconfig  # noqa: E402


def resolve(names: list[str]) -> list[str]:
    """Docnames for chapter names given as ``01_sds``, ``01``, ``chapters/01_sds(.ipynb)``."""
    docs = notebooks.chapters()
    if not names:
        return docs
    out = []
    for name in names:
        stem = Path(name).with_suffix("").name if name.endswith(".ipynb") else Path(name).name
        hits = [d for d in docs if Path(d).name == stem or Path(d).name.startswith(stem + "_")]
        if len(hits) != 1:
            sys.exit(f"unknown chapter {name!r}; chapters: {', '.join(Path(d).name for d in docs)}")
        out.append(hits[0])
    return out


def table(doc: str, sources: list[str], seconds: list[float], profile: str, how: str) -> tuple[list[str], dict]:
    budget = gsconfig.cell_budget(profile)
    total = sum(seconds)
    lines = [f"\n{Path(doc).name} · {how}",
             f"{'cell':>5} {'seconds':>8} {'budget':>7}  first line", f"{'-' * 5} {'-' * 8} {'-' * 7}  {'-' * 60}"]
    over = []
    for k, (src, s) in enumerate(zip(sources, seconds), start=1):
        mark = "  ← over the cell budget" if s > budget else ""
        if mark:
            over.append(k)
        lines.append(f"{k:>5} {s:8.1f} {100 * s / budget:6.0f}%  {notebooks.first_line(src, 60)}{mark}")
    chapter_over = profile == "ci" and total > gsconfig.CI_CHAPTER_BUDGET_S
    lines.append(f"{'total':>5} {total:8.1f}" + (f"  ← over the {gsconfig.CI_CHAPTER_BUDGET_S} s chapter budget"
                                                 if chapter_over else ""))
    return lines, {"doc": doc, "how": how, "seconds": total, "cell_seconds": seconds,
                   "cells_over_budget": over, "chapter_over_budget": chapter_over}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("chapters", nargs="*", help="chapters (default: all), e.g. 01_sds or 01")
    ap.add_argument("--profile", choices=gsconfig.PROFILES, default=os.environ.get("GSBOOK_PROFILE") or "ci")
    ap.add_argument("--cached", action="store_true", help="read the seconds recorded in the cache; execute nothing")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    a = ap.parse_args(argv)

    os.environ["GSBOOK_PROFILE"] = a.profile
    try:
        gsconfig.profile()
    except (ValueError, RuntimeError) as exc:
        sys.exit(str(exc))
    docs = resolve(a.chapters)
    folder = notebooks.cache_dir(a.profile, prune=False)
    budget = gsconfig.cell_budget(a.profile)
    print(f"profile {a.profile}: cell budget {budget:g} s (timeout {gsconfig.cell_timeout(a.profile)} s)"
          + (f", chapter budget {gsconfig.CI_CHAPTER_BUDGET_S} s" if a.profile == "ci" else ""))
    print(f"machine: {notebooks.machine()}")
    print(f"cache: {folder}")

    results, failed = [], []
    for doc in docs:
        source = nbformat.read(ROOT / f"{doc}.ipynb", as_version=4)
        sources = notebooks.code_sources(source)
        if a.cached:
            hit = notebooks.lookup(source, folder)
            if hit is None or not hit.get("cell_seconds"):
                print(f"\n{Path(doc).name} · not in the cache for this library (run it, or ./run.sh test)")
                results.append({"doc": doc, "how": "not cached"})
                continue
            how = f"cached: executed by {hit.get('executed_by')} on {hit.get('date')} ({hit.get('machine')})"
            seconds = [float(s) for s in hit["cell_seconds"]]
        else:
            load = os.getloadavg()[0]
            try:
                records = notebooks.ensure_executed(a.profile, [doc], force=True, log=None)
            except notebooks.ChapterFailed as exc:
                print(f"\n{exc}")
                failed.append(doc)
                results.append({"doc": doc, "how": "failed", "error": str(exc).splitlines()[0]})
                continue
            seconds = records[0].cell_seconds
            how = f"executed now (load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"
        lines, row = table(doc, sources, seconds, a.profile, how)
        print("\n".join(lines), flush=True)
        results.append(row)

    timed = [r for r in results if "seconds" in r]
    print(f"\nsummary ({a.profile} profile)")
    print(f"{'chapter':<20} {'seconds':>8} {'slowest':>14}  over budget")
    for r in results:
        if "seconds" not in r:
            print(f"{Path(r['doc']).name:<20} {'—':>8} {'':>14}  {r['how']}")
            continue
        cs = r["cell_seconds"]
        k = max(range(len(cs)), key=cs.__getitem__) if cs else -1
        slow = f"cell {k + 1} {cs[k]:.1f} s" if cs else "—"
        flags = ([f"cells {', '.join(map(str, r['cells_over_budget']))}"] if r["cells_over_budget"] else []) + \
                (["the chapter"] if r["chapter_over_budget"] else [])
        print(f"{Path(r['doc']).name:<20} {r['seconds']:8.1f} {slow:>14}  {'; '.join(flags) or '—'}")
    print(f"{'all':<20} {sum(r['seconds'] for r in timed):8.1f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"profile": a.profile, "machine": notebooks.machine(),
                                            "chapters": results}, indent=1, ensure_ascii=False))
        print(f"wrote {a.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
