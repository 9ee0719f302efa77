"""What every recipe shares: naming the machine it ran on, the learning-rate schedule, checkpoints."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import torch

__all__ = ["hardware", "warmup_cosine", "save_checkpoint", "load_checkpoint"]


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


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save(state)`` to ``path`` atomically (a temporary file, then a rename), so that an
    interrupted save never leaves a broken checkpoint to resume from. Objects with a
    ``state_dict`` (models, optimisers, EMAs) are stored as their state dicts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({k: v.state_dict() if hasattr(v, "state_dict") else v for k, v in state.items()}, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, into: dict, device: str | torch.device | None = None,
                    progress: bool = True) -> dict | None:
    """Resume from ``path`` if it exists: load each ``into[name].load_state_dict(state[name])``
    (models, optimisers, EMAs) and return the rest of the saved state (step, elapsed, history);
    ``None`` when there is no checkpoint."""
    if not path.exists():
        return None
    state = torch.load(path, weights_only=True, map_location=device)
    for name, target in into.items():
        target.load_state_dict(state.pop(name))
    if progress:
        print(f"resuming from {path} at step {state['step']}")
    return state
