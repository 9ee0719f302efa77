"""Profiles, seeds and device choice (taught in §0, "How to run this book").

Every workload size in the book comes from the active *profile*:

* ``ci``  — what CI and nbval run: every cell ≤ 30 s and every chapter ≤ 90 s on 2 CPU cores;
* ``cpu`` — the default on a laptop without CUDA: minutes per chapter, the whole book ≤ 30 min;
* ``gpu`` — paper scale, on a CUDA device with gsplat.

The profile is read from the environment variable ``GSBOOK_PROFILE``; when it is unset
it is ``gpu`` if CUDA is available and ``cpu`` otherwise. Library code asks for sizes
with :func:`pick`, so a notebook cell never changes between profiles::

    steps = pick(ci=50, cpu=500, gpu=5000)

The profile also carries the device: library functions take ``device=None`` and resolve it
with :func:`resolve_device`, which is CUDA in the ``gpu`` profile and the CPU otherwise.

Two more things are defined here and nowhere else: the per-cell execution limit of each
profile (:data:`CELL_TIMEOUT_S`, read by the test runner and the book build; every cell is
meant to run 4× under it, :func:`cell_budget`) and the cache root (:func:`cache_root`).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

__all__ = ["PROFILES", "CELL_TIMEOUT_S", "CI_CHAPTER_BUDGET_S", "cuda_available", "profile", "pick", "device",
           "resolve_device", "cell_timeout", "cell_budget", "cache_root", "seed_everything"]

PROFILES = ("ci", "cpu", "gpu")
T = TypeVar("T")

# Per-cell execution limit in seconds, by profile: nbval and the book build stop a cell that runs
# longer. It is a safety net, set 4× above what a cell is sized for (cell_budget), because
# readers' machines are 30% and more slower than the ones the profiles were measured on.
CELL_TIMEOUT_S = {"ci": 120, "cpu": 600, "gpu": 1800}
# What a whole chapter is sized for in the ci profile (CI runs every chapter in it).
CI_CHAPTER_BUDGET_S = 90


def cuda_available() -> bool:
    """True when PyTorch sees a CUDA device."""
    return torch.cuda.is_available()


def profile() -> str:
    """The active profile name: ``GSBOOK_PROFILE`` if set, else ``gpu``/``cpu`` by device.

    Raises:
        ValueError: ``GSBOOK_PROFILE`` names no known profile.
        RuntimeError: the ``gpu`` profile is asked for on a machine without CUDA.
    """
    name = os.environ.get("GSBOOK_PROFILE", "").strip().lower()
    if not name:
        return "gpu" if cuda_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"GSBOOK_PROFILE={name!r} is not a profile; choose one of {', '.join(PROFILES)}."
        )
    if name == "gpu" and not cuda_available():
        raise RuntimeError(
            "GSBOOK_PROFILE=gpu needs a CUDA device, and PyTorch sees none "
            f"(torch {torch.__version__}). Install a CUDA build of torch (README, 'CPU and GPU installs'), "
            "or use GSBOOK_PROFILE=cpu."
        )
    return name


def pick(*, ci: T, cpu: T, gpu: T) -> T:
    """Return the value for the active profile, e.g. ``pick(ci=64, cpu=128, gpu=512)``."""
    return {"ci": ci, "cpu": cpu, "gpu": gpu}[profile()]


def device() -> torch.device:
    """The device for the active profile: CUDA for ``gpu``, else CPU."""
    return torch.device("cuda") if profile() == "gpu" else torch.device("cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means the active profile's (:func:`device`)."""
    return torch.device(device) if device is not None else _profile_device()


_profile_device = device      # resolve_device's argument shadows the function's name


def cell_timeout(name: str | None = None) -> int:
    """The per-cell execution limit (seconds) of profile ``name`` (default: the active one)."""
    return CELL_TIMEOUT_S[_checked(name)]


def cell_budget(name: str | None = None) -> float:
    """What one cell is sized for in profile ``name``: a quarter of :func:`cell_timeout`."""
    return cell_timeout(name) / 4


def _checked(name: str | None) -> str:
    if name is None:
        return profile()
    if name not in PROFILES:
        raise ValueError(f"{name!r} is not a profile; choose one of {', '.join(PROFILES)}.")
    return name


def cache_root() -> Path:
    """Where gsbook caches what it builds (datasets, text features, checkpoints, executed
    notebooks): ``$GSBOOK_CACHE``, else ``~/.cache/gsbook``."""
    return Path(os.environ.get("GSBOOK_CACHE") or Path.home() / ".cache" / "gsbook")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a fresh ``torch.Generator`` seeded the same.

    Notebooks and training recipes call this first so that results do not depend on luck.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
