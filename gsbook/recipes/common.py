"""What every recipe shares: naming the machine it ran on, and the learning-rate schedule."""

from __future__ import annotations

import math
import os
import platform

import torch

__all__ = ["hardware", "warmup_cosine"]


def hardware(device: str | torch.device | None = None) -> str:
    """One line naming the machine a recipe ran on (``device``: where it trained; default the CPU)."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, {os.cpu_count()} cores visible, torch {torch.__version__} (CPU)"


def warmup_cosine(lr: float, step: int, steps: int, warmup: int, min_ratio: float) -> float:
    """Every recipe's learning rate at ``step`` (0-based) of ``steps``: linear warm-up over
    ``warmup`` steps, then cosine decay from ``lr`` to ``min_ratio · lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
