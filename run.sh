#!/usr/bin/env bash
# gsbook's two commands. Each sets up a project-local environment (.venv) on first use,
# reuses it afterwards, then does its job:
#   ./run.sh book   build the website (executing the chapters not yet cached) and print where to open it
#   ./run.sh test   run every chapter under nbval, the unit tests, and the website test
#   ./run.sh lab    open the chapters in JupyterLab (fetching the 3D viewer's JavaScript first, once)
# GSBOOK_PROFILE (ci | cpu | gpu) sets the workload; `test` uses ci unless told otherwise.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
TORCH_VERSION=2.13.0

setup() {
  local stamp="$VENV/.gsbook-setup"
  local want
  want=$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  if [ ! -x "$PY" ]; then
    echo "[gsbook] creating $VENV"
    python3 -m venv "$VENV"
  fi
  "$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && [ "${GSBOOK_CPU_ONLY:-0}" != 1 ]; then
      echo "[gsbook] CUDA machine: installing torch==$TORCH_VERSION (CUDA build) from PyPI"
      "$PY" -m pip install "torch==$TORCH_VERSION"
    else
      # A plain `pip install torch` pulls a multi-GB CUDA build. Ask PyTorch's CPU index
      # first; where it cannot be reached, a local wheel or mirror configured for pip is used.
      echo "[gsbook] no CUDA: installing the CPU build of torch==$TORCH_VERSION"
      "$PY" -m pip install --quiet --retries 0 --timeout 15 \
          --index-url https://download.pytorch.org/whl/cpu "torch==$TORCH_VERSION" 2>/dev/null \
        || "$PY" -m pip install --quiet "torch==$TORCH_VERSION"
    fi
  fi
  echo "[gsbook] installing gsbook and its dev + book extras into $VENV"
  "$PY" -m pip install --quiet -e ".[dev,book]"
  echo "$want" > "$stamp"
}

cmd=${1:-help}
case "$cmd" in
  test)
    setup
    export GSBOOK_PROFILE=${GSBOOK_PROFILE:-ci}
    shift || true
    # A profile this machine cannot run (e.g. gpu without CUDA) stops here, with gsbook's message.
    "$PY" -c "from gsbook.config import profile
try: profile()
except (ValueError, RuntimeError) as e: raise SystemExit(f'[gsbook] {e}')"
    # One pytest run, failing on any failure. Chapters first: every chapter under nbval
    # (the per-cell timeout is gsbook.config.cell_timeout(), set by the root conftest.py), and
    # each chapter that passes is stored in the execution cache (tools/notebooks.py). Then
    # the unit tests (tests/) and the website test (tests/site: builds the book in the ci
    # profile, reusing nbval's executions, serves it on 127.0.0.1, drives headless Chromium;
    # screenshots land in artifacts/site/). The summary lists each chapter's seconds.
    exec "$PY" -m pytest chapters tests --nbval-lax "$@"
    ;;
  book)
    setup
    export GSBOOK_PROFILE=${GSBOOK_PROFILE:-cpu}
    shift || true
    # Fetches MathJax / require.js / the widget manager from npm (once, into _vendor/),
    # executes each chapter not already in the execution cache (per-cell progress; results of
    # `./run.sh test` in the same profile are reused), writes _build/html, prints a table of
    # chapter times and where to open the site. --force executes every chapter again.
    exec "$PY" tools/build_book.py --profile "$GSBOOK_PROFILE" "$@"
    ;;
  lab)
    setup
    # The live 3D viewer (widgets/splat_viewer.py) carries its JavaScript from _vendor/, which
    # tools/fetch_assets.py fills from npm as `book` does: fetched once, a no-op afterwards. Offline,
    # JupyterLab opens all the same, and the viewer says to run python tools/fetch_assets.py.
    "$PY" tools/fetch_assets.py \
      || echo "[gsbook] could not fetch the 3D viewer's JavaScript (no network?); JupyterLab opens anyway" >&2
    exec "$VENV/bin/jupyter" lab chapters
    ;;
  *)
    sed -n '2,8p' "$0"
    ;;
esac
