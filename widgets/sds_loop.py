"""Figure 1, "SDS gradient loop" (§1): 2D Gaussians pulled by score distillation.

Two denoisers drive the same figure:

* ``"l2"`` — :class:`gsbook.toy2d.ToySDS`, the stand-in denoiser for one known target
  image (SDS is then exactly an L2 pull toward it); the right-hand panel is that target
  and the readout the loss;
* ``"prior"`` — :class:`gsbook.sds.image2d.ImageSDS` with the book's trained text-to-image
  prior and a prompt; the right-hand panel is what the prior draws for the prompt (one
  sample) and the readout the timestep ``t`` and the gradient's size ``|g|`` (there is no
  target, so there is no loss to show).

A small view (:class:`L2View`, :class:`PriorView`) gives both loops one face — frame,
centres, side panel, readout — and this module only draws it, twice over:

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
from dataclasses import replace

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from gsbook.sds.image2d import ImageSDS, ImageSDSConfig
from gsbook.toy2d import ToySDS, target_image

__all__ = ["draw_frame", "precompute", "static_html", "live", "figure", "SDSLoopFigure",
           "L2View", "PriorView", "prior_sample", "DENOISERS"]

SCALE = 4  # screen pixels per image pixel
DENOISERS = ("l2", "prior")


def _to_pil(image: torch.Tensor, scale: int) -> Image.Image:
    arr = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    pil = Image.fromarray(arr, mode="RGB")
    return pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)


def draw_frame(image: torch.Tensor, centres: torch.Tensor, target: torch.Tensor, scale: int = SCALE,
               label: str = "target") -> bytes:
    """PNG bytes: the render ``[H, W, 3]`` with the Gaussians' centres ``[N, 2]`` (dots) beside
    ``target`` (any ``[h, w, 3]``: the target, or the prior's sample), titled ``label``."""
    left = _to_pil(image, scale)
    right = _to_pil(target, scale)
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


def png(image: torch.Tensor) -> bytes:
    """PNG bytes of an ``[H, W, 3]`` image in [0, 1], at its own resolution."""
    buf = io.BytesIO()
    _to_pil(image, 1).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Views: one face for both loops (what the figure draws and reads out)
# ---------------------------------------------------------------------------------------------

class _LoopView:
    """What both views pass straight through to their loop."""

    loop: ToySDS | ImageSDS

    @property
    def iteration(self) -> int:
        return self.loop.iteration

    def step(self) -> None:
        self.loop.step()

    def reset(self) -> None:
        self.loop.reset()


class L2View(_LoopView):
    """The figure's view of a :class:`~gsbook.toy2d.ToySDS` loop: side panel = the target,
    readout = the loss."""

    mode = "l2"
    side_label = "target"

    def __init__(self, loop: ToySDS) -> None:
        self.loop = loop
        self.width, self.height = loop.width, loop.height

    @torch.no_grad()
    def frame_image(self) -> Tensor:
        """The current render ``[H, W, 3]`` (detached)."""
        return self.loop.render().detach()

    def centres(self) -> Tensor:
        """Gaussian centres ``[N, 2]`` in pixels."""
        return self.loop.centres()

    def side_image(self) -> Tensor:
        """The target ``[H, W, 3]``."""
        return self.loop.target

    def readout(self) -> str:
        return f"iter {self.loop.iteration} · loss = {self.loop.loss_history[-1]:.5f}"

    def series(self, steps: int) -> dict:
        """Per-frame values of the last ``steps`` updates: ``losses`` (``steps + 1``, from the start)."""
        return {"losses": list(self.loop.loss_history[len(self.loop.loss_history) - steps - 1:])}


def prior_sample(prior, prompt: str, seed: int = 0, steps: int = 50, guidance: float = 3.0) -> Tensor:
    """What ``prior`` draws for ``prompt``: one DDPM sample ``[S, S, 3]`` in [0, 1] (``S`` = 32
    for the book's prior), seeded, so a figure shows the same picture every build."""
    from gsbook.diffusion.sampling import sample

    model = getattr(prior, "model", None)
    if model is None:
        raise TypeError(f"the prior panel samples prior.model (a TextToImagePrior); {type(prior).__name__} "
                        "has none — use gsbook.sds.book.BookPrior")
    generator = torch.Generator().manual_seed(seed)
    return sample(model, [prompt], steps=steps, guidance=guidance, generator=generator)[0].permute(1, 2, 0)


class PriorView(_LoopView):
    """The figure's view of an :class:`~gsbook.sds.image2d.ImageSDS` run: side panel = what the
    prior draws for the prompt, readout = ``t`` and ``|g|`` of the last step.

    Args:
        loop: the run (its prior must have a ``.model`` to sample from unless ``side`` is given).
        side: the side panel ``[S, S, 3]``; default: :func:`prior_sample` with the run's seed
            (pass it to share one sample between the live and the precomputed loop).
    """

    mode = "prior"

    def __init__(self, loop: ImageSDS, side: Tensor | None = None) -> None:
        self.loop = loop
        self.width = self.height = loop.config.resolution
        self.side = prior_sample(loop.prior, loop.prompt, loop.config.seed) if side is None else side
        self.side_label = f'"{loop.prompt}"'

    def frame_image(self) -> Tensor:
        """The current render ``[R, R, 3]`` in [0, 1] (detached)."""
        return self.loop.image()

    def centres(self) -> Tensor:
        """Gaussian centres ``[N, 2]`` in pixels."""
        return self.loop.gaussians.means.detach().clone()

    def side_image(self) -> Tensor:
        """The prior's sample for the prompt ``[S, S, 3]``."""
        return self.side

    def readout(self) -> str:
        if not self.loop.history:                      # no step yet: no t, no gradient
            return "iter 0 · t = – · |g| = –"
        last = self.loop.history[-1]
        return f"iter {self.loop.iteration} · t = {last['t']} · |g| = {last['grad_norm']:.4g}"

    def series(self, steps: int) -> dict:
        """Per-step values of the last ``steps`` updates (``steps`` each, frame 0 has none):
        ``grad_norms`` and ``timesteps``."""
        hist = self.loop.history[len(self.loop.history) - steps:] if steps else []
        return {"grad_norms": [h["grad_norm"] for h in hist], "timesteps": [h["t"] for h in hist],
                "prompt": self.loop.prompt}


def _view(loop):
    """A view of ``loop``: a :class:`ToySDS` or :class:`ImageSDS` is wrapped, a view passes through."""
    if isinstance(loop, ToySDS):
        return L2View(loop)
    if isinstance(loop, ImageSDS):
        return PriorView(loop)
    if hasattr(loop, "frame_image"):
        return loop
    raise TypeError(f"expected a ToySDS, an ImageSDS or a view of one, got {type(loop).__name__}")


def _frame(view) -> bytes:
    with torch.no_grad():
        return draw_frame(view.frame_image(), view.centres(), view.side_image(), label=view.side_label)


def precompute(loop, steps: int, progress: bool = True) -> dict:
    """Run ``loop`` (a :class:`ToySDS`, an :class:`ImageSDS` or a view) for ``steps`` updates
    and record every iteration (``steps + 1`` entries).

    Returns ``{"frames": [PNG bytes at image resolution], "centres": [[[x, y], ...]],
    "readouts": [str], "side": PNG bytes, "side_label", "mode", "width", "height"}`` plus the
    view's series: ``"losses"`` (``steps + 1``) and ``"target"`` (= ``side``) for L2;
    ``"grad_norms"``, ``"timesteps"`` (``steps`` each) and ``"prompt"`` for the prior.
    """
    view = _view(loop)

    def snap():
        rec["frames"].append(png(view.frame_image()))
        rec["centres"].append([[round(x, 2), round(y, 2)] for x, y in view.centres().tolist()])
        rec["readouts"].append(view.readout())

    side = png(view.side_image())
    rec = {"frames": [], "centres": [], "readouts": [], "side": side, "side_label": view.side_label,
           "mode": view.mode, "width": view.width, "height": view.height}
    if view.mode == "l2":
        rec["target"] = side                           # the record's key before the prior mode
    snap()
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="precomputing the static figure", leave=False)
    for _ in it:
        view.step()
        snap()
    rec.update(view.series(steps))
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


def _readouts(rec: dict) -> list[str]:
    """The record's per-frame readouts; records made before ``"readouts"`` existed have losses."""
    if "readouts" in rec:
        return rec["readouts"]
    return [f"iter {i} · loss = {v:.5f}" for i, v in enumerate(rec["losses"])]


def static_html(rec: dict, caption: str = "", scale: int = SCALE) -> str:
    """A self-contained HTML player (no kernel, no network) for :func:`precompute`'s record.

    Frames are PNGs at the image's own resolution, enlarged by CSS; the centres are SVG
    dots moved by the script, so a hundred frames weigh a few hundred kilobytes. The
    readout shows each frame's precomputed text (loss, or ``t`` and ``|g|``).
    """
    frames, centres, readouts = rec["frames"], rec["centres"], _readouts(rec)
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
    side = base64.b64encode(rec.get("side", rec.get("target"))).decode("ascii")
    mode, label = rec.get("mode", "l2"), rec.get("side_label", "target")
    side_alt = "target image" if mode == "l2" else f"what the prior draws for {label}"
    pix = "image-rendering:pixelated;image-rendering:crisp-edges"
    # "</" inside the JSON would end the <script> early (a prompt or readout could hold one)
    payload = json.dumps(data).replace("</", "<\\/")
    return f"""
<div class="gsbook-player" id="{pid}" data-figure="sds_loop" data-denoiser="{html.escape(mode)}" data-frames="{len(frames)}" data-iteration="0">
  <div class="gsbook-controls" style="display:flex;gap:.4em;align-items:center;flex-wrap:wrap;margin-bottom:.4em">
    <button type="button" data-action="step">step</button>
    <button type="button" data-action="run50">run 50</button>
    <button type="button" data-action="play">▶ play</button>
    <button type="button" data-action="reset">reset</button>
    <input type="range" min="0" max="{len(frames) - 1}" value="0" step="1" aria-label="iteration" style="width:12em">
    <code class="gsbook-readout">{html.escape(readouts[0])}</code>
  </div>
  <div style="display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap">
    <figure style="margin:0"><div style="position:relative;width:{W}px;height:{H}px">
      <img class="gsbook-frame" alt="render of the Gaussians" width="{W}" height="{H}" style="{pix};position:absolute;left:0;top:0"
           src="data:image/png;base64,{data['frames'][0]}">
      <svg viewBox="0 0 {w} {h}" width="{W}" height="{H}" style="position:absolute;left:0;top:0">{circles}</svg>
    </div><figcaption style="font-size:.8em">render + centres</figcaption></figure>
    <figure style="margin:0"><img class="gsbook-side" alt="{html.escape(side_alt)}" width="{W}" height="{H}" style="{pix}"
      src="data:image/png;base64,{side}"><figcaption style="font-size:.8em">{html.escape(label)}</figcaption></figure>
  </div>
  <div class="gsbook-caption" style="font-size:.85em;color:#555">{html.escape(caption)}</div>
  <script type="application/json" class="gsbook-data">{payload}</script>
  <script>{_PLAYER_JS % {"id": json.dumps(pid)}}</script>
</div>"""


def live(loop):
    """The JupyterLab figure: ipywidgets whose buttons run ``loop`` (a :class:`ToySDS`, an
    :class:`ImageSDS` or a view) in the kernel."""
    import ipywidgets as W

    view = _view(loop)
    image = W.Image(value=_frame(view), format="png", layout=W.Layout(max_width="480px"))
    readout = W.HTML()
    step, run50, reset = W.Button(description="step"), W.Button(description="run 50"), W.Button(description="reset")

    def refresh():
        image.value = _frame(view)
        readout.value = f"<code>{html.escape(view.readout())}</code>"

    def on_step(_):
        view.step()
        refresh()

    def on_run50(_):
        for k in range(50):
            view.step()
            if k % 5 == 4:
                refresh()
        refresh()

    def on_reset(_):
        view.reset()          # same seed: the same start
        refresh()

    step.on_click(on_step)
    run50.on_click(on_run50)
    reset.on_click(on_reset)
    refresh()
    return W.VBox([W.HBox([step, run50, reset, readout]), image])


class SDSLoopFigure:
    """Live widget in JupyterLab, static player on the website (one output, two renderings).

    Attributes:
        loop: the live loop (:class:`ToySDS` or :class:`ImageSDS`, at iteration 0).
        mode: ``"l2"`` or ``"prior"``.
        losses: per precomputed frame (L2 mode; ``None`` in prior mode).
        grad_norms, timesteps: per precomputed step, frame 0 has none (prior mode; ``None`` in L2).
    """

    def __init__(self, loop, record: dict, caption: str = ""):
        view = _view(loop)
        self.loop, self.record, self.mode = view.loop, record, view.mode
        self.losses = record.get("losses")
        self.grad_norms, self.timesteps = record.get("grad_norms"), record.get("timesteps")
        self.widget = live(view)
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
           caption: str = "", denoiser: str = "l2", prompt: str | None = None, prior=None,
           config: ImageSDSConfig | None = None) -> SDSLoopFigure:
    """Build figure 1: a live loop (starts at iteration 0) plus ``steps`` precomputed frames.

    Args:
        width, height: image size; L2 default 48×48. In prior mode the image is square: if
            given they must be equal and set ``config.resolution``.
        n, steps, seed: Gaussians, precomputed steps and seed (in prior mode they replace
            ``config``'s ``n_gaussians``, ``steps`` and ``seed``).
        denoiser: ``"l2"`` (:class:`ToySDS` toward :func:`target_image`) or ``"prior"``
            (:class:`ImageSDS` with ``prior`` and ``prompt``).
        prompt: the text prompt (prior mode only; required there).
        prior: a :class:`~gsbook.sds.book.BookPrior` (default: the shipped weights).
        config: the rest of the prior run's settings (default :class:`ImageSDSConfig`).
    """
    if denoiser not in DENOISERS:
        raise ValueError(f"unknown denoiser {denoiser!r}; choose one of {list(DENOISERS)}")
    if denoiser == "l2":
        if prompt is not None or prior is not None or config is not None:
            raise ValueError("prompt, prior and config apply only to denoiser='prior'")
        target = target_image(width or 48, height or 48)
        record = precompute(ToySDS(target, n=n, seed=seed), steps)
        return SDSLoopFigure(ToySDS(target, n=n, seed=seed), record, caption)

    if not prompt:
        raise ValueError("denoiser='prior' needs a prompt, e.g. prompt='a red mushroom with a white stem'")
    config = replace(config or ImageSDSConfig(), steps=steps, n_gaussians=n, seed=seed)
    if width is not None or height is not None:
        side = width if height is None else height
        if width is not None and width != side:
            raise ValueError(f"the prior mode's image is square, got width={width}, height={height}")
        config = replace(config, resolution=side)
    if prior is None:
        from gsbook.sds.book import BookPrior
        prior = BookPrior()
    # the live and the precomputed run start alike (same seed); one sample serves both
    precomputed = PriorView(ImageSDS(prior, prompt, config))
    record = precompute(precomputed, steps)
    return SDSLoopFigure(PriorView(ImageSDS(prior, prompt, config), side=precomputed.side), record, caption)
