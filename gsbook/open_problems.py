"""§7's open problems as measurements: mushy backs, two-object prompts, and skinning (taught in §7).

The essay closes on three things generated Gaussians still lack. §7 turns each into an experiment
whose number would move if the problem were solved:

**Game-engine quality.** An image-conditioned pipeline sees its object from one side; the rest is
the multi-view prior's guess. :func:`image_to_3d` runs §3's LGM and GRM from one ShapeWorld front
view (and, as the control, from the four true views), :func:`azimuth_offsets` says how far each
view is from the input one, :func:`quality_by_azimuth` scores renders against ShapeWorld's exact
renders from the same cameras (PSNR, SSIM, sharpness), and :func:`front_back_gap` sums it up.
:func:`mesh_report` reads a mesh of them (made as DreamGaussian's stage 2 makes one,
:func:`gsbook.methods.extract_mesh`) as a game engine would, with trimesh: watertight or not, faces,
pieces, Euler characteristic, and how sharp a baked texture renders.

**Compositionality.** The generators and the judge read one object. A two-object prompt ("a red
ball on a blue box", :class:`gsbook.world.SceneSpec`) is scored by cutting the generated Gaussians
(or DreamGaussian's textured mesh, face by face) in two where the caption's layout puts the
boundary (:func:`split_scene`), rendering each half
alone from the 8 turntable views after standing it up as a single object (:func:`stand_alone`), and
letting the judge read it (:func:`score_scene`). The scene succeeds when both halves read as their object, in
its colour. :func:`run_generator` runs a generator of ``gsbook generate`` on such a prompt.

**Animatable output.** :class:`Skeleton` is a chain of bones; :func:`chain_skeleton` puts one
along an object's vertical axis; :func:`bone_weights` binds every Gaussian to its nearest bone
(one-hot, or softly with a falloff); :func:`pose_skeleton` poses it (forward kinematics) and
:func:`skin` moves the Gaussians by linear blend skinning: the means by the weighted transforms and
the covariances by the blended linear map, ``Σ' = A Σ Aᵀ``. :func:`rigidity_error` measures how far
each Gaussian's map is from a rotation (the volume loss near a joint), :func:`torn_neighbours` how
many neighbours a pose pulls apart (the cracks of hard weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .cameras import Cameras, orbit, turntable
from .gaussians import Gaussians, rotmat_to_quat
from .images import psnr, sharpness, ssim
from .judge import Judge
from .mesh import TexturedMesh, render_textured_mesh
from .render import render
from .world import Asset, ObjectSpec, SceneSpec, caption, make_asset, parse
from .world.asset import SIZE_RANGE
from .world.raycast import render_asset

if TYPE_CHECKING:
    from .generate import Generated

__all__ = [
    "azimuth_offsets", "front_back_gap", "quality_by_azimuth", "image_to_3d", "MeshReport", "mesh_report",
    "SCENE_PROMPTS", "scene_specs", "split_plane", "split_scene", "stand_alone", "ObjectReading", "SceneScore", "score_scene",
    "success_rate", "run_generator", "GaussiansOrMesh", "render_on_white",
    "Skeleton", "chain_skeleton", "bone_distances", "bone_weights", "axis_rotation", "pose_skeleton",
    "blend_transforms", "skin", "rigidity_error", "torn_neighbours", "joint_distance",
]


# ============================================================================== game-engine quality
def azimuth_offsets(azimuths_deg: Tensor | list[float], input_deg: float = 0.0) -> Tensor:
    """``[V]`` angular distance in degrees, in [0, 180], of each view's azimuth from the input view's:
    0 is the input view itself, 180 the view straight behind it (350° is 10° from 0°)."""
    a = torch.as_tensor(azimuths_deg, dtype=torch.float64)
    d = torch.remainder(a - input_deg, 360.0)
    return torch.minimum(d, 360.0 - d)


def front_back_gap(scores: Tensor | list[float], azimuths_deg: Tensor | list[float], input_deg: float = 0.0,
                   front: float = 45.0, back: float = 135.0) -> float:
    """Mean score of the views within ``front`` degrees of the input view minus the mean of those at
    least ``back`` degrees away: positive when the back reads worse than the front.

    Raises:
        ValueError: no view on one of the two sides, or lengths that differ.
    """
    s = torch.as_tensor(scores, dtype=torch.float64)
    off = azimuth_offsets(azimuths_deg, input_deg)
    if s.shape != off.shape:
        raise ValueError(f"{s.numel()} scores but {off.numel()} azimuths")
    near, far = off <= front + 1e-9, off >= back - 1e-9
    if not near.any() or not far.any():
        raise ValueError(f"need views within {front}° and beyond {back}° of the input view, got offsets {off.tolist()}")
    return float(s[near].mean() - s[far].mean())


@torch.no_grad()
def quality_by_azimuth(gaussians: Gaussians, asset: Asset, azimuths_deg: list[float], elevation_deg: float = 0.0,
                       size: int = 64) -> dict[str, Tensor]:
    """Renders of ``gaussians`` against ShapeWorld's exact renders of ``asset`` from cameras at
    ``azimuths_deg`` (elevation ``elevation_deg``, the book's orbit radius and field of view), on white.

    Returns:
        ``psnr [V]`` (dB), ``ssim [V]``, ``sharpness [V]`` (:func:`gsbook.images.sharpness` of each
        render; the truth's in ``truth_sharpness [V]``), and the images ``render [V, size, size, 3]``
        and ``truth [V, size, size, 3]``.
    """
    cams = orbit(elevation_deg, list(azimuths_deg), width=size, height=size, device="cpu")
    image = render(gaussians.detach().to("cpu"), cams, background=1.0).image.clamp(0, 1)
    truth = render_asset(asset, cams, background=1.0)["rgb"]
    chw = lambda x: x.permute(0, 3, 1, 2)  # noqa: E731
    return {"psnr": psnr(image, truth), "ssim": ssim(chw(image), chw(truth)),
            "sharpness": torch.tensor([_sharpness(v[None]) for v in image]),
            "truth_sharpness": torch.tensor([_sharpness(v[None]) for v in truth]), "render": image, "truth": truth}


def _sharpness(views: Tensor) -> float:
    """:func:`gsbook.images.sharpness` of ``views [B, H, W, 3]``, 0 when nothing was drawn."""
    try:
        return sharpness(views)
    except ValueError:                      # nothing drawn: no detail at all
        return 0.0


@torch.no_grad()
def image_to_3d(models: dict, prior, front: Tensor, config=None, truth_views: Tensor | None = None) -> dict[str, Gaussians]:
    """§3's image → 3D with every reconstructor in ``models`` (name → LGM or GRM): the multi-view
    prior draws the other three views from ``front [H, W, 3]`` (on white, azimuth 0) once, and each
    model reads the same four views, exactly as ``gsbook generate lgm --image FRONT.png`` does.

    With ``truth_views [4, H, W, 3]`` (the object's true views at 0°, 90°, 180°, 270°), each model
    also reconstructs those, under ``"NAME, 4 true views"``: the control with a perfect front end.
    """
    from .methods import complete_views, draw_views, reconstruct

    drawn = draw_views(prior, front, "", config)
    real = torch.ones(4, *front.shape, dtype=front.dtype)
    real[0] = front
    views = complete_views(prior, real, (0,), "", config, drawn)
    out = {name: reconstruct(model, views) for name, model in models.items()}
    if truth_views is not None:
        out.update({f"{name}, 4 true views": reconstruct(model, truth_views) for name, model in models.items()})
    return out


@dataclass
class MeshReport:
    """What a game engine would check of a mesh (:func:`mesh_report`).

    Attributes:
        faces, vertices: counts. watertight: every edge shared by exactly two faces (trimesh).
        winding_consistent: the faces agree on which side is out. pieces: connected components.
        euler: the Euler characteristic V − E + F (2 for one closed surface without holes).
        sharpness: of the textured mesh's renders (:func:`gsbook.images.sharpness`), when it was baked.
    """

    faces: int
    vertices: int
    watertight: bool
    winding_consistent: bool
    pieces: int
    euler: int
    sharpness: float | None = None


def mesh_report(vertices: Tensor, faces: Tensor, textured=None, cameras: Cameras | None = None) -> MeshReport:
    """Read a triangle mesh ``vertices [V, 3]``, ``faces [F, 3]`` with trimesh; with a
    :class:`gsbook.mesh.TexturedMesh` and cameras, also the sharpness of its renders."""
    import trimesh

    mesh = trimesh.Trimesh(vertices.detach().cpu().double().numpy(), faces.cpu().numpy(), process=True)
    sharp = None
    if textured is not None and cameras is not None:
        with torch.no_grad():
            sharp = _sharpness(render_textured_mesh(textured, cameras, background=1.0)[0].clamp(0, 1))
    return MeshReport(int(len(mesh.faces)), int(len(mesh.vertices)), bool(mesh.is_watertight),
                      bool(mesh.is_winding_consistent), int(mesh.body_count), int(mesh.euler_number), sharp)


# ============================================================================== compositionality
SCENE_PROMPTS = (
    "a red ball on a blue box", "a green ball on a yellow can", "a blue ball next to a red can",
    "an orange ring next to a purple box", "a white ball on a black box", "a yellow box next to a green ball",
    "a purple ring on a red box", "a blue can on a yellow box",
)


def scene_specs(n: int | None = None) -> list[SceneSpec]:
    """The first ``n`` of §7's two-object prompts (fixed before any generator ran on them), parsed."""
    prompts = SCENE_PROMPTS if n is None else SCENE_PROMPTS[:n]
    return [parse(p) for p in prompts]


def split_plane(layout: list[tuple[ObjectSpec, np.ndarray, np.ndarray]], relation: str) -> tuple[int, float, bool]:
    """Where a scene's layout puts the boundary between its two objects: ``(axis, fraction, first_low)``.

    ``axis`` is 1 (y, "on" and "under") or 0 (x, "next to"); ``fraction`` places the boundary, the
    midpoint of the gap between the two bounding boxes, as a fraction of the scene's extent along
    that axis (0 at its low end); ``first_low`` says whether the caption's first object is on the low side.
    """
    axis = 0 if relation == "next to" else 1
    (_, alo, ahi), (_, blo, bhi) = layout
    lo, hi = min(alo[axis], blo[axis]), max(ahi[axis], bhi[axis])
    first_low = (alo[axis] + ahi[axis]) < (blo[axis] + bhi[axis])
    low_top, high_bottom = (ahi[axis], blo[axis]) if first_low else (bhi[axis], alo[axis])
    return axis, float(((low_top + high_bottom) / 2 - lo) / (hi - lo)), bool(first_low)


def _extent(coord: Tensor, quantile: float) -> tuple[Tensor, Tensor]:
    return torch.quantile(coord, quantile), torch.quantile(coord, 1 - quantile)


GaussiansOrMesh = Gaussians | TexturedMesh
"""What a generator hands back to be scored: Gaussians, or a textured mesh (DreamGaussian's stage 2)."""


def _anchors(made: GaussiansOrMesh) -> Tensor:
    """``[N, 3]``: one point per primitive, where it sits: a Gaussian's mean, a face's centroid."""
    if isinstance(made, TexturedMesh):
        return made.vertices.detach()[made.faces].mean(dim=1)
    return made.means.detach()


def _faces_subset(mesh: TexturedMesh, keep: Tensor) -> TexturedMesh | None:
    """The faces of ``mesh`` where ``keep [F]``; ``None`` when none is kept (a mesh has at least one face)."""
    return TexturedMesh(mesh.vertices, mesh.faces[keep], mesh.uvs, mesh.texture) if bool(keep.any()) else None


def split_scene(made: GaussiansOrMesh, spec: SceneSpec, seed: int = 0, min_opacity: float = 0.05,
                quantile: float = 0.01) -> tuple[GaussiansOrMesh | None, GaussiansOrMesh | None]:
    """Cut a generated scene in two where the caption's layout puts the boundary: the caption's
    first object, then its second.

    The boundary comes from ShapeWorld's own layout of the caption (:func:`gsbook.world.make_scene`
    with ``seed``): the middle of the gap between the two objects' boxes along the relation's axis
    (:func:`split_plane`), as a fraction of the extent of ShapeWorld's own Gaussians of the scene. The
    cut is placed at that fraction of the *generated* scene's extent, so it follows the object
    wherever the generator put it and whatever its size. Both extents are measured alike, over the
    ``quantile`` … 1 − ``quantile`` range of the primitives' positions (:func:`_anchors`: Gaussians'
    means, or a mesh's face centroids), so on ShapeWorld's own scene the cut falls in the gap.
    Gaussians with opacity < ``min_opacity`` are dropped first (stray Gaussians do not count). A mesh
    is cut face by face; a side with no face is ``None`` (an empty side of Gaussians has ``n == 0``).
    """
    truth = make_asset(spec, seed)
    axis, _, first_low = split_plane(truth.layout, spec.relation)
    (_, alo, ahi), (_, blo, bhi) = truth.layout
    gap = ((ahi[axis] + blo[axis]) if first_low else (bhi[axis] + alo[axis])) / 2
    lo, hi = _extent(truth.gaussians(4096).means[:, axis].double(), quantile)
    fraction = (gap - lo) / (hi - lo)
    if isinstance(made, Gaussians):
        made = made.detach()[made.opacities.detach() >= min_opacity]
        if made.n == 0:
            return made, made
    coord = _anchors(made)[:, axis].double()
    lo, hi = _extent(coord, quantile)
    low = coord < lo + fraction * (hi - lo)
    take = (lambda keep: _faces_subset(made, keep)) if isinstance(made, TexturedMesh) else made.__getitem__
    return (take(low), take(~low)) if first_low else (take(~low), take(low))


def stand_alone(part: GaussiansOrMesh, size: float = sum(SIZE_RANGE) / 2, quantile: float = 0.01) -> GaussiansOrMesh:
    """One object of a scene moved and scaled to stand as ShapeWorld stands a single object: centred on
    the origin, its radius (the larger of its half-height and its reach from the vertical axis, as
    :func:`gsbook.world.make_asset` measures it) equal to ``size`` (the middle of ShapeWorld's sizes).
    Half of a two-object scene is small and off centre, and the judge reads size (a large ball reads as
    a box); extents use the ``quantile`` … 1 − ``quantile`` range of the primitives' positions
    (Gaussians' means, a mesh's vertices in use), so stray primitives do not count."""
    if isinstance(part, TexturedMesh):
        m = part.vertices.detach()[part.faces.unique()]
    elif part.n == 0:
        return part
    else:
        m = part.means.detach()
    q = torch.tensor([quantile, 1 - quantile], dtype=m.dtype)
    lo, hi = torch.quantile(m, q[0], dim=0), torch.quantile(m, q[1], dim=0)
    centre = (lo + hi) / 2
    d = m - centre
    radius = torch.maximum(d[:, 1].abs().quantile(1 - quantile), d[:, [0, 2]].norm(dim=-1).quantile(1 - quantile))
    factor = size / radius.clamp_min(1e-6)
    if isinstance(part, TexturedMesh):
        return TexturedMesh((part.vertices.detach() - centre) * factor, part.faces, part.uvs, part.texture)
    return Gaussians(d * factor, part.quats, part.log_scales + factor.log(), part.opacity_logits, part.sh)


def _primitives(made: GaussiansOrMesh | None) -> int:
    if made is None:
        return 0
    return made.n_faces if isinstance(made, TexturedMesh) else made.n


def render_on_white(made: GaussiansOrMesh, cams: Cameras) -> Tensor:
    """``[C, H, W, 3]`` in [0, 1], on the CPU: Gaussians (:func:`gsbook.render.render`) or a textured
    mesh (:func:`gsbook.mesh.render_textured_mesh`) rendered on white, as the judge reads them."""
    if isinstance(made, TexturedMesh):
        return render_textured_mesh(made.to(cams.viewmats.device), cams, background=1.0)[0].clamp(0, 1).cpu()
    return render(made.to(cams.viewmats.device), cams, background=1.0).image.clamp(0, 1).cpu()


@dataclass
class ObjectReading:
    """The judge's reading of one object of a scene over the turntable views.

    Attributes:
        spec: what the caption says. readings: the judge's captions, one per view.
        category, colour: the share of views that read the category, the main colour right.
        both: the share of views that read both right.
        primitives: how many Gaussians (or a mesh's faces) the half has.
        present: ``both`` ≥ ``threshold`` (:func:`score_scene`).
    """

    spec: ObjectSpec
    readings: list[str]
    category: float
    colour: float
    both: float
    primitives: int
    present: bool


@dataclass
class SceneScore:
    """A two-object prompt scored: each object's reading, and whether both are there in their colours."""

    prompt: str
    first: ObjectReading
    second: ObjectReading
    whole: list[str] = field(default_factory=list)     # the judge's reading of the whole scene, per view

    @property
    def success(self) -> bool:
        return self.first.present and self.second.present

    @property
    def present(self) -> int:
        """How many of the two objects are there (0, 1 or 2)."""
        return int(self.first.present) + int(self.second.present)


@torch.no_grad()
def _read_object(judge: Judge, part: GaussiansOrMesh | None, spec: ObjectSpec, cams: Cameras, threshold: float,
                 min_primitives: int) -> ObjectReading:
    n = _primitives(part)
    if n < min_primitives:
        return ObjectReading(spec, ["nothing"] * len(cams), 0.0, 0.0, 0.0, n, False)
    read = judge.predict(render_on_white(stand_alone(part), cams))
    cat = [r.category == spec.category for r in read]
    col = [r.colour == spec.colour for r in read]
    both = [a and b for a, b in zip(cat, col)]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return ObjectReading(spec, [caption(r) for r in read], mean(cat), mean(col), mean(both), n, mean(both) >= threshold)


@torch.no_grad()
def score_scene(judge: Judge, made: GaussiansOrMesh, spec: SceneSpec | str, seed: int = 0, threshold: float = 0.5,
                min_primitives: int = 16) -> SceneScore:
    """Score a two-object prompt: :func:`split_scene`, then each half rendered alone from the 8
    turntable views (:func:`gsbook.cameras.turntable`, as every generator is judged), framed as a
    single object (:func:`stand_alone`) and read by the judge. ``made`` is Gaussians or a textured
    mesh (cut face by face, rendered with its texture). An object is *present* when at least
    ``threshold`` of its views read its category and its main colour right; a half with fewer than
    ``min_primitives`` Gaussians (or faces) is absent. The whole scene's reading is kept too
    (``whole``): the judge reads one object, so it shows what a one-object score would have seen.
    """
    spec = parse(spec) if isinstance(spec, str) else spec
    if not isinstance(spec, SceneSpec):
        raise ValueError(f"score_scene scores two-object prompts (e.g. 'a red ball on a blue box'), got {caption(spec)!r}")
    if not isinstance(made, (Gaussians, TexturedMesh)):
        raise TypeError(f"score_scene reads Gaussians or a TexturedMesh, got {type(made).__name__}")
    cams = turntable(8, device="cpu")
    made = made.to("cpu") if isinstance(made, TexturedMesh) else made.detach().to("cpu")
    first, second = split_scene(made, spec, seed)
    whole = [caption(r) for r in judge.predict(render_on_white(made, cams))]
    return SceneScore(caption(spec), _read_object(judge, first, spec.first, cams, threshold, min_primitives),
                      _read_object(judge, second, spec.second, cams, threshold, min_primitives), whole)


def success_rate(scores: list[SceneScore]) -> float:
    """The share of scenes with both objects present in their colours."""
    if not scores:
        raise ValueError("no scenes to rate")
    return sum(s.success for s in scores) / len(scores)


def run_generator(method: str, prompt: str, seed: int = 0, profile: str = "ci", device: str | None = None,
                  options: dict | None = None, config=None) -> Generated:
    """Run the generator ``method`` of ``gsbook generate`` (a key of
    :data:`gsbook.harness.CONTENDERS`, e.g. ``"lgm"`` or ``"dreamgaussian-1"``) on a prompt the command
    itself refuses: two objects. The method receives the request the command would make for a
    one-object prompt (:func:`gsbook.harness.request_for`: its profile's config, its options, plus
    ``options`` such as ``{"stages": 1}``), with the two-object caption put in; its text encoder reads
    the whole caption, as a real generator reads any text. Returns the method's
    :class:`gsbook.generate.Generated`: ``.gaussians``, and ``.mesh`` when it makes one (DreamGaussian's
    stage 2). ``device``: default the profile's (:func:`gsbook.config.resolve_device`)."""
    from dataclasses import replace

    from .config import resolve_device
    from .generate import GENERATORS
    from .harness import contender, request_for

    c = contender(method)
    template = request_for(c, "a red ball", profile, seed, str(resolve_device(device)))   # the command's own configure
    request = replace(template, prompt=prompt, config=config if config is not None else template.config,
                      options={**template.options, **(options or {})})
    torch.manual_seed(seed)
    with torch.enable_grad():                  # the optimisers need gradients, whatever the caller turned off
        return GENERATORS[c.method].run(request, False)


# ============================================================================== animatable output
@dataclass
class Skeleton:
    """Bones as segments from ``heads [B, 3]`` to ``tails [B, 3]``; ``parents[b]`` is the bone that
    ``b`` hangs from (−1 for a root; a parent comes before its children). A bone turns about its head."""

    heads: Tensor
    tails: Tensor
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.heads.shape != self.tails.shape or self.heads.dim() != 2 or self.heads.shape[-1] != 3:
            raise ValueError(f"heads and tails must both be [B, 3], got {list(self.heads.shape)} and {list(self.tails.shape)}")
        if len(self.parents) != len(self.heads):
            raise ValueError(f"{len(self.heads)} bones but {len(self.parents)} parents")
        for b, p in enumerate(self.parents):
            if not -1 <= p < b:
                raise ValueError(f"bone {b}'s parent {p} must be -1 (a root) or an earlier bone")

    def __len__(self) -> int:
        return len(self.parents)


def chain_skeleton(points: Tensor, joints: tuple[float, ...] = (0.5,), axis: int = 1) -> Skeleton:
    """A chain of ``len(joints) + 1`` bones along the vertical line through the middle of ``points [N, 3]``,
    from their lowest to their highest point; ``joints`` are the heights of the joints between the bones,
    as fractions of that span (increasing, in (0, 1))."""
    if not joints or not all(0 < j < 1 for j in joints) or any(a >= b for a, b in zip(joints, joints[1:])):
        raise ValueError(f"joints must be increasing fractions in (0, 1), got {joints}")
    p = points.detach()
    lo, hi = p.min(0).values, p.max(0).values
    centre = (lo + hi) / 2
    stops = [0.0, *joints, 1.0]
    ends = []
    for s in stops:
        e = centre.clone()
        e[axis] = lo[axis] + s * (hi[axis] - lo[axis])
        ends.append(e)
    ends = torch.stack(ends)
    return Skeleton(ends[:-1].clone(), ends[1:].clone(), tuple(range(-1, len(stops) - 2)))


def bone_distances(points: Tensor, skeleton: Skeleton) -> Tensor:
    """``[N, B]`` Euclidean distance from each point ``[N, 3]`` to each bone's segment."""
    a, b = skeleton.heads.to(points), skeleton.tails.to(points)          # [B, 3]
    ab = b - a
    t = ((points[:, None] - a) * ab).sum(-1) / ab.square().sum(-1).clamp_min(1e-12)
    closest = a + t.clamp(0, 1)[..., None] * ab
    return (points[:, None] - closest).norm(dim=-1)


def bone_weights(points: Tensor, skeleton: Skeleton, falloff: float = 0.0) -> Tensor:
    """Skinning weights ``[N, B]`` (each row sums to one) from the distances to the bones.

    ``falloff = 0``: one-hot on the nearest bone (rigid binding). ``falloff > 0``: soft,
    ``w ∝ exp(−(d − d_min)² / (2 falloff²))``, so a point about as near to two bones shares itself
    between them, over a band about ``falloff`` wide around a joint."""
    d = bone_distances(points, skeleton)
    if falloff <= 0:
        return F.one_hot(d.argmin(1), len(skeleton)).to(points.dtype)
    rel = d - d.min(1, keepdim=True).values
    return torch.softmax(-rel.square() / (2 * falloff ** 2), dim=1)


def axis_rotation(axis: tuple[float, float, float] | Tensor, degrees: float, dtype=torch.float32) -> Tensor:
    """``[3, 3]`` rotation by ``degrees`` about ``axis`` (right-handed; Rodrigues' formula)."""
    k = F.normalize(torch.as_tensor(axis, dtype=torch.float64), dim=0)
    a = math.radians(degrees)
    K = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=torch.float64)
    return (torch.eye(3, dtype=torch.float64) + math.sin(a) * K + (1 - math.cos(a)) * K @ K).to(dtype)


def pose_skeleton(skeleton: Skeleton, rotations: Tensor) -> Tensor:
    """Forward kinematics: ``rotations [B, 3, 3]`` (each bone's turn about its own head, in its
    parent's posed frame) → ``[B, 4, 4]`` world transforms taking a point at rest, rigidly attached
    to the bone, to where the pose puts it."""
    B = len(skeleton)
    if rotations.shape != (B, 3, 3):
        raise ValueError(f"rotations must be [{B}, 3, 3], got {list(rotations.shape)}")
    dtype = rotations.dtype
    out = []
    for b in range(B):
        head = skeleton.heads[b].to(dtype)
        local = torch.eye(4, dtype=dtype)
        local[:3, :3] = rotations[b]
        local[:3, 3] = head - rotations[b] @ head                         # turn about the head
        parent = skeleton.parents[b]
        out.append(local if parent < 0 else out[parent] @ local)
    return torch.stack(out)


def blend_transforms(weights: Tensor, transforms: Tensor) -> tuple[Tensor, Tensor]:
    """Linear blend skinning's per-point map: ``A [N, 3, 3] = Σ_b w_b M_b`` and ``t [N, 3] = Σ_b w_b t_b``
    for ``weights [N, B]`` and ``transforms [B, 4, 4]``. ``A`` is a rotation only when one bone has all
    the weight, or all the bones it blends turn alike."""
    w = weights.to(transforms.dtype)
    return torch.einsum("nb,bij->nij", w, transforms[:, :3, :3]), w @ transforms[:, :3, 3]


def skin(gaussians: Gaussians, weights: Tensor, transforms: Tensor) -> Gaussians:
    """Linear blend skinning of Gaussians: each mean ``x ↦ A x + t`` and each covariance
    ``Σ ↦ A Σ Aᵀ`` (:func:`blend_transforms`), then written back as a rotation and three scales (the
    eigenvectors and the square roots of the eigenvalues). Opacities and colours are unchanged
    (degree-0 colours are view-independent, so nothing turns with the Gaussian)."""
    if weights.shape != (gaussians.n, transforms.shape[0]):
        raise ValueError(f"weights must be [{gaussians.n}, {transforms.shape[0]}], got {list(weights.shape)}")
    g = gaussians.detach()
    A, t = blend_transforms(weights.to(torch.float64), transforms.to(torch.float64))
    means = torch.einsum("nij,nj->ni", A, g.means.double()) + t
    cov = A @ g.covariances.double() @ A.transpose(1, 2)
    cov = (cov + cov.transpose(1, 2)) / 2
    values, vectors = torch.linalg.eigh(cov)
    flip = torch.linalg.det(vectors) < 0                                   # a rotation, not a reflection
    vectors[flip, :, 0] = -vectors[flip, :, 0]
    dtype = g.means.dtype
    return Gaussians(means.to(dtype), rotmat_to_quat(vectors).to(dtype),
                     0.5 * values.clamp_min(1e-20).log().to(dtype), g.opacity_logits, g.sh)


def rigidity_error(A: Tensor) -> Tensor:
    """``[N]`` how far each blended map ``A [N, 3, 3]`` is from a rotation: the largest ``|σ − 1|`` over
    its singular values (0 for a rotation; 0.3 means some axis of the Gaussian shrank or grew by 30%)."""
    return (torch.linalg.svdvals(A) - 1).abs().amax(-1)


def joint_distance(points: Tensor, skeleton: Skeleton, bone: int = 1) -> Tensor:
    """``[N]`` distance of each point from the head of ``bone`` (the joint it turns about)."""
    return (points - skeleton.heads[bone].to(points)).norm(dim=-1)


def torn_neighbours(rest: Tensor, posed: Tensor, k: int = 6, factor: float = 2.0) -> Tensor:
    """``[N]`` bool: the point has a rest-pose neighbour (one of its ``k`` nearest) that the pose pulled
    more than ``factor`` times as far away: the surface tore open there."""
    d = torch.cdist(rest, rest, compute_mode="donot_use_mm_for_euclid_dist")
    d.fill_diagonal_(float("inf"))
    idx = d.topk(k, largest=False).indices                                 # [N, k]
    nd = (rest[:, None] - rest[idx]).norm(dim=-1)
    posed_d = (posed[:, None] - posed[idx]).norm(dim=-1)
    return (posed_d > factor * nd).any(1)
