"""ShapeWorld's named colours (taught in §0).

Eleven colours a reader can name at a glance. The values are sRGB in [0, 1]; white and
black stop short of 1 and 0 so that shading still shows on a white or black background.
"""

from __future__ import annotations

import numpy as np

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.13, 0.11),
    "orange": (0.97, 0.52, 0.09),
    "yellow": (0.97, 0.84, 0.13),
    "green": (0.16, 0.63, 0.22),
    "blue": (0.14, 0.34, 0.86),
    "purple": (0.53, 0.23, 0.72),
    "pink": (0.97, 0.55, 0.73),
    "brown": (0.50, 0.31, 0.14),
    "white": (0.93, 0.93, 0.93),
    "black": (0.13, 0.13, 0.13),
    "grey": (0.55, 0.55, 0.55),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
# Words the caption parser also accepts, mapped to their canonical colour.
COLOUR_SYNONYMS: dict[str, str] = {"gray": "grey"}


def colour_rgb(name: str) -> np.ndarray:
    """sRGB ``[3]`` of a colour name (canonical or synonym)."""
    key = COLOUR_SYNONYMS.get(name, name)
    if key not in COLOURS:
        raise ValueError(f"unknown colour {name!r}; ShapeWorld's colours are: {', '.join(COLOUR_NAMES)}")
    return np.asarray(COLOURS[key], dtype=np.float64)
