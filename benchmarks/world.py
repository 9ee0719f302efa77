"""ShapeWorld's acceptance numbers: dataset speed and caching, ground-truth agreement, captions, text.

    python benchmarks/world.py                 # everything (the dataset part takes ~10 minutes)
    python benchmarks/world.py --assets 1000   # a smaller dataset
    python benchmarks/world.py --only iou,text

Prints one table per part. Timings are wall-clock on this machine; the load average is
printed with them because other processes on a 2-core machine slow everything down.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


def load() -> str:
    return "load avg %.1f %.1f %.1f" % os.getloadavg()


def bench_dataset(assets: int, views: int, resolution: int, root: Path) -> None:
    import gsbook.world.asset as asset_module
    from gsbook.world.dataset import DatasetConfig, ShapeWorldDataset
    config = DatasetConfig(n_assets=assets, views=views, resolution=resolution)
    rows = []
    before = load()
    t0 = time.perf_counter()
    data = ShapeWorldDataset(config, root=root)
    build = time.perf_counter() - t0
    rows.append([f"build {assets} assets × {views} views at {resolution}² (RGB+alpha+depth)",
                 f"{build:.1f} s ({1000 * build / assets:.1f} ms/asset)", f"{before} → {load()}"])
    t0 = time.perf_counter()
    again = ShapeWorldDataset(config, root=root, progress=False)
    _ = again[len(again) - 1]
    rows.append(["second call (cache reuse) + read last item", f"{time.perf_counter() - t0:.2f} s", ""])
    size = sum(f.stat().st_size for f in data.folder.iterdir())
    rows.append(["size on disk", f"{size / 2**20:.0f} MiB", data.folder.name])
    old = asset_module.GENERATOR_VERSION
    asset_module.GENERATOR_VERSION = old + 1
    try:
        small = DatasetConfig(n_assets=50, views=views, resolution=resolution)
        ShapeWorldDataset(small, root=root, progress=False)
        t0 = time.perf_counter()
        asset_module.GENERATOR_VERSION = old + 2
        rebuilt = ShapeWorldDataset(small, root=root, progress=False)
        rows.append(["generator version bump → rebuild (50 assets)", f"{time.perf_counter() - t0:.1f} s",
                     rebuilt.folder.name])
    finally:
        asset_module.GENERATOR_VERSION = old
    table("Multi-view dataset", ["what", "time", "notes"], rows)


def bench_iou(seeds: int, n_gaussians: int) -> None:
    from gsbook.cameras import random_cameras
    from gsbook.render import rasterize
    from gsbook.world import CATEGORY_NAMES, ObjectSpec, grid_centres, make_asset
    from gsbook.world.checks import gaussian_silhouette, mesh_silhouette, silhouette_iou, winding_inside
    from gsbook.world.raycast import render_asset
    rows, worst = [], 1.0
    for c, name in enumerate(CATEGORY_NAMES):
        gs_iou, rc_iou, plain_iou, occ_mesh = [], [], [], []
        for seed in range(seeds):
            asset = make_asset(ObjectSpec(name, "red"), seed=seed)
            cams = random_cameras(8, width=64, height=64, generator=torch.Generator().manual_seed(100 * c + seed))
            mesh = asset.mesh(128)
            ref = mesh_silhouette(mesh, cams)
            g = asset.gaussians(n_gaussians)
            gs_iou.append(float(silhouette_iou(gaussian_silhouette(g, cams), ref).min()))
            rc_iou.append(float(silhouette_iou(render_asset(asset, cams)["alpha"], ref).min()))
            with torch.no_grad():
                _, alpha, _ = rasterize(g.means, g.unit_quats, g.scales, g.opacities, g.rgb, cams.viewmats,
                                        cams.Ks, 64, 64)
            plain_iou.append(float(silhouette_iou(alpha[..., 0], ref).min()))
            if seed == 0:
                centres = grid_centres(16)
                occ = asset.occupancy(16).reshape(-1).numpy()
                occ_mesh.append(float((winding_inside(asset.mesh(64), centres) == occ).mean()))
        worst = min(worst, min(gs_iou))
        rows.append([name, f"{min(gs_iou):.3f}", f"{np.mean(gs_iou):.3f}", f"{min(rc_iou):.3f}",
                     f"{min(plain_iou):.3f}", f"{occ_mesh[0]:.4f}"])
    table(f"Silhouette IoU vs the marching-cubes mesh (128), 8 random views at 64², {seeds} assets per category",
          ["category", f"GT Gaussians ({n_gaussians}) min", "mean", "ray caster min",
           "Gaussians, plain 64² eps2d=0.3 min", "occupancy16 = mesh winding"], rows)
    print(f"\nworst GT-Gaussian IoU over all categories, assets and views: {worst:.3f}"
          " (rendered 4× supersampled with eps2d=0, box-filtered to 64²)")
    agree = []
    for name in CATEGORY_NAMES:
        asset = make_asset(ObjectSpec(name), seed=0)
        for r in (16, 32, 64):
            occ = asset.occupancy(r).reshape(-1).numpy()
            agree.append(bool(np.array_equal(occ, asset.sdf(grid_centres(r)) < 0)))
    print(f"occupancy == SDF sign at grid centres, R in 16/32/64, all categories: {all(agree)} ({len(agree)} grids)")


def bench_captions() -> None:
    from gsbook.world import CATEGORIES, CATEGORY_NAMES, COLOUR_NAMES, ObjectSpec, PromptError, caption, parse
    count = ok = 0
    for name in CATEGORY_NAMES:
        parts = COLOUR_NAMES if CATEGORIES[name].part else [None]
        for colour in COLOUR_NAMES:
            for part in (None, *parts) if parts != [None] else (None,):
                spec = ObjectSpec(name, colour, part)
                count += 1
                ok += parse(caption(spec)) == spec and caption(parse(caption(spec))) == caption(spec)
    try:
        parse("a red giraffe")
        message = "(no error!)"
    except PromptError as error:
        message = str(error)
    table("Captions", ["check", "result"], [
        ["spec → caption → spec → caption round trips", f"{ok}/{count}"],
        ["'a red giraffe'", message[:160] + "…"],
    ])


def bench_text() -> None:
    from gsbook.text import TextEncoder
    from gsbook.world.dataset import DatasetConfig, asset_record
    from gsbook.world import SceneSpec, ObjectSpec, caption, CATEGORY_NAMES, COLOUR_NAMES
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    captions = list(dict.fromkeys(asset_record(DatasetConfig(), i)["caption"] for i in range(20000)))
    k = 0
    while len(captions) < 1000:                       # top up with two-object prompts
        a = ObjectSpec(CATEGORY_NAMES[k % 16], COLOUR_NAMES[k % 11])
        b = ObjectSpec(CATEGORY_NAMES[(k * 7 + 3) % 16], COLOUR_NAMES[(k * 5 + 1) % 11])
        captions.append(caption(SceneSpec(a, "on", b)))
        k += 1
    captions = captions[:1000]
    t0 = time.perf_counter()
    encoder = TextEncoder(cache_dir=False)
    load_time = time.perf_counter() - t0
    rows = [["load model (offline, from the package)", f"{load_time:.1f} s", ""]]
    runs = []
    for run in range(2):
        encoder._memory.clear()
        before = load()
        t0, c0 = time.perf_counter(), time.process_time()
        runs.append(encoder.encode(captions))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append([f"embed 1000 captions, run {run + 1}", f"{wall:.2f} s wall, {cpu:.2f} s CPU", before])
    same = torch.equal(runs[0].tokens, runs[1].tokens) and torch.equal(runs[0].pooled, runs[1].pooled)
    rows.append(["identical across runs", str(same), f"tokens {tuple(runs[0].tokens.shape)}"])
    t0 = time.perf_counter()
    encoder.encode(captions)
    rows.append(["again, from the per-caption cache", f"{time.perf_counter() - t0:.3f} s", ""])
    table("Text features (all-MiniLM-L6-v2)", ["what", "time", "notes"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3, help="assets per category in the IoU check")
    parser.add_argument("--gaussians", type=int, default=12000)
    parser.add_argument("--root", type=Path, default=None, help="cache root (default: a temporary folder)")
    parser.add_argument("--only", default="dataset,iou,captions,text")
    args = parser.parse_args()
    # No torch.set_num_threads here: on this machine an explicit call (even to the default, 2)
    # left MiniLM running on one core at about half speed.
    parts = set(args.only.split(","))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {load()}")
    if "captions" in parts:
        bench_captions()
    if "text" in parts:
        bench_text()
    if "iou" in parts:
        bench_iou(args.seeds, args.gaussians)
    if "dataset" in parts:
        root = args.root or Path(tempfile.mkdtemp(prefix="gsbook-bench-"))
        try:
            bench_dataset(args.assets, args.views, args.resolution, root)
        finally:
            if args.root is None:
                shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
