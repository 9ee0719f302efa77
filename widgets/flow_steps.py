"""Trellis' flow steps (§4): the occupancy emerging, then the Gaussians, one Euler step at a time.

TRELLIS samples in two stages, each a rectified flow integrated from noise (``t = 1``) to data
(``t = 0``) with Euler steps (:func:`gsbook.flow.euler_sample`). At every step the flow's
velocity ``v`` gives a guess of the clean sample, ``x̂₀ = x_t − t·v`` (σ_min ≈ 10⁻⁵ is
negligible); decoding that guess shows what the sampler "has in mind" at that moment:

* **stage 1 · 阶段一, structure**: the structure VAE decodes ``x̂₀`` to an occupancy; its shell
  (the active voxels) is drawn as small opaque Gaussians, coloured by height;
* **stage 2 · 阶段二, appearance**: on the final structure's shell, the SLat VAE decodes ``x̂₀``
  (the flow's normalisation undone) to Gaussians, rendered as they are.

:func:`trellis_frames` runs both samplers with the book's models and renders those guesses
from one fixed camera (the compute is :mod:`gsbook.methods`; this module only picks the steps
and draws them). :func:`figure` walks through stage 1's frames and then stage 2's with one
slider, in two renderings, as the other figures do (:mod:`widgets.convergence`):

* **live** (JupyterLab): ipywidgets, a ``Play`` and a slider whose callback swaps the frame;
* **static** (the website, no kernel): every frame embedded as a PNG, with client-side
  **play/pause**, **step**, **reset** and a slider.

``nb_mime_priority_overrides`` in ``_config.yml`` makes the website show the static player.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from gsbook.cameras import Cameras, orbit
from gsbook.gaussians import Gaussians
from gsbook.images import png_bytes, to_pil
from gsbook.methods import (TrellisModels, decode_slat, sample_slat, sample_structure, shell_coords,
                            voxel_gaussians)
from gsbook.render import render
from widgets import sds_loop
from widgets.player import CONTROLS_JS, OPEN_JS

__all__ = ["FlowFrames", "trellis_frames", "kept_steps", "view", "render_gaussians",
           "render_occupancy", "labels", "static_html", "live", "FlowStepsFigure", "figure", "STAGES"]

ELEVATION, AZIMUTH = 20.0, 35.0   # one fixed camera, above and to the side, so every frame compares
SCALE = 3                         # screen pixels per render pixel
MAX_FRAMES = 12                   # frames kept per stage (a 25-step run would otherwise embed 52)
INTERVAL_MS = 450                 # static player: slow enough to read the label of each frame
STAGES = ("stage 1 · 阶段一: structure · 结构", "stage 2 · 阶段二: appearance · 外观")


class FlowFrames(NamedTuple):
    """What :func:`trellis_frames` makes, in the order :func:`figure` takes it (``figure(*frames)``).

    Attributes:
        structure: stage 1's frames, ``[H, W, 3]`` in [0, 1] each (the last one: the final structure).
        gaussians: stage 2's frames, likewise (the last one: the final Gaussians).
        times: the flow time ``t`` of every frame, stage 1's then stage 2's (``1`` = noise, ``0`` = done).
        steps: Euler steps per stage (frame ``k`` of a stage shows step ``round((1 − t)·steps)``).
    """

    structure: list[Tensor]
    gaussians: list[Tensor]
    times: list[float]
    steps: int


# ----------------------------------------------------------------------------- which steps, from where
def kept_steps(steps: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """The Euler steps whose guess is shown: at most ``max_frames`` of ``0 … steps``, evenly
    spread, always the first (pure noise) and the last (the result). Step ``i`` is the state
    after ``i`` steps, at ``t = 1 − i/steps``."""
    if steps < 1 or max_frames < 2:
        raise ValueError(f"need steps ≥ 1 and max_frames ≥ 2, got steps={steps}, max_frames={max_frames}")
    m = min(max_frames, steps + 1)
    return sorted({round(k * steps / (m - 1)) for k in range(m)})


def view(size: int, device: torch.device | str | None = None) -> Cameras:
    """The figure's one camera: elevation 20°, azimuth 35°, ``size × size`` pixels."""
    return orbit(ELEVATION, AZIMUTH, 2.5, 49.1, size, size, device=device)


# ----------------------------------------------------------------------------- drawing a guess
def render_gaussians(gaussians: Gaussians | None, cameras: Cameras) -> Tensor:
    """``gaussians`` from the first of ``cameras`` on white: ``[H, W, 3]`` in [0, 1] (white if ``None``)."""
    if gaussians is None or gaussians.n == 0:
        return torch.ones(cameras.height, cameras.width, 3)
    with torch.no_grad():
        return render(gaussians, cameras[:1], background=1.0).image[0].clamp(0, 1).cpu()


def render_occupancy(occupancy: Tensor, cameras: Cameras) -> Tensor:
    """Stage 1's picture of an occupancy ``[R, R, R]`` bool: its voxels, ``[H, W, 3]``."""
    return render_gaussians(voxel_gaussians(occupancy), cameras)


# ----------------------------------------------------------------------------- running the two flows
def _generator(seed: int, stage: int) -> torch.Generator:
    # the seeding of gsbook.methods.trellis_text_to_3d, so the figure draws the same object for a seed
    return torch.Generator().manual_seed(seed * 2 + stage)


def trellis_frames(models: TrellisModels, caption: str, steps: int = 25, seed: int = 0, size: int = 96,
                   guidance: float = 3.0, max_frames: int = MAX_FRAMES, progress: bool = True) -> FlowFrames:
    """Sample ``caption`` with TRELLIS' two flows and render each kept step's clean-sample guess.

    Stage 1 (:func:`~gsbook.methods.sample_structure`): ``x̂₀ = z_t − t·v`` decoded by the
    structure VAE, ``> 0`` = occupied, drawn by :func:`render_occupancy`. Stage 2
    (:func:`~gsbook.methods.sample_slat`, on the final structure's shell): ``x̂₀`` with the
    flow's latent statistics undone, decoded to Gaussians (:func:`~gsbook.methods.decode_slat`).
    Both stages use ``steps`` Euler steps, classifier-free guidance ``guidance`` and the same
    seeds as :func:`~gsbook.methods.trellis_text_to_3d` with ``TrellisConfig(steps, seed=seed)``.

    Returns:
        :class:`FlowFrames`: ``[size, size, 3]`` frames, at most ``max_frames`` per stage
        (:func:`kept_steps`), the last of each stage being its result (``t = 0``).
    """
    from tqdm.auto import tqdm

    keep = set(kept_steps(steps, max_frames))
    cameras = view(size, models.device)
    structure, gaussians, times = [], [], []
    bar = tqdm(total=2 * steps, desc="flow steps figure", leave=False, disable=not progress)

    def on_structure(i: int, t: Tensor, z_t: Tensor, v: Tensor) -> None:      # z_t, v: [1, 8, r, r, r]
        bar.update()
        if i in keep:
            guess = models.ss_vae.decode_latents(z_t - t.view(-1, 1, 1, 1, 1) * v)[0] > 0   # [R, R, R]
            structure.append(render_occupancy(guess, cameras))
            times.append(round(float(t[0]), 6))

    occupancy = sample_structure(models.ss_vae, models.ss_flow, [caption], steps=steps, guidance=guidance,
                                 generator=_generator(seed, 1), callback=on_structure)[0]
    structure.append(render_occupancy(occupancy, cameras))
    times.append(0.0)

    coords = shell_coords(occupancy)                                           # [N, 3]
    if len(coords) == 0:
        bar.close()
        raise RuntimeError(f"stage 1 made an empty structure for {caption!r}: nothing to put a latent on "
                           "(try another seed)")
    flow = models.slat_flow

    def on_slat(i: int, t: Tensor, x_t: Tensor, v: Tensor) -> None:           # x_t, v: [1, N, 8], normalised
        bar.update()
        if i in keep:
            # one object, so no padding: every row is a real voxel
            slat = (x_t - t.view(-1, 1, 1) * v)[0] * flow.latent_std + flow.latent_mean   # [N, 8]
            gaussians.append(render_gaussians(decode_slat(models, coords, slat), cameras))
            times.append(round(float(t[0]), 6))

    slat = sample_slat(flow, [coords], [caption], steps=steps, guidance=guidance,
                       generator=_generator(seed, 2), callback=on_slat)[0]
    gaussians.append(render_gaussians(decode_slat(models, coords, slat), cameras))
    times.append(0.0)
    bar.close()
    return FlowFrames(structure, gaussians, times, steps)


# ----------------------------------------------------------------------------- labels
def labels(n_structure: int, n_gaussians: int, times: Sequence[float] | None = None,
           steps: int | None = None) -> list[str]:
    """One readout per frame: ``stage 1 · 阶段一: structure · 结构, step i/N, t = 0.60``.

    Without ``times``, each stage's frames are taken as evenly spaced from ``t = 1`` to ``0``.
    Without ``steps``, frames are counted instead of Euler steps (``frame k/K``).
    """
    total = n_structure + n_gaussians
    if times is None:
        times = [1 - k / max(n - 1, 1) for n in (n_structure, n_gaussians) for k in range(n)]
    if len(times) != total:
        raise ValueError(f"need one time per frame: {n_structure} + {n_gaussians} frames, {len(times)} times")
    out = []
    for stage, (start, n) in enumerate(((0, n_structure), (n_structure, n_gaussians))):
        for k in range(n):
            t = times[start + k]
            where = f"step {round((1 - t) * steps)}/{steps}" if steps else f"frame {k + 1}/{n}"
            out.append(f"{STAGES[stage]}, {where}, t = {t:.2f}")
    return out


# ----------------------------------------------------------------------------- static player
def _png(image: Tensor) -> bytes:
    """A small PNG: 256 adaptive colours (smooth 96² renders look the same at a third of the bytes)."""
    buf = io.BytesIO()
    to_pil(image).quantize(256).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


_PLAYER_JS = OPEN_JS + """
  var img = q("img.gsbook-frame"), out = q(".gsbook-readout"), slider = q("input[type=range]");
  var stages = root.querySelectorAll(".gsbook-stage");
  var last = d.frames.length - 1, i = 0;
  function show(k) {
    i = Math.max(0, Math.min(last, k));
    var stage = i < d.split ? 1 : 2;
    img.src = "data:image/png;base64," + d.frames[i];
    slider.value = i;
    out.textContent = d.labels[i];
    stages.forEach(function (s) {
      var on = +s.dataset.stage === stage;
      s.style.fontWeight = on ? "700" : "400"; s.style.opacity = on ? "1" : "0.55"; });
    root.setAttribute("data-frame", i);
    root.setAttribute("data-stage", stage);
  }
""" + CONTROLS_JS


def static_html(frames: list[bytes], split: int, readouts: list[str], size: int, caption: str = "",
                scale: int = SCALE) -> str:
    """A self-contained HTML player (no kernel, no network): PNG ``frames`` (stage 1's are the
    first ``split``), one readout each, shown ``size × scale`` pixels wide."""
    if not 0 < split < len(frames) or len(readouts) != len(frames):
        raise ValueError(f"need frames of both stages and one readout per frame: {len(frames)} frames, "
                         f"split at {split}, {len(readouts)} readouts")
    pid = "gsbook-flow-" + uuid.uuid4().hex[:10]
    data = {"frames": [base64.b64encode(f).decode("ascii") for f in frames], "labels": readouts, "split": split}
    # "</" inside the JSON would end the <script> early
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    side = size * scale
    buttons = "".join(f'<button type="button" data-action="{a}">{label}</button>'
                      for a, label in (("play", "▶ play · 播放"), ("step", "step · 单步"), ("reset", "reset · 重置")))
    counts = (split, len(frames) - split)
    legend = " → ".join(f'<span class="gsbook-stage" data-stage="{s + 1}">{html.escape(STAGES[s])} '
                        f'({counts[s]} frames · 帧)</span>' for s in range(2))
    return f"""
<div class="gsbook-player gsbook-flowsteps" id="{pid}" data-figure="flow_steps" data-frames="{len(frames)}" data-split="{split}" data-frame="0" data-stage="1">
  <div class="gsbook-controls" style="display:flex;gap:.4em;align-items:center;flex-wrap:wrap;margin-bottom:.4em">
    {buttons}
    <input type="range" min="0" max="{len(frames) - 1}" value="0" step="1" aria-label="Euler step" style="width:14em">
  </div>
  <div style="font-size:.85em;margin-bottom:.3em">{legend}</div>
  <div style="margin-bottom:.4em"><code class="gsbook-readout">{html.escape(readouts[0])}</code></div>
  <img class="gsbook-frame" alt="the flow's guess of the finished object at this step" width="{side}" height="{side}"
    style="image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #ddd" src="data:image/png;base64,{data['frames'][0]}">
  <div class="gsbook-caption" style="font-size:.85em;color:#555">{html.escape(caption)}</div>
  <script type="application/json" class="gsbook-data">{payload}</script>
  <script>{_PLAYER_JS % {"id": json.dumps(pid), "interval": INTERVAL_MS}}</script>
</div>"""


# ----------------------------------------------------------------------------- live widget
def live(images: list[Tensor], readouts: list[str]):
    """The JupyterLab figure: ``Play``, **step**, **reset** and a slider over the frames; the
    kernel swaps the picture and the readout. The box carries ``.play`` and ``.image`` for tests."""
    import ipywidgets as W

    last = len(images) - 1
    pngs = [png_bytes(im, scale=SCALE) for im in images]        # enlarged here: the browser would blur them
    play = W.Play(value=0, min=0, max=last, step=1, interval=INTERVAL_MS, description="play · 播放",
                  show_repeat=False)
    slider = W.IntSlider(value=0, min=0, max=last, readout=False, continuous_update=True)
    W.jslink((play, "value"), (slider, "value"))
    step, reset = W.Button(description="step · 单步"), W.Button(description="reset · 重置")
    image, line = W.Image(value=pngs[0], format="png"), W.HTML()

    def show(k: int) -> None:
        image.value = pngs[k]
        line.value = f"<code>{html.escape(readouts[k])}</code>"

    def on_step(_) -> None:
        play.playing = False
        play.value = min(last, play.value + 1)

    def on_reset(_) -> None:
        play.playing = False
        play.value = 0

    play.observe(lambda change: show(change["new"]), names="value")
    step.on_click(on_step)
    reset.on_click(on_reset)
    show(0)
    box = W.VBox([W.HBox([play, step, reset, slider]), line, image])
    box.play, box.image, box.line = play, image, line
    return box


# ----------------------------------------------------------------------------- the figure
class FlowStepsFigure:
    """Live widget in JupyterLab, static player on the website (one output, two renderings).

    Attributes:
        frames: every frame ``[H, W, 3]``, stage 1's then stage 2's; ``split``: how many are stage 1's.
        readouts: the label of each frame. widget: the live figure; html: the static player.
    """

    def __init__(self, frames: list[Tensor], split: int, readouts: list[str], caption: str = ""):
        self.frames, self.split, self.readouts = frames, split, readouts
        size = frames[0].shape[1]
        self.html = static_html([_png(f) for f in frames], split, readouts, size, caption)
        self.widget = live(frames, readouts)

    def _summary(self) -> str:
        return (f"Flow steps figure: {self.split} structure frames, then {len(self.frames) - self.split} "
                f"appearance frames")

    # the same bundle as Figure 1's: the widget's view, the static player, the summary
    _repr_mimebundle_ = sds_loop.SDSLoopFigure._repr_mimebundle_


def _check_frames(frames: Sequence[Tensor], name: str) -> list[Tensor]:
    frames = [f.detach().float().cpu() for f in frames]
    if not frames:
        raise ValueError(f"{name} is empty: each stage needs at least one frame")
    shape = frames[0].shape
    if len(shape) != 3 or shape[-1] != 3 or any(f.shape != shape for f in frames):
        raise ValueError(f"{name} must be images of one size [H, W, 3], got {sorted({tuple(f.shape) for f in frames})}")
    if any(not torch.isfinite(f).all() for f in frames):
        raise ValueError(f"{name} holds NaN or infinite pixels")
    return [f.clamp(0, 1) for f in frames]


def figure(frames_structure: Sequence[Tensor], frames_gaussians: Sequence[Tensor],
           times: Sequence[float] | None = None, steps: int | None = None, caption: str = "") -> FlowStepsFigure:
    """The step-through figure: stage 1's frames, then stage 2's, under one slider.

    Args:
        frames_structure: stage 1's renders ``[H, W, 3]`` in [0, 1] (the occupancy guesses).
        frames_gaussians: stage 2's renders, the same size (the Gaussian guesses).
        times: the flow time of each frame, stage 1's then stage 2's (default: evenly spaced
            from 1 to 0 within each stage).
        steps: Euler steps per stage, for the ``step i/N`` readout (default: frames are counted).
        caption: the text under the figure.

    ``figure(*trellis_frames(models, prompt), caption=...)`` passes all four from :func:`trellis_frames`.
    """
    structure = _check_frames(frames_structure, "frames_structure")
    gaussians = _check_frames(frames_gaussians, "frames_gaussians")
    if structure[0].shape != gaussians[0].shape:
        raise ValueError(f"both stages' frames must be one size, got {list(structure[0].shape)} and "
                         f"{list(gaussians[0].shape)}")
    readouts = labels(len(structure), len(gaussians), times, steps)
    return FlowStepsFigure(structure + gaussians, len(structure), readouts, caption)
