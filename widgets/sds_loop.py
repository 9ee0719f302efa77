"""Figure 1, "SDS gradient loop" (§1): 2D Gaussians pulled by score distillation.

One loop, :class:`gsbook.methods.ImageSDS`, with one of two critics:

* ``"l2"`` — :class:`gsbook.sds.OraclePrior`, the denoiser that knows one target image (the
  essay's "L2 stand-in": SDS is then exactly an L2 pull toward it); the right-hand panel is
  the target and the readout the loss (mean squared error to the target);
* ``"prior"`` — the book's trained text-to-image prior (:class:`gsbook.sds.BookPrior`) and a
  prompt; the right-hand panel is what the prior draws for the prompt (one sample) and the
  readout the timestep ``t`` and the gradient's size ``|g|`` (there is no target, so no loss).

This module only draws, twice over:

* **live** (JupyterLab, a kernel runs): ipywidgets with Python callbacks — **step**,
  **run 50**, **reset**, the readout, the image with the Gaussians' centres drawn on it next
  to the side panel;
* **static** (the website, no kernel): the same loop run ahead of time, every iteration's
  frame embedded as PNG, and client-side **step** / **run 50** / **play** / **reset** controls.

:func:`figure` returns one object that carries both: JupyterLab shows the live widget, the
website (``nb_mime_priority_overrides`` in ``_config.yml``) shows the static player.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from dataclasses import dataclass, replace

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from gsbook.diffusion import sample
from gsbook.images import png_bytes, to_pil
from gsbook.methods import ImageSDS, ImageSDSConfig
from gsbook.sds import BookPrior, OraclePrior, target_image

__all__ = ["Panel", "l2_loop", "prior_sample", "readout", "draw_frame", "precompute", "static_html", "live",
           "figure", "SDSLoopFigure", "DENOISERS"]

SCALE = 4  # screen pixels per image pixel
DENOISERS = ("l2", "prior")


@dataclass
class Panel:
    """What the figure shows beside the loop: ``side [h, w, 3]`` titled ``label``; ``target`` is
    the image the oracle knows (L2 mode, where the readout is the loss to it) or ``None``."""

    side: Tensor
    label: str
    target: Tensor | None = None

    @property
    def mode(self) -> str:
        return "l2" if self.target is not None else "prior"


def l2_loop(size: int = 48, n: int = 32, steps: int = 100, seed: int = 0) -> tuple[ImageSDS, Panel]:
    """The L2 stand-in: SDS on ``n`` Gaussians with the oracle that knows :func:`target_image`
    (one noised copy per step, ``t`` uniform as in DreamFusion; guidance changes nothing when
    there is one target)."""
    target = target_image(size, size)
    config = ImageSDSConfig(steps=steps, n_gaussians=n, resolution=size, batch=1, guidance_scale=1.0,
                            schedule="uniform", seed=seed)
    return ImageSDS(OraclePrior(target.permute(2, 0, 1)), "the target", config), Panel(target, "target", target)


def prior_sample(prior: BookPrior, prompt: str, seed: int = 0, steps: int = 50, guidance: float = 3.0) -> Tensor:
    """What ``prior`` draws for ``prompt``: one DDPM sample ``[S, S, 3]`` in [0, 1] (``S`` = 32
    for the book's prior), seeded, so a figure shows the same picture every build."""
    model = getattr(prior, "model", None)
    if model is None:
        raise TypeError(f"the prior panel samples prior.model (a TextToImagePrior); {type(prior).__name__} "
                        "has none — use gsbook.sds.BookPrior")
    generator = torch.Generator().manual_seed(seed)
    return sample(model, [prompt], steps=steps, guidance=guidance, generator=generator)[0].permute(1, 2, 0)


def readout(loop: ImageSDS, panel: Panel) -> str:
    """The line under the buttons: the loss to the target (L2), or ``t`` and ``|g|`` of the last step."""
    if panel.target is not None:
        return f"iter {loop.iteration} · loss = {loop.mse(panel.target):.5f}"
    if not loop.history:                      # no step yet: no t, no gradient
        return "iter 0 · t = – · |g| = –"
    last = loop.history[-1]
    return f"iter {loop.iteration} · t = {last['t']} · |g| = {last['grad_norm']:.4g}"


def draw_frame(image: Tensor, centres: Tensor, side: Tensor, scale: int = SCALE, label: str = "target") -> bytes:
    """PNG bytes: the render ``[H, W, 3]`` with the Gaussians' centres ``[N, 2]`` (dots) beside
    ``side`` (any ``[h, w, 3]``: the target, or the prior's sample), titled ``label``."""
    left = to_pil(image, scale=scale)
    right = to_pil(side, scale=scale)
    if right.size != left.size:      # the prior samples at its own size (32²): show it as large as the render
        right = right.resize(left.size, Image.NEAREST if right.width < left.width else Image.BOX)
    gap, top = 8, 16
    canvas = Image.new("RGB", (left.width + gap + right.width, top + left.height), (255, 255, 255))
    canvas.paste(left, (0, top))
    canvas.paste(right, (left.width + gap, top))
    d = ImageDraw.Draw(canvas)
    d.text((2, 2), "render + centres", fill=(40, 40, 40))
    d.text((left.width + gap + 2, 2), label, fill=(40, 40, 40))
    for x, y in (centres * scale).tolist():
        if 0 <= x <= left.width and 0 <= y <= left.height:
            d.ellipse([x - 3, top + y - 3, x + 3, top + y + 3], fill=(255, 255, 255), outline=(20, 20, 20))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _frame(loop: ImageSDS, panel: Panel) -> bytes:
    return draw_frame(loop.image(), loop.centres(), panel.side, label=panel.label)


def precompute(loop: ImageSDS, panel: Panel, steps: int, progress: bool = True) -> dict:
    """Run ``loop`` for ``steps`` updates and record every iteration (``steps + 1`` entries).

    Returns ``{"frames": [PNG bytes at image resolution], "centres": [[[x, y], ...]],
    "readouts": [str], "side": PNG bytes, "side_label", "mode", "width", "height"}`` plus, in
    L2 mode, ``"losses"`` (``steps + 1``) and, in prior mode, ``"grad_norms"``, ``"timesteps"``
    (``steps`` each) and ``"prompt"``.
    """
    from tqdm.auto import tqdm

    size = loop.config.resolution
    rec = {"frames": [], "centres": [], "readouts": [], "side": png_bytes(panel.side), "side_label": panel.label,
           "mode": panel.mode, "width": size, "height": size}
    losses = []

    def snap():
        rec["frames"].append(png_bytes(loop.image()))
        rec["centres"].append([[round(x, 2), round(y, 2)] for x, y in loop.centres().tolist()])
        rec["readouts"].append(readout(loop, panel))
        if panel.target is not None:
            losses.append(loop.mse(panel.target))

    start = len(loop.history)
    snap()
    for _ in tqdm(range(steps), desc="precomputing the static figure", leave=False, disable=not progress):
        loop.step()
        snap()
    if panel.target is not None:
        rec["losses"] = losses
    else:
        hist = loop.history[start:]
        rec.update(grad_norms=[h["grad_norm"] for h in hist], timesteps=[h["t"] for h in hist], prompt=loop.prompt)
    return rec


_PLAYER_JS = """
(function () {
  var root = document.getElementById(%(id)s);
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  var data = JSON.parse(root.querySelector("script.gsbook-data").textContent);
  var img = root.querySelector("img.gsbook-frame"), out = root.querySelector(".gsbook-readout");
  var dots = root.querySelectorAll("svg circle");
  var slider = root.querySelector("input[type=range]"), playBtn = root.querySelector("[data-action=play]");
  var last = data.frames.length - 1, i = 0, timer = null, stopAt = null;
  function show(k) {
    i = Math.max(0, Math.min(last, k));
    img.src = "data:image/png;base64," + data.frames[i];
    var c = data.centres[i];
    for (var j = 0; j < dots.length; j++) { dots[j].setAttribute("cx", c[j][0]); dots[j].setAttribute("cy", c[j][1]); }
    slider.value = i;
    out.textContent = data.readouts[i];
    root.setAttribute("data-iteration", i);
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; } stopAt = null; playBtn.textContent = "▶ play · 播放"; }
  function start(until) {
    stop(); stopAt = until; playBtn.textContent = "❚❚ pause · 暂停";
    timer = setInterval(function () {
      if (i >= last || (stopAt !== null && i >= stopAt)) { stop(); return; }
      show(i + 1);
    }, 60);
  }
  root.querySelector("[data-action=step]").onclick = function () { stop(); show(i + 1); };
  root.querySelector("[data-action=run50]").onclick = function () { start(Math.min(last, i + 50)); };
  playBtn.onclick = function () { if (timer) stop(); else { if (i >= last) show(0); start(null); } };
  root.querySelector("[data-action=reset]").onclick = function () { stop(); show(0); };
  slider.oninput = function () { stop(); show(parseInt(slider.value, 10)); };
  show(0);
})();
"""


def static_html(rec: dict, caption: str = "", scale: int = SCALE) -> str:
    """A self-contained HTML player (no kernel, no network) for :func:`precompute`'s record.

    Frames are PNGs at the image's own resolution, enlarged by CSS; the centres are SVG
    dots moved by the script, so a hundred frames weigh a few hundred kilobytes. The
    readout shows each frame's precomputed text (loss, or ``t`` and ``|g|``).
    """
    frames, centres, readouts = rec["frames"], rec["centres"], rec["readouts"]
    losses = rec.get("losses")
    if not frames or not (len(frames) == len(readouts) == len(centres)) or (
            losses is not None and len(losses) != len(frames)):
        raise ValueError(f"need one readout, one loss (L2 mode) and one set of centres per frame, got "
                         f"{len(frames)} frames, {len(readouts)} readouts, "
                         f"{'no' if losses is None else len(losses)} losses, {len(centres)} centre sets")
    pid = "gsbook-sds-" + uuid.uuid4().hex[:10]
    w, h = rec["width"], rec["height"]
    W, H = w * scale, h * scale
    data = {"frames": [base64.b64encode(f).decode("ascii") for f in frames], "centres": centres,
            "readouts": readouts}
    if losses is not None:
        data["losses"] = [round(v, 6) for v in losses]
    circles = "".join(f'<circle cx="{x}" cy="{y}" r="{3 / scale:.3f}" fill="#fff" stroke="#222" '
                      f'stroke-width="{1 / scale:.3f}"/>' for x, y in centres[0])
    side = base64.b64encode(rec["side"]).decode("ascii")
    mode, label = rec["mode"], rec["side_label"]
    side_alt = "target image" if mode == "l2" else f"what the prior draws for {label}"
    pix = "image-rendering:pixelated;image-rendering:crisp-edges"
    # "</" inside the JSON would end the <script> early (a prompt or readout could hold one)
    payload = json.dumps(data).replace("</", "<\\/")
    return f"""
<div class="gsbook-player" id="{pid}" data-figure="sds_loop" data-denoiser="{html.escape(mode)}" data-frames="{len(frames)}" data-iteration="0">
  <div class="gsbook-controls" style="display:flex;gap:.4em;align-items:center;flex-wrap:wrap;margin-bottom:.4em">
    <button type="button" data-action="step">step · 单步</button>
    <button type="button" data-action="run50">run 50 · 50 步</button>
    <button type="button" data-action="play">▶ play · 播放</button>
    <button type="button" data-action="reset">reset · 重置</button>
    <input type="range" min="0" max="{len(frames) - 1}" value="0" step="1" aria-label="iteration" style="width:12em">
    <code class="gsbook-readout">{html.escape(readouts[0])}</code>
  </div>
  <div style="display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap">
    <figure style="margin:0"><div style="position:relative;width:{W}px;height:{H}px">
      <img class="gsbook-frame" alt="render of the Gaussians" width="{W}" height="{H}" style="{pix};position:absolute;left:0;top:0"
           src="data:image/png;base64,{data['frames'][0]}">
      <svg viewBox="0 0 {w} {h}" width="{W}" height="{H}" style="position:absolute;left:0;top:0">{circles}</svg>
    </div><figcaption style="font-size:.8em">render + centres · 渲染 + 中心</figcaption></figure>
    <figure style="margin:0"><img class="gsbook-side" alt="{html.escape(side_alt)}" width="{W}" height="{H}" style="{pix}"
      src="data:image/png;base64,{side}"><figcaption style="font-size:.8em">{html.escape(label)}</figcaption></figure>
  </div>
  <div class="gsbook-caption" style="font-size:.85em;color:#555">{html.escape(caption)}</div>
  <script type="application/json" class="gsbook-data">{payload}</script>
  <script>{_PLAYER_JS % {"id": json.dumps(pid)}}</script>
</div>"""


def live(loop: ImageSDS, panel: Panel):
    """The JupyterLab figure: ipywidgets whose buttons run ``loop`` in the kernel."""
    import ipywidgets as W

    image = W.Image(value=_frame(loop, panel), format="png", layout=W.Layout(max_width="480px"))
    line = W.HTML()
    step, run50, reset = (W.Button(description="step · 单步"), W.Button(description="run 50 · 50 步"),
                          W.Button(description="reset · 重置"))

    def refresh():
        image.value = _frame(loop, panel)
        line.value = f"<code>{html.escape(readout(loop, panel))}</code>"

    def on_step(_):
        loop.step()
        refresh()

    def on_run50(_):
        for k in range(50):
            loop.step()
            if k % 5 == 4:
                refresh()
        refresh()

    def on_reset(_):
        loop.reset()          # same seed: the same start
        refresh()

    step.on_click(on_step)
    run50.on_click(on_run50)
    reset.on_click(on_reset)
    refresh()
    return W.VBox([W.HBox([step, run50, reset, line]), image])


class SDSLoopFigure:
    """Live widget in JupyterLab, static player on the website (one output, two renderings).

    Attributes:
        loop: the live loop (an :class:`ImageSDS` at iteration 0); ``panel``: its side panel.
        mode: ``"l2"`` or ``"prior"``.
        losses: per precomputed frame (L2 mode; ``None`` in prior mode).
        grad_norms, timesteps: per precomputed step, frame 0 has none (prior mode; ``None`` in L2).
    """

    def __init__(self, loop: ImageSDS, panel: Panel, record: dict, caption: str = ""):
        self.loop, self.panel, self.record, self.mode = loop, panel, record, panel.mode
        self.losses = record.get("losses")
        self.grad_norms, self.timesteps = record.get("grad_norms"), record.get("timesteps")
        self.widget = live(loop, panel)
        self.html = static_html(record, caption)

    def _summary(self) -> str:
        n = len(self.record["frames"])
        if self.mode == "l2":
            return f"SDS loop figure: {n} precomputed frames, loss {self.losses[0]:.4f} → {self.losses[-1]:.4f}"
        g = self.grad_norms
        trend = f", |g| {g[0]:.3g} → {g[-1]:.3g}" if g else ""
        return f"SDS loop figure (prior, {self.record.get('prompt', '')!r}): {n} precomputed frames{trend}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle = dict(bundle)
        bundle["text/html"] = self.html
        bundle["text/plain"] = self._summary()
        return bundle


def figure(width: int | None = None, height: int | None = None, n: int = 32, steps: int = 100, seed: int = 0,
           caption: str = "", denoiser: str = "l2", prompt: str | None = None, prior: BookPrior | None = None,
           config: ImageSDSConfig | None = None) -> SDSLoopFigure:
    """Build figure 1: a live loop (starts at iteration 0) plus ``steps`` precomputed frames.

    Args:
        width, height: the (square) image's side; L2 default 48. If both are given they must
            be equal; in prior mode the side sets ``config.resolution``.
        n, steps, seed: Gaussians, precomputed steps and seed (in prior mode they replace
            ``config``'s ``n_gaussians``, ``steps`` and ``seed``).
        denoiser: ``"l2"`` (the oracle that knows :func:`~gsbook.sds.target_image`) or
            ``"prior"`` (``prior`` and ``prompt``).
        prompt: the text prompt (prior mode only; required there).
        prior: a :class:`~gsbook.sds.BookPrior` (default: the shipped weights).
        config: the rest of the prior run's settings (default :class:`~gsbook.methods.ImageSDSConfig`).
    """
    if denoiser not in DENOISERS:
        raise ValueError(f"unknown denoiser {denoiser!r}; choose one of {list(DENOISERS)}")
    if width is not None and height is not None and width != height:
        raise ValueError(f"the figure's image is square, got width={width}, height={height}")
    side = width if width is not None else height
    if denoiser == "l2":
        if prompt is not None or prior is not None or config is not None:
            raise ValueError("prompt, prior and config apply only to denoiser='prior'")
        loop, panel = l2_loop(side or 48, n, steps, seed)
        record = precompute(loop, panel, steps)
        loop.reset()          # the live loop starts where the precomputed one did
        return SDSLoopFigure(loop, panel, record, caption)

    if not prompt:
        raise ValueError("denoiser='prior' needs a prompt, e.g. prompt='a red mushroom with a white stem'")
    config = replace(config or ImageSDSConfig(), steps=steps, n_gaussians=n, seed=seed)
    if side is not None:
        config = replace(config, resolution=side)
    prior = prior or BookPrior()
    loop = ImageSDS(prior, prompt, config)
    panel = Panel(prior_sample(prior, prompt, seed), f'"{prompt}"')
    record = precompute(loop, panel, steps)
    loop.reset()
    return SDSLoopFigure(loop, panel, record, caption)
