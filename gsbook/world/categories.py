"""ShapeWorld's categories: how each object is put together from primitives (taught in §0).

A category is a recipe ``build(rng) -> list[Part]`` that draws its proportions from
``rng`` and stacks primitives bottom-up from y = 0; :func:`gsbook.world.asset.make_asset`
then centres the result, scales it to a random size and turns it about +y.

Single-part categories take one colour (slot ``"body"``). Multi-part ones have a second
colour slot named by a noun a caption can use: "a red mushroom with a white **stem**".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .primitives import (Box, Capsule, Cone, Cylinder, Dome, Frustum, Part, Sphere, Torus, fin, prism,
                         rotation_x, rotation_y, rotation_z, square_pyramid)

Rng = np.random.Generator


@dataclass(frozen=True)
class Category:
    """One kind of object.

    Attributes:
        name: the caption word ("mushroom").
        build: ``rng -> list[Part]``; parts take slot ``"body"`` or ``part``.
        part: the noun for the second colour slot ("stem"), or ``None`` for one-colour objects.
        plural: whether ``part`` is a plural noun ("legs": "with black legs", no article).
        default_part_colour: the second colour when a caption names only the main one.
    """
    name: str
    build: Callable[[Rng], list[Part]]
    part: str | None = None
    plural: bool = False
    default_part_colour: str | None = None


def _ball(rng: Rng) -> list[Part]:
    r = rng.uniform(0.5, 0.65)
    return [Part(Sphere(r), translation=(0.0, r, 0.0))]


def _box(rng: Rng) -> list[Part]:
    half = tuple(rng.uniform(0.3, 0.55, 3))
    return [Part(Box(half), translation=(0.0, half[1], 0.0))]


def _can(rng: Rng) -> list[Part]:
    r, h = rng.uniform(0.28, 0.4), rng.uniform(0.4, 0.6)
    return [Part(Cylinder(r, h), translation=(0.0, h, 0.0))]


def _cone(rng: Rng) -> list[Part]:
    r, h = rng.uniform(0.38, 0.55), rng.uniform(0.45, 0.62)
    return [Part(Cone(r, h), translation=(0.0, h, 0.0))]


def _ring(rng: Rng) -> list[Part]:
    # A ring lying nearly flat, tipped a little so that its hole shows from low views.
    major, minor = rng.uniform(0.42, 0.55), rng.uniform(0.1, 0.14)
    tilt = np.deg2rad(rng.uniform(4.0, 10.0))
    return [Part(Torus(major, minor), rotation=rotation_x(tilt))]


def _capsule(rng: Rng) -> list[Part]:
    r, h = rng.uniform(0.22, 0.32), rng.uniform(0.22, 0.38)
    return [Part(Capsule(r, h), translation=(0.0, r + h, 0.0))]


def _pyramid(rng: Rng) -> list[Part]:
    b, h = rng.uniform(0.45, 0.6), rng.uniform(0.75, 1.1)
    return [Part(square_pyramid(b, h), translation=(0.0, h / 2, 0.0))]


def _mushroom(rng: Rng) -> list[Part]:
    stem_r, stem_h = rng.uniform(0.11, 0.17), rng.uniform(0.45, 0.65)
    cap_r = rng.uniform(0.42, 0.58)
    cut = cap_r * rng.uniform(0.0, 0.3)
    stem = Part(Frustum(stem_r, 0.85 * stem_r, stem_h / 2), "stem", (0.0, stem_h / 2, 0.0))
    base = stem_h - 0.03                                  # the cap swallows the stem's top
    cap = Part(Dome(cap_r, cut), translation=(0.0, base - cut, 0.0))
    return [cap, stem]


def _snowman(rng: Rng) -> list[Part]:
    r1 = rng.uniform(0.27, 0.32)
    r2, r3 = r1 * rng.uniform(0.68, 0.78), r1 * rng.uniform(0.5, 0.58)
    y1 = r1
    y2 = y1 + r1 + 0.75 * r2
    y3 = y2 + r2 + 0.75 * r3
    brim_y = y3 + 0.8 * r3
    crown_h = rng.uniform(0.1, 0.16)
    return [
        Part(Sphere(r1), translation=(0.0, y1, 0.0)),
        Part(Sphere(r2), translation=(0.0, y2, 0.0)),
        Part(Sphere(r3), translation=(0.0, y3, 0.0)),
        Part(Cylinder(1.25 * r3, 0.03), "hat", (0.0, brim_y, 0.0)),
        Part(Cylinder(0.72 * r3, crown_h), "hat", (0.0, brim_y + crown_h, 0.0)),
    ]


def _legs(rng: Rng, half_x: float, half_z: float, height: float, inset: float) -> list[Part]:
    r = rng.uniform(0.055, 0.07)
    return [Part(Cylinder(r, height / 2), "legs", (sx * (half_x - inset), height / 2, sz * (half_z - inset)))
            for sx in (-1.0, 1.0) for sz in (-1.0, 1.0)]


def _table(rng: Rng) -> list[Part]:
    w, d, t = rng.uniform(0.55, 0.7), rng.uniform(0.4, 0.55), rng.uniform(0.065, 0.085)
    height = rng.uniform(0.6, 0.85)
    top = Part(Box((w, t, d)), translation=(0.0, height + t - 0.01, 0.0))
    return [top, *_legs(rng, w, d, height, inset=0.09)]


def _chair(rng: Rng) -> list[Part]:
    w, d, t = rng.uniform(0.28, 0.36), rng.uniform(0.28, 0.36), 0.06
    seat_h = rng.uniform(0.45, 0.6)
    back_h = rng.uniform(0.25, 0.36)
    seat = Part(Box((w, t, d)), translation=(0.0, seat_h + t - 0.01, 0.0))
    back = Part(Box((w, back_h, 0.045)), translation=(0.0, seat_h + 2 * t + back_h - 0.02, -d + 0.045))
    return [seat, back, *_legs(rng, w, d, seat_h, inset=0.06)]


def _lamp(rng: Rng) -> list[Part]:
    base_r, base_h = rng.uniform(0.22, 0.28), 0.03
    pole_r, pole_h = rng.uniform(0.045, 0.055), rng.uniform(0.55, 0.75)
    shade_h = rng.uniform(0.15, 0.21)
    shade = Frustum(rng.uniform(0.3, 0.38), rng.uniform(0.14, 0.2), shade_h)
    return [
        Part(shade, translation=(0.0, 2 * base_h + pole_h + shade_h * 0.6, 0.0)),
        Part(Cylinder(base_r, base_h), "base", (0.0, base_h, 0.0)),
        Part(Cylinder(pole_r, pole_h / 2 + 0.02), "base", (0.0, 2 * base_h + pole_h / 2, 0.0)),
    ]


def _tree(rng: Rng) -> list[Part]:
    trunk_r, trunk_h = rng.uniform(0.08, 0.11), rng.uniform(0.22, 0.32)
    parts = [Part(Cylinder(trunk_r, trunk_h / 2 + 0.02), "trunk", (0.0, trunk_h / 2, 0.0))]
    tiers = int(rng.integers(2, 4))
    radius, half = rng.uniform(0.42, 0.52), rng.uniform(0.2, 0.26)
    y = trunk_h + half
    for _ in range(tiers):
        parts.append(Part(Cone(radius, half), translation=(0.0, y, 0.0)))
        y += 1.1 * half
        radius *= 0.75
    return parts


def _house(rng: Rng) -> list[Part]:
    w, h, d = rng.uniform(0.38, 0.5), rng.uniform(0.22, 0.3), rng.uniform(0.3, 0.4)
    roof_h = rng.uniform(0.3, 0.42)
    roof = prism(w + 0.05, d + 0.07, roof_h)
    door_h = min(0.16, 0.7 * h)
    return [
        Part(Box((w, h, d)), translation=(0.0, h, 0.0)),
        Part(roof, "roof", (0.0, 2 * h - 0.01, 0.0)),
        Part(Box((0.075, door_h, 0.02)), "roof", (0.0, door_h, d + 0.005)),
        Part(Box((0.05, 0.11, 0.05)), "roof", (0.5 * w, 2 * h + 0.55 * roof_h, -0.3 * d)),
    ]


def _dumbbell(rng: Rng) -> list[Part]:
    half_len = rng.uniform(0.36, 0.46)
    bell_r, bell_w = rng.uniform(0.17, 0.23), rng.uniform(0.07, 0.11)
    bar_r = rng.uniform(0.06, 0.075)
    along_x = rotation_z(np.pi / 2)                       # cylinders stand along y; lay them along x
    parts = [
        Part(Cylinder(bell_r, bell_w), translation=(-half_len, 0.0, 0.0), rotation=along_x),
        Part(Cylinder(bell_r, bell_w), translation=(half_len, 0.0, 0.0), rotation=along_x),
        Part(Cylinder(bar_r, half_len), "handle", (0.0, 0.0, 0.0), along_x),
    ]
    # Standing on one bell, leaning a little. A bar seen end-on hides behind a bell, and a
    # bar at elevation τ is seen end-on only from cameras at elevation τ: with τ ≈ 70° the
    # book's views (0° for LGM's four, 20° in the gallery, -20°..40° at random) all see it
    # from well to the side.
    tilt = rotation_z(np.deg2rad(rng.uniform(65.0, 78.0)))
    return [p.moved(tilt, np.zeros(3)) for p in parts]


def _rocket(rng: Rng) -> list[Part]:
    r, half = rng.uniform(0.14, 0.19), rng.uniform(0.38, 0.48)
    nose_h = rng.uniform(0.22, 0.3)
    fins = int(rng.integers(3, 5))
    root, span, drop = rng.uniform(0.25, 0.35), rng.uniform(0.15, 0.22), rng.uniform(0.06, 0.12)
    bottom = drop
    parts = [
        Part(Cylinder(r, half), translation=(0.0, bottom + half, 0.0)),
        Part(Cone(r, nose_h / 2), "fins", (0.0, bottom + 2 * half + nose_h / 2 - 0.01, 0.0)),
    ]
    plate = fin(root, span, drop, 0.05)
    for k in range(fins):
        turn = rotation_y(2 * np.pi * k / fins)
        parts.append(Part(plate, "fins", (0.0, 0.0, 0.0)).moved(turn, turn @ np.array([r - 0.02, bottom, 0.0])))
    return parts


CATEGORIES: dict[str, Category] = {c.name: c for c in [
    Category("ball", _ball),
    Category("box", _box),
    Category("can", _can),
    Category("cone", _cone),
    Category("ring", _ring),
    Category("capsule", _capsule),
    Category("pyramid", _pyramid),
    Category("mushroom", _mushroom, "stem", False, "white"),
    Category("snowman", _snowman, "hat", False, "black"),
    Category("table", _table, "legs", True, "brown"),
    Category("chair", _chair, "legs", True, "black"),
    Category("lamp", _lamp, "base", False, "grey"),
    Category("tree", _tree, "trunk", False, "brown"),
    Category("house", _house, "roof", False, "red"),
    Category("dumbbell", _dumbbell, "handle", False, "grey"),
    Category("rocket", _rocket, "fins", True, "red"),
]}
CATEGORY_NAMES: tuple[str, ...] = tuple(CATEGORIES)


def get_category(name: str) -> Category:
    if name not in CATEGORIES:
        raise ValueError(f"unknown category {name!r}; ShapeWorld's categories are: {', '.join(CATEGORY_NAMES)}")
    return CATEGORIES[name]
