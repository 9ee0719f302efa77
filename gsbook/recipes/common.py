"""What every recipe shares: naming the machine it ran on."""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["hardware"]


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
