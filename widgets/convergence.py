"""Figure 2, "SDS-driven convergence" (§2): random 3D Gaussians pulled into the prompt's object.

The compute is :class:`gsbook.methods.DreamGaussian` (stage 1: score distillation with the
book's prior, densification every ``densify_every`` steps); this module only draws it:

* the current Gaussians from one camera at elevation 20° that turns once around the object
  over the run (so the reader sees it is 3D), on white;
* an **N counter** that flashes (``+88 at step 100``) when densification clones and splits
  Gaussians, an **N(step)** curve with the densification steps dashed, and the **SDS loss**
  (½‖g‖², log scale; it is a diagnostic, it falls mostly because the timestep is annealed);
* a readout ``iter k · N = … · t = … · loss = …``.

Two renderings of one figure, as for Figure 1 (:mod:`widgets.sds_loop`):

* **live** (JupyterLab, a kernel runs): ipywidgets. The **play** button (an ipywidgets
  ``Play``) drives *real* SDS steps in the kernel: each tick the run takes one step and the
  render, counter, curves and readout are redrawn. The live run starts fresh at iteration 0
  (the same seed gives the same run as the static player's); moving the slider back shows
  the frames already computed, moving it forward computes the steps in between. **step**
  advances one iteration, **reset** starts a new run from the same random Gaussians.
* **static** (the website, no kernel): the same run computed ahead of time, one frame per
  step (every k-th step for long runs, so the page stays small; the curves keep every step),
  with client-side **play/pause**, **step**, **reset** and a slider.

:func:`figure` returns one object that carries both; ``nb_mime_priority_overrides`` in
``_config.yml`` makes the website show the static player.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import uuid
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor

from gsbook.cameras import orbit
from gsbook.images import png_bytes, to_pil
from gsbook.methods import DreamGaussian, DreamGaussianConfig
from gsbook.render import render
from gsbook.sds import BookPrior
from widgets import sds_loop
from widgets.player import CONTROLS_JS, OPEN_JS

__all__ = ["figure", "ConvergenceFigure", "figure_config", "densify_steps", "frame_stride", "render_view",
           "readout", "badge", "counter_html", "curves_svg", "precompute", "static_html", "live"]

SCALE = 3            # screen pixels per render pixel
ELEVATION = 20.0     # the figure's camera: 20° above the object, one turn around it over the run
MAX_FRAMES = 150     # longer runs embed every k-th frame (the curves keep every step)
INTERVAL_MS = 80     # static player: one frame every 80 ms
CHART_W, CHART_H = 330, 104
JUMP = "#e07b00"     # densification colour (dashed lines, counter flash)


# ----------------------------------------------------------------------------- settings
def figure_config(n: int = 200, steps: int = 300, densify_every: int = 100, seed: int = 0,
                  config: DreamGaussianConfig | None = None) -> DreamGaussianConfig:
    """The run's settings: ``config`` (default: the profile's :class:`DreamGaussianConfig`)
    with ``n`` initial Gaussians, ``steps``, ``densify_every`` and ``seed``. (With few initial
    Gaussians the pruning size grows with their spacing: :func:`gsbook.methods.prune_size`.)"""
    return replace(config or DreamGaussianConfig.for_profile(), n_init=n, steps=steps, densify_every=densify_every,
                   seed=seed)


def densify_steps(config: DreamGaussianConfig, steps: int | None = None) -> list[int]:
    """The iterations after which the Gaussians are densified (cloned, split, pruned): the
    multiples of ``densify_every`` below ``densify_until``, up to ``steps``."""
    steps = config.steps if steps is None else steps
    last = min(steps, config.densify_until - 1)
    return list(range(config.densify_every, last + 1, config.densify_every))


def frame_stride(steps: int, max_frames: int = MAX_FRAMES) -> int:
    """Embed every k-th step's frame so that a run has at most ``max_frames`` (+1) frames."""
    return max(1, math.ceil(steps / max_frames))


def azimuth(iteration: int, steps: int) -> float:
    """The figure's camera turns once around the object over ``steps`` iterations."""
    return 360.0 * iteration / max(steps, 1)


def render_view(run: DreamGaussian, size: int, azimuth_deg: float) -> Tensor:
    """The run's current Gaussians ``[size, size, 3]`` on white, from elevation 20°."""
    c = run.config
    cams = orbit(ELEVATION, azimuth_deg, c.radius, c.fovy, size, size, device=run.device)
    with torch.no_grad():
        return render(run.gaussians, cams, background=1.0).image[0].clamp(0, 1).cpu()


def _frame_png(image: Tensor) -> bytes:
    """A small PNG for the static player: 256 adaptive colours (the renders are smooth and
    96² pixels, so this looks the same as full colour at a third of the bytes)."""
    buf = io.BytesIO()
    to_pil(image).quantize(256).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# ----------------------------------------------------------------------------- text
def readout(k: int, n: list[int], t: list[int], loss: list[float]) -> str:
    """``iter k · N = … · t = … · loss = …`` for iteration ``k`` (``n`` per iteration from 0;
    ``t`` and ``loss`` per step, so iteration 0 has none)."""
    if k == 0:
        return f"iter 0 · N = {n[0]} · t = – · loss = –"
    return f"iter {k} · N = {n[k]} · t = {t[k - 1]} · loss = {loss[k - 1]:.4g}"


def jump_window(steps: int) -> int:
    """For how many iterations after a densification the counter keeps flashing."""
    return max(10, steps // 12)


def badge(n: list[int], k: int, window: int) -> str:
    """``"+88 at step 100"`` while iteration ``k`` is within ``window`` steps of the last
    change of N (densification), else ``""``."""
    for d in range(min(k, len(n) - 1), max(0, k - window + 1) - 1, -1):
        if d > 0 and n[d] != n[d - 1]:
            dn = n[d] - n[d - 1]
            return f"{'+' if dn > 0 else '−'}{abs(dn)} at step {d}"
    return ""


def counter_html(n: int, note: str = "") -> str:
    """The N counter: the count, large, and (after densification) the jump, highlighted."""
    bg = "#ffe2b0" if note else "transparent"
    return (f'<div class="gsbook-ncounter" style="display:inline-block;padding:.1em .5em;border-radius:4px;'
            f'background:{bg};font-variant-numeric:tabular-nums">N = <b class="gsbook-n" style="font-size:1.5em">'
            f'{n}</b> Gaussians · 个高斯 <span class="gsbook-dn" style="color:{JUMP};font-weight:600">{html.escape(note)}'
            f'</span></div>')


# ----------------------------------------------------------------------------- curves
@dataclass
class _Axes:
    """One small chart's mapping from (iteration, value) to SVG pixels."""

    steps: int
    lo: float
    hi: float
    log: bool = False
    left: int = 44
    right: int = 8
    top: int = 16
    bottom: int = 16

    def x(self, it: float) -> float:
        return round(self.left + (CHART_W - self.left - self.right) * it / max(self.steps, 1), 1)

    def y(self, v: float) -> float:
        if self.log:
            v = math.log10(max(v, 1e-12))
        r = (v - self.lo) / (self.hi - self.lo)
        return round(CHART_H - self.bottom - (CHART_H - self.top - self.bottom) * r, 1)


def _n_axes(n: list[int], steps: int) -> _Axes:
    """N's axis: from below the smallest to above the largest count, in round numbers."""
    unit = max(1, 10 ** math.floor(math.log10(max(max(n), 10))) // 2)
    lo, hi = unit * (min(n) // unit), unit * -(-max(n) // unit)
    return _Axes(steps, lo, hi if hi > lo else lo + unit)


def _loss_axes(loss: list[float], steps: int) -> _Axes:
    logs = [math.log10(max(v, 1e-12)) for v in loss] or [0.0]
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    return _Axes(steps, lo, hi if hi > lo else lo + 1, log=True)


def _smooth(values: list[float], window: int) -> list[float]:
    """Running geometric mean (the loss spans orders of magnitude)."""
    logs = [math.log10(max(v, 1e-12)) for v in values]
    out = []
    for i in range(len(logs)):
        part = logs[max(0, i - window + 1): i + 1]
        out.append(10 ** (sum(part) / len(part)))
    return out


def _chart(name: str, title: str, ax: _Axes, body: str, densify: list[int], y_labels: tuple[str, str],
           marker: tuple[float, float] | None) -> str:
    x0, x1 = ax.x(0), ax.x(ax.steps)
    y0, y1 = CHART_H - ax.bottom, ax.top
    lines = "".join(f'<line class="gsbook-densify" x1="{ax.x(d)}" x2="{ax.x(d)}" y1="{y1}" y2="{y0}" stroke="{JUMP}" '
                    f'stroke-dasharray="3 2"/>' for d in densify)
    mx, my = marker if marker is not None else (x0, y0)
    hidden = ' visibility="hidden"' if marker is None else ""
    return (
        f'<svg class="gsbook-chart" data-chart="{name}" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" '
        f'height="{CHART_H}" style="font:10px sans-serif;display:block">'
        f'<text x="{x0}" y="11" fill="#333">{html.escape(title)}</text>'
        f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#bbb"/>'
        f'<text x="{x0 - 3}" y="{y1 + 8}" text-anchor="end" fill="#666">{html.escape(y_labels[1])}</text>'
        f'<text x="{x0 - 3}" y="{y0}" text-anchor="end" fill="#666">{html.escape(y_labels[0])}</text>'
        f'<text x="{x0}" y="{CHART_H - 3}" fill="#666">0</text>'
        f'<text x="{x1}" y="{CHART_H - 3}" text-anchor="end" fill="#666">step {ax.steps}</text>'
        f'{lines}{body}'
        f'<line data-marker-line="{name}" x1="{mx}" x2="{mx}" y1="{y1}" y2="{y0}" stroke="#2f6db5" stroke-width="1"/>'
        f'<circle data-marker="{name}" cx="{mx}" cy="{my}" r="3.5" fill="#2f6db5"{hidden}/>'
        f'</svg>')


def _fmt_power(p: int) -> str:
    return f"1e{p}" if p not in (0, 1, 2, 3) else f"{10 ** p:g}"


def marks(n: list[int], loss: list[float], steps: int, iterations: list[int]) -> dict[str, list]:
    """Where the charts' markers sit at each of ``iterations``: ``{"n": [[x, y]], "loss": [[x, y] or None]}``."""
    nax, lax = _n_axes(n, steps), _loss_axes(loss, steps)
    return {"n": [[nax.x(k), nax.y(n[k])] for k in iterations],
            "loss": [[lax.x(k), lax.y(loss[k - 1])] if k > 0 else None for k in iterations]}


def curves_svg(n: list[int], loss: list[float], steps: int, densify: list[int], marker: int | None = 0,
               t: list[int] | None = None) -> str:
    """Two small SVG charts over ``0 … steps``: N(step) (a staircase, densification steps
    dashed) and the SDS loss (log scale: each step faint, a running geometric mean bold),
    with a marker at iteration ``marker``. ``n`` has one entry per iteration computed so
    far (from 0), ``loss`` (and ``t``, named in the loss chart's title) one per step
    (so ``len(n) == len(loss) + 1``)."""
    if len(n) != len(loss) + 1:
        raise ValueError(f"need N for every iteration and one loss per step, got {len(n)} N, {len(loss)} losses")
    nax, lax = _n_axes(n, steps), _loss_axes(loss, steps)
    path = f"M{nax.x(0)} {nax.y(n[0])}"
    for k in range(1, len(n)):
        if n[k] != n[k - 1]:
            path += f"H{nax.x(k)}V{nax.y(n[k])}"
    path += f"H{nax.x(len(n) - 1)}"
    n_body = f'<path class="gsbook-curve" d="{path}" fill="none" stroke="#222" stroke-width="1.5"/>'
    spot = None if marker is None else (nax.x(marker), nax.y(n[marker]))
    n_chart = _chart("n", "N, Gaussians (dashed: densification) · 高斯数（虚线：致密化）", nax, n_body, densify,
                     (str(int(nax.lo)), str(int(nax.hi))), spot)
    if loss:
        raw = " ".join(f"{lax.x(k + 1)},{lax.y(v)}" for k, v in enumerate(loss))
        smooth = " ".join(f"{lax.x(k + 1)},{lax.y(v)}"
                          for k, v in enumerate(_smooth(loss, max(3, steps // 30))))
        l_body = (f'<polyline class="gsbook-curve-raw" points="{raw}" fill="none" stroke="#c8c8c8" stroke-width="1"/>'
                  f'<polyline class="gsbook-curve" points="{smooth}" fill="none" stroke="#222" stroke-width="1.5"/>')
    else:
        l_body = ""
    spot = None if marker is None or marker == 0 or marker > len(loss) else (lax.x(marker), lax.y(loss[marker - 1]))
    anneal = f"; t {t[0]} → {t[-1]}" if t else ""
    l_chart = _chart("loss", f"SDS loss · 损失 ½‖g‖² (log · 对数{anneal})", lax, l_body, densify,
                     (_fmt_power(int(lax.lo)), _fmt_power(int(lax.hi))), spot)
    return f'<div class="gsbook-curves">{n_chart}{l_chart}</div>'


# ----------------------------------------------------------------------------- record
def precompute(run: DreamGaussian, steps: int | None = None, size: int = 96, every: int | None = None,
               progress: bool = True) -> dict:
    """Run ``run`` (a new one, at iteration 0) for ``steps`` updates (default: its config's
    steps) and record it.

    Returns ``{"prompt", "size", "steps", "densify": [iterations], "n": [N per iteration,
    steps + 1], "t", "loss", "grad_norm": [per step], "iterations": [iteration of each frame],
    "frames": [PNG bytes, size²], "readouts": [per frame]}``. A frame is kept every
    ``every`` steps (default :func:`frame_stride`) and at the last step.
    """
    from tqdm.auto import tqdm

    if run.iteration != 0:
        raise ValueError(f"precompute records a run from its start; this one is at iteration {run.iteration}")
    steps = run.config.steps if steps is None else steps
    every = every or frame_stride(steps)
    n, frames, iterations = [run.n], [], []

    def snap(k):
        iterations.append(k)
        frames.append(_frame_png(render_view(run, size, azimuth(k, steps))))

    snap(0)
    for k in tqdm(range(1, steps + 1), desc="precomputing the convergence figure", leave=False,
                  disable=not progress):
        run.step()
        n.append(run.history[-1]["n"])
        if k % every == 0 or k == steps:
            snap(k)
    hist = run.history
    t, loss = [h["t"] for h in hist], [h["loss"] for h in hist]
    return {"prompt": run.prompt, "size": size, "steps": steps, "densify": densify_steps(run.config, steps),
            "n": n, "t": t, "loss": loss, "grad_norm": [h["grad_norm"] for h in hist], "iterations": iterations,
            "frames": frames, "readouts": [readout(k, n, t, loss) for k in iterations]}


def jumps(n: list[int]) -> list[int]:
    """The iterations at which N changed."""
    return [k for k in range(1, len(n)) if n[k] != n[k - 1]]


# ----------------------------------------------------------------------------- static player
_PLAYER_JS = OPEN_JS + """
  var img = q("img.gsbook-frame"), out = q(".gsbook-readout"), slider = q("input[type=range]");
  var counter = q(".gsbook-ncounter"), nEl = q(".gsbook-n"), dnEl = q(".gsbook-dn");
  var last = d.frames.length - 1, i = 0;
  function mark(name, p) {
    var dot = q("circle[data-marker=" + name + "]"), line = q("line[data-marker-line=" + name + "]");
    if (!dot) return;
    dot.setAttribute("visibility", p ? "visible" : "hidden");
    if (!p) return;
    dot.setAttribute("cx", p[0]); dot.setAttribute("cy", p[1]);
    line.setAttribute("x1", p[0]); line.setAttribute("x2", p[0]);
  }
  function show(k) {
    i = Math.max(0, Math.min(last, k));
    img.src = "data:image/png;base64," + d.frames[i];
    slider.value = i;
    out.textContent = d.readouts[i];
    nEl.textContent = d.n[i];
    dnEl.textContent = d.badges[i];
    counter.style.background = d.badges[i] ? "#ffe2b0" : "transparent";
    mark("n", d.marks.n[i]); mark("loss", d.marks.loss[i]);
    root.setAttribute("data-iteration", d.iterations[i]);
    root.setAttribute("data-n", d.n[i]);
  }
""" + CONTROLS_JS


def static_html(rec: dict, caption: str = "", scale: int = SCALE) -> str:
    """A self-contained HTML player (no kernel, no network) for :func:`precompute`'s record."""
    frames, iterations, n, loss = rec["frames"], rec["iterations"], rec["n"], rec["loss"]
    if not frames or len(frames) != len(iterations) or len(rec["readouts"]) != len(frames) \
            or len(n) != len(loss) + 1 or iterations[-1] > len(loss):
        raise ValueError(f"need one iteration and readout per frame and N per iteration: {len(frames)} frames, "
                         f"{len(iterations)} iterations, {len(rec['readouts'])} readouts, {len(n)} N, "
                         f"{len(loss)} losses")
    steps, window = rec["steps"], jump_window(rec["steps"])
    pid = "gsbook-conv-" + uuid.uuid4().hex[:10]
    data = {"frames": [base64.b64encode(f).decode("ascii") for f in frames], "iterations": iterations,
            "n": [n[k] for k in iterations], "readouts": rec["readouts"],
            "badges": [badge(n, k, window) for k in iterations], "marks": marks(n, loss, steps, iterations)}
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    side = rec["size"] * scale
    buttons = "".join(f'<button type="button" data-action="{a}">{label}</button>'
                      for a, label in (("play", "▶ play · 播放"), ("step", "step · 单步"), ("reset", "reset · 重置")))
    jump_list = ", ".join(str(k) for k in jumps(n)) or "none"
    return f"""
<div class="gsbook-player gsbook-convergence" id="{pid}" data-figure="convergence" data-frames="{len(frames)}" data-steps="{steps}" data-iteration="0" data-n="{n[0]}">
  <div class="gsbook-controls" style="display:flex;gap:.4em;align-items:center;flex-wrap:wrap;margin-bottom:.4em">
    {buttons}
    <input type="range" min="0" max="{len(frames) - 1}" value="0" step="1" aria-label="frame" style="width:14em">
  </div>
  <div style="margin-bottom:.4em"><code class="gsbook-readout">{html.escape(rec["readouts"][0])}</code></div>
  <div style="display:flex;gap:14px;align-items:flex-start;flex-wrap:wrap">
    <figure style="margin:0"><img class="gsbook-frame" alt="render of the Gaussians, turning" width="{side}" height="{side}"
      style="image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #ddd" src="data:image/png;base64,{data['frames'][0]}">
      <figcaption style="font-size:.8em">{html.escape(rec["prompt"])}</figcaption></figure>
    <div>
      {counter_html(n[0], data["badges"][0])}
      {curves_svg(n, loss, steps, rec["densify"], marker=0, t=rec["t"])}
      <div style="font-size:.75em;color:#666">N changed at step {html.escape(jump_list)} · N 在第 {html.escape(jump_list)} 步变化</div>
    </div>
  </div>
  <div class="gsbook-caption" style="font-size:.85em;color:#555">{html.escape(caption)}</div>
  <script type="application/json" class="gsbook-data">{payload}</script>
  <script>{_PLAYER_JS % {"id": json.dumps(pid), "interval": INTERVAL_MS}}</script>
</div>"""


# ----------------------------------------------------------------------------- live widget
def live(make_run: Callable[[], DreamGaussian], steps: int, size: int = 96):
    """The JupyterLab figure: a ``Play`` widget whose ticks run SDS steps in the kernel.

    ``make_run()`` builds the run at iteration 0 (called again by **reset**). The Play
    widget's value is the iteration shown: moving it forward steps the run (each step's
    frame is kept), moving it back shows a kept frame. The box carries ``.state`` (the run,
    frames, N per iteration) for tests.
    """
    import ipywidgets as W

    window = jump_window(steps)
    state: dict = {}
    play = W.Play(value=0, min=0, max=steps, step=1, interval=150, description="play · 播放", show_repeat=False)
    slider = W.IntSlider(value=0, min=0, max=steps, description="iter", continuous_update=False)
    W.jslink((play, "value"), (slider, "value"))
    step, reset = W.Button(description="step · 单步"), W.Button(description="reset · 重置")
    image = W.Image(format="png", width=size * SCALE, height=size * SCALE)
    counter, curves, line = W.HTML(), W.HTML(), W.HTML()

    def snap():
        run = state["run"]
        state["frames"].append(png_bytes(render_view(run, size, azimuth(run.iteration, steps)), scale=SCALE))

    def start():
        state.update(run=make_run(), frames=[])
        state["n"] = [state["run"].n]
        snap()

    def show(k):
        run = state["run"]
        while run.iteration < k:
            run.step()
            state["n"].append(run.n)
            snap()
        n = state["n"]
        t = [h["t"] for h in run.history]
        loss = [h["loss"] for h in run.history]
        image.value = state["frames"][k]
        counter.value = counter_html(n[k], badge(n, k, window))
        curves.value = curves_svg(n, loss, steps, densify_steps(run.config, steps), marker=k, t=t)
        line.value = f"<code>{html.escape(readout(k, n, t, loss))}</code>"

    def on_value(change):
        show(change["new"])

    def on_step(_):
        play.playing = False
        play.value = min(steps, play.value + 1)

    def on_reset(_):
        play.playing = False
        start()
        if play.value == 0:
            show(0)
        else:
            play.value = 0

    play.observe(on_value, names="value")
    step.on_click(on_step)
    reset.on_click(on_reset)
    start()
    show(0)
    box = W.VBox([W.HBox([play, step, reset, slider]), line,
                  W.HBox([image, W.VBox([counter, curves])])])
    box.state = state
    box.play = play
    return box


# ----------------------------------------------------------------------------- the figure
class ConvergenceFigure:
    """Live widget in JupyterLab, static player on the website (one output, two renderings).

    Attributes:
        run: the precomputed :class:`DreamGaussian` run (at its last iteration).
        record: :func:`precompute`'s record; ``n`` (per iteration), ``t``, ``loss`` (per step).
        widget: the live figure (its own run, from iteration 0); ``html``: the static player.
    """

    def __init__(self, run: DreamGaussian, record: dict, widget, caption: str = ""):
        self.run, self.record, self.widget = run, record, widget
        self.n, self.t, self.loss = record["n"], record["t"], record["loss"]
        self.html = static_html(record, caption)

    @property
    def jumps(self) -> list[int]:
        """The steps at which densification changed N."""
        return jumps(self.n)

    def _summary(self) -> str:
        r = self.record
        return (f"Convergence figure ({r['prompt']!r}): {len(r['frames'])} frames over {r['steps']} steps, "
                f"N {self.n[0]} → {self.n[-1]} (max {max(self.n)}), {len(self.jumps)} densification jump"
                f"{'' if len(self.jumps) == 1 else 's'}"
                + (f" (at step {', '.join(map(str, self.jumps))})" if self.jumps else ""))

    # the same bundle as Figure 1's: the widget's view, the static player, the summary
    _repr_mimebundle_ = sds_loop.SDSLoopFigure._repr_mimebundle_


def figure(prior: BookPrior | None = None, prompt: str = "a red mushroom with a white stem", n: int = 200,
           steps: int = 300, densify_every: int = 100, seed: int = 0, caption: str = "", size: int = 96,
           config: DreamGaussianConfig | None = None, progress: bool = True) -> ConvergenceFigure:
    """Build Figure 2: ``n`` random Gaussians (a ball of radius 0.5) distilled for ``steps``
    DreamGaussian steps with ``prior`` (default :class:`~gsbook.sds.BookPrior`) and ``prompt``,
    densified every ``densify_every`` steps; frames rendered at ``size``² on white.

    ``config`` supplies the rest of the run's settings (default: the profile's, see
    :func:`figure_config`).
    """
    if steps < 1 or n < 4 or size < 8:
        raise ValueError(f"steps ≥ 1, n ≥ 4 and size ≥ 8 are needed, got steps={steps}, n={n}, size={size}")
    prior = prior or BookPrior()
    cfg = figure_config(n, steps, densify_every, seed, config)
    run = DreamGaussian(prior, prompt, cfg)
    record = precompute(run, steps, size, progress=progress)
    widget = live(lambda: DreamGaussian(prior, prompt, cfg), steps, size)
    return ConvergenceFigure(run, record, widget, caption)
