"""A ShapeWorld asset and its ground truth: SDF, surface Gaussians, occupancy, mesh (taught in §0).

``make_asset(spec, seed)`` turns a caption's spec and a seed into one object: the same
(category, seed) always gives the same shape, whatever its colours. ``make_scene`` lays
two objects out for a two-object prompt ("a red ball on a blue box").

Ground truth, all from the same union of primitives:

* ``asset.sdf(points)``             signed distance, negative inside;
* ``asset.surface(n)``              n points uniform over the *visible* surface, with normals and colours;
* ``asset.gaussians(n)``            flat Gaussians on those points, each lying in the surface's tangent plane;
* ``asset.occupancy(R)``            ``[R, R, R]`` inside/outside at voxel centres of the cube [-1, 1]³;
* ``asset.mesh(resolution)``        a watertight triangle mesh (marching cubes on the SDF).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .captions import ObjectSpec, SceneSpec, Spec, caption, parse
from .categories import CATEGORY_NAMES, get_category
from .colours import COLOUR_NAMES, colour_rgb
from .primitives import Part, rotation_y, scaled_part

# Bump when anything that changes generated geometry, colours or renders changes:
# dataset caches live in folders named after it, so a new version rebuilds them.
GENERATOR_VERSION = 1

# Objects are scaled so that max(|y|, distance from the y axis) is this; with the book's
# default camera (radius 2.5, fovy 49.1°) every object then stays inside the frame.
SIZE_RANGE = (0.55, 0.72)
# Light fixed in the world, baked into the Gaussians' colours as in a lit texture.
LIGHT_DIRECTION = np.array([0.35, 1.0, 0.55]) / np.linalg.norm([0.35, 1.0, 0.55])
BOUND = 1.0                     # occupancy grids cover [-BOUND, BOUND]³
_SALT = 0x5EED                  # keeps ShapeWorld's random streams apart from other seeded code


def shade(rgb: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Baked lighting ``[M, 3]``: a soft sky term plus one directional light."""
    sky = 0.5 + 0.5 * normals[:, 1:2]                      # 1 facing up, 0 facing down
    sun = np.clip(normals @ LIGHT_DIRECTION, 0.0, None)[:, None]
    return np.clip(rgb * (0.42 + 0.18 * sky + 0.45 * sun), 0.0, 1.0)


@dataclass
class SurfaceSamples:
    """Points on the visible surface. ``points``, ``normals``, ``albedo``, ``rgb`` (shaded): ``[N, 3]``;
    ``part``: ``[N]`` index of the part each point lies on; ``area``: the visible area they cover."""
    points: np.ndarray
    normals: np.ndarray
    albedo: np.ndarray
    rgb: np.ndarray
    part: np.ndarray
    area: float


@dataclass
class Asset:
    """One ShapeWorld object (or a two-object scene): primitives with colours.

    Attributes:
        spec: the fully resolved spec (every colour named); ``asset.caption`` is its caption.
        parts: the primitives, placed in the world frame.
        part_rgb: ``[P, 3]`` albedo of each part.
        seed: the seed it was made from.
        layout: per object, ``(spec, lo [3], hi [3])`` — its world bounding box (one entry
            for a single object, two for a scene).
    """
    spec: Spec
    parts: list[Part]
    part_rgb: np.ndarray
    seed: int
    layout: list[tuple[ObjectSpec, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def caption(self) -> str:
        return caption(self.spec)

    # --- signed distance -----------------------------------------------------------------
    def part_sdf(self, points: np.ndarray) -> np.ndarray:
        """``[M, P]`` signed distance of ``points [M, 3]`` to every part."""
        return np.stack([p.sdf(points) for p in self.parts], axis=1)

    def sdf(self, points: Tensor | np.ndarray) -> Tensor | np.ndarray:
        """Signed distance ``[M]`` at ``points [M, 3]`` (negative inside); same array type back.

        A union's distance is the minimum over its parts: exact outside, a bound inside.
        """
        if isinstance(points, Tensor):
            values = self.sdf(points.detach().cpu().double().numpy())
            return torch.from_numpy(values).to(points.dtype).to(points.device)
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return self.part_sdf(points).min(axis=1)

    # --- surface -------------------------------------------------------------------------
    def surface(self, n: int, seed: int = 0, probe: float = 2e-3,
                density: np.ndarray | None = None, inset: np.ndarray | None = None) -> SurfaceSamples:
        """``n`` points on the visible surface of the union, uniform within each part.

        Each part's surface is sampled in proportion to its area (times ``density [P]`` if
        given); a sample is kept only if a step of ``probe`` along its normal leaves every
        *other* part — this drops samples buried inside another part and those on faces
        where two parts touch. With ``inset [P]``, samples closer than ``inset`` to a sharp
        edge of their own part are dropped too (seen from inside, another face is nearer than
        ``inset``). ``area`` in the result is the visible area per sample times ``n``,
        weighted by density.
        """
        if n <= 0:
            raise ValueError(f"need a positive number of surface samples, got {n}")
        rng = np.random.default_rng([_SALT, self.seed, n, seed])
        weights = np.array([p.shape.area() for p in self.parts])
        if density is not None:
            weights = weights * np.asarray(density)
        kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        drawn = accepted = 0
        while accepted < n:
            want = int(1.3 * (n - accepted) * max(drawn, 1) / max(accepted, 1)) + 32
            counts = rng.multinomial(want, weights / weights.sum())
            pts, nrm, idx = [], [], []
            for i, (part, k) in enumerate(zip(self.parts, counts)):
                p, q = part.sample(int(k), rng)
                pts.append(p)
                nrm.append(q)
                idx.append(np.full(int(k), i))
            pts, nrm, idx = np.concatenate(pts), np.concatenate(nrm), np.concatenate(idx)
            d = self.part_sdf(pts + probe * nrm)
            d[np.arange(len(idx)), idx] = np.inf
            keep = d.min(axis=1) > 0
            if inset is not None and np.any(np.asarray(inset) > 0):
                depth = np.asarray(inset)[idx]
                own = np.empty(len(idx))
                for i, part in enumerate(self.parts):
                    sel = idx == i
                    own[sel] = part.sdf(pts[sel] - depth[sel, None] * nrm[sel])
                keep &= own < -0.95 * depth
            kept.append((pts[keep], nrm[keep], idx[keep]))
            drawn += want
            accepted += int(keep.sum())
        pts, nrm, idx = (np.concatenate(a) for a in zip(*kept))
        order = rng.permutation(len(idx))[:n]
        pts, nrm, idx = pts[order], nrm[order], idx[order]
        albedo = self.part_rgb[idx]
        return SurfaceSamples(pts, nrm, albedo, shade(albedo, nrm), idx, float(weights.sum() * accepted / drawn))

    def gaussians(self, n: int = 4096, seed: int = 0, opacity: float = 0.95, spread: float = 0.4,
                  flatness: float = 0.1, feature_ratio: float = 3.0, edge_inset: float = 1.6,
                  shaded: bool = True):
        """Ground-truth :class:`~gsbook.gaussians.Gaussians`: ``n`` flat discs on the visible surface.

        Each Gaussian lies in the tangent plane (its local z axis on the normal) with standard
        deviation ``spread`` times the local sample spacing across the surface, so neighbours
        overlap and the surface is closed, and ``flatness`` times that along the normal.
        A flat disc on a thin cylinder sticks out of it, so on parts thinner than
        ``feature_ratio`` Gaussians the discs shrink and the samples crowd in to match
        (a table's legs get smaller, denser Gaussians than its top). A disc centred on a
        sharp edge spills over it and fattens the silhouette, so discs keep ``edge_inset``
        of their own size away from edges and let their tails reach the edge. Colours are
        the parts' colours, with the world's lighting baked in when ``shaded``.
        """
        from ..gaussians import Gaussians, quats_from_normals
        areas = np.array([p.shape.area() for p in self.parts])
        features = np.array([p.shape.feature_size() for p in self.parts])
        sigma0 = spread * np.sqrt(areas.sum() / n)
        density = np.maximum(1.0, (feature_ratio * sigma0 / features) ** 2)
        sigma_estimate = spread * np.sqrt((areas * density).sum() / (n * density))
        s = self.surface(n, seed, density=density, inset=edge_inset * sigma_estimate)
        sigma = spread * np.sqrt(s.area / (n * density[s.part]))
        means = torch.from_numpy(s.points).float()
        normals = torch.from_numpy(s.normals).float()
        tangent = torch.from_numpy(sigma).float()
        scales = torch.stack([tangent, tangent, flatness * tangent], dim=1)
        rgb = torch.from_numpy(s.rgb if shaded else s.albedo).float().clamp(1e-3, 1 - 1e-3)
        return Gaussians.from_activated(means, scales, torch.full((n,), opacity), rgb,
                                        quats=quats_from_normals(normals))

    # --- volumes -------------------------------------------------------------------------
    def occupancy(self, resolution: int = 32, bound: float = BOUND) -> Tensor:
        """``[R, R, R]`` bool: is the centre of voxel (i, j, k) inside? Axes are (x, y, z),
        voxel centres at ``-bound + (i + 0.5) * 2 * bound / R``."""
        return torch.from_numpy(self.sdf(grid_centres(resolution, bound)).reshape((resolution,) * 3) < 0)

    def mesh(self, resolution: int = 128, margin: float = 0.1):
        """A watertight ``trimesh.Trimesh`` (vertex colours = nearest part's albedo).

        Marching cubes (scikit-image) on the SDF sampled over the asset's bounding box plus
        ``margin``; ``resolution`` cells along the longest side.
        """
        from ..mesh import level_set_mesh
        # An irrational nudge keeps grid points off the flat faces of boxes and planes, where
        # a zero SDF value would give marching cubes degenerate, non-manifold triangles.
        lo = np.min([b[1] for b in self.layout], axis=0) - margin - 0.0031831
        hi = np.max([b[2] for b in self.layout], axis=0) + margin
        step = float((hi - lo).max()) / resolution
        shape = np.ceil((hi - lo) / step).astype(int) + 1
        axes = [lo[a] + step * np.arange(shape[a]) for a in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        volume = self.sdf(grid).reshape(*shape)
        # level_set_mesh pads a border of "outside" (SDF > 0) around the box, which closes the
        # level set even where a sampled bounding box fell short of a sharp tip: always watertight.
        mesh = level_set_mesh(volume, level=0.0, spacing=step, origin=lo, outside=1.0)
        colours = self.part_rgb[self.part_sdf(np.asarray(mesh.vertices)).argmin(axis=1)]
        mesh.visual.vertex_colors = (255 * colours).astype(np.uint8)
        return mesh


def grid_centres(resolution: int, bound: float = BOUND) -> np.ndarray:
    """``[R³, 3]`` voxel centres of the cube [-bound, bound]³ in (x, y, z) 'ij' order."""
    ticks = -bound + (np.arange(resolution) + 0.5) * (2 * bound / resolution)
    return np.stack(np.meshgrid(ticks, ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 3)


def _resolve(spec: ObjectSpec, seed: int) -> ObjectSpec:
    """Name every colour: an unsaid main colour is drawn from the seed; an unsaid part
    colour is the category's default ("a red mushroom" has a white stem)."""
    category = get_category(spec.category)
    colour = spec.colour
    if colour is None:
        rng = np.random.default_rng([_SALT, seed, CATEGORY_NAMES.index(spec.category), 1])
        colour = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
    part_colour = spec.part_colour or category.default_part_colour
    return ObjectSpec(spec.category, colour, part_colour)


def _extent(parts: list[Part], rng: np.random.Generator, n: int = 1500) -> tuple[np.ndarray, np.ndarray, float]:
    """Approximate bounding box ``lo [3], hi [3]`` and radius ``max(|y - centre_y|, distance
    from the vertical axis through the centre)`` of a union, from surface samples."""
    points = np.concatenate([p.sample(n // len(parts) + 16, rng)[0] for p in parts])
    lo, hi = points.min(axis=0), points.max(axis=0)
    d = points - (lo + hi) / 2
    return lo, hi, float(max(np.abs(d[:, 1]).max(), np.hypot(d[:, 0], d[:, 2]).max()))


def _normalise(parts: list[Part], size: float, rng: np.random.Generator) -> tuple[list[Part], np.ndarray, float]:
    """Centre ``parts`` on their bounding box and scale them to radius ``size`` (see ``_extent``);
    also return the centre and the factor, to move anything else the same way."""
    lo, hi, radius = _extent(parts, rng)
    centre, factor = (lo + hi) / 2, size / radius
    return [scaled_part(p.moved(np.eye(3), -centre), factor) for p in parts], centre, factor


def make_asset(spec: Spec | str, seed: int = 0) -> Asset:
    """Make the object a spec (or prompt) describes, its shape and pose drawn from ``seed``.

    The shape depends on (category, seed) only: recolouring keeps the geometry. Variation
    per seed: the category's proportions, the size (``SIZE_RANGE``), and a turn about +y.
    """
    if isinstance(spec, str):
        spec = parse(spec)
    if isinstance(spec, SceneSpec):
        return make_scene(spec, seed)
    spec = _resolve(spec, seed)
    category = get_category(spec.category)
    rng = np.random.default_rng([_SALT, seed, CATEGORY_NAMES.index(spec.category)])
    parts = category.build(rng)
    size, yaw = rng.uniform(*SIZE_RANGE), rng.uniform(0.0, 2 * np.pi)
    parts, _, _ = _normalise(parts, size, rng)
    turn = rotation_y(yaw)
    parts = [p.moved(turn, np.zeros(3)) for p in parts]
    rgb = {"body": colour_rgb(spec.colour)}
    if category.part:
        rgb[category.part] = colour_rgb(spec.part_colour)
    part_rgb = np.stack([rgb[p.slot] for p in parts])
    asset = Asset(spec, parts, part_rgb, seed)
    asset.layout = [(spec, *_extent(parts, np.random.default_rng([_SALT, seed, 2]))[:2])]
    return asset


def make_scene(spec: SceneSpec, seed: int = 0, gap: float = 0.04) -> Asset:
    """Two objects laid out as the relation says, then scaled together to the usual size.

    "A on B": A's bounding box rests on B's top, centred over it; "A under B" is "B on A";
    "A next to B": side by side along +x (A on the left as seen from the front camera).
    """
    first = make_asset(spec.first, seed)
    second = make_asset(spec.second, seed + 7919)        # a different shape draw for the second object
    a, b = (first, second) if spec.relation != "under" else (second, first)
    (_, alo, ahi), (_, blo, bhi) = a.layout[0], b.layout[0]
    if spec.relation in ("on", "under"):
        # b stays put; a goes on top, centred in x and z.
        shift_a = np.array([-(alo[0] + ahi[0]) / 2, bhi[1] + gap / 4 - alo[1], -(alo[2] + ahi[2]) / 2])
        shift_b = np.array([-(blo[0] + bhi[0]) / 2, 0.0, -(blo[2] + bhi[2]) / 2])
    else:
        shift_a = np.array([-ahi[0] - gap / 2, -(alo[1] + ahi[1]) / 2, -(alo[2] + ahi[2]) / 2])
        shift_b = np.array([-blo[0] + gap / 2, -(blo[1] + bhi[1]) / 2, -(blo[2] + bhi[2]) / 2])
    placed = [p.moved(np.eye(3), shift_a) for p in a.parts] + [p.moved(np.eye(3), shift_b) for p in b.parts]
    parts, centre, factor = _normalise(placed, SIZE_RANGE[1], np.random.default_rng([_SALT, seed, 3]))
    layout = [(obj.spec, factor * (lo + shift - centre), factor * (hi + shift - centre))
              for obj, shift, lo, hi in ((a, shift_a, alo, ahi), (b, shift_b, blo, bhi))]
    if spec.relation == "under":
        layout.reverse()                                  # layout follows the caption's order
    resolved = SceneSpec(first.spec, spec.relation, second.spec)
    return Asset(resolved, parts, np.concatenate([a.part_rgb, b.part_rgb]), seed, layout)
