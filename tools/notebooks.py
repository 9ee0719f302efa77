"""Execute the chapters once and keep the results: one place for the book's notebook runs.

Every executed chapter, whoever ran it, lands in one jupyter-cache folder per profile and
library version::

    gsbook.config.cache_root() / "notebooks" / f"{profile}-{fingerprint()}"

* ``./run.sh test`` runs the chapters under nbval; the root ``conftest.py`` assembles each
  fully passing notebook from nbval's outputs and stores it here (``executed_by: nbval``).
* ``./run.sh book`` (tools/build_book.py) calls :func:`ensure_executed`: a chapter found here
  is reused, any other is executed with nbclient (:func:`execute`, one progress line per cell)
  and stored; jupyter-book then runs in ``execute_notebooks: cache`` mode on this folder and
  only merges the stored outputs into the pages.
* ``benchmarks/chapter_times.py`` prints the per-cell seconds, fresh or from the cache.

A stored notebook is found again by jupyter-cache's hash of the code cells' source, all of
their metadata and the notebook's ``kernelspec`` (what myst-nb's cache mode matches on), so
the stored copy keeps the source's cell metadata exactly. What else decides the outputs
(the library, the shipped weights, torch) is in :func:`fingerprint`, which names the folder:
results of an older library are never reused, and their folders are pruned.

Per-cell timeouts come from ``gsbook.config.cell_timeout`` (and only from there).
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the library of this checkout, also when run as a script
    sys.path.insert(0, str(ROOT))

from gsbook import config as gsconfig  # noqa: E402

EXECUTORS = ("nbval", "nbclient")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# --------------------------------------------------------------------------- what and where

def chapters() -> list[str]:
    """Docnames of the chapters (``chapters/00_setup`` …), from _toc.yml, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("chapters/")]


def fingerprint(root: Path | None = None) -> str:
    """A short hash of what decides a chapter's outputs besides its own cells: every ``*.py``
    under ``gsbook/`` and ``widgets/``, every file in ``gsbook/weights/`` and in ``chapters/data/``
    (results of runs too long for a cell, which chapters read), and the torch version."""
    import torch

    root = Path(root or ROOT)
    h = hashlib.sha256()
    files = sorted({*root.glob("gsbook/**/*.py"), *root.glob("widgets/**/*.py"),
                    *(p for folder in ("gsbook/weights", "chapters/data") for p in (root / folder).glob("*")
                      if p.is_file())})
    for path in files:
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    h.update(f"torch {torch.__version__}".encode())
    return h.hexdigest()[:12]


def cache_dir(profile: str, fp: str | None = None, prune: bool = True) -> Path:
    """The jupyter-cache folder for ``profile`` and this library (``fp``, default
    :func:`fingerprint`). Folders of the same profile with another fingerprint are removed."""
    gsconfig.cell_timeout(profile)  # validates the name
    fp = fp or fingerprint()
    base = gsconfig.cache_root() / "notebooks"
    here = base / f"{profile}-{fp}"
    if prune and base.is_dir():
        for old in base.glob(f"{profile}-*"):
            if old != here and old.is_dir() and re.fullmatch(rf"{re.escape(profile)}-[0-9a-f]+", old.name):
                shutil.rmtree(old, ignore_errors=True)
    return here


def machine() -> str:
    """One line describing this machine (for the cache record and the benchmark tables)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    return (f"{platform.system()} {platform.machine()} · {cpu} · {os.cpu_count()} CPUs · {gpu} · "
            f"torch {torch.__version__} · Python {platform.python_version()}")


def doc_of(path: Path) -> str:
    """``chapters/01_sds`` for ``…/chapters/01_sds.ipynb`` (relative to the repository when inside it)."""
    path = Path(path).resolve()
    try:
        return path.relative_to(ROOT).with_suffix("").as_posix()
    except ValueError:
        return path.with_suffix("").name


def when(iso: str | None) -> str:
    """``2026-12-01 23:49`` from an ISO date (as stored in the cache records)."""
    return (iso or "?")[:16].replace("T", " ")


def first_line(source: str, width: int = 70) -> str:
    lines = [l.strip() for l in source.splitlines() if l.strip()]
    text = lines[0] if lines else "(empty)"
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- the cache

def _cache(folder: Path):
    from jupyter_cache import get_cache

    return get_cache(str(folder))


def _hash(nb) -> str:
    from jupyter_cache.cache.main import JupyterCacheBase

    return JupyterCacheBase(os.devnull).create_hashed_notebook(nb)[1]  # touches no files


def assemble(source: nbformat.NotebookNode, outputs: dict[int, list], *, widget_state: dict | None = None,
             language_info: dict | None = None) -> nbformat.NotebookNode:
    """The executed notebook from ``source`` and each code cell's outputs (keyed by code-cell
    index, as nbval numbers them): the source's cells and cell metadata unchanged, the outputs,
    consecutive execution counts, the widget state where nbclient puts it."""
    nb = copy.deepcopy(source)
    k = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = k + 1
        cell.outputs = []
        for out in outputs.get(k, []):
            out = nbformat.from_dict(copy.deepcopy(dict(out)))
            if out.get("output_type") == "execute_result":
                out["execution_count"] = k + 1
            if out.get("output_type") in ("display_data", "execute_result"):
                out.setdefault("metadata", {})
            cell.outputs.append(out)
        k += 1
    if language_info:
        nb.metadata["language_info"] = language_info
    if widget_state and widget_state.get("state"):
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": widget_state}
    return nb


def store(source: nbformat.NotebookNode, executed: nbformat.NotebookNode, *, profile: str, executed_by: str,
          cell_seconds: list[float], uri: str, doc: str | None = None, folder: Path | None = None,
          fp: str | None = None) -> Path:
    """Store ``executed`` (a run of ``source``) in the profile's cache; returns the folder.

    The stored cells get the source's metadata back (nbclient adds its ``execution`` timings),
    so the hash that myst-nb computes from the source finds this record. Per-cell seconds and
    who/when/where go into the record's ``data``."""
    from jupyter_cache.base import CacheBundleIn

    if executed_by not in EXECUTORS:
        raise ValueError(f"executed_by must be one of {EXECUTORS}, not {executed_by!r}")
    nb = copy.deepcopy(executed)
    src_cells, out_cells = source.cells, nb.cells
    if len(src_cells) != len(out_cells):
        raise ValueError(f"{doc or uri}: the executed notebook has {len(out_cells)} cells, the source {len(src_cells)}")
    for s, c in zip(src_cells, out_cells):
        if s.cell_type == "code":
            c.metadata = copy.deepcopy(s.metadata)
    nbformat.validate(nb)
    if _hash(nb) != _hash(source):
        raise ValueError(f"{doc or uri}: the executed notebook does not match its source (code or metadata differ)")
    folder = Path(folder or cache_dir(profile, fp))
    data = {
        "doc": doc or doc_of(Path(uri)),
        "profile": profile,
        "executed_by": executed_by,
        "execution_seconds": round(sum(cell_seconds), 3),  # the key myst-nb reports as runtime
        "cell_seconds": [round(s, 3) for s in cell_seconds],
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "fingerprint": fp or folder.name.rsplit("-", 1)[-1],
    }
    _cache(folder).cache_notebook_bundle(CacheBundleIn(nb, uri, data=data), check_validity=False, overwrite=True)
    return folder


def lookup(source: nbformat.NotebookNode, folder: Path) -> dict | None:
    """The cache record's ``data`` for ``source`` in ``folder`` (with ``created``), or None."""
    if not (Path(folder) / "global.db").exists():
        return None
    try:
        record = _cache(folder).match_cache_notebook(source)
    except KeyError:
        return None
    return {**(record.data or {}), "created": record.created.isoformat(timespec="seconds")}


# --------------------------------------------------------------------------- executing

class ChapterFailed(RuntimeError):
    """A chapter's cell raised or ran past the timeout; the message names chapter, cell and source."""


@dataclass
class Executed:
    nb: nbformat.NotebookNode
    cell_seconds: list[float]
    seconds: float


def execute(path: Path, profile: str, *, log: Callable[[str], None] | None = print) -> Executed:
    """Run the notebook at ``path`` with nbclient, cell by cell, in ``profile``.

    The kernel runs in the notebook's folder with ``GSBOOK_PROFILE=profile``; each cell may take
    ``gsbook.config.cell_timeout(profile)`` seconds. One line per code cell goes to ``log``
    as it finishes. Widget state is stored in the notebook metadata (nbclient's
    ``store_widget_state``). Raises :class:`ChapterFailed` on an error or a timeout."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path).resolve()
    name = path.stem
    timeout = gsconfig.cell_timeout(profile)
    source = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(source)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    number = {cell_index: k + 1 for k, cell_index in enumerate(code)}
    seconds = [0.0] * len(code)
    state = {"t0": None, "index": None}

    def started(cell, cell_index, **_):
        state["t0"], state["index"] = time.perf_counter(), cell_index

    def finished(cell, cell_index, execute_reply=None, **_):
        k = number[cell_index]
        seconds[k - 1] = dt = time.perf_counter() - state["t0"]
        failed = (execute_reply or {}).get("content", {}).get("status") == "error"
        if log:
            log(f"[{name}] cell {k}/{len(code)} · {dt:5.1f} s · {'FAILED · ' if failed else ''}{first_line(cell.source)}")

    client = NotebookClient(nb, timeout=timeout, kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
                            resources={"metadata": {"path": str(path.parent)}}, allow_errors=False,
                            store_widget_state=True, record_timing=False,
                            on_cell_execute=started, on_cell_executed=finished)
    # the kernel imports this checkout's library (the one fingerprint() hashed), in the profile
    env = dict(os.environ, GSBOOK_PROFILE=profile,
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    t0 = time.perf_counter()
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError, TimeoutError, RuntimeError) as exc:
        i = state["index"]
        where = f"cell {number[i]}/{len(code)}" if i is not None else "kernel"
        src = first_line(nb.cells[i].source, 200) if i is not None else ""
        if isinstance(exc, (CellTimeoutError, TimeoutError)) and not isinstance(exc, CellExecutionError):
            what = f"ran past the {timeout} s cell timeout of the {profile} profile (gsbook.config.cell_timeout)"
        elif isinstance(exc, DeadKernelError):
            what = "killed the kernel (out of memory?)"
        else:
            what = "raised an error"
        detail = _ANSI.sub("", str(exc)).strip()
        raise ChapterFailed(f"[{name}] {where} {what}: {src}\n{detail}") from exc
    for s, c in zip(source.cells, nb.cells):  # back to the source's metadata: the cache matches on it
        c.metadata = copy.deepcopy(s.metadata)
    return Executed(nb, seconds, time.perf_counter() - t0)


@dataclass
class ChapterRecord:
    doc: str
    seconds: float
    cell_seconds: list[float] = field(default_factory=list)
    cached: bool = False
    executed_by: str = ""
    date: str = ""
    sources: list[str] = field(default_factory=list)

    @property
    def slowest(self) -> tuple[int, float]:
        """(1-based code-cell number, seconds) of the slowest cell."""
        if not self.cell_seconds:
            return 0, 0.0
        k = max(range(len(self.cell_seconds)), key=self.cell_seconds.__getitem__)
        return k + 1, self.cell_seconds[k]


def code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def ensure_executed(profile: str, docs: Iterable[str] | None = None, *, log: Callable[[str], None] | None = print,
                    force: bool = False) -> list[ChapterRecord]:
    """Make sure each chapter (default: all, from _toc.yml) has an executed copy in the cache.

    A cached chapter is reported and reused; any other is executed (:func:`execute`) and stored.
    ``force`` executes every chapter afresh. Raises :class:`ChapterFailed` at the first failure."""
    docs = list(docs) if docs is not None else chapters()
    fp = fingerprint()
    folder = cache_dir(profile, fp)
    out = []
    for doc in docs:
        path = ROOT / f"{doc}.ipynb"
        name = Path(doc).name
        source = nbformat.read(path, as_version=4)
        hit = None if force else lookup(source, folder)
        if hit is not None:
            secs = float(hit.get("execution_seconds") or 0.0)
            if log:
                log(f"[{name}] cached (executed by {hit.get('executed_by', 'jupyter-book')} in {secs:.1f} s "
                    f"on {when(hit.get('date') or hit.get('created'))})")
            out.append(ChapterRecord(doc, secs, list(hit.get("cell_seconds") or []), True,
                                     hit.get("executed_by", "jupyter-book"), hit.get("date", ""), code_sources(source)))
            continue
        if log:
            log(f"[{name}] executing ({profile} profile, cell timeout {gsconfig.cell_timeout(profile)} s)")
        run = execute(path, profile, log=log)
        store(source, run.nb, profile=profile, executed_by="nbclient", cell_seconds=run.cell_seconds,
              uri=str(path), doc=doc, folder=folder, fp=fp)
        secs = sum(run.cell_seconds)
        if log:
            log(f"[{name}] executed in {secs:.1f} s ({run.seconds:.1f} s with the kernel's start); stored in {folder}")
        out.append(ChapterRecord(doc, secs, run.cell_seconds, False, "nbclient",
                                 _dt.datetime.now().astimezone().isoformat(timespec="seconds"), code_sources(source)))
    return out
