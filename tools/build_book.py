"""Build the website: fetch the offline JavaScript, execute every chapter, write _build/html.

    python tools/build_book.py [--profile ci|cpu|gpu] [--out DIR] [--no-fetch]

The profile (default: ``GSBOOK_PROFILE``, else ``cpu``) sets the chapters' workload and the
per-cell execution timeout. Execution is forced on every build and any notebook error fails
it (``execute.raise_on_error`` in ``_config.yml``). The built site needs no network: MathJax,
require.js and the widget manager are served from ``_vendor/`` (tools/fetch_assets.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import fetch_assets  # noqa: E402

# Per-cell timeout (seconds) by profile: a cell that runs longer fails the build.
CELL_TIMEOUT = {"ci": 120, "cpu": 900, "gpu": 1800}


def chapters() -> list[str]:
    """Docnames of the chapters, from _toc.yml, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("chapters/")]


def write_config(profile: str, out: Path) -> Path:
    """_config.yml with the profile's cell timeout."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["execute"]["timeout"] = CELL_TIMEOUT[profile]
    path = out / "_build" / f"_config.{profile}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    return path


def build(profile: str, out: Path, fetch: bool = True) -> Path:
    if fetch:
        fetch_assets.fetch()
    elif not fetch_assets.have_all():
        sys.exit("[build_book] _vendor/ is incomplete; run without --no-fetch once.")
    config = write_config(profile, out)
    env = dict(os.environ, GSBOOK_PROFILE=profile, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tools" / "sphinxext"),
                                          os.environ.get("PYTHONPATH", "")]))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--config", str(config), "--path-output", str(out),
           "--builder", "html"]
    print(f"[build_book] profile={profile} cell timeout={CELL_TIMEOUT[profile]} s")
    print("[build_book] " + " ".join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    html = out / "_build" / "html"
    if proc.returncode != 0:
        sys.exit(f"[build_book] FAILED after {elapsed:.0f} s (exit {proc.returncode}); see the log above.")
    reports = sorted((html / "reports").glob("**/*.err.log")) if html.exists() else []
    if reports:
        sys.exit(f"[build_book] FAILED: notebook errors in {', '.join(map(str, reports))}")
    missing = [d for d in chapters() if not (html / f"{d}.html").is_file()]
    if missing:
        sys.exit(f"[build_book] FAILED: pages not built: {missing}")
    print(f"[build_book] built {len(chapters())} chapters in {elapsed:.0f} s ({profile} profile)")
    print(f"[build_book] open  file://{(html / 'index.html').resolve()}")
    print(f"[build_book] or serve it:  {Path(sys.executable).name} -m http.server -d {html} 8000"
          "  → http://127.0.0.1:8000/")
    return html


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=os.environ.get("GSBOOK_PROFILE") or "cpu", choices=sorted(CELL_TIMEOUT))
    ap.add_argument("--out", default=str(ROOT), help="output root: the site lands in OUT/_build/html")
    ap.add_argument("--no-fetch", action="store_true", help="do not download the offline JavaScript")
    a = ap.parse_args()
    build(a.profile, Path(a.out).resolve(), fetch=not a.no_fetch)
