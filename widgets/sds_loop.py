"""Figure 1, "SDS gradient loop" (§1): 2D Gaussians pulled toward a target by SDS.

The compute is :class:`gsbook.toy2d.ToySDS`; this module only draws it, twice over:

* **live** (JupyterLab, a kernel runs): ipywidgets with Python callbacks — **step**,
  **run 50**, **reset**, an iteration and loss readout, the image with the Gaussians'
  centres drawn on it next to the target;
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

import torch
from PIL import Image, ImageDraw

from gsbook.toy2d import ToySDS, target_image

__all__ = ["draw_frame", "precompute", "static_html", "live", "figure", "SDSLoopFigure"]

SCALE = 4  # screen pixels per image pixel


def _to_pil(image: torch.Tensor, scale: int) -> Image.Image:
    arr = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    pil = Image.fromarray(arr, mode="RGB")
    return pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)


def draw_frame(image: torch.Tensor, centres: torch.Tensor, target: torch.Tensor, scale: int = SCALE) -> bytes:
    """PNG bytes: the render with the Gaussians' centres (dots) beside the target."""
    left, right = _to_pil(image, scale), _to_pil(target, scale)
    gap, top = 8, 16
    canvas = Image.new("RGB", (left.width + gap + right.width, top + left.height), (255, 255, 255))
    canvas.paste(left, (0, top))
    canvas.paste(right, (left.width + gap, top))
    d = ImageDraw.Draw(canvas)
    d.text((2, 2), "render + centres", fill=(40, 40, 40))
    d.text((left.width + gap + 2, 2), "target", fill=(40, 40, 40))
    for x, y in (centres * scale).tolist():
        if 0 <= x <= left.width and 0 <= y <= left.height:
            d.ellipse([x - 3, top + y - 3, x + 3, top + y + 3], fill=(255, 255, 255), outline=(20, 20, 20))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _frame(loop: ToySDS) -> bytes:
    with torch.no_grad():
        return draw_frame(loop.render(), loop.centres(), loop.target)


def png(image: torch.Tensor) -> bytes:
    """PNG bytes of an ``[H, W, 3]`` image in [0, 1], at its own resolution."""
    buf = io.BytesIO()
    _to_pil(image, 1).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def precompute(loop: ToySDS, steps: int, progress: bool = True) -> dict:
    """Run ``loop`` for ``steps`` updates and record every iteration (``steps + 1`` entries).

    Returns ``{"frames": [PNG bytes at image resolution], "centres": [[[x, y], ...]],
    "losses": [float], "target": PNG bytes, "width", "height"}``.
    """
    def snap():
        with torch.no_grad():
            rec["frames"].append(png(loop.render()))
        rec["centres"].append([[round(x, 2), round(y, 2)] for x, y in loop.centres().tolist()])
        rec["losses"].append(loop.loss_history[-1])

    rec = {"frames": [], "centres": [], "losses": [], "target": png(loop.target),
           "width": loop.width, "height": loop.height}
    snap()
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="precomputing the static figure", leave=False)
    for _ in it:
        loop.step()
        snap()
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
    out.textContent = "iter " + i + " · loss = " + data.losses[i].toFixed(5);
    root.setAttribute("data-iteration", i);
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; } stopAt = null; playBtn.textContent = "▶ play"; }
  function start(until) {
    stop(); stopAt = until; playBtn.textContent = "❚❚ pause";
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
    dots moved by the script, so a hundred frames weigh a few hundred kilobytes.
    """
    frames, losses, centres = rec["frames"], rec["losses"], rec["centres"]
    if not frames or not (len(frames) == len(losses) == len(centres)):
        raise ValueError(f"need one loss and one set of centres per frame, got {len(frames)} frames, "
                         f"{len(losses)} losses, {len(centres)} centre sets")
    pid = "gsbook-sds-" + uuid.uuid4().hex[:10]
    w, h = rec["width"], rec["height"]
    W, H = w * scale, h * scale
    data = {"frames": [base64.b64encode(f).decode("ascii") for f in frames],
            "centres": centres, "losses": [round(v, 6) for v in losses]}
    circles = "".join(f'<circle cx="{x}" cy="{y}" r="{3 / scale:.3f}" fill="#fff" stroke="#222" '
                      f'stroke-width="{1 / scale:.3f}"/>' for x, y in centres[0])
    target = base64.b64encode(rec["target"]).decode("ascii")
    pix = "image-rendering:pixelated;image-rendering:crisp-edges"
    return f"""
<div class="gsbook-player" id="{pid}" data-figure="sds_loop" data-frames="{len(frames)}" data-iteration="0">
  <div class="gsbook-controls" style="display:flex;gap:.4em;align-items:center;flex-wrap:wrap;margin-bottom:.4em">
    <button type="button" data-action="step">step</button>
    <button type="button" data-action="run50">run 50</button>
    <button type="button" data-action="play">▶ play</button>
    <button type="button" data-action="reset">reset</button>
    <input type="range" min="0" max="{len(frames) - 1}" value="0" step="1" aria-label="iteration" style="width:12em">
    <code class="gsbook-readout">iter 0 · loss = {losses[0]:.5f}</code>
  </div>
  <div style="display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap">
    <figure style="margin:0"><div style="position:relative;width:{W}px;height:{H}px">
      <img class="gsbook-frame" alt="render of the Gaussians" width="{W}" height="{H}" style="{pix};position:absolute;left:0;top:0"
           src="data:image/png;base64,{data['frames'][0]}">
      <svg viewBox="0 0 {w} {h}" width="{W}" height="{H}" style="position:absolute;left:0;top:0">{circles}</svg>
    </div><figcaption style="font-size:.8em">render + centres</figcaption></figure>
    <figure style="margin:0"><img alt="target image" width="{W}" height="{H}" style="{pix}"
      src="data:image/png;base64,{target}"><figcaption style="font-size:.8em">target</figcaption></figure>
  </div>
  <div class="gsbook-caption" style="font-size:.85em;color:#555">{html.escape(caption)}</div>
  <script type="application/json" class="gsbook-data">{json.dumps(data)}</script>
  <script>{_PLAYER_JS % {"id": json.dumps(pid)}}</script>
</div>"""


def live(loop: ToySDS):
    """The JupyterLab figure: ipywidgets whose buttons run ``loop`` in the kernel."""
    import ipywidgets as W

    image = W.Image(value=_frame(loop), format="png", layout=W.Layout(max_width="480px"))
    readout = W.HTML()
    step, run50, reset = W.Button(description="step"), W.Button(description="run 50"), W.Button(description="reset")

    def refresh():
        image.value = _frame(loop)
        readout.value = f"<code>iter {loop.iteration} · loss = {loop.loss_history[-1]:.5f}</code>"

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
    return W.VBox([W.HBox([step, run50, reset, readout]), image])


class SDSLoopFigure:
    """Live widget in JupyterLab, static player on the website (one output, two renderings)."""

    def __init__(self, loop: ToySDS, record: dict, caption: str = ""):
        self.loop, self.record = loop, record
        self.losses = record["losses"]
        self.widget = live(loop)
        self.html = static_html(record, caption)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle = dict(bundle)
        bundle["text/html"] = self.html
        bundle["text/plain"] = f"SDS loop figure: {len(self.losses)} precomputed frames, loss {self.losses[0]:.4f} → {self.losses[-1]:.4f}"
        return bundle


def figure(width: int = 48, height: int = 48, n: int = 32, steps: int = 100, seed: int = 0,
           caption: str = "") -> SDSLoopFigure:
    """Build figure 1: a live loop (starts at iteration 0) plus ``steps`` precomputed frames."""
    target = target_image(width, height)
    record = precompute(ToySDS(target, n=n, seed=seed), steps)
    return SDSLoopFigure(ToySDS(target, n=n, seed=seed), record, caption)
