"""Build the website: fetch the offline JavaScript, make sure every chapter is executed, write _build/html.

    python tools/build_book.py [--profile ci|cpu|gpu] [--out DIR] [--no-fetch] [--force]

The profile (default: ``GSBOOK_PROFILE``, else ``cpu``) sets the chapters' workload and the
per-cell timeout (``gsbook.config.cell_timeout``). Chapters are executed by
tools/notebooks.py, not by jupyter-book: a chapter already executed with this library (by
an earlier build, or by nbval in ``./run.sh test``) is taken from the cache
(``gsbook.config.cache_root()/notebooks/<profile>-<fingerprint>``); any other is executed
with one progress line per cell and stored. jupyter-book then runs in
``execute_notebooks: cache`` mode on that folder and only merges the stored outputs into the
pages. Any failing cell stops the build with the chapter, the cell and the traceback;
``--force`` executes every chapter again. The built site needs no network: MathJax,
require.js and the widget manager are served from ``_vendor/`` (tools/fetch_assets.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import fetch_assets  # noqa: E402
import notebooks  # noqa: E402
from notebooks import chapters  # noqa: E402,F401  (kept importable from here)

from gsbook import config as gsconfig  # noqa: E402
from gsbook.config import CI_CHAPTER_BUDGET_S, PROFILES, cell_budget, cell_timeout  # noqa: E402


def write_config(profile: str, out: Path, cache: Path | None = None) -> Path:
    """_config.yml for this build: jupyter-book reads executed chapters from ``cache`` (the
    profile's folder, default :func:`notebooks.cache_dir`) and never forces execution; should it
    find a chapter missing there after all, it would execute it with the profile's cell timeout."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    execute = cfg.setdefault("execute", {})
    execute["execute_notebooks"] = "cache"
    execute["cache"] = str(cache or notebooks.cache_dir(profile))
    execute["timeout"] = cell_timeout(profile)
    path = out / "_build" / f"_config.{profile}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    return path


def summary(records: list[notebooks.ChapterRecord], profile: str) -> str:
    """The table printed at the end: chapter, seconds, slowest cell, executed now or cached;
    cells over ``cell_budget(profile)`` and (ci) chapters over ``CI_CHAPTER_BUDGET_S`` are marked."""
    budget = cell_budget(profile)
    rows = [f"{'chapter':<18} {'seconds':>8}  {'slowest cell':<17}  execution",
            f"{'-' * 18} {'-' * 8}  {'-' * 17}  {'-' * 44}"]
    over = []
    for r in records:
        k, s = r.slowest
        how = (f"cached (executed by {r.executed_by} on {notebooks.when(r.date)})" if r.cached
               else "executed now (nbclient)")
        flags = ([f"cell {k} over the {budget:g} s cell budget"] if s > budget else []) + \
                ([f"over the {CI_CHAPTER_BUDGET_S} s chapter budget"]
                 if profile == "ci" and r.seconds > CI_CHAPTER_BUDGET_S else [])
        over += flags
        rows.append(f"{Path(r.doc).name:<18} {r.seconds:8.1f}  cell {k:>2} · {s:6.1f} s  {how}"
                    + (f"  ← {'; '.join(flags)}" if flags else ""))
    rows.append(f"{'all chapters':<18} {sum(r.seconds for r in records):8.1f}  (seconds of execution, "
                "whenever it happened)")
    return "\n".join(rows)


def build(profile: str, out: Path, fetch: bool = True, force: bool = False) -> Path:
    t_start = time.perf_counter()
    os.environ["GSBOOK_PROFILE"] = profile
    try:
        gsconfig.profile()  # e.g. the gpu profile without CUDA: gsbook's own clear message
    except (ValueError, RuntimeError) as exc:
        sys.exit(f"[build_book] {exc}")
    if fetch:
        fetch_assets.fetch()
    elif not fetch_assets.have_all():
        sys.exit("[build_book] _vendor/ is incomplete; run without --no-fetch once.")

    cache = notebooks.cache_dir(profile)
    print(f"[build_book] profile={profile} · cell timeout {cell_timeout(profile)} s (gsbook.config) · "
          f"executed chapters in {cache}", flush=True)
    t0 = time.perf_counter()
    try:
        records = notebooks.ensure_executed(profile, force=force, log=lambda line: print(line, flush=True))
    except notebooks.ChapterFailed as exc:
        sys.exit(f"[build_book] FAILED after {time.perf_counter() - t_start:.0f} s: a chapter did not execute.\n{exc}")
    t_exec = time.perf_counter() - t0

    config = write_config(profile, out, cache)
    if any(not r.cached for r in records):
        # Sphinx re-reads a page only when its notebook or the config changed. A chapter executed
        # again with the same source (--force, a deleted cache) must still reach its page: start
        # from a fresh environment whenever something was executed now (reading takes seconds).
        shutil.rmtree(out / "_build" / ".doctrees", ignore_errors=True)
    env = dict(os.environ, GSBOOK_PROFILE=profile, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tools" / "sphinxext"),
                                          os.environ.get("PYTHONPATH", "")]))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--config", str(config), "--path-output", str(out),
           "--builder", "html"]
    print("[build_book] " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT)
    t_site = time.perf_counter() - t0
    html = out / "_build" / "html"
    if proc.returncode != 0:
        sys.exit(f"[build_book] FAILED after {time.perf_counter() - t_start:.0f} s (exit {proc.returncode}); "
                 "see the log above.")
    reports = sorted((html / "reports").glob("**/*.err.log")) if html.exists() else []
    if reports:
        sys.exit(f"[build_book] FAILED: notebook errors in {', '.join(map(str, reports))}")
    missing = [d for d in chapters() if not (html / f"{d}.html").is_file()]
    if missing:
        sys.exit(f"[build_book] FAILED: pages not built: {missing}")
    # jupyter-book should only have merged: a record without our data means it executed itself
    from jupyter_cache import get_cache

    foreign = [r.uri for r in get_cache(str(cache)).list_cache_records() if "executed_by" not in (r.data or {})]
    if foreign:
        print(f"[build_book] note: jupyter-book executed {foreign} itself (the chapter changed after it was "
              "executed here?)")

    print()
    print(summary(records, profile))
    n_now = sum(not r.cached for r in records)
    print(f"\n[build_book] built {len(records)} chapters ({n_now} executed now, {len(records) - n_now} cached) "
          f"in {time.perf_counter() - t_start:.0f} s wall: execution {t_exec:.0f} s, site {t_site:.0f} s "
          f"({profile} profile)")
    print(f"[build_book] open  file://{(html / 'index.html').resolve()}")
    print(f"[build_book] or serve it:  {Path(sys.executable).name} -m http.server -d {html} 8000"
          "  → http://127.0.0.1:8000/")
    return html


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=os.environ.get("GSBOOK_PROFILE") or "cpu", choices=PROFILES)
    ap.add_argument("--out", default=str(ROOT), help="output root: the site lands in OUT/_build/html")
    ap.add_argument("--no-fetch", action="store_true", help="do not download the offline JavaScript")
    ap.add_argument("--force", action="store_true", help="execute every chapter again, ignoring the cache")
    a = ap.parse_args()
    build(a.profile, Path(a.out).resolve(), fetch=not a.no_fetch, force=a.force)
