"""Analytic primitives: signed distances and uniform surface samples (taught in §0).

Every ShapeWorld object is a union of a few primitives. Each primitive lives in its own
local frame (axis of symmetry = +y, centred at the origin) and answers three questions:

* ``sdf(q [M, 3]) -> [M]`` — signed distance, negative inside. Exact for the round
  primitives; for :class:`Dome` and :class:`ConvexPolyhedron` it is a bound with the exact
  sign (enough for occupancy, marching cubes and sphere tracing);
* ``area() -> float`` — surface area, used to spread samples evenly over a union;
* ``feature_size() -> float`` — its smallest radius or half-thickness, which caps the size
  of the Gaussians laid on it;
* ``sample(n, rng) -> (points [n, 3], normals [n, 3])`` — points uniform over the surface
  with outward unit normals.

A :class:`Part` places a primitive in the object frame (rotation, translation) and names
the colour *slot* it takes ("body", "stem", "roof", …).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray


def _unit_circle(n: int, rng: np.random.Generator) -> tuple[Array, Array]:
    theta = rng.uniform(0.0, 2 * np.pi, n)
    return np.cos(theta), np.sin(theta)


def _disk(n: int, radius: float, y: float, up: bool, rng: np.random.Generator) -> tuple[Array, Array]:
    """Uniform points on a horizontal disk at height ``y``; normals ±y."""
    c, s = _unit_circle(n, rng)
    r = radius * np.sqrt(rng.uniform(0.0, 1.0, n))
    points = np.stack([r * c, np.full(n, y), r * s], axis=1)
    normals = np.zeros((n, 3))
    normals[:, 1] = 1.0 if up else -1.0
    return points, normals


def _split(n: int, areas: list[float], rng: np.random.Generator) -> Array:
    """How many of ``n`` samples each face gets, in proportion to its area (multinomial)."""
    p = np.asarray(areas, dtype=np.float64)
    return rng.multinomial(n, p / p.sum())


@dataclass(frozen=True)
class Sphere:
    radius: float

    def sdf(self, q: Array) -> Array:
        return np.linalg.norm(q, axis=-1) - self.radius

    def feature_size(self) -> float:
        return self.radius

    def area(self) -> float:
        return 4 * np.pi * self.radius**2

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        normals = rng.normal(size=(n, 3))
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        return self.radius * normals, normals


@dataclass(frozen=True)
class Box:
    """Axis-aligned box with half extents ``(hx, hy, hz)``."""
    half: tuple[float, float, float]

    def sdf(self, q: Array) -> Array:
        d = np.abs(q) - np.asarray(self.half)
        outside = np.linalg.norm(np.maximum(d, 0.0), axis=-1)
        return outside + np.minimum(d.max(axis=-1), 0.0)

    def _face_areas(self) -> list[float]:
        hx, hy, hz = self.half
        return [4 * hy * hz] * 2 + [4 * hx * hz] * 2 + [4 * hx * hy] * 2

    def feature_size(self) -> float:
        return min(self.half)

    def area(self) -> float:
        return float(sum(self._face_areas()))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        half = np.asarray(self.half)
        counts = _split(n, self._face_areas(), rng)
        points, normals = [], []
        for face, k in enumerate(counts):
            axis, sign = face // 2, (1.0 if face % 2 == 0 else -1.0)
            p = rng.uniform(-1.0, 1.0, (k, 3)) * half
            p[:, axis] = sign * half[axis]
            nrm = np.zeros((k, 3))
            nrm[:, axis] = sign
            points.append(p)
            normals.append(nrm)
        return np.concatenate(points), np.concatenate(normals)


@dataclass(frozen=True)
class Frustum:
    """Capped cone along y: radius ``bottom`` at y = -h, ``top`` at y = +h.

    ``top = 0`` is a cone, ``top = bottom`` a cylinder. The SDF is Inigo Quilez's exact
    ``sdCappedCone``.
    """
    bottom: float
    top: float
    half_height: float

    def sdf(self, q: Array) -> Array:
        h, r1, r2 = self.half_height, self.bottom, self.top
        qx = np.linalg.norm(q[:, [0, 2]], axis=1)
        qy = q[:, 1]
        k1 = np.array([r2, h])
        k2 = np.array([r2 - r1, 2 * h])
        ca_x = qx - np.minimum(qx, np.where(qy < 0, r1, r2))
        ca_y = np.abs(qy) - h
        qq = np.stack([qx, qy], axis=1)
        t = np.clip(((k1 - qq) @ k2) / (k2 @ k2), 0.0, 1.0)
        cb = qq - k1 + t[:, None] * k2
        sign = np.where((cb[:, 0] < 0) & (ca_y < 0), -1.0, 1.0)
        return sign * np.sqrt(np.minimum(ca_x**2 + ca_y**2, (cb**2).sum(axis=1)))

    def _face_areas(self) -> list[float]:
        h, r1, r2 = self.half_height, self.bottom, self.top
        slant = np.hypot(r1 - r2, 2 * h)
        return [np.pi * (r1 + r2) * slant, np.pi * r1**2, np.pi * r2**2]

    def feature_size(self) -> float:
        return min(max(self.bottom, self.top) / 2, self.half_height)

    def area(self) -> float:
        return float(sum(self._face_areas()))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        h, r1, r2 = self.half_height, self.bottom, self.top
        n_side, n_bottom, n_top = _split(n, self._face_areas(), rng)
        # Side: the height fraction t has density ∝ radius(t) = r1 + (r2 - r1) t (inverse CDF).
        u = rng.uniform(0.0, 1.0, n_side)
        a, b = (r2 - r1) / 2, r1
        c = -u * (r1 + r2) / 2
        if abs(a) < 1e-9:
            t = u
        else:
            t = (-b + np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / (2 * a)
        radius = r1 + (r2 - r1) * t
        cs, sn = _unit_circle(n_side, rng)
        side = np.stack([radius * cs, -h + 2 * h * t, radius * sn], axis=1)
        side_n = np.stack([2 * h * cs, np.full(n_side, r1 - r2), 2 * h * sn], axis=1)
        side_n /= np.linalg.norm(side_n, axis=1, keepdims=True)
        bottom, bottom_n = _disk(n_bottom, r1, -h, False, rng)
        top, top_n = _disk(n_top, r2, h, True, rng)
        return np.concatenate([side, bottom, top]), np.concatenate([side_n, bottom_n, top_n])


def Cylinder(radius: float, half_height: float) -> Frustum:
    """A cylinder along y is a frustum with equal radii."""
    return Frustum(radius, radius, half_height)


def Cone(radius: float, half_height: float) -> Frustum:
    """A cone along y (tip up) is a frustum with a zero top radius."""
    return Frustum(radius, 0.0, half_height)


@dataclass(frozen=True)
class Torus:
    """Torus around the y axis: ring radius ``major``, tube radius ``minor``."""
    major: float
    minor: float

    def sdf(self, q: Array) -> Array:
        ring = np.linalg.norm(q[:, [0, 2]], axis=1) - self.major
        return np.hypot(ring, q[:, 1]) - self.minor

    def feature_size(self) -> float:
        return self.minor

    def area(self) -> float:
        return 4 * np.pi**2 * self.major * self.minor

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        R, r = self.major, self.minor
        # Tube angle phi has density ∝ R + r cos(phi): rejection sampling, topped up until n.
        phis: list[Array] = []
        while sum(len(p) for p in phis) < n:
            phi = rng.uniform(0.0, 2 * np.pi, 2 * n)
            keep = rng.uniform(0.0, R + r, 2 * n) < R + r * np.cos(phi)
            phis.append(phi[keep])
        phi = np.concatenate(phis)[:n]
        cs, sn = _unit_circle(n, rng)
        normals = np.stack([np.cos(phi) * cs, np.sin(phi), np.cos(phi) * sn], axis=1)
        centre = np.stack([R * cs, np.zeros(n), R * sn], axis=1)
        return centre + r * normals, normals


@dataclass(frozen=True)
class Capsule:
    """Segment from y = -h to y = +h, thickened by ``radius``."""
    radius: float
    half_height: float

    def sdf(self, q: Array) -> Array:
        p = q.copy()
        p[:, 1] -= np.clip(p[:, 1], -self.half_height, self.half_height)
        return np.linalg.norm(p, axis=1) - self.radius

    def _face_areas(self) -> list[float]:
        return [2 * np.pi * self.radius * 2 * self.half_height, 4 * np.pi * self.radius**2]

    def feature_size(self) -> float:
        return self.radius

    def area(self) -> float:
        return float(sum(self._face_areas()))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        r, h = self.radius, self.half_height
        n_side, n_caps = _split(n, self._face_areas(), rng)
        cs, sn = _unit_circle(n_side, rng)
        side_n = np.stack([cs, np.zeros(n_side), sn], axis=1)
        side = r * side_n + np.stack([np.zeros(n_side), rng.uniform(-h, h, n_side), np.zeros(n_side)], 1)
        caps_n = rng.normal(size=(n_caps, 3))
        caps_n /= np.linalg.norm(caps_n, axis=1, keepdims=True)
        caps = r * caps_n
        caps[:, 1] += np.where(caps_n[:, 1] >= 0, h, -h)
        return np.concatenate([side, caps]), np.concatenate([side_n, caps_n])


@dataclass(frozen=True)
class Dome:
    """The part of a sphere (``radius``) above the plane y = ``cut`` (a mushroom cap)."""
    radius: float
    cut: float

    def sdf(self, q: Array) -> Array:
        # Intersection of a ball and a half-space: max of the two (exact sign, bounded distance).
        return np.maximum(np.linalg.norm(q, axis=1) - self.radius, self.cut - q[:, 1])

    def _face_areas(self) -> list[float]:
        R, c = self.radius, self.cut
        return [2 * np.pi * R * (R - c), np.pi * (R * R - c * c)]

    def feature_size(self) -> float:
        return min(self.radius, self.radius - self.cut)

    def area(self) -> float:
        return float(sum(self._face_areas()))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        R, c = self.radius, self.cut
        n_cap, n_disk = _split(n, self._face_areas(), rng)
        # Archimedes: on a sphere, the height is uniform over the surface.
        y = rng.uniform(c / R, 1.0, n_cap)
        ring = np.sqrt(np.maximum(1 - y * y, 0.0))
        cs, sn = _unit_circle(n_cap, rng)
        cap_n = np.stack([ring * cs, y, ring * sn], axis=1)
        disk, disk_n = _disk(n_disk, np.sqrt(R * R - c * c), c, False, rng)
        return np.concatenate([R * cap_n, disk]), np.concatenate([cap_n, disk_n])


@dataclass(frozen=True)
class ConvexPolyhedron:
    """A convex solid given by ``vertices [V, 3]`` and outward-wound triangles ``faces [F, 3]``.

    Pyramids, roofs (triangular prisms) and rocket fins are all of this kind.
    """
    vertices: tuple[tuple[float, float, float], ...]
    faces: tuple[tuple[int, int, int], ...]
    _planes: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        v = np.asarray(self.vertices, dtype=np.float64)
        tri = v[np.asarray(self.faces)]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        twice_area = np.linalg.norm(normal, axis=1)
        normal = normal / twice_area[:, None]
        offset = (normal * tri[:, 0]).sum(axis=1)
        centroid = v.mean(axis=0)
        if np.any(normal @ centroid - offset > 1e-9):
            raise ValueError("ConvexPolyhedron faces must be wound so that normals point outward")
        object.__setattr__(self, "_planes", (tri, normal, offset, twice_area / 2))

    def sdf(self, q: Array) -> Array:
        _, normal, offset, _ = self._planes
        return (q @ normal.T - offset).max(axis=1)

    def feature_size(self) -> float:
        """Half the thinnest width across any face's plane."""
        _, normal, offset, _ = self._planes
        v = np.asarray(self.vertices)
        return float(((offset[:, None] - normal @ v.T).max(axis=1)).min() / 2)

    def area(self) -> float:
        return float(self._planes[3].sum())

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        tri, normal, _, areas = self._planes
        face = rng.choice(len(areas), size=n, p=areas / areas.sum())
        u, v = rng.uniform(0.0, 1.0, (2, n))
        flip = u + v > 1
        u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
        t = tri[face]
        points = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
        return points, normal[face]


def square_pyramid(half_base: float, height: float) -> ConvexPolyhedron:
    """Square base of half width ``half_base`` at y = -height/2, apex at y = +height/2."""
    b, h = half_base, height / 2
    vertices = ((-b, -h, -b), (b, -h, -b), (b, -h, b), (-b, -h, b), (0.0, h, 0.0))
    faces = ((0, 1, 2), (0, 2, 3), (3, 2, 4), (2, 1, 4), (1, 0, 4), (0, 3, 4))
    return ConvexPolyhedron(vertices, faces)


def prism(half_width: float, half_depth: float, height: float) -> ConvexPolyhedron:
    """Triangular prism (a gable roof): ridge along x at y = height, base at y = 0,
    eaves at z = ±half_depth, gables at x = ±half_width."""
    w, d = half_width, half_depth
    vertices = ((-w, 0.0, -d), (w, 0.0, -d), (w, 0.0, d), (-w, 0.0, d), (-w, height, 0.0), (w, height, 0.0))
    faces = ((0, 1, 2), (0, 2, 3),            # floor (normal -y)
             (3, 2, 5), (3, 5, 4),            # front slope (+z)
             (1, 0, 4), (1, 4, 5),            # back slope (-z)
             (2, 1, 5), (0, 3, 4))            # gables (+x, -x)
    return ConvexPolyhedron(vertices, faces)


def fin(root: float, span: float, drop: float, thickness: float) -> ConvexPolyhedron:
    """A rocket fin: a triangular plate in the xy plane, ``thickness`` along z.

    Its root edge runs up the rocket body along y from 0 to ``root``; its tip sticks out
    ``span`` along +x and hangs ``drop`` below the root's lower end.
    """
    t = thickness / 2
    vertices = ((0.0, 0.0, -t), (span, -drop, -t), (0.0, root, -t),
                (0.0, 0.0, t), (span, -drop, t), (0.0, root, t))
    faces = ((0, 2, 1), (3, 4, 5),            # the two flat sides (-z, +z)
             (0, 1, 4), (0, 4, 3),            # lower edge
             (1, 2, 5), (1, 5, 4),            # outer slanted edge
             (2, 0, 3), (2, 3, 5))            # root edge (inside the body)
    return ConvexPolyhedron(vertices, faces)


Primitive = Sphere | Box | Frustum | Torus | Capsule | Dome | ConvexPolyhedron


def rotation_y(angle: float) -> Array:
    """3×3 rotation about +y by ``angle`` radians (right-handed: +z turns towards +x)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_x(angle: float) -> Array:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rotation_z(angle: float) -> Array:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Part:
    """A primitive placed in the object frame: ``x_object = rotation @ x_local + translation``.

    ``slot`` names the colour slot the part takes ("body" for an object's main colour).
    """
    shape: Primitive
    slot: str = "body"
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: Array = field(default_factory=lambda: np.eye(3), compare=False)

    def to_local(self, points: Array) -> Array:
        """Object-frame ``points [M, 3]`` → this part's local frame."""
        return (points - np.asarray(self.translation)) @ self.rotation

    def sdf(self, points: Array) -> Array:
        """Signed distance ``[M]`` at object-frame ``points [M, 3]`` (rigid maps keep distances)."""
        return self.shape.sdf(self.to_local(points))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        """``n`` surface points and outward normals in the object frame, each ``[n, 3]``."""
        p, nrm = self.shape.sample(n, rng)
        return p @ self.rotation.T + np.asarray(self.translation), nrm @ self.rotation.T

    def moved(self, rotation: Array, translation: Array) -> "Part":
        """This part after the rigid motion ``x -> rotation @ x + translation``."""
        t = rotation @ np.asarray(self.translation) + np.asarray(translation)
        return Part(self.shape, self.slot, tuple(float(x) for x in t), rotation @ self.rotation)


def scaled(shape: Primitive, factor: float) -> Primitive:
    """The same primitive, ``factor`` times larger (every field of every primitive is a length)."""
    if isinstance(shape, ConvexPolyhedron):
        vertices = tuple(tuple(factor * x for x in v) for v in shape.vertices)
        return ConvexPolyhedron(vertices, shape.faces)
    if isinstance(shape, Box):
        return Box(tuple(factor * x for x in shape.half))
    fields = {name: factor * value for name, value in vars(shape).items()}
    return type(shape)(**fields)


def scaled_part(part: Part, factor: float) -> Part:
    """``part`` under ``x -> factor * x`` (about the object origin)."""
    t = tuple(factor * x for x in part.translation)
    return Part(scaled(part.shape, factor), part.slot, t, part.rotation)
