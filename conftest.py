"""pytest hooks for the whole repository: nbval's chapter runs are the ones the website reuses.

Active only when nbval is (``pytest --nbval-lax chapters``, as ``./run.sh test`` runs it):

* the per-cell timeout is the active profile's ``gsbook.config.cell_timeout()`` unless
  ``--nbval-cell-timeout`` was given on the command line;
* each cell's outputs (nbval's ``item.test_outputs``) and seconds are kept; when every code
  cell of a notebook passed, the executed notebook (the source's cells and metadata, these
  outputs, consecutive execution counts) is stored in the profile's jupyter-cache folder by
  tools/notebooks.py, where ``tools/build_book.py`` (and so tests/site) finds it and does not
  execute the chapter again;
* nbval ignores comm messages, so the widget state is not in its outputs: before nbval stops
  the kernel (in the notebook's teardown), the still-running kernel is asked for
  ``ipywidgets.Widget.get_manager_state()``, which goes into the notebook metadata where
  nbclient puts it (``metadata.widgets["application/vnd.jupyter.widget-state+json"]``);
  the static site draws pure-ipywidgets figures (§1's noising slider) from it;
* the terminal summary lists each chapter's seconds and slowest cell, and flags (never fails)
  cells over ``gsbook.config.cell_budget()`` and, in the ci profile, chapters over
  ``gsbook.config.CI_CHAPTER_BUDGET_S``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import pytest

ROOT = Path(__file__).resolve().parent
STATE_MARK = "GSBOOK-WIDGET-STATE:"
# Runs in the chapter's kernel after its last cell; not stored in the kernel's history.
WIDGET_STATE_SNIPPET = f"""
def _gsbook_widget_state():
    import json, sys
    w = sys.modules.get("ipywidgets")
    state = w.Widget.get_manager_state(drop_defaults=False) if w is not None else None
    print({STATE_MARK!r} + json.dumps(state))
_gsbook_widget_state()
del _gsbook_widget_state
"""


def _nbval_active(config) -> bool:
    return bool(getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False))


def _given(config, flag: str) -> bool:
    args = list(config.invocation_params.args) + shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    return any(str(a) == flag or str(a).startswith(flag + "=") for a in args)


def pytest_configure(config):
    if not _nbval_active(config):
        return
    from gsbook import config as gsconfig

    try:
        profile = gsconfig.profile()
    except (ValueError, RuntimeError) as exc:
        raise pytest.UsageError(str(exc)) from None
    if not _given(config, "--nbval-cell-timeout"):
        config.option.nbval_cell_timeout = gsconfig.cell_timeout(profile)
    ensure_cjk_font()
    config.pluginmanager.register(NbvalRecorder(config, profile), "gsbook-nbval-recorder")


CJK_FONT_DIR = Path("/usr/share/fonts/truetype/wqy")


def ensure_cjk_font() -> None:
    """The chapters' plots carry Chinese labels, drawn with WenQuanYi Micro Hei (chapters/matplotlibrc
    lists it after DejaVu Sans). Where it is missing and apt-get can run, install it before any
    chapter starts, and drop matplotlib's font cache so the kernels see it; otherwise carry on
    (the labels then lack their Chinese glyphs, which matplotlib reports as a warning)."""
    import shutil
    import subprocess

    if not CJK_FONT_DIR.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=300)
            subprocess.run(["apt-get", "install", "-y", "-qq", "fonts-wqy-microhei"], check=False,
                           capture_output=True, env=env, timeout=300)
        except subprocess.TimeoutExpired:
            return
    if CJK_FONT_DIR.exists():            # a font list cached before the font arrived would hide it
        for cache in (Path.home() / ".cache" / "matplotlib").glob("fontlist-*.json"):
            if "wqy" not in cache.read_text(errors="ignore"):
                cache.unlink(missing_ok=True)


@dataclass
class CellRun:
    passed: bool
    seconds: float
    outputs: list


@dataclass
class NotebookRun:
    path: Path
    doc: str
    source: object  # nbformat.NotebookNode, as nbval read and ran it
    cells: dict[int, CellRun] = field(default_factory=dict)
    failed: bool = False
    stored: str = ""
    note: str = ""

    @property
    def n_code(self) -> int:
        return sum(c.cell_type == "code" for c in self.source.cells)

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.cells.values())

    def complete(self) -> bool:
        return (not self.failed and len(self.cells) == self.n_code
                and all(c.passed for c in self.cells.values()))


class NbvalRecorder:
    """Keeps nbval's per-cell outputs and seconds; stores fully passing notebooks for the site."""

    def __init__(self, config, profile: str):
        sys.path.insert(0, str(ROOT / "tools"))
        import notebooks  # tools/notebooks.py

        self.nb = notebooks
        self.config = config
        self.profile = profile
        self.fingerprint = notebooks.fingerprint()  # of the library these runs start with
        self.runs: dict[str, NotebookRun] = {}

    def _run(self, item) -> NotebookRun | None:
        from nbval.plugin import IPyNbCell

        if not isinstance(item, IPyNbCell):
            return None
        key = item.parent.nodeid
        if key not in self.runs:
            path = Path(str(item.parent.fspath)).resolve()
            self.runs[key] = NotebookRun(path, self.nb.doc_of(path), item.parent.nb)
        return self.runs[key]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        run = self._run(item)
        if run is None:
            return
        report = outcome.get_result()
        if report.when == "call":
            run.cells[item.cell_num] = CellRun(report.passed, call.duration, list(item.test_outputs or []))
        elif report.failed:  # setup (kernel start) or teardown
            run.failed = True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        run = self._run(item)
        if run is not None and (nextitem is None or nextitem.parent is not item.parent):
            try:  # the notebook's last cell; the kernel is still alive (nbval stops it after this)
                self._finish(item, run)
            except Exception as exc:  # never fail a test for the cache's sake
                run.note = f"not stored: {type(exc).__name__}: {exc}"
        yield

    def _finish(self, item, run: NotebookRun) -> None:
        if not run.complete():
            run.note = "not stored: not every cell ran and passed"
            return
        kernel = item.parent.kernel
        if kernel is None or not kernel.is_alive():
            run.note = "not stored: the kernel is gone"
            return
        language_info = _kernel_language_info(kernel)
        state = _kernel_widget_state(kernel)
        outputs = {k: c.outputs for k, c in run.cells.items()}
        executed = self.nb.assemble(run.source, outputs, widget_state=state, language_info=language_info)
        seconds = [run.cells[k].seconds for k in range(run.n_code)]
        folder = self.nb.store(run.source, executed, profile=self.profile, executed_by="nbval",
                               cell_seconds=seconds, uri=str(run.path), doc=run.doc,
                               folder=self.nb.cache_dir(self.profile, self.fingerprint), fp=self.fingerprint)
        n_widgets = len((state or {}).get("state") or {})
        run.stored = f"stored in {folder}" + (f" with {n_widgets} widget models" if n_widgets else "")

    def pytest_terminal_summary(self, terminalreporter):
        if not self.runs:
            return
        from gsbook import config as gsconfig

        budget, chapter_budget = gsconfig.cell_budget(self.profile), gsconfig.CI_CHAPTER_BUDGET_S
        tr = terminalreporter
        tr.section(f"chapter execution times (nbval, {self.profile} profile; "
                   f"cell budget {budget:g} s, timeout {self.config.option.nbval_cell_timeout:g} s)")
        total = 0.0
        for run in self.runs.values():
            secs = run.seconds
            total += secs
            if run.cells:
                k, slow = max(run.cells.items(), key=lambda kv: kv[1].seconds)
                src = self.nb.first_line(run.source.cells[_cell_index(run.source, k)].source, 50)
                slowest = f"slowest cell {k + 1}/{run.n_code} {slow.seconds:5.1f} s ({src})"
            else:
                slowest = "no cell ran"
            flags = [f"cell {k + 1} {c.seconds:.1f} s > {budget:g} s" for k, c in sorted(run.cells.items())
                     if c.seconds > budget]
            if self.profile == "ci" and secs > chapter_budget:
                flags.insert(0, f"chapter {secs:.0f} s > {chapter_budget} s")
            mark = "OVER BUDGET: " + "; ".join(flags) if flags else ""
            tr.write_line(f"{Path(run.doc).name:<18} {secs:6.1f} s  {slowest}  {mark}".rstrip())
            tr.write_line(f"{'':<18} {run.stored or run.note}")
        tr.write_line(f"{'all notebooks':<18} {total:6.1f} s")


def _cell_index(nb, code_k: int) -> int:
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    return code[code_k]


def _shell_reply(kernel, msg_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = kernel.get_message("shell", timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def _kernel_language_info(kernel) -> dict | None:
    try:
        return _shell_reply(kernel, kernel.kc.kernel_info(), 30)["content"].get("language_info")
    except Empty:
        return None


def _kernel_widget_state(kernel, timeout: float = 120) -> dict | None:
    """``ipywidgets.Widget.get_manager_state()`` of the running kernel (None: no widgets)."""
    msg_id = kernel.execute_cell_input(WIDGET_STATE_SNIPPET, allow_stdin=False)
    reply = _shell_reply(kernel, msg_id, timeout)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"the widget-state snippet failed: {reply['content'].get('evalue')}")
    text, deadline = [], time.monotonic() + timeout
    while True:
        msg = kernel.get_message("iopub", timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            text.append(msg["content"]["text"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    out = "".join(text)
    if STATE_MARK not in out:
        raise RuntimeError("the widget-state snippet printed nothing")
    state = json.loads(out.split(STATE_MARK, 1)[1])
    return state if state and state.get("state") else None
