"""On a CUDA machine: the torch backend against gsplat — agreement and speed.

    TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 python benchmarks/gsplat_parity.py

Prints, for random scenes of N Gaussians at 256², the largest difference in colours and
alphas, the cosine similarity of every input's gradient, and forward+backward median
times of both backends. Without CUDA it says so and exits.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch


def timed(fn, runs: int = 10) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> int:
    from gsbook.cameras import orbit
    from gsbook.render import gsplat_available, rasterize

    if not torch.cuda.is_available() or not gsplat_available():
        print("needs CUDA and gsplat (pip install gsplat==1.5.3); nothing to measure here")
        return 0
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print(f"{'N':>7} | {'max|Δrgb|':>9} {'max|Δα|':>9} | {'min grad cos':>12} | {'torch ms':>9} {'gsplat ms':>9}")
    res = 256
    cams = orbit([15.0, -20.0, 40.0, 0.0], [0.0, 90.0, 180.0, 270.0], width=res, height=res).to("cuda")
    for n in (1_000, 10_000, 100_000):
        gen = torch.Generator().manual_seed(n)
        means = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
        means = means * 0.5 * torch.rand(n, 1, generator=gen).pow(1 / 3)
        spacing = 0.9 * (4 / 3 * 3.14159 * 0.125 / n) ** (1 / 3)
        scene = [means, torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1),
                 spacing * torch.exp(0.3 * torch.randn(n, 3, generator=gen)),
                 torch.rand(n, generator=gen) * 0.8 + 0.1, torch.rand(n, 3, generator=gen)]
        scene = [t.cuda() for t in scene]
        out, grads, times = {}, {}, {}
        for backend in ("torch", "gsplat"):
            params = [t.clone().requires_grad_() for t in scene]

            def step():
                for p in params:
                    p.grad = None
                img, alpha, _ = rasterize(*params, cams.viewmats, cams.Ks, res, res, backend=backend)
                (img.square().mean() + alpha.mean()).backward()
                return img, alpha

            img, alpha = step()
            out[backend] = (img.detach(), alpha.detach())
            grads[backend] = [p.grad.clone() for p in params]
            times[backend] = timed(step)
        d_rgb = (out["torch"][0] - out["gsplat"][0]).abs().max().item()
        d_a = (out["torch"][1] - out["gsplat"][1]).abs().max().item()
        cos = min(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()
                  for a, b in zip(grads["torch"], grads["gsplat"]))
        print(f"{n:>7} | {d_rgb:9.2e} {d_a:9.2e} | {cos:12.5f} | {times['torch']:9.2f} {times['gsplat']:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
