"""A small figure for §1: what the denoiser sees, ``x_t = α_t x + σ_t ε``, as t grows.

Built from ipywidgets only, with the slider tied to the pictures by ``jslink`` (a link kept
in the browser, not the kernel). So the same figure works live in JupyterLab *and* on the
static website, where the embedded widget state is drawn by the Jupyter widget manager
(served from the site itself) with no kernel at all. The compute is
:func:`gsbook.diffusion.add_noise` on a diffusers noise schedule; this module only draws.
"""

from __future__ import annotations

import torch

from gsbook.diffusion import add_noise, alpha_sigma, scheduler_alphas_cumprod
from gsbook.images import png_bytes

__all__ = ["noised", "figure"]


def noised(x: torch.Tensor, timesteps: list[int], alphas_cumprod: torch.Tensor | None = None,
           seed: int = 0) -> list[torch.Tensor]:
    """``x_t`` for each integer timestep, one shared noise draw. ``x``: ``[H, W, 3]`` in [0, 1],
    mapped to [-1, 1] first, as diffusion models see images; results are in that range too.
    ``alphas_cumprod`` defaults to Stable Diffusion's schedule (1000 steps)."""
    abar = scheduler_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
    x = (2 * x - 1).permute(2, 0, 1)[None]
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return [add_noise(x, eps, torch.tensor([t]), abar)[0].permute(1, 2, 0) for t in timesteps]


def figure(x: torch.Tensor, timesteps: list[int], alphas_cumprod: torch.Tensor | None = None, scale: int = 4,
           seed: int = 0):
    """A slider over ``timesteps`` and the noised image at each, linked in the browser."""
    import ipywidgets as W

    abar = scheduler_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
    images = [W.Image(value=png_bytes((img + 1) / 2, scale), format="png")
              for img in noised(x, timesteps, abar, seed)]
    labels = []
    for t in timesteps:
        a, s = alpha_sigma(abar, torch.tensor([t]), 1)
        labels.append(W.HTML(f"<code>t = {t} · α<sub>t</sub> = {float(a):.2f} · σ<sub>t</sub> = {float(s):.2f}</code>"))
    # No `description`: the widget manager typesets descriptions with MathJax 2's API.
    slider = W.IntSlider(value=0, min=0, max=len(timesteps) - 1, readout=False, continuous_update=True)
    pictures, readout = W.Stack(images, selected_index=0), W.Stack(labels, selected_index=0)
    links = (W.jslink((slider, "value"), (pictures, "selected_index")),
             W.jslink((slider, "value"), (readout, "selected_index")))
    box = W.VBox([W.HBox([W.HTML("<b>noise step · 加噪步</b>&nbsp;"), slider, readout]), pictures])
    box.add_class("gsbook-noising")
    box.links = links      # kept for inspection (tests); the browser holds its own copy
    return box
