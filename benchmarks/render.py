"""Speed and memory of the torch rasterizer on this machine's CPU.

Prints a table: forward+backward median time (7 timed runs after 2 warm-ups) and peak
memory for N ∈ {1k, 4k, 16k, 64k} Gaussians at 64², 128², 256², and beside it the dense
reference (every pixel against every Gaussian) where it fits, with the ratio.

The scene is DreamGaussian's starting point made less uniform: N points uniform in a
ball of radius 0.5 with isotropic scales near the 3-nearest-neighbour distance, random
colours and opacities uniform in [0.1, 0.9]; one camera at radius 2.5, fovy 49.1°, white
background; the loss is the mean squared error to a grey image. Each configuration runs
in a fresh process so that its peak resident memory (``ru_maxrss``) is its own.

    python benchmarks/render.py                 # the full table
    python benchmarks/render.py --n 4096 --res 128
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

SIZES = [1024, 4096, 16384, 65536]
RESOLUTIONS = [64, 128, 256]
DENSE_LIMIT = 1 << 26          # pixels × Gaussians the dense reference may hold at once


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of resident memory (Linux); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (since the last reset, on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(n: int, res: int, backend: str, runs: int = 7) -> dict:
    """Run in this process: time forward+backward; report the process's peak resident memory
    while rendering (Python and torch included, scene set-up excluded)."""
    import torch

    from gsbook.cameras import orbit
    from gsbook.render import rasterize

    gen = torch.Generator().manual_seed(0)
    means = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    means = means * 0.5 * torch.rand(n, 1, generator=gen).pow(1 / 3)
    # The 3-nearest-neighbour distance of n uniform points in the ball, ≈ 0.9 (V/n)^(1/3),
    # with some spread; computing it exactly would itself dominate peak memory at 64k.
    spacing = 0.9 * (4 / 3 * 3.14159 * 0.5**3 / n) ** (1 / 3)
    scales = (spacing * torch.exp(0.3 * torch.randn(n, 1, generator=gen))).expand(n, 3)
    quats = torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(n, 4)
    params = [means, quats, scales, torch.rand(n, generator=gen) * 0.8 + 0.1,
              torch.rand(n, 3, generator=gen)]
    params = [p.detach().clone().requires_grad_() for p in params]
    cams = orbit(15.0, 30.0, radius=2.5, fovy_deg=49.1, width=res, height=res)
    bg = torch.ones(1, 3)
    reset_peak_rss()

    def step() -> None:
        for p in params:
            p.grad = None
        img, _, _ = rasterize(*params, cams.viewmats, cams.Ks, res, res, backgrounds=bg, backend=backend)
        ((img - 0.5) ** 2).mean().backward()

    for _ in range(2):
        step()
    times = []
    for _ in range(runs if backend == "torch" else 5):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"ms": 1000 * statistics.median(times), "peak_mib": peak_rss_mib(),
            "threads": torch.get_num_threads()}


def run_child(n: int, res: int, backend: str) -> dict | None:
    out = subprocess.run([sys.executable, __file__, "--child", "--n", str(n), "--res", str(res),
                          "--backend", backend], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="*", default=SIZES)
    parser.add_argument("--res", type=int, nargs="*", default=RESOLUTIONS)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.n[0], args.res[0], args.backend)))
        return

    import torch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; forward+backward, median")
    header = f"{'N':>7} {'res':>5} | {'torch ms':>9} {'peak MiB':>9} | {'dense ms':>9} {'peak MiB':>9} | {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    for res in args.res:
        for n in args.n:
            fast = run_child(n, res, "torch")
            dense = run_child(n, res, "dense") if n * res * res <= DENSE_LIMIT else None
            f_ms = f"{fast['ms']:9.1f} {fast['peak_mib']:9.0f}" if fast else f"{'failed':>19}"
            d_ms = f"{dense['ms']:9.1f} {dense['peak_mib']:9.0f}" if dense else f"{'—':>9} {'—':>9}"
            ratio = f"{dense['ms'] / fast['ms']:7.1f}×" if (dense and fast) else f"{'—':>8}"
            print(f"{n:>7} {res:>4}² | {f_ms} | {d_ms} | {ratio}", flush=True)


if __name__ == "__main__":
    main()
