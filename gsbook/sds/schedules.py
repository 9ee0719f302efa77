"""Timestep schedules for score distillation: which noise level each step looks at (§1, §2).

A schedule maps the optimisation step to integer timesteps ``t [B]`` in
``[min_step, max_step]``, where the range comes from fractions of ``T`` exactly as
DreamGaussian does it (``min_step = int(T · t_min)``, ``max_step = int(T · t_max)``,
default ``[0.02, 0.98]``, which avoids the nearly clean and the pure-noise ends).

* :class:`UniformSchedule` — ``t ~ U{min_step, …, max_step}`` per view (DreamFusion; the
  default of DreamGaussian's ``train_step``).
* :class:`DreamGaussianAnneal` — deterministic, decreasing: DreamGaussian's
  ``anneal_timestep`` option computes ``t = clip(round((1 − r) · T), min_step, max_step)``
  with ``r = min(1, step / total_steps)`` (``guidance/sd_utils.py``). Large noise first
  (shape), small noise last (detail); the same ``t`` for every view in the batch.
* :class:`NarrowingSchedule` — random, but the upper bound shrinks linearly from ``t_max`` to
  ``t_max_final`` over ``total_steps`` (threestudio's annealed ``max_step_percent``, as in
  ProlificDreamer's 0.98 → 0.5).

Every schedule is called as ``schedule(step, batch_size, generator=None) -> LongTensor [B]``.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

__all__ = ["timestep_range", "TimestepSchedule", "UniformSchedule", "DreamGaussianAnneal",
           "NarrowingSchedule", "make_schedule"]


def timestep_range(num_train_timesteps: int, t_range: tuple[float, float] = (0.02, 0.98)) -> tuple[int, int]:
    """``(min_step, max_step)`` = ``(int(T·t_min), int(T·t_max))``, inclusive bounds.

    Raises:
        ValueError: unless ``0 < t_min <= t_max < 1``.
    """
    t_min, t_max = float(t_range[0]), float(t_range[1])
    if not (0.0 < t_min < 1.0 and 0.0 < t_max < 1.0):
        raise ValueError(f"timestep range fractions must lie in (0, 1), got ({t_min}, {t_max})")
    if t_min > t_max:
        raise ValueError(f"timestep range must have t_min <= t_max, got ({t_min}, {t_max})")
    return int(num_train_timesteps * t_min), int(num_train_timesteps * t_max)


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _progress(step: int, total_steps: int) -> float:
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return min(1.0, step / total_steps)


class TimestepSchedule(Protocol):
    def __call__(self, step: int, batch_size: int,
                 generator: torch.Generator | None = None) -> Tensor: ...


class UniformSchedule:
    """``t ~ U{min_step, …, max_step}``, independently per view; ``step`` is ignored."""

    def __init__(self, num_train_timesteps: int, t_range: tuple[float, float] = (0.02, 0.98)):
        self.min_step, self.max_step = timestep_range(num_train_timesteps, t_range)

    def __call__(self, step: int, batch_size: int,
                 generator: torch.Generator | None = None) -> Tensor:
        return torch.randint(self.min_step, self.max_step + 1, (batch_size,), generator=generator,
                             device=_device(generator))


class DreamGaussianAnneal:
    """DreamGaussian's deterministic linear anneal: ``t = clip(round((1 − r)·T), min, max)``.

    ``r = min(1, step / total_steps)``; ``t`` falls linearly from ``max_step`` (held for the
    first ``1 − t_max`` of training) to ``min_step`` (held for the last ``t_min``).
    """

    def __init__(self, num_train_timesteps: int, total_steps: int,
                 t_range: tuple[float, float] = (0.02, 0.98)):
        self.num_train_timesteps = num_train_timesteps
        self.total_steps = total_steps
        self.min_step, self.max_step = timestep_range(num_train_timesteps, t_range)
        _progress(0, total_steps)

    def timestep(self, step: int) -> int:
        r = _progress(step, self.total_steps)
        t = round((1.0 - r) * self.num_train_timesteps)
        return int(min(max(t, self.min_step), self.max_step))

    def __call__(self, step: int, batch_size: int,
                 generator: torch.Generator | None = None) -> Tensor:
        return torch.full((batch_size,), self.timestep(step), dtype=torch.long)


class NarrowingSchedule:
    """``t ~ U{min_step, …, hi(step)}`` with ``hi`` falling linearly from ``int(T·t_max)`` to
    ``int(T·t_max_final)`` over ``total_steps`` (then held)."""

    def __init__(self, num_train_timesteps: int, total_steps: int,
                 t_range: tuple[float, float] = (0.02, 0.98), t_max_final: float = 0.5):
        self.min_step, self.max_step = timestep_range(num_train_timesteps, t_range)
        _, self.max_step_final = timestep_range(num_train_timesteps, (t_range[0], t_max_final))
        if self.max_step_final > self.max_step:
            raise ValueError(f"t_max_final {t_max_final} must not exceed t_max {t_range[1]}")
        self.total_steps = total_steps
        _progress(0, total_steps)

    def upper(self, step: int) -> int:
        r = _progress(step, self.total_steps)
        return int(round(self.max_step - r * (self.max_step - self.max_step_final)))

    def __call__(self, step: int, batch_size: int,
                 generator: torch.Generator | None = None) -> Tensor:
        return torch.randint(self.min_step, self.upper(step) + 1, (batch_size,), generator=generator,
                             device=_device(generator))


def make_schedule(name: str, num_train_timesteps: int, total_steps: int = 1,
                  t_range: tuple[float, float] = (0.02, 0.98), **kwargs) -> TimestepSchedule:
    """Build a schedule by name: ``"uniform"``, ``"dreamgaussian"`` (alias ``"anneal"``),
    ``"narrowing"``."""
    if name == "uniform":
        return UniformSchedule(num_train_timesteps, t_range)
    if name in ("dreamgaussian", "anneal"):
        return DreamGaussianAnneal(num_train_timesteps, total_steps, t_range)
    if name == "narrowing":
        return NarrowingSchedule(num_train_timesteps, total_steps, t_range, **kwargs)
    raise ValueError(f"unknown timestep schedule {name!r}; choose one of "
                     "['uniform', 'dreamgaussian', 'anneal', 'narrowing']")
