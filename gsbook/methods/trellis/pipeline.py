"""TRELLIS end to end at book scale: caption → structure → structured latent → Gaussians (§4).

Stage 1 (:func:`~gsbook.methods.trellis.structure.sample_structure`) decides *where* the object
is: a 32³ occupancy, whose shell is the set of active voxels. Stage 2
(:func:`~gsbook.methods.trellis.slat.sample_slat`) decides *what it looks like*: 8 latent
channels on each active voxel, which the SLat VAE decodes to a few Gaussians per voxel.

Because the two are separate, two edits come for free (TRELLIS §3.4 and its Figure 7):

- :func:`edit_appearance` keeps the structure and draws a new SLat from another caption ("the same
  mushroom, but purple"): stage 2 only, on the same voxels.
- :func:`edit_region` regenerates a sub-volume (by default the top third) while the rest stays:
  both stages hold the known part on its own straight path (RePaint-style), so every voxel and
  every latent outside the region comes out exactly as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from gsbook.gaussians import Gaussians
from gsbook.methods.trellis.slat import SLatFlow, SLatVAE, pad_voxels, sample_slat, shell_coords, voxel_centres
from gsbook.methods.trellis.structure import StructureFlow, StructureVAE, sample_structure, top_region_mask
from gsbook.world import BOUND

__all__ = ["TrellisConfig", "TrellisModels", "TrellisResult", "trellis_text_to_3d", "decode_slat",
           "edit_appearance", "edit_region", "voxel_normals", "voxel_gaussians"]


@dataclass
class TrellisConfig:
    """Sampling settings of both stages.

    Attributes:
        steps: Euler steps of stage 1 (structure). slat_steps: of stage 2 (None: the same).
        guidance: classifier-free guidance of stage 1. slat_guidance: of stage 2.
        seed: seeds the noise of both stages.
    """

    steps: int = 25
    slat_steps: int | None = None
    guidance: float = 3.0
    slat_guidance: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or (self.slat_steps is not None and self.slat_steps < 1):
            raise ValueError(f"steps must be at least 1, got {self.steps} and {self.slat_steps}")
        if self.guidance < 0 or self.slat_guidance < 0:
            raise ValueError("guidance scales must be non-negative")

    @property
    def stage2_steps(self) -> int:
        return self.steps if self.slat_steps is None else self.slat_steps

    @classmethod
    def for_profile(cls, profile: str, **overrides) -> "TrellisConfig":
        """Sampling costs about a second a stage on a laptop CPU, so every profile samples alike."""
        if profile not in ("ci", "cpu", "gpu"):
            raise ValueError(f"unknown profile {profile!r}")
        return cls(**overrides)


@dataclass
class TrellisModels:
    """The four shipped networks: stage 1's VAE and flow, stage 2's VAE and flow."""

    ss_vae: StructureVAE
    ss_flow: StructureFlow
    slat_vae: SLatVAE
    slat_flow: SLatFlow

    @classmethod
    def from_shipped(cls, device: str | torch.device | None = None) -> "TrellisModels":
        return cls(*(model.from_shipped(device).eval() for model in (StructureVAE, StructureFlow, SLatVAE, SLatFlow)))

    @property
    def device(self) -> torch.device:
        return next(self.slat_flow.parameters()).device

    def parameters(self) -> int:
        return sum(p.numel() for m in (self.ss_vae, self.ss_flow, self.slat_vae, self.slat_flow)
                   for p in m.parameters())


@dataclass
class TrellisResult:
    """One generated object.

    Attributes:
        caption: what it was generated (or last edited) from.
        occupancy: ``[R, R, R]`` bool, stage 1's solid structure (axes x, y, z; +y up).
        coords: ``[N, 3]`` long, its active voxels (the shell), in lexicographic order.
        slat: ``[N, 8]``, the structured latent on them.
        gaussians: the decoded Gaussians (a few per active voxel).
        seconds: per stage: ``structure``, ``slat``, ``decode``.
    """

    caption: str
    occupancy: Tensor
    coords: Tensor
    slat: Tensor
    gaussians: Gaussians
    seconds: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def decode_slat(models: TrellisModels, coords: Tensor, slat: Tensor) -> Gaussians:
    """``coords [N, 3]``, ``slat [N, 8]`` → the SLat VAE's Gaussians (detached)."""
    device = models.device
    padded, mask = pad_voxels([coords.to(device)])
    z, _ = pad_voxels([slat.to(device)])
    return models.slat_vae.decode(z, padded, mask)[0].detach()


VOXEL_LOW, VOXEL_HIGH = (0.16, 0.38, 0.62), (0.96, 0.72, 0.30)   # voxel colours at the bottom and top of the grid
VOXEL_LIGHT = (0.4, 1.0, 0.9)      # toward the light: above, from a camera's side (world x, y, z)


def voxel_normals(occupancy: Tensor, coords: Tensor) -> Tensor:
    """Outward normals ``[N, 3]`` (unit; zero where none) of the voxels ``coords [N, 3]`` of
    ``occupancy [R, R, R]``: the sum of the directions toward their empty 6-neighbours
    (outside the grid counts as empty)."""
    padded = F.pad(occupancy.float()[None, None], (1, 1, 1, 1, 1, 1))[0, 0] > 0
    i, j, k = (coords + 1).unbind(-1)                                        # indices into the padded grid
    normal = torch.zeros(len(coords), 3)
    for axis in range(3):
        for sign in (-1, 1):
            step = [0, 0, 0]
            step[axis] = sign
            empty = ~padded[i + step[0], j + step[1], k + step[2]]
            normal[:, axis] += sign * empty.float()
    return F.normalize(normal, dim=-1)


def voxel_gaussians(occupancy: Tensor) -> Gaussians | None:
    """A structure made visible: the shell of ``occupancy [R, R, R]`` (bool; axes x, y, z, +y up)
    as one small opaque Gaussian per voxel, coloured by height and shaded by a light above;
    ``None`` when nothing is occupied.

    Only the shell is drawn: the interior is hidden behind it anyway, and it is what stage 2
    puts its latents on.
    """
    occupancy = occupancy.cpu()
    R = occupancy.shape[-1]
    coords = shell_coords(occupancy)                                           # [N, 3]
    if len(coords) == 0:
        return None
    means = voxel_centres(coords, R, BOUND)                                    # [N, 3]
    height = ((means[:, 1:2] + BOUND) / (2 * BOUND)).clamp(0, 1)               # [N, 1] in [0, 1]
    rgb = torch.tensor(VOXEL_LOW) * (1 - height) + torch.tensor(VOXEL_HIGH) * height
    # flat colours read as a silhouette; a little Lambert shading shows the shape's relief
    light = F.normalize(torch.tensor(VOXEL_LIGHT), dim=0)
    rgb = rgb * (0.55 + 0.45 * (voxel_normals(occupancy, coords) @ light).clamp_min(0))[:, None]
    # σ = 0.45 voxel: neighbours overlap into a surface, single voxels still read as blocks
    return Gaussians.from_activated(means, torch.full_like(means, 0.45 * 2 * BOUND / R),
                                    torch.full((len(means),), 0.95), rgb)


def _generator(seed: int, stage: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 2 + stage)       # stage 1 and stage 2 draw apart


def _stage2(models: TrellisModels, occupancy: Tensor, caption: str, config: TrellisConfig,
            seconds: dict[str, float], known: Tensor | None = None, keep: Tensor | None = None,
            coords: Tensor | None = None) -> TrellisResult:
    start = time.perf_counter()
    coords = shell_coords(occupancy) if coords is None else coords
    if len(coords) == 0:
        raise RuntimeError(f"stage 1 made an empty structure for {caption!r}: nothing to put a latent on "
                           "(try another seed)")
    edit = {} if known is None else {"known": [known], "keep": [keep]}
    slat = sample_slat(models.slat_flow, [coords], [caption], steps=config.stage2_steps,
                       guidance=config.slat_guidance, generator=_generator(config.seed, 2), **edit)[0].cpu()
    seconds["slat"] = time.perf_counter() - start
    start = time.perf_counter()
    gaussians = decode_slat(models, coords, slat)
    seconds["decode"] = time.perf_counter() - start
    return TrellisResult(caption, occupancy.cpu(), coords.cpu(), slat, gaussians, seconds)


def trellis_text_to_3d(models: TrellisModels, caption: str, config: TrellisConfig | None = None) -> TrellisResult:
    """Caption → Gaussians: stage 1's structure, its shell, stage 2's latents, decoded."""
    config = config or TrellisConfig()
    start = time.perf_counter()
    occupancy = sample_structure(models.ss_vae, models.ss_flow, [caption], steps=config.steps,
                                 guidance=config.guidance, generator=_generator(config.seed, 1))[0]
    seconds = {"structure": time.perf_counter() - start}
    return _stage2(models, occupancy, caption, config, seconds)


def edit_appearance(models: TrellisModels, result: TrellisResult, caption: str,
                    config: TrellisConfig | None = None) -> TrellisResult:
    """The same structure, a new look: stage 2 alone on ``result``'s voxels, from ``caption``."""
    config = config or TrellisConfig()
    return _stage2(models, result.occupancy, caption, config, {"structure": 0.0}, coords=result.coords)


def edit_region(models: TrellisModels, result: TrellisResult, caption: str | None = None,
                region: Tensor | None = None, config: TrellisConfig | None = None) -> TrellisResult:
    """Regenerate the voxels inside ``region`` (``[R, R, R]`` bool; default the top third) from
    ``caption`` (default the result's own), holding everything outside it.

    Stage 1 holds the structure outside the region (:func:`sample_structure` with ``known``,
    ``keep``); stage 2 holds the latents of every active voxel outside the region that was
    active before. Voxels outside the region are unchanged; their Gaussians can still move a
    little, since the decoder attends across all voxels.
    """
    config = config or TrellisConfig()
    caption = caption or result.caption
    R = result.occupancy.shape[-1]
    region = top_region_mask(R) if region is None else region
    if region.shape != result.occupancy.shape or region.dtype != torch.bool:
        raise ValueError(f"region must be bool {list(result.occupancy.shape)}, got {region.dtype} {list(region.shape)}")
    # a different seed for the redraw, or the held part would pull the region back to the same draw
    redraw = replace(config, seed=config.seed + 1)
    start = time.perf_counter()
    occupancy = sample_structure(models.ss_vae, models.ss_flow, [caption], steps=config.steps,
                                 guidance=config.guidance, generator=_generator(redraw.seed, 1),
                                 known=result.occupancy[None], keep=~region)[0]
    seconds = {"structure": time.perf_counter() - start}
    coords = shell_coords(occupancy)
    # held: active now, outside the region, and active before (so it has a known latent)
    linear = lambda c: (c[:, 0] * R + c[:, 1]) * R + c[:, 2]                       # noqa: E731
    old, new = linear(result.coords), linear(coords)                                # both sorted
    at = torch.searchsorted(old, new).clamp_max(len(old) - 1)
    was_active = old[at] == new
    outside = ~region[coords[:, 0], coords[:, 1], coords[:, 2]]
    keep = was_active & outside
    known = torch.where(keep[:, None], result.slat[at], torch.zeros_like(result.slat[at]))
    return _stage2(models, occupancy, caption, redraw, seconds, known=known, keep=keep, coords=coords)
