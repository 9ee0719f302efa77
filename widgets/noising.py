"""A small figure for §1: what the denoiser sees, ``x_t = a_t x + s_t eps``, as t grows.

Built from ipywidgets only, with the slider tied to the pictures by ``jslink`` (a link kept
in the browser, not the kernel). So the same figure works live in JupyterLab *and* on the
static website, where the embedded widget state is drawn by the Jupyter widget manager
(served from the site itself) with no kernel at all. The compute is
:func:`gsbook.toy2d.noise_schedule`; this module only draws.
"""

from __future__ import annotations

import io

import torch
from PIL import Image

from gsbook.toy2d import noise_schedule

__all__ = ["noised", "figure"]


def noised(x: torch.Tensor, ts: list[float], seed: int = 0) -> list[torch.Tensor]:
    """``x_t`` for each ``t`` in ``ts``, one shared noise draw. ``x``: ``[H, W, 3]`` in [0, 1],
    mapped to [-1, 1] first, as diffusion models see images; results are in that range too."""
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    out = []
    for t in ts:
        a, s = noise_schedule(torch.tensor(float(t)))
        out.append(a * (2 * x - 1) + s * eps)
    return out


def _png(img: torch.Tensor, scale: int) -> bytes:
    arr = (((img.clamp(-1, 1) + 1) / 2) * 255).round().to(torch.uint8).numpy()
    pil = Image.fromarray(arr, mode="RGB")
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def figure(x: torch.Tensor, ts: list[float], scale: int = 4, seed: int = 0):
    """A slider over ``ts`` and the noised image at each, linked in the browser."""
    import ipywidgets as W

    images = [W.Image(value=_png(img, scale), format="png") for img in noised(x, ts, seed)]
    labels = []
    for t in ts:
        a, s = noise_schedule(torch.tensor(float(t)))
        labels.append(W.HTML(f"<code>t = {t:.2f} · α<sub>t</sub> = {float(a):.2f} · σ<sub>t</sub> = {float(s):.2f}</code>"))
    # No `description`: the widget manager typesets descriptions with MathJax 2's API.
    slider = W.IntSlider(value=0, min=0, max=len(ts) - 1, readout=False, continuous_update=True)
    pictures, readout = W.Stack(images, selected_index=0), W.Stack(labels, selected_index=0)
    links = (W.jslink((slider, "value"), (pictures, "selected_index")),
             W.jslink((slider, "value"), (readout, "selected_index")))
    box = W.VBox([W.HBox([W.HTML("<b>noise step</b>&nbsp;"), slider, readout]), pictures])
    box.add_class("gsbook-noising")
    box.links = links      # kept for inspection (tests); the browser holds its own copy
    return box
