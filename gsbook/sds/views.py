"""View-dependent prompts (DreamFusion §3.2): tell the 2D prior which side it is looking at.

DreamFusion appends "front view", "side view" or "back view" by azimuth, and "overhead
view" at high elevation, which curbs the multi-face ("Janus") problem. Thresholds follow
stable-dreamfusion / threestudio: front within ±45° of azimuth 0, back within ±45° of 180°,
overhead above 60° elevation. Azimuth follows :mod:`gsbook.cameras` (0° = the object's
front on +z, 90° = +x).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

__all__ = ["view_direction", "view_dependent_prompts"]


def view_direction(azimuth_deg: float | Sequence[float] | Tensor,
                   elevation_deg: float | Sequence[float] | Tensor = 0.0,
                   front_deg: float = 45.0, back_deg: float = 45.0,
                   overhead_deg: float = 60.0) -> list[str]:
    """``"front"``, ``"side"``, ``"back"`` or ``"overhead"`` per camera (``[C]`` angles)."""
    az = torch.as_tensor(azimuth_deg, dtype=torch.float64).reshape(-1)
    el = torch.as_tensor(elevation_deg, dtype=torch.float64).reshape(-1).expand_as(az)
    az = (az + 180.0) % 360.0 - 180.0                       # wrap to [-180, 180)
    out = []
    for a, e in zip(az.tolist(), el.tolist()):
        if e > overhead_deg:
            out.append("overhead")
        elif abs(a) <= front_deg:
            out.append("front")
        elif abs(a) >= 180.0 - back_deg:
            out.append("back")
        else:
            out.append("side")
    return out


def view_dependent_prompts(prompt: str, azimuth_deg: float | Sequence[float] | Tensor,
                           elevation_deg: float | Sequence[float] | Tensor = 0.0) -> list[str]:
    """``["a red mushroom, front view", …]``, one per camera."""
    return [f"{prompt}, {d} view" for d in view_direction(azimuth_deg, elevation_deg)]
