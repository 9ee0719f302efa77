"""Profiles, seeds and device choice (taught in §0, "How to run this book").

Every workload size in the book comes from the active *profile*:

* ``ci``  — what CI and nbval run: seconds to a minute or two per chapter on 2 CPU cores;
* ``cpu`` — the default on a laptop without CUDA: minutes per chapter;
* ``gpu`` — paper scale, on a CUDA device with gsplat.

The profile is read from the environment variable ``GSBOOK_PROFILE``; when it is unset
it is ``gpu`` if CUDA is available and ``cpu`` otherwise. Library code asks for sizes
with :func:`pick`, so a notebook cell never changes between profiles::

    steps = pick(ci=50, cpu=500, gpu=5000)
"""

from __future__ import annotations

import os
import random
from typing import TypeVar

import numpy as np
import torch

PROFILES = ("ci", "cpu", "gpu")
T = TypeVar("T")


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
            f"(torch {torch.__version__}). Install a CUDA build of torch (README, 'GPU'), "
            "or use GSBOOK_PROFILE=cpu."
        )
    return name


def pick(*, ci: T, cpu: T, gpu: T) -> T:
    """Return the value for the active profile, e.g. ``pick(ci=64, cpu=128, gpu=512)``."""
    return {"ci": ci, "cpu": cpu, "gpu": gpu}[profile()]


def device() -> torch.device:
    """The device for the active profile: CUDA for ``gpu``, else CPU."""
    return torch.device("cuda") if profile() == "gpu" else torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a fresh ``torch.Generator`` seeded the same.

    Notebooks and training recipes call this first so that results do not depend on luck.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
