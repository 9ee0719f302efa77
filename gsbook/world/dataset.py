"""Multi-view ShapeWorld datasets, rendered once and cached on disk (taught in §0, used from §3 on).

``ShapeWorldDataset(DatasetConfig(...))`` renders ``n_assets`` objects × ``views`` cameras
(RGB, alpha, depth and the cameras) the first time, with a progress bar, into a folder
whose name holds the generator version and a hash of the config; later calls read it
back in seconds. Bumping :data:`gsbook.world.GENERATOR_VERSION` changes every folder name,
so stale renders are never reused.

Splits, for honest evaluation:

* ``train`` — colour × category pairs outside :func:`held_out_pairs`;
* ``val``, ``test`` — the same pairs, but other assets (other seeds);
* ``unseen`` — only held-out pairs: captions whose colour × category never occurs in
  ``train`` (§7's compositionality experiment).

On disk: ``index.json`` (config, version, one record per asset) and shards
``shard-00000.safetensors`` holding ``rgb`` uint8 ``[A, V, H, W, 3]``, ``alpha`` uint8
``[A, V, H, W]``, ``depth`` float16 ``[A, V, H, W]``, ``viewmats`` ``[A, V, 4, 4]`` and
``Ks`` ``[A, V, 3, 3]``. ``index.json`` is written last: a folder without it is an
unfinished build, and a new build resumes from its finished shards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..config import cache_root
from . import asset as asset_module
from .asset import make_asset
from .captions import ObjectSpec, caption, held_out_pairs
from .categories import CATEGORIES, CATEGORY_NAMES
from .colours import COLOUR_NAMES
from .raycast import render_asset

__all__ = ["SPLITS", "VIEW_MODES", "DatasetConfig", "ShapeWorldDataset", "StackedViews", "split_specs",
           "asset_record", "split_captions"]

SPLITS = ("train", "val", "test", "unseen")
VIEW_MODES = ("random", "four")
_SALT = 0xDA7A


@dataclass(frozen=True)
class DatasetConfig:
    """What to render. Every field enters the cache folder's hash.

    Attributes:
        n_assets: objects in the split.
        views: cameras per object (``view_mode="four"`` needs 4).
        view_mode: ``"random"`` (orbit cameras with random angles) or ``"four"`` (LGM's
            four orthogonal views, azimuth 0/90/180/270 at ``elevation``).
        resolution: image side in pixels.
        background: ``"white"`` or ``"black"``.
        split: one of ``train``, ``val``, ``test``, ``unseen``.
        seed: the dataset's seed (different seeds, different assets).
        elevation_range: random views' elevation range in degrees.
        elevation: the four views' elevation in degrees.
        radius, fovy: camera distance and vertical field of view (DreamGaussian/LGM's).
        supersample: edge anti-aliasing of the ray caster (see ``render_asset``).
        shard_size: objects per file on disk.
    """
    n_assets: int = 1000
    views: int = 8
    view_mode: str = "random"
    resolution: int = 64
    background: str = "white"
    split: str = "train"
    seed: int = 0
    elevation_range: tuple[float, float] = (-20.0, 40.0)
    elevation: float = 0.0
    radius: float = 2.5
    fovy: float = 49.1
    supersample: int = 3
    shard_size: int = 500

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; choose one of {', '.join(SPLITS)}")
        if self.view_mode not in VIEW_MODES:
            raise ValueError(f"unknown view_mode {self.view_mode!r}; choose one of {', '.join(VIEW_MODES)}")
        if self.view_mode == "four" and self.views != 4:
            raise ValueError(f"view_mode='four' renders exactly 4 views, got views={self.views}")
        if self.background not in ("white", "black"):
            raise ValueError(f"background must be 'white' or 'black', got {self.background!r}")
        if self.n_assets <= 0 or self.views <= 0 or self.resolution <= 0:
            raise ValueError("n_assets, views and resolution must be positive")

    def key(self) -> str:
        """Hash of the generator version and every field: the cache folder's identity."""
        fields = dataclasses.asdict(self)
        fields["generator_version"] = asset_module.GENERATOR_VERSION
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]

    def folder_name(self) -> str:
        return f"shapeworld-v{asset_module.GENERATOR_VERSION}-{self.split}-{self.key()}"


def split_specs(split: str) -> list[tuple[str, str]]:
    """The (colour, category) pairs a split draws its main colours from."""
    held = held_out_pairs()
    pairs = [(c, k) for k in CATEGORY_NAMES for c in COLOUR_NAMES]
    return [p for p in pairs if (p in held) == (split == "unseen")]


def asset_record(config: DatasetConfig, index: int) -> dict:
    """Spec, seed and caption of asset ``index`` of a dataset: a pure function of both."""
    split_id = SPLITS.index(config.split)
    rng = np.random.default_rng([_SALT, config.seed, split_id, index])
    pairs = split_specs(config.split)
    colour, category = pairs[int(rng.integers(len(pairs)))]
    part_colour = None
    if CATEGORIES[category].part:
        others = [c for c in COLOUR_NAMES if c != colour]
        part_colour = others[int(rng.integers(len(others)))]
    spec = ObjectSpec(category, colour, part_colour)
    return {"category": category, "colour": colour, "part_colour": part_colour,
            "seed": int(rng.integers(2**62)), "caption": caption(spec)}


def split_captions(n: int, split: str = "train", seed: int = 0) -> list[str]:
    """The captions of the first ``n`` assets of a ``split`` dataset with ``seed``: colour ×
    category drawn from the split's pairs, a random part colour where there is a part."""
    config = DatasetConfig(n_assets=n, split=split, seed=seed)
    return [asset_record(config, i)["caption"] for i in range(n)]


def cameras_for(config: DatasetConfig, record: dict):
    """The cameras of one asset (random ones are seeded by the asset's seed), on the CPU,
    where the ray caster runs."""
    from ..cameras import four_views, random_cameras
    size = config.resolution
    if config.view_mode == "four":
        return four_views(config.elevation, config.radius, config.fovy, size, size, device="cpu")
    generator = torch.Generator().manual_seed(record["seed"] % (2**63))
    return random_cameras(config.views, config.elevation_range, radius_range=(config.radius, config.radius),
                          fovy_deg=config.fovy, width=size, height=size, generator=generator, device="cpu")


def render_record(config: DatasetConfig, record: dict) -> dict[str, np.ndarray]:
    """Render one asset's views into the on-disk dtypes."""
    spec = ObjectSpec(record["category"], record["colour"], record["part_colour"])
    obj = make_asset(spec, record["seed"])
    cams = cameras_for(config, record)
    background = 1.0 if config.background == "white" else 0.0
    out = render_asset(obj, cams, background=background, ss=config.supersample)
    return {
        "rgb": (out["rgb"].numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8),
        "alpha": (out["alpha"].numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8),
        "depth": out["depth"].numpy().astype(np.float16),
        "viewmats": cams.viewmats.numpy().astype(np.float32),
        "Ks": cams.Ks.numpy().astype(np.float32),
    }


def _render_range(args: tuple[DatasetConfig, int, int]) -> list[dict[str, np.ndarray]]:
    config, start, stop = args
    torch.set_num_threads(1)
    return [render_record(config, asset_record(config, i)) for i in range(start, stop)]


def _shard_path(folder: Path, shard: int) -> Path:
    return folder / f"shard-{shard:05d}.safetensors"


def build(config: DatasetConfig, root: Path | str | None = None, workers: int | None = None,
          progress: bool = True) -> Path:
    """Render a dataset into its cache folder unless it is already there; return the folder.

    ``workers`` processes render in parallel (default: one per CPU core, at most 2 —
    the book's laptop). Finished shards of an interrupted build are kept and reused.
    """
    from safetensors.numpy import save_file
    from tqdm.auto import tqdm

    folder = Path(root or cache_root()) / "shapeworld" / config.folder_name()
    if (folder / "index.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    shards = range((config.n_assets + config.shard_size - 1) // config.shard_size)
    todo = [s for s in shards if not _shard_path(folder, s).exists()]
    bar = tqdm(total=config.n_assets, desc=f"ShapeWorld {config.split} ({config.folder_name()})",
               unit="asset", disable=not progress)
    bar.update(config.n_assets - sum(min(config.shard_size, config.n_assets - s * config.shard_size) for s in todo))
    chunk = 25
    pool = None
    if workers > 1:
        import multiprocessing as mp
        # fork starts workers in milliseconds; where there is none (Windows, macOS default) spawn.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        pool = mp.get_context(method).Pool(workers)
    # One stream of jobs over every missing shard, so workers never idle at shard ends.
    jobs = [(config, a, min(a + chunk, hi))
            for s in todo
            for lo, hi in [(s * config.shard_size, min((s + 1) * config.shard_size, config.n_assets))]
            for a in range(lo, hi, chunk)]
    try:
        results = pool.imap(_render_range, jobs) if pool else map(_render_range, jobs)
        items: list[dict[str, np.ndarray]] = []
        for (_, start, stop), batch in zip(jobs, results):
            items += batch
            bar.update(len(batch))
            shard = start // config.shard_size
            if stop == min((shard + 1) * config.shard_size, config.n_assets):
                arrays = {k: np.stack([it[k] for it in items]) for k in items[0]}
                tmp = _shard_path(folder, shard).with_suffix(".tmp")
                save_file(arrays, str(tmp))
                tmp.replace(_shard_path(folder, shard))
                items = []
    finally:
        if pool:
            pool.close()
            pool.join()
        bar.close()
    index = {"generator_version": asset_module.GENERATOR_VERSION, "config": dataclasses.asdict(config),
             "shards": [_shard_path(folder, s).name for s in shards],
             "assets": [asset_record(config, i) for i in range(config.n_assets)]}
    tmp = folder / "index.json.tmp"
    tmp.write_text(json.dumps(index))
    tmp.replace(folder / "index.json")
    return folder


class ShapeWorldDataset(Dataset):
    """A cached multi-view ShapeWorld split as a torch ``Dataset`` (built on first use).

    Item ``i`` is a dict: ``rgb [V, H, W, 3]``, ``alpha [V, H, W]``, ``depth [V, H, W]`` (float32;
    depth is camera-space z, 0 on the background), ``viewmats [V, 4, 4]``, ``Ks [V, 3, 3]``,
    ``caption`` (str), ``category``/``colour``/``part_colour`` indices (``-1`` = none) and ``seed``.
    """

    def __init__(self, config: DatasetConfig | None = None, root: Path | str | None = None,
                 workers: int | None = None, progress: bool = True) -> None:
        self.config = config or DatasetConfig()
        self.folder = build(self.config, root, workers, progress)
        index = json.loads((self.folder / "index.json").read_text())
        if index["generator_version"] != asset_module.GENERATOR_VERSION:
            raise RuntimeError(f"{self.folder} was built by ShapeWorld generator v{index['generator_version']}, "
                               f"this is v{asset_module.GENERATOR_VERSION}; delete the folder to rebuild it")
        self.records: list[dict] = index["assets"]
        self.shards = [self.folder / name for name in index["shards"]]
        self._open: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.records)

    def _shard(self, s: int):
        from safetensors import safe_open
        if s not in self._open:
            self._open[s] = safe_open(str(self.shards[s]), framework="pt")
        return self._open[s]

    def __getstate__(self) -> dict:
        # Open file handles do not cross into DataLoader worker processes; reopen there.
        state = dict(self.__dict__)
        state["_open"] = {}
        return state

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} assets")
        s, j = divmod(i, self.config.shard_size)
        f = self._shard(s)
        record = self.records[i]
        get = lambda name: f.get_slice(name)[j]
        return {
            "rgb": get("rgb").float() / 255,
            "alpha": get("alpha").float() / 255,
            "depth": get("depth").float(),
            "viewmats": get("viewmats"),
            "Ks": get("Ks"),
            "caption": record["caption"],
            "category": CATEGORY_NAMES.index(record["category"]),
            "colour": COLOUR_NAMES.index(record["colour"]),
            "part_colour": COLOUR_NAMES.index(record["part_colour"]) if record["part_colour"] else -1,
            "seed": record["seed"],
        }

    def tensors(self, *names: str) -> dict[str, Tensor]:
        """Whole arrays of every asset, as stored (``rgb`` uint8 ``[A, V, H, W, 3]``, ``alpha``,
        ``depth``, ``viewmats``, ``Ks``), read shard by shard."""
        unknown = set(names) - {"rgb", "alpha", "depth", "viewmats", "Ks"}
        if unknown:
            raise ValueError(f"unknown arrays {sorted(unknown)}; a dataset stores rgb, alpha, depth, viewmats, Ks")
        return {name: torch.cat([self._shard(s).get_tensor(name) for s in range(len(self.shards))])
                for name in names}

    def stacked(self) -> "StackedViews":
        """Every view of every asset at once, as stored (uint8)."""
        arrays = self.tensors("rgb", "alpha")
        views = self.config.views
        return StackedViews(arrays["rgb"].flatten(0, 1), arrays["alpha"].flatten(0, 1),
                            torch.arange(len(self)).repeat_interleave(views), list(self.records))

    def cameras(self, i: int):
        """The :class:`~gsbook.cameras.Cameras` of item ``i``."""
        from ..cameras import Cameras
        item = self[i]
        return Cameras(item["viewmats"], item["Ks"], self.config.resolution, self.config.resolution)


@dataclass
class StackedViews:
    """The views of one or more datasets in memory, as stored on disk.

    Attributes:
        rgb: ``[M, H, W, 3]`` uint8, on the dataset's background.
        alpha: ``[M, H, W]`` uint8.
        asset: ``[M]`` index into ``records`` of the asset each view shows.
        records: one dict per asset (``caption``, ``category``, ``colour``, ``part_colour``, ``seed``).
    """

    rgb: Tensor
    alpha: Tensor
    asset: Tensor
    records: list[dict]

    def __len__(self) -> int:
        return self.rgb.shape[0]

    def captions(self) -> list[str]:
        """The caption of every view."""
        return [self.records[i]["caption"] for i in self.asset.tolist()]

    def labels(self, field: str, none: int = -1) -> Tensor:
        """``[M]`` index of each view's ``category``, ``colour`` or ``part_colour`` (``none`` where
        the asset has no part)."""
        names = {"category": CATEGORY_NAMES, "colour": COLOUR_NAMES, "part_colour": COLOUR_NAMES}[field]
        per_asset = torch.tensor([none if r[field] is None else names.index(r[field]) for r in self.records])
        return per_asset[self.asset]

    @staticmethod
    def cat(parts: "list[StackedViews]") -> "StackedViews":
        offsets = np.cumsum([0] + [len(p.records) for p in parts[:-1]])
        return StackedViews(torch.cat([p.rgb for p in parts]), torch.cat([p.alpha for p in parts]),
                            torch.cat([p.asset + int(o) for p, o in zip(parts, offsets)]),
                            [r for p in parts for r in p.records])
