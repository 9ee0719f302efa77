"""Figure 3, "4 views → Gaussians" (§3): a trained feed-forward network, shown at work.

Left, the **four input views** (azimuth 0°, 90°, 180°, 270°): ShapeWorld's ground-truth renders
or the multi-view prior's drawing of the same prompt — the reader picks. Middle, **the network**:
LGM's U-Net turns each view into a grid of tokens, and at its lowest resolution one
self-attention layer sees the tokens of all four views at once; the figure draws that layer's
*real* attention (averaged over heads) for one query token, the centre of the object in the
front view, as a heat map over every view. Right, **the predicted Gaussians** (4 × 32² = 4,096)
rendered under an **orbit** slider.

Two renderings of one figure, as for Figures 1 and 2:

* **live** (JupyterLab): ipywidgets; the source buttons and the orbit slider re-render in the kernel;
* **static** (the website): every source's views, attention and orbit frames (one per
  ``360 / azimuths`` degrees) precomputed and embedded, switched by client-side controls.

:func:`figure` returns one object carrying both; the website shows the static player.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gsbook.cameras import orbit
from gsbook.gaussians import Gaussians
from gsbook.images import to_pil
from gsbook.methods import LGM, ground_truth_views, reconstruct, upsample_views
from gsbook.render import render
from widgets.player import OPEN_JS

__all__ = ["Source", "attention_to_query", "overlay", "orbit_render", "precompute", "static_html", "live",
           "FourViewsFigure", "figure", "ELEVATION"]

ELEVATION = 20.0     # the orbit camera's elevation: above the input views' 0°, so the top shows
SCALE = 3            # screen pixels per pixel of the 64² views
SIZE = 96            # orbit renders, pixels


@dataclass
class Source:
    """One set of four input views and what the network made of them.

    Attributes:
        name: what the reader picks ("ground truth", "multi-view prior").
        views: ``[4, 64, 64, 3]`` in [0, 1], on white.
        gaussians: the network's output.
        attention: ``[4, g, g]`` the attention of the query token over each view's tokens (sums to 1).
        query: ``(row, col)`` of the query token in the front view's ``g × g`` grid.
    """

    name: str
    views: Tensor
    gaussians: Gaussians
    attention: Tensor
    query: tuple[int, int]
    frames: list[bytes] = field(default_factory=list)


# ----------------------------------------------------------------------------- the network's attention
def attention_to_query(model: LGM, views: Tensor) -> tuple[Tensor, tuple[int, int]]:
    """The lowest-resolution attention of ``model`` (its middle block) for one query token: the
    front view's token nearest the object's centre. Returns ``([4, g, g], (row, col))``."""
    if not isinstance(model, LGM):
        raise TypeError(f"the attention panel reads LGM's middle attention layer, not {type(model).__name__}")
    size = model.config.input_size
    views = upsample_views(views, size)
    layer = model.mid.attentions[0]
    seen: dict[str, Tensor] = {}
    hook = layer.register_forward_hook(lambda module, args, out: seen.setdefault("x", args[0]))
    try:
        reconstruct(model, views)
    finally:
        hook.remove()
    with torch.no_grad():
        weights = layer.attention_weights(seen["x"])[0]                      # [4·g·g, 4·g·g]
    g = seen["x"].shape[-1]
    ink = (views[0] < 0.97).any(-1).float()                               # the front view's object pixels
    ys, xs = torch.nonzero(ink, as_tuple=True)
    cy, cx = (ys.float().mean(), xs.float().mean()) if len(ys) else (torch.tensor(size / 2),) * 2
    row, col = int(cy * g / size), int(cx * g / size)
    return weights[row * g + col].reshape(4, g, g), (row, col)


def overlay(views: Tensor, attention: Tensor, query: tuple[int, int]) -> Tensor:
    """The views ``[4, H, W, 3]`` faded, with the attention ``[4, g, g]`` painted in red (one colour
    scale for all four, so the views can be compared) and the query token outlined in blue."""
    V, H, W, _ = views.shape
    g = attention.shape[-1]
    heat = (attention / attention.max()).repeat_interleave(H // g, 1).repeat_interleave(W // g, 2)[..., None]
    faded = 0.55 + 0.45 * views.mean(-1, keepdim=True).expand(V, H, W, 3)
    red = torch.tensor([0.85, 0.1, 0.05])
    out = faded * (1 - heat) + red * heat
    r, c, s = query[0] * (H // g), query[1] * (W // g), H // g
    blue = torch.tensor([0.1, 0.3, 0.9])
    out[0, r, c:c + s] = out[0, r + s - 1, c:c + s] = blue
    out[0, r:r + s, c] = out[0, r:r + s, c + s - 1] = blue
    return out


# ----------------------------------------------------------------------------- the orbit
def orbit_render(gaussians: Gaussians, azimuth_deg: float, size: int = SIZE) -> Tensor:
    """The Gaussians from elevation 20° at ``azimuth_deg``, on white: ``[size, size, 3]``."""
    cams = orbit(ELEVATION, azimuth_deg, 2.5, 49.1, size, size, device=gaussians.means.device)
    with torch.no_grad():
        return render(gaussians, cams, background=1.0).image[0].clamp(0, 1).cpu()


def _png(image: Tensor, quantize: bool = True) -> bytes:
    buf = io.BytesIO()
    pil = to_pil(image)
    (pil.quantize(256) if quantize else pil).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _row(images: Tensor) -> Tensor:
    """``[V, H, W, 3]`` → one row with 2-pixel white gaps."""
    gap = torch.ones(images.shape[1], 2, 3)
    parts = []
    for i, im in enumerate(images):
        parts += [im] + ([gap] if i < len(images) - 1 else [])
    return torch.cat(parts, dim=1)


def precompute(model: LGM, sources: dict[str, Tensor], azimuths: int = 24) -> list[Source]:
    """Reconstruct each source's views, read the attention, render ``azimuths`` orbit frames."""
    out = []
    for name, views in sources.items():
        gaussians = reconstruct(model, views)
        attention, query = attention_to_query(model, views)
        frames = [_png(orbit_render(gaussians, 360.0 * k / azimuths)) for k in range(azimuths)]
        out.append(Source(name, upsample_views(views, 64), gaussians, attention, query, frames))
    return out


# ----------------------------------------------------------------------------- static player
_JS = OPEN_JS + """
  var src = 0, az = 0, slider = q("input[type=range]");
  function show() {
    var s = d.sources[src];
    q("img.gsbook-views").src = "data:image/png;base64," + s.views;
    q("img.gsbook-attention").src = "data:image/png;base64," + s.attention;
    q("img.gsbook-frame").src = "data:image/png;base64," + s.frames[az];
    q(".gsbook-azimuth").textContent = (az * 360 / s.frames.length).toFixed(0) + "°";
    root.querySelectorAll("button[data-source]").forEach(function (b) {
      b.style.fontWeight = (+b.dataset.source === src) ? "700" : "400"; });
    root.setAttribute("data-source", s.name); root.setAttribute("data-azimuth", az);
  }
  root.querySelectorAll("button[data-source]").forEach(function (b) {
    b.onclick = function () { src = +b.dataset.source; show(); }; });
  slider.oninput = function () { az = parseInt(slider.value, 10); show(); };
  show();
})();
"""


def static_html(sources: list[Source], count: int, tokens: str, caption: str = "") -> str:
    """A self-contained player: source buttons, the views, the attention, the orbit slider."""
    if not sources or any(len(s.frames) != len(sources[0].frames) for s in sources):
        raise ValueError("need at least one source, all with the same number of orbit frames")
    pid = "gsbook-fourviews-" + uuid.uuid4().hex[:10]
    enc = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    data = {"sources": [{"name": s.name, "views": enc(_png(_row(s.views), quantize=False)),
                         "attention": enc(_png(_row(overlay(s.views, s.attention, s.query)), quantize=False)),
                         "frames": [enc(f) for f in s.frames]} for s in sources]}
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    n = len(sources[0].frames)
    buttons = "".join(f'<button type="button" data-source="{i}">{html.escape(s.name)}</button>'
                      for i, s in enumerate(sources))
    row_w = (4 * 64 + 6) * 2
    side = SIZE * SCALE
    return f"""
<div class="gsbook-player gsbook-fourviews" id="{pid}" data-figure="four_views" data-sources="{len(sources)}" data-frames="{n}" data-count="{count}">
  <div class="gsbook-controls" style="display:flex;gap:.4em;align-items:center;flex-wrap:wrap;margin-bottom:.4em">
    input views · 输入视图: {buttons}
    <span style="margin-left:1em">orbit · 环绕</span>
    <input type="range" min="0" max="{n - 1}" value="0" step="1" aria-label="orbit azimuth" style="width:14em">
    <code class="gsbook-azimuth">0°</code>
  </div>
  <div style="display:flex;gap:14px;align-items:flex-start;flex-wrap:wrap">
    <div>
      <div style="font-size:.8em;color:#555">four input views · 四个输入视图 (0°, 90°, 180°, 270°)</div>
      <img class="gsbook-views" alt="the four input views" width="{row_w}" style="image-rendering:pixelated;display:block">
      <div style="font-size:.8em;color:#555;margin-top:.4em">the network · 网络: {html.escape(tokens)}</div>
      <img class="gsbook-attention" alt="attention of one front-view token over all four views" width="{row_w}" style="image-rendering:pixelated;display:block">
    </div>
    <figure style="margin:0"><img class="gsbook-frame" alt="the predicted Gaussians, orbiting" width="{side}" height="{side}"
      style="image-rendering:pixelated;border:1px solid #ddd">
      <figcaption style="font-size:.9em">predicting <b class="gsbook-count">{count:,}</b> Gaussians · 预测 {count:,} 个高斯</figcaption></figure>
  </div>
  <div class="gsbook-caption" style="font-size:.85em;color:#555">{html.escape(caption)}</div>
  <script type="application/json" class="gsbook-data">{payload}</script>
  <script>{_JS % {"id": json.dumps(pid)}}</script>
</div>"""


# ----------------------------------------------------------------------------- live widget
def live(model: LGM, sources: list[Source], azimuths: int = 24):
    """The JupyterLab figure: source buttons and an orbit slider that re-render in the kernel."""
    import ipywidgets as W

    pick = W.ToggleButtons(options=[s.name for s in sources], description="views · 视图")
    slider = W.IntSlider(value=0, min=0, max=345, step=360 // azimuths, description="orbit · 环绕 °")
    views, attention = W.Image(format="png"), W.Image(format="png")
    frame = W.Image(format="png", width=SIZE * SCALE, height=SIZE * SCALE)
    count = W.HTML(f"predicting <b>{model.config.n_gaussians:,}</b> Gaussians · 预测 {model.config.n_gaussians:,} 个高斯")

    def show(_=None):
        s = next(s for s in sources if s.name == pick.value)
        views.value = _png(_row(s.views), quantize=False)
        attention.value = _png(_row(overlay(s.views, s.attention, s.query)), quantize=False)
        frame.value = _png(orbit_render(s.gaussians, slider.value))

    pick.observe(show, names="value")
    slider.observe(show, names="value")
    show()
    box = W.VBox([W.HBox([pick, slider]), W.HBox([W.VBox([views, attention]), W.VBox([frame, count])])])
    box.pick, box.slider, box.frame = pick, slider, frame
    return box


# ----------------------------------------------------------------------------- the figure
class FourViewsFigure:
    """Live widget in JupyterLab, static player on the website (one output, two renderings)."""

    def __init__(self, model: LGM, sources: list[Source], azimuths: int, caption: str = ""):
        cfg = model.config
        g = cfg.input_size // 2 ** (len(cfg.down_channels) - 1)
        self.tokens = (f"4 views × {g}×{g} tokens = {4 * g * g} tokens in one attention layer; "
                       f"red: where the blue front-view token looks · 4 个视图 × {g}×{g} 个 token，"
                       f"共 {4 * g * g} 个 token 在同一个注意力层里；红色：蓝色的正面 token 看向哪里")
        self.model, self.sources, self.count = model, sources, cfg.n_gaussians
        self.html = static_html(sources, self.count, self.tokens, caption)
        self.widget = live(model, sources, azimuths)

    def _summary(self) -> str:
        names = ", ".join(s.name for s in self.sources)
        return (f"4 views → Gaussians ({names}): {self.count:,} Gaussians per object, "
                f"{len(self.sources[0].frames)} orbit frames")

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.html
        bundle["text/plain"] = self._summary()
        return bundle


def figure(model: LGM | None = None, prompt: str = "a blue lamp with a grey base", seed: int = 0,
           prior=None, sampler_steps: int = 50, azimuths: int = 24, caption: str = "") -> FourViewsFigure:
    """Build Figure 3 for ``prompt``: the ground-truth views of its object (shape from ``seed``)
    and, when ``prior`` is given (a :class:`~gsbook.diffusion.multiview.MultiViewPrior`), the
    views it draws; ``model`` defaults to the shipped LGM."""
    from gsbook.methods import FeedForwardConfig, feedforward_text_to_3d

    model = model or LGM.from_shipped(device="cpu")
    sources = {"ground truth · 真值": ground_truth_views(prompt, seed)}
    if prior is not None:
        # exactly what text → 3D feeds the reconstructor: drawn, keyed out to white, recentred
        config = FeedForwardConfig(sampler_steps=sampler_steps, seed=seed)
        sources["multi-view prior · 多视角先验"] = feedforward_text_to_3d(model, prior, prompt, config).views
    return FourViewsFigure(model, precompute(model, sources, azimuths), azimuths, caption)
