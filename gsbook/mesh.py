"""Triangle meshes: marching cubes (§0), and DreamGaussian's stage 2 toolkit (§2).

**§0 — meshes from volumes.** :func:`level_set_mesh` extracts the level set ``{field = level}``
of any scalar field sampled on a regular grid — ShapeWorld's signed distance, or the opacity
density of a cloud of Gaussians — by marching cubes (Lorensen & Cline 1987; scikit-image's
implementation). A border of "outside" values around the grid closes the surface wherever the
object touches the grid's edge, so the mesh is always watertight.

**§2 — from Gaussians to a textured mesh.** DreamGaussian's second stage turns the optimised
Gaussians into a mesh with a UV texture and refines the texture by rendering the mesh:

1. :func:`gaussian_density` samples the Gaussians' opacity field on a grid, block by block
   (DreamGaussian's ``extract_fields``); :func:`level_set_mesh` meshes it;
2. :func:`clean_mesh` and :func:`decimate_mesh` remove floaters and extra triangles;
3. :func:`uv_unwrap` cuts the surface into charts packed in the unit square (xatlas);
4. :func:`bake_texture` back-projects rendered views onto that atlas;
5. :func:`render_textured_mesh` renders a :class:`TexturedMesh` differentiably in its texture,
   so an image loss (or SDS) refines the texture.

The triangle rasterizer (:func:`rasterize_triangles`) is plain PyTorch, so it runs on a CPU and
on any device the tensors live on; it uses the book's camera convention (:mod:`gsbook.cameras`,
the same ``viewmats``/``Ks`` as the Gaussian rasterizer). Geometry is fixed in stage 2, so no
gradient flows through the rasterization itself (which pixel sees which face, and where); the
texture and any per-vertex attribute interpolated afterwards do get gradients.

**UV convention.** ``uvs`` follow the *image* convention of the ``[S, S, 3]`` texture tensor:
``u`` runs left → right along columns, ``v`` runs top → bottom along rows, and ``(0, 0)`` is the
top-left corner of texel ``[0, 0]`` (texel ``[i, j]`` covers ``u ∈ [j/S, (j+1)/S)``,
``v ∈ [i/S, (i+1)/S)``). That is glTF's convention on file, nvdiffrast's, and
``grid_sample``'s (with ``align_corners=False``). trimesh and OBJ store ``1 − v`` (v = 0 at the
bottom of the image); :meth:`TexturedMesh.to_trimesh` and :meth:`TexturedMesh.from_trimesh`
convert at the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .cameras import Cameras, pixel_rays
from .gaussians import Gaussians, check_tensor, quat_to_rotmat
from .images import to_uint8

__all__ = ["level_set_mesh", "TexturedMesh", "Fragments", "rasterize_triangles", "interpolate_attributes",
           "sample_texture", "render_textured_mesh", "face_normals", "view_cosine", "uv_unwrap", "clean_mesh",
           "decimate_mesh", "gaussian_density", "bake_texture"]


# ----------------------------------------------------------------------------- §0: marching cubes
def level_set_mesh(volume: np.ndarray, level: float, spacing: float, origin: np.ndarray | tuple[float, float, float],
                   outside: float, vertex_colors: np.ndarray | None = None):
    """The watertight ``trimesh.Trimesh`` of ``{volume = level}``.

    Args:
        volume: ``[X, Y, Z]`` field samples at ``origin + spacing · (i, j, k)``.
        level: the iso-value (0 for a signed distance; a density threshold for Gaussians).
        spacing: grid step (world units).
        origin: world position of sample ``(0, 0, 0)``.
        outside: a value of the field outside the object (e.g. ``1.0`` for a signed distance,
            ``0.0`` for a density); one layer of it is padded around the grid, and its side of
            ``level`` says which side is out, so faces always wind counter-clockwise seen from
            outside (outward normals, positive volume).
        vertex_colors: ``[V, 3|4]`` uint8 colours, when the caller knows them in advance (rare:
            the vertices are only known after extraction; set ``mesh.visual`` afterwards).
    """
    import trimesh
    from skimage.measure import marching_cubes

    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise ValueError(f"volume must be a 3-D grid with at least 2 samples per axis, got {volume.shape}")
    if not np.isfinite(volume).all():
        raise ValueError("volume contains NaN or Inf")
    padded = np.pad(volume, 1, constant_values=np.float32(outside))
    if not (padded.min() < level < padded.max()):
        raise ValueError(f"the field never crosses level {level} (range {padded.min():.3g} … {padded.max():.3g}): "
                         "no surface to extract")
    verts, faces, _, _ = marching_cubes(padded, level=level, spacing=(spacing,) * 3)
    verts = verts + np.asarray(origin, dtype=np.float64) - spacing     # undo the one-sample pad
    if outside < level:
        # The object lies *above* the level (a density): scikit-image's triangles then turn their
        # backs outward, so reverse their winding — normals point out for either kind of field.
        faces = np.ascontiguousarray(faces[:, ::-1])
    return trimesh.Trimesh(verts, faces, vertex_colors=vertex_colors, process=False)


# ----------------------------------------------------------------------------- validation
def _check_mesh(vertices: Tensor, faces: Tensor) -> None:
    """``ValueError`` unless ``vertices [V, 3]`` (finite floats) and ``faces [F, 3]`` (integers in
    ``[0, V)``) make a non-empty mesh on one device."""
    check_tensor("vertices", vertices, (None, 3))
    check_tensor("faces", faces, (None, 3), floating=False)
    if faces.is_floating_point() or faces.dtype == torch.bool or faces.is_complex():
        raise ValueError(f"faces must be an integer tensor of vertex indices, got dtype {faces.dtype}")
    if len(vertices) == 0 or len(faces) == 0:
        raise ValueError(f"empty mesh: {len(vertices)} vertices, {len(faces)} faces")
    if faces.device != vertices.device:
        raise ValueError(f"vertices and faces must be on one device, got {vertices.device} and {faces.device}")
    lo, hi = int(faces.min()), int(faces.max())
    if lo < 0 or hi >= len(vertices):
        bad = lo if lo < 0 else hi
        raise ValueError(f"faces index vertex {bad}, but the mesh has {len(vertices)} vertices (valid: 0 … "
                         f"{len(vertices) - 1})")


def _check_texture(name: str, texture: Tensor) -> None:
    check_tensor(name, texture, (None, None, None))
    if texture.shape[0] == 0 or texture.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty [S, S, D] image, got {list(texture.shape)}")


# ----------------------------------------------------------------------------- the textured mesh
@dataclass
class TexturedMesh:
    """A triangle mesh with one UV per vertex and an RGB texture.

    Vertices are split along UV seams (a vertex on a seam appears once per chart), as xatlas
    outputs and glTF needs, so ``uvs`` is per vertex, not per face corner.

    Attributes:
        vertices: ``[V, 3]`` float, world positions.
        faces: ``[F, 3]`` long, vertex indices (counter-clockwise seen from outside).
        uvs: ``[V, 2]`` float in [0, 1], image convention: ``u`` along columns, ``v`` along rows
            from the *top* (see the module docstring).
        texture: ``[S, S, 3]`` float in [0, 1], row 0 at the top.
    """

    vertices: Tensor
    faces: Tensor
    uvs: Tensor
    texture: Tensor

    def __post_init__(self) -> None:
        _check_mesh(self.vertices, self.faces)
        self.faces = self.faces.long()
        check_tensor("uvs", self.uvs, (len(self.vertices), 2))
        _check_texture("texture", self.texture)
        if self.texture.shape[-1] != 3:
            raise ValueError(f"texture must be RGB [S, S, 3], got {list(self.texture.shape)}")

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    def to(self, *args, **kwargs) -> "TexturedMesh":
        """Move (or cast) the float tensors; ``faces`` only moves, and stays long."""
        moved = [t.to(*args, **kwargs) for t in (self.vertices, self.uvs, self.texture)]
        return TexturedMesh(moved[0], self.faces.to(moved[0].device), moved[1], moved[2])

    # --- trimesh and files -----------------------------------------------------------
    def to_trimesh(self):
        """A ``trimesh.Trimesh`` whose ``TextureVisuals`` carry the UVs (flipped to trimesh's
        v-up convention) and a PBR material with the texture as a PIL image."""
        import trimesh
        from PIL import Image
        from trimesh.visual.material import PBRMaterial

        uv = self.uvs.detach().cpu().double().numpy().copy()
        uv[:, 1] = 1.0 - uv[:, 1]                                    # image rows (top-down) → trimesh (bottom-up)
        image = Image.fromarray(to_uint8(self.texture.detach()))
        material = PBRMaterial(baseColorTexture=image, metallicFactor=0.0, roughnessFactor=1.0)
        # process=False: merging vertices would weld the copies that a UV seam needs.
        return trimesh.Trimesh(self.vertices.detach().cpu().double().numpy(), self.faces.cpu().numpy(),
                               visual=trimesh.visual.TextureVisuals(uv=uv, material=material), process=False)

    @classmethod
    def from_trimesh(cls, mesh, dtype: torch.dtype = torch.float32,
                     device: str | torch.device | None = None) -> "TexturedMesh":
        """Read a textured ``trimesh.Trimesh`` (from a ``.glb``/``.obj`` or :meth:`to_trimesh`).

        The material's base-colour factor, when it is not white, is multiplied into the texture."""
        visual = getattr(mesh, "visual", None)
        uv = getattr(visual, "uv", None)
        material = getattr(visual, "material", None)
        image = getattr(material, "baseColorTexture", None)
        if image is None:
            image = getattr(material, "image", None)
        if uv is None or image is None:
            raise ValueError("the mesh has no UV texture (TextureVisuals with UVs and an image); "
                             "bake one with gsbook.mesh.bake_texture")
        texture = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
        factor = getattr(material, "baseColorFactor", None)
        if factor is not None:
            texture = texture * (np.asarray(factor, dtype=np.float64)[:3] / 255.0)
        uv = np.asarray(uv, dtype=np.float64).copy()
        uv[:, 1] = 1.0 - uv[:, 1]                                    # trimesh (bottom-up) → image rows
        as_tensor = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)  # noqa: E731
        return cls(as_tensor(mesh.vertices), torch.as_tensor(np.asarray(mesh.faces), dtype=torch.long, device=device),
                   as_tensor(uv), as_tensor(texture))

    def save(self, path: str | Path) -> Path:
        """Write ``.glb`` (binary glTF, texture embedded) or ``.obj`` (+ ``.mtl`` + ``.png`` beside
        it, all named after the ``.obj``). Returns the path."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".glb", ".obj"):
            raise ValueError(f"save writes .glb or .obj, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".glb":
            path.write_bytes(self.to_trimesh().export(file_type="glb"))
            return path
        self._save_obj(path)
        return path

    def _save_obj(self, path: Path) -> None:
        # Written by hand so the three files are named after the .obj (trimesh picks its own names).
        from PIL import Image

        mtl, png = path.with_suffix(".mtl"), path.with_suffix(".png")
        Image.fromarray(to_uint8(self.texture.detach())).save(png)
        mtl.write_text(f"newmtl material0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd {png.name}\n")
        v = self.vertices.detach().cpu().double().numpy()
        uv = self.uvs.detach().cpu().double().numpy().copy()
        uv[:, 1] = 1.0 - uv[:, 1]                                    # OBJ's vt has v = 0 at the bottom
        f = self.faces.cpu().numpy() + 1                             # OBJ counts from 1
        lines = [f"mtllib {mtl.name}", "usemtl material0"]
        lines += [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in v]
        lines += [f"vt {a:.9g} {b:.9g}" for a, b in uv]
        lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in f]
        path.write_text("\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: str | Path, dtype: torch.dtype = torch.float32,
             device: str | torch.device | None = None) -> "TexturedMesh":
        """Read a textured ``.glb``/``.gltf``/``.obj`` (with its ``.mtl`` and image) via trimesh."""
        import trimesh

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no mesh file at {path}")
        try:
            mesh = trimesh.load(str(path), force="mesh", process=False)
        except Exception as error:  # noqa: BLE001 — any parser failure means "unreadable"
            raise ValueError(f"could not read a mesh from {path}: {error}") from error
        return cls.from_trimesh(mesh, dtype=dtype, device=device)


# ----------------------------------------------------------------------------- rasterization
@dataclass
class Fragments:
    """What each pixel sees: the nearest face, where on it, and how far.

    Attributes:
        face_id: ``[C, H, W]`` long, the face index, ``-1`` where no face covers the pixel.
        bary: ``[C, H, W, 3]`` perspective-correct barycentric weights of the face's three
            vertices at the pixel centre (zeros where empty); detached.
        depth: ``[C, H, W]`` camera-space z of the hit (the OpenCV camera looks down +z), ``0``
            where empty (as nvdiffrast), so ``depth * mask`` arithmetic never meets ``inf``.
    """

    face_id: Tensor
    bary: Tensor
    depth: Tensor

    @property
    def covered(self) -> Tensor:
        """``[C, H, W]`` bool: does a face cover the pixel?"""
        return self.face_id >= 0


def _screen_planes(vertices: Tensor, faces: Tensor, cameras: Cameras, near_plane: float):
    """Per (camera, face) affine functions of the pixel position ``(x, y)``, column-major.

    Returns ``planes [12, C·F]`` float64 — rows ``3i, 3i+1, 3i+2`` hold ``(a, b, c)`` of the
    screen-space barycentric ``bᵢ(x, y) = a x + b y + c`` (i = 0, 1, 2), rows 9–11 those of
    ``1/z(x, y)``, which is affine in screen space too — ``box [4, C·F]`` long (x0, y0, x1, y1:
    end-exclusive pixel bounds) and ``ok [C·F]`` bool. Column-major, because gathering whole
    rows for a list of pairs gives contiguous per-pair vectors (as in :mod:`gsbook.render`).
    """
    C, H, W, nF = len(cameras), cameras.height, cameras.width, len(faces)
    v = vertices.detach().double()
    viewmats, Ks = cameras.viewmats.to(v), cameras.Ks.to(v)
    cam = v @ viewmats[:, :3, :3].transpose(1, 2) + viewmats[:, None, :3, 3]              # [C, V, 3]
    z = cam[..., 2]
    pix = cam @ Ks.transpose(1, 2)
    inv_z = 1.0 / z.clamp_min(near_plane)
    corner = faces.T.reshape(-1)                                                          # [3F]: corner-major
    gather = lambda t: t.index_select(1, corner).reshape(C, 3, nF).unbind(1)            # noqa: E731
    x0, x1, x2 = gather(pix[..., 0] * inv_z)                                              # each [C, F]
    y0, y1, y2 = gather(pix[..., 1] * inv_z)
    w0, w1, w2 = gather(inv_z)
    z0, z1, z2 = gather(z)
    # Edge function of the edge opposite vertex i, normalised by twice the signed area so that
    # bᵢ = 1 at vertex i and 0 on the edge — whatever the winding.
    area2 = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    # A vertex behind the near plane would flip through infinity; edge-on triangles (zero
    # screen area) cover no pixel centre.
    ok = (z0 > near_plane) & (z1 > near_plane) & (z2 > near_plane) & (area2.abs() > 1e-12)
    inv_area = 1.0 / torch.where(ok, area2, torch.ones_like(area2))
    rows = []
    for (xj, yj), (xk, yk) in (((x1, y1), (x2, y2)), ((x2, y2), (x0, y0)), ((x0, y0), (x1, y1))):
        rows += [(yj - yk) * inv_area, (xk - xj) * inv_area, (xj * yk - xk * yj) * inv_area]
    rows += [rows[0] * w0 + rows[3] * w1 + rows[6] * w2, rows[1] * w0 + rows[4] * w1 + rows[7] * w2,
             rows[2] * w0 + rows[5] * w1 + rows[8] * w2]
    planes = torch.stack(rows).reshape(12, C * nF)
    lo_x = torch.minimum(torch.minimum(x0, x1), x2)
    hi_x = torch.maximum(torch.maximum(x0, x1), x2)
    lo_y = torch.minimum(torch.minimum(y0, y1), y2)
    hi_y = torch.maximum(torch.maximum(y0, y1), y2)
    # Pixel u is a candidate when its centre u + ½ lies in [lo, hi].
    box = torch.stack([torch.ceil(lo_x - 0.5).clamp(0, W), torch.ceil(lo_y - 0.5).clamp(0, H),
                       (torch.floor(hi_x - 0.5) + 1).clamp(0, W), (torch.floor(hi_y - 0.5) + 1).clamp(0, H)])
    return planes, box.long().reshape(4, C * nF), ok.reshape(-1)


def _evaluate_planes(planes: Tensor, owner: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """``[4, m]``: b₀, b₁, b₂ and 1/z of triangles ``owner [m]`` at the centres of pixels
    ``(px, py)`` (each ``[m]``, long)."""
    p = planes.index_select(1, owner)                                                     # [12, m]
    x, y = px.double() + 0.5, py.double() + 0.5
    return torch.stack([p[r] * x + p[r + 1] * y + p[r + 2] for r in (0, 3, 6, 9)])


@torch.no_grad()
def rasterize_triangles(vertices: Tensor, faces: Tensor, cameras: Cameras, near_plane: float = 0.01,
                        max_pairs: int = 1 << 22) -> Fragments:
    """The nearest face at every pixel centre of every camera (a z-buffer), as :class:`Fragments`.

    Same conventions as the Gaussian rasterizer: ``cameras.viewmats`` world→camera (OpenCV: x
    right, y down, z forward), ``cameras.Ks`` in pixels, pixel ``(u, v)``'s centre at
    ``(u + ½, v + ½)``. A triangle with a vertex closer than ``near_plane`` is skipped (not
    clipped). Both windings are drawn (no back-face culling).

    How it stays fast in plain PyTorch: each face's screen bounding box lists its candidate
    (face, pixel) pairs — a ``repeat_interleave`` of box sizes, in chunks of at most
    ``max_pairs`` to bound memory — the pairs whose pixel centre passes the three edge tests are
    kept, and a scatter-min over pixels keeps the nearest (ties: the lower face index). Every
    step is one vectorised op over all pairs; nothing loops over pixels or faces.

    Args:
        vertices: ``[V, 3]`` world positions; faces: ``[F, 3]`` integer vertex indices.
        cameras: C cameras of one image size ``H × W``.

    Returns:
        :class:`Fragments` with ``face_id [C, H, W]``, ``bary [C, H, W, 3]``, ``depth [C, H, W]``
        on ``vertices``' device, ``bary``/``depth`` in its dtype.
    """
    _check_mesh(vertices, faces)
    if not isinstance(cameras, Cameras):
        raise ValueError(f"cameras must be gsbook.cameras.Cameras, got {type(cameras).__name__}")
    faces = faces.long()
    C, H, W, nF = len(cameras), cameras.height, cameras.width, len(faces)
    dev, P = vertices.device, len(cameras) * cameras.height * cameras.width
    planes, box, ok = _screen_planes(vertices, faces, cameras, near_plane)
    bw, bh = (box[2] - box[0]).clamp_min(0), (box[3] - box[1]).clamp_min(0)
    count = bw * bh * ok
    tri = count.nonzero()[:, 0]                                          # (camera · F + face) with candidates
    count, bw, x0, y0 = count[tri], bw[tri], box[0, tri], box[1, tri]
    ends = count.cumsum(0)

    zbuf = torch.full((P,), math.inf, dtype=torch.float64, device=dev)
    fbuf = torch.full((P,), -1, dtype=torch.long, device=dev)
    first = 0
    while first < len(tri):
        # A chunk of whole triangles whose candidate pairs total at most max_pairs (or one triangle).
        start = int(ends[first - 1]) if first else 0
        last = max(int(torch.searchsorted(ends, start + max_pairs, right=True)), first + 1)
        n = count[first:last]
        local = torch.arange(last - first, device=dev).repeat_interleave(n)   # triangle of each pair
        offset = torch.arange(int(ends[last - 1]) - start, device=dev) - (ends[first:last] - n - start)[local]
        width = bw[first:last][local]
        row = torch.div(offset, width, rounding_mode="floor")
        px, py = x0[first:last][local] + (offset - row * width), y0[first:last][local] + row
        owner = tri[first:last][local]
        values = _evaluate_planes(planes, owner, px, py)                   # [4, m]
        # A hair of tolerance so that a pixel centre exactly on a shared edge is never dropped by
        # both neighbours through rounding; the z-buffer then picks one of them.
        inside = (values[0] >= -1e-9) & (values[1] >= -1e-9) & (values[2] >= -1e-9) & (values[3] > 0)
        owner, px, py, inv_depth = owner[inside], px[inside], py[inside], values[3][inside]
        camera = torch.div(owner, nF, rounding_mode="floor")
        pixel = (camera * H + py) * W + px
        depth = 1.0 / inv_depth
        face = owner - camera * nF
        # Nearest per pixel within the chunk, then merged with the running buffers.
        cz = torch.full((P,), math.inf, dtype=torch.float64, device=dev).scatter_reduce_(0, pixel, depth, "amin")
        win = depth == cz[pixel]
        cf = torch.full((P,), nF, dtype=torch.long, device=dev).scatter_reduce_(0, pixel[win], face[win], "amin")
        better = cz < zbuf
        zbuf, fbuf = torch.where(better, cz, zbuf), torch.where(better, cf, fbuf)
        first = last

    # Barycentrics of the winners only: screen-space weights bᵢ, made perspective-correct by
    # weighting each with 1/zᵢ (attributes are affine in 3D, not on the screen).
    hit = (fbuf >= 0).nonzero()[:, 0]
    camera = torch.div(hit, H * W, rounding_mode="floor")
    py = torch.div(hit - camera * H * W, W, rounding_mode="floor")
    px = hit % W
    owner = camera * nF + fbuf[hit]
    b = _evaluate_planes(planes, owner, px, py)[:3].T.clamp_min(0)        # [M, 3]
    b = b / b.sum(-1, keepdim=True)
    v = vertices.detach().double()
    viewmats = cameras.viewmats.to(v)
    corners = v[faces[fbuf[hit]]]                                        # [M, 3, 3]
    z = (corners @ viewmats[camera, 2, :3, None])[..., 0] + viewmats[camera, 2, 3, None]
    b = b / z
    depth = 1.0 / b.sum(-1)
    bary = torch.zeros(P, 3, dtype=vertices.dtype, device=dev)
    bary[hit] = (b * depth[:, None]).to(vertices.dtype)
    out_depth = torch.zeros(P, dtype=vertices.dtype, device=dev)
    out_depth[hit] = depth.to(vertices.dtype)
    return Fragments(fbuf.reshape(C, H, W), bary.reshape(C, H, W, 3), out_depth.reshape(C, H, W))


def interpolate_attributes(attributes: Tensor, fragments: Fragments, faces: Tensor) -> Tensor:
    """Per-vertex ``attributes [V, D]`` → per-pixel ``[C, H, W, D]`` (zeros where no face),
    blended by the fragments' barycentrics; differentiable in ``attributes``."""
    check_tensor("attributes", attributes, (None, None))
    face_id = fragments.face_id
    if faces.dim() != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape [F, 3], got {list(faces.shape)}")
    if int(faces.max()) >= len(attributes) or int(faces.min()) < 0:
        raise ValueError(f"faces index vertex {int(faces.max())}, but attributes has {len(attributes)} rows")
    if int(face_id.max()) >= len(faces):
        raise ValueError(f"fragments name face {int(face_id.max())}, but faces has {len(faces)} rows: "
                         "were they rasterized from another mesh?")
    C, H, W = face_id.shape
    flat = face_id.reshape(-1)
    hit = (flat >= 0).nonzero()[:, 0]
    corners = attributes[faces[flat[hit]].long()]                          # [M, 3, D]
    bary = fragments.bary.reshape(-1, 3)[hit].to(attributes.dtype)
    values = (bary[..., None] * corners).sum(1)                           # [M, D]
    out = attributes.new_zeros(C * H * W, attributes.shape[1])
    return out.index_copy(0, hit, values).reshape(C, H, W, -1)


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup of ``texture [S, S, D]`` at ``uv [..., 2]`` → ``[..., D]``.

    ``uv`` in the image convention (``v`` from the top; texel centres at ``(j + ½)/S``); outside
    [0, 1] the border texels repeat. Differentiable in ``texture`` (and in ``uv``).
    """
    _check_texture("texture", texture)
    if uv.shape[-1] != 2:
        raise ValueError(f"uv must have shape [..., 2], got {list(uv.shape)}")
    if not torch.isfinite(uv).all():
        raise ValueError("uv contains NaN or Inf")
    grid = (uv.to(texture.dtype) * 2 - 1).reshape(1, 1, -1, 2)            # grid_sample's (x, y) ∈ [-1, 1]
    image = texture.permute(2, 0, 1)[None]                                # [1, D, S, S]
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T.reshape(*uv.shape[:-1], texture.shape[-1])


def render_textured_mesh(mesh: TexturedMesh, cameras: Cameras, background: float | Tensor = 1.0,
                         near_plane: float = 0.01) -> tuple[Tensor, Tensor, Fragments]:
    """Render a :class:`TexturedMesh` (no lighting: the texture is the albedo, as DreamGaussian's
    stage 2 renders it). Gradients reach ``mesh.texture`` (and ``mesh.uvs``), not the geometry.

    Returns:
        ``(image [C, H, W, 3], alpha [C, H, W, 1], fragments)``; ``background`` (a number or
        ``[3]``) fills the empty pixels. Edges are aliased (one sample per pixel; DreamGaussian
        adds nvdiffrast's antialiasing on top).
    """
    fragments = rasterize_triangles(mesh.vertices, mesh.faces, cameras, near_plane)
    uv = interpolate_attributes(mesh.uvs, fragments, mesh.faces)
    colour = sample_texture(mesh.texture, uv)                             # [C, H, W, 3]
    alpha = fragments.covered[..., None].to(colour.dtype)
    bg = torch.as_tensor(background, dtype=colour.dtype, device=colour.device)
    if bg.numel() not in (1, 3):
        raise ValueError(f"background must be a number or an RGB triple, got shape {list(bg.shape)}")
    image = torch.where(alpha > 0, colour, bg.reshape(-1).expand(3))
    return image, alpha, fragments


def face_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unit normals ``[F, 3]`` of the faces, by the right-hand rule: outward for a closed mesh
    whose faces run counter-clockwise seen from outside (trimesh's convention)."""
    _check_mesh(vertices, faces)
    v0, v1, v2 = (vertices[faces[:, i].long()] for i in range(3))
    return F.normalize(torch.linalg.cross(v1 - v0, v2 - v0), dim=-1)


def view_cosine(vertices: Tensor, faces: Tensor, fragments: Fragments, cameras: Cameras) -> Tensor:
    """``[C, H, W]``: cosine between each visible face's normal and the direction from the pixel's
    surface point to the camera (``> 0``: the face turns its front to the camera; ``0`` where
    empty). Small values mark grazing views, whose pixels smear across the texture."""
    normals = face_normals(vertices, faces)                                # [F, 3]
    _, dirs = pixel_rays(cameras.to(vertices))                            # [C, H, W, 3], camera → scene
    n = normals[fragments.face_id.clamp_min(0)]
    return torch.where(fragments.covered, -(n * dirs).sum(-1), torch.zeros_like(dirs[..., 0]))


# ----------------------------------------------------------------------------- atlas and clean-up
def _numpy_mesh(vertices: Tensor, faces: Tensor) -> tuple[np.ndarray, np.ndarray]:
    _check_mesh(vertices, faces)
    return vertices.detach().cpu().double().numpy(), faces.detach().cpu().long().numpy()


def _back(v: np.ndarray, f: np.ndarray, like: Tensor) -> tuple[Tensor, Tensor]:
    return (torch.as_tensor(np.ascontiguousarray(v), dtype=like.dtype, device=like.device),
            torch.as_tensor(np.ascontiguousarray(f), dtype=torch.long, device=like.device))


def uv_unwrap(vertices: Tensor, faces: Tensor, texture_size: int | None = None,
              padding: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """A UV atlas by xatlas (as DreamGaussian's ``mesh.auto_uv()``, which calls it with defaults).

    xatlas cuts the surface into charts, flattens each with little stretch and packs them into
    the unit square; vertices on a cut are duplicated, one copy per chart. By default xatlas
    sizes its atlas itself (about 1000 texels across), so on a much smaller texture the charts
    nearly touch and bilinear lookups bleed across seams; give ``texture_size`` to pack for
    that texture with about ``padding`` texels between charts.

    Returns:
        ``(vertices [V', 3], faces [F, 3], uvs [V', 2])``: the same surface, face for face,
        with ``uvs`` in [0, 1] (image convention, see the module docstring).
    """
    import xatlas

    v, f = _numpy_mesh(vertices, faces)
    atlas = xatlas.Atlas()
    atlas.add_mesh(v.astype(np.float32), f.astype(np.uint32))
    pack = xatlas.PackOptions()
    if texture_size is not None:
        if texture_size < 8 or padding < 0:
            raise ValueError(f"texture_size must be at least 8 and padding ≥ 0, got {texture_size}, {padding}")
        pack.resolution, pack.padding = int(texture_size), int(padding)
    atlas.generate(pack_options=pack)
    if atlas.atlas_count != 1:     # several pages would overlap in [0, 1]²
        raise RuntimeError(f"xatlas packed {atlas.atlas_count} pages; pass a larger texture_size")
    vmapping, new_faces, uvs = atlas[0]
    out_v, out_f = _back(v[vmapping.astype(np.int64)], new_faces.astype(np.int64), vertices)
    return out_v, out_f, torch.as_tensor(uvs, dtype=vertices.dtype, device=vertices.device).clamp(0, 1)


def clean_mesh(vertices: Tensor, faces: Tensor, min_fraction: float = 0.01) -> tuple[Tensor, Tensor]:
    """Merge duplicate vertices, drop degenerate and duplicate faces, and keep only the
    connected components holding at least ``min_fraction`` of the faces — the floaters that
    stray Gaussians leave in the density field go (DreamGaussian does the same with pymeshlab).

    Returns ``(vertices [V', 3], faces [F', 3])``.
    """
    import trimesh

    if not 0 <= min_fraction < 1:
        raise ValueError(f"min_fraction must lie in [0, 1), got {min_fraction}")
    v, f = _numpy_mesh(vertices, faces)
    mesh = trimesh.Trimesh(v, f, process=False)
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    if len(mesh.faces) == 0:
        raise ValueError("every face is degenerate: nothing left after cleaning")
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    sizes = np.bincount(labels)
    mesh.update_faces(sizes[labels] >= min_fraction * len(mesh.faces))
    mesh.remove_unreferenced_vertices()
    return _back(mesh.vertices, mesh.faces, vertices)


def decimate_mesh(vertices: Tensor, faces: Tensor, target_faces: int) -> tuple[Tensor, Tensor]:
    """Quadric edge-collapse decimation (Garland & Heckbert; trimesh → fast-simplification) to at
    most ``target_faces`` faces; the mesh comes back unchanged when it is already that small.

    Returns ``(vertices [V', 3], faces [F', 3])``.
    """
    import trimesh

    _check_mesh(vertices, faces)
    if target_faces < 4:
        raise ValueError(f"target_faces must be at least 4 (a tetrahedron), got {target_faces}")
    if len(faces) <= target_faces:
        return vertices, faces
    v, f = _numpy_mesh(vertices, faces)
    mesh = trimesh.Trimesh(v, f, process=False)
    # fast-simplification stops near the target, sometimes a few faces above it: ask again.
    for _ in range(4):
        mesh = mesh.simplify_quadric_decimation(face_count=target_faces)
        if len(mesh.faces) <= target_faces:
            break
        target_faces = max(4, target_faces - (len(mesh.faces) - target_faces))
    return _back(mesh.vertices, mesh.faces, vertices)


# ----------------------------------------------------------------------------- Gaussians → density
def gaussian_density(gaussians: Gaussians, resolution: int, bound: float | None = None, blocks: int = 8,
                     relax: float = 1.5, min_opacity: float = 0.005,
                     max_elements: int = 1 << 22) -> tuple[Tensor, Tensor, float]:
    """The opacity field ``d(x) = Σᵢ oᵢ exp(−½ (x − μᵢ)ᵀ Σᵢ⁻¹ (x − μᵢ))`` on a grid
    (DreamGaussian's ``extract_fields``), ready for :func:`level_set_mesh`.

    Grid: ``resolution³`` samples at voxel centres, axes (x, y, z) in 'ij' order like
    :func:`gsbook.world.grid_centres`. With ``bound`` the grid covers ``[-bound, bound]³``;
    without, it is centred on the bounding box of the Gaussians' centres and that box fills 90%
    of its longest side (DreamGaussian's ``scale = 1.8 / extent``), leaving room for the
    surface Gaussians' own width.

    Cost: the grid is cut into ``blocks³`` blocks, and each block sums only the Gaussians whose
    centre lies inside the block grown by ``relax`` block sizes on every side, in chunks of at
    most ``max_elements`` (sample, Gaussian) pairs. A Gaussian left out is at least
    ``relax · block`` away, so it would add at most ``o · exp(−½ (relax · block / σ_max)²)``:
    negligible while the Gaussians are small next to a block. Gaussians with opacity
    ``≤ min_opacity`` are dropped first.

    Returns:
        ``(grid [R, R, R], origin [3], spacing)``: ``grid[i, j, k]`` is the density at
        ``origin + spacing · (i, j, k)``, so
        ``level_set_mesh(grid.cpu().numpy(), level, spacing, origin.cpu().numpy(), outside=0.0)``
        meshes it.
    """
    if not isinstance(gaussians, Gaussians):
        raise ValueError(f"gaussians must be gsbook.gaussians.Gaussians, got {type(gaussians).__name__}")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    if blocks < 1 or relax < 0:
        raise ValueError(f"blocks must be ≥ 1 and relax ≥ 0, got blocks={blocks}, relax={relax}")
    if bound is not None and not bound > 0:
        raise ValueError(f"bound must be positive, got {bound}")
    with torch.no_grad():
        keep = gaussians.opacities > min_opacity
        if not keep.any():
            raise ValueError(f"no Gaussian has opacity above min_opacity={min_opacity}: the field is empty")
        means, opac = gaussians.means[keep].detach(), gaussians.opacities[keep].detach()
        rot = quat_to_rotmat(gaussians.quats[keep].detach())
        inv_var = torch.exp(-2 * gaussians.log_scales[keep].detach())
        precision = (rot * inv_var[:, None, :]) @ rot.transpose(1, 2)      # Σ⁻¹ = R S⁻² Rᵀ, [N, 3, 3]
        dtype, dev = means.dtype, means.device
        if bound is None:
            lo_m, hi_m = means.amin(0), means.amax(0)
            extent = float((hi_m - lo_m).max())
            if extent <= 0:
                raise ValueError("the Gaussians' centres span no volume (one point): pass bound= to place the grid")
            side = extent / 0.9
            lo = (lo_m + hi_m) / 2 - side / 2
        else:
            side = 2.0 * bound
            lo = torch.full((3,), -bound, dtype=dtype, device=dev)
        spacing = side / resolution
        ticks = lo[:, None] + (torch.arange(resolution, dtype=dtype, device=dev) + 0.5) * spacing   # [3, R]
        grid = torch.zeros(resolution, resolution, resolution, dtype=dtype, device=dev)
        margin = relax * side / blocks
        parts = torch.arange(resolution, device=dev).tensor_split(min(blocks, resolution))
        for ix in parts:
            for iy in parts:
                for iz in parts:
                    block_lo = torch.stack([ticks[0, ix[0]], ticks[1, iy[0]], ticks[2, iz[0]]])
                    block_hi = torch.stack([ticks[0, ix[-1]], ticks[1, iy[-1]], ticks[2, iz[-1]]])
                    near = ((means > block_lo - margin) & (means < block_hi + margin)).all(-1).nonzero()[:, 0]
                    if len(near) == 0:
                        continue
                    pts = torch.stack(torch.meshgrid(ticks[0, ix], ticks[1, iy], ticks[2, iz], indexing="ij"), -1)
                    centre = (block_lo + block_hi) / 2
                    values = _density_at(pts.reshape(-1, 3) - centre, means[near] - centre, precision[near],
                                         opac[near], max_elements)
                    grid[ix[0]:ix[-1] + 1, iy[0]:iy[-1] + 1, iz[0]:iz[-1] + 1] = values.reshape(pts.shape[:3])
    return grid, ticks[:, 0].clone(), float(spacing)


def _density_at(points: Tensor, means: Tensor, precision: Tensor, opacities: Tensor, max_elements: int) -> Tensor:
    """``Σᵢ oᵢ exp(−½ (p − μᵢ)ᵀ Aᵢ (p − μᵢ))`` for ``points [M, 3]`` → ``[M]``.

    The quadratic form expands to ``pᵀAp − 2 pᵀAμ + μᵀAμ``: ten monomials of ``p`` times ten
    coefficients per Gaussian, i.e. one ``[M, 10] @ [10, L]`` matrix product per chunk instead
    of an ``[M, L, 3]`` tensor of offsets. Callers centre points and means on the block, which
    keeps the terms small and the cancellation harmless.
    """
    x, y, z = points.unbind(-1)
    monomials = torch.stack([x * x, y * y, z * z, x * y, x * z, y * z, x, y, z, torch.ones_like(x)], -1)
    A = precision
    A_mu = (A @ means[..., None])[..., 0]                                    # [L, 3]
    coeff = torch.stack([A[:, 0, 0], A[:, 1, 1], A[:, 2, 2], 2 * A[:, 0, 1], 2 * A[:, 0, 2], 2 * A[:, 1, 2],
                         -2 * A_mu[:, 0], -2 * A_mu[:, 1], -2 * A_mu[:, 2], (means * A_mu).sum(-1)], 0)
    coeff = -0.5 * coeff                                                     # [10, L]: the exponent directly
    out = points.new_zeros(len(points))
    step = max(1, max_elements // max(1, len(points)))
    for s in range(0, coeff.shape[1], step):
        exponent = monomials @ coeff[:, s:s + step]                          # [M, l]
        # In place: this [M, l] block is the whole cost. Rounding can lift the exponent above 0;
        # the floor keeps exp's results normal numbers (a denormal float costs the CPU some 50×
        # more time) while adding at most e⁻⁶⁰ ≈ 1e-26 per pair.
        out += exponent.clamp_(min=-60.0, max=0.0).exp_() @ opacities[s:s + step]
    return out


# ----------------------------------------------------------------------------- texture baking
def bake_texture(vertices: Tensor, faces: Tensor, uvs: Tensor, cameras: Cameras, images: Tensor, size: int,
                 min_view_cos: float = 0.5, min_weight: float = 0.1) -> tuple[Tensor, Tensor]:
    """Back-project images of a surface onto its UV atlas (DreamGaussian's texture initialisation).

    For each view, every pixel whose face turns towards the camera (``|view_cosine| >
    min_view_cos``: grazing pixels smear across many texels and straddle silhouettes) is
    splatted bilinearly onto the four texels around its UV; a view's texels are the weighted
    mean of its pixels. **The first view that covers a texel keeps it** (a texel counts as
    covered once it gathers splat weight ≥ ``min_weight``), as DreamGaussian does: different
    views of the same point disagree a little (view-dependent colour, a mesh that is not exactly
    the Gaussians' surface), and averaging them blurs the texture, while an ordered rule stays
    sharp and lets the caller rank the views (the front or input view first). The view cosine
    is taken in absolute value, so meshes with inverted winding bake as well.

    Texels that no view covers (the gutters between charts, hidden parts, texels finer than a
    pixel) take the colour of the nearest covered texel (a distance transform), as DreamGaussian
    dilates its texture, so bilinear lookups never blend in an unset colour.

    Args:
        vertices, faces, uvs: the unwrapped mesh (``[V, 3]``, ``[F, 3]``, ``[V, 2]``).
        cameras: C cameras; images: ``[C, H, W, 3]`` what each saw.
        size: the texture's side S.

    Returns:
        ``(texture [S, S, 3], filled [S, S] bool)`` — ``filled`` marks the texels some view
        covered (the rest were filled from their nearest neighbour).
    """
    from scipy.ndimage import distance_transform_edt

    _check_mesh(vertices, faces)
    check_tensor("uvs", uvs, (len(vertices), 2))
    C, H, W = len(cameras), cameras.height, cameras.width
    check_tensor("images", images, (C, H, W, 3))
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    S, dev = int(size), vertices.device
    images = images.detach().to(dev)
    fragments = rasterize_triangles(vertices, faces, cameras)
    uv = interpolate_attributes(uvs.detach(), fragments, faces).clamp(0, 1)        # [C, H, W, 2]
    cos = view_cosine(vertices.detach(), faces, fragments, cameras).abs()
    valid = fragments.covered & (cos > min_view_cos)

    colour_sum = images.new_zeros(S * S, 3)
    weight = images.new_zeros(S * S)
    for c in range(C):                       # a handful of views; everything inside is vectorised
        p = uv[c][valid[c]].to(images.dtype) * S - 0.5                   # texel-centre coordinates
        rgb = images[c][valid[c]]
        base = torch.floor(p)
        frac = p - base
        base = base.long()
        idx, w = [], []
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            col = (base[:, 0] + dx).clamp(0, S - 1)
            row = (base[:, 1] + dy).clamp(0, S - 1)
            idx.append(row * S + col)
            w.append((frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1]))
        idx, w = torch.cat(idx), torch.cat(w)
        view_w = images.new_zeros(S * S).index_add_(0, idx, w)
        view_sum = images.new_zeros(S * S, 3).index_add_(0, idx, w[:, None] * rgb.repeat(4, 1))
        take = (view_w >= min_weight) & (weight == 0)                    # first view wins
        colour_sum[take], weight[take] = view_sum[take], view_w[take]

    filled = weight > 0
    if not filled.any():
        raise ValueError("no view saw any face of the mesh squarely (view cosine above min_view_cos): "
                         "nothing to bake")
    texture = colour_sum / weight.clamp_min(1e-12)[:, None]
    # Nearest covered texel for every texel: the EDT's indices point at the closest True-in-mask
    # (here: covered) texel, computed on the CPU, then gathered on the texture's device.
    _, nearest = distance_transform_edt(~filled.reshape(S, S).cpu().numpy(), return_indices=True)
    source = torch.as_tensor(nearest[0] * S + nearest[1], dtype=torch.long, device=dev).reshape(-1)
    texture = texture[source].reshape(S, S, 3)
    return texture, filled.reshape(S, S)
