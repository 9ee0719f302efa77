"""The book's shipped models: load them offline, save them with a config and a model card.

Every model the book trains lives in ``gsbook/weights/`` as three files:

* ``NAME.safetensors`` — the weights (float16 where that loses nothing that matters);
* ``NAME.json`` — how to build the model, the recipe's settings, and the SHA-256 of the
  weights, so that a damaged file is caught instead of giving a silently wrong model;
* ``NAME.md`` — the model card: data, steps, wall time, hardware and measured quality.

``python -m gsbook.train NAME`` reproduces a model's three files. A missing or corrupt
file raises :class:`WeightsError` naming the file and that command. Nothing is ever
downloaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class WeightsError(RuntimeError):
    """A shipped model's file is missing, unreadable or does not match its config."""


@dataclass(frozen=True)
class ModelEntry:
    """How to build a shipped model from its JSON config (``build(config["model"])``)."""

    name: str
    build: Callable[[dict], nn.Module]
    summary: str


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, build: Callable[[dict], nn.Module], summary: str) -> None:
    """Make ``name`` loadable; modules that define models call this when imported."""
    _REGISTRY[name] = ModelEntry(name, build, summary)


def _ensure_registered() -> None:
    # Importing these modules registers their models (kept lazy so `import gsbook.zoo` is cheap).
    from . import judge  # noqa: F401
    from .diffusion import prior2d  # noqa: F401


def names() -> list[str]:
    """Names of every model the book can train and load."""
    _ensure_registered()
    return sorted(_REGISTRY)


def rebuild_hint(name: str) -> str:
    return f"rebuild it with `python -m gsbook.train {name}`"


def paths(name: str, folder: Path | str | None = None) -> tuple[Path, Path, Path]:
    """``(weights, config, card)`` paths of model ``name``."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    return folder / f"{name}.safetensors", folder / f"{name}.json", folder / f"{name}.md"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_config(name: str, folder: Path | str | None = None) -> dict:
    """The JSON config of a shipped model (raises :class:`WeightsError` if absent or unreadable)."""
    _, config_path, _ = paths(name, folder)
    if not config_path.exists():
        raise WeightsError(f"{config_path} is missing; {rebuild_hint(name)}")
    try:
        return json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WeightsError(f"{config_path} is not valid JSON ({err}); {rebuild_hint(name)}") from err


def load(name: str, device: str | torch.device = "cpu", folder: Path | str | None = None) -> nn.Module:
    """Build model ``name`` and load its shipped weights, in eval mode, as float32.

    Raises:
        KeyError: no model of that name (the message lists the names).
        WeightsError: a file is missing or corrupt (the message names it and the rebuild command).
    """
    from safetensors.torch import load_file

    _ensure_registered()
    if name not in _REGISTRY:
        raise KeyError(f"no shipped model named {name!r}; the zoo has: {', '.join(names())}")
    weights_path, config_path, _ = paths(name, folder)
    config = load_config(name, folder)
    if not weights_path.exists():
        raise WeightsError(f"{weights_path} is missing; {rebuild_hint(name)}")
    expected = config.get("sha256")
    if expected and sha256(weights_path) != expected:
        raise WeightsError(f"{weights_path} is corrupt (its SHA-256 does not match {config_path.name}); "
                           f"{rebuild_hint(name)}")
    try:
        state = load_file(str(weights_path))
    except Exception as err:  # noqa: BLE001 — safetensors raises several error types
        raise WeightsError(f"{weights_path} cannot be read ({err}); {rebuild_hint(name)}") from err
    model = _REGISTRY[name].build(config["model"])
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        raise WeightsError(f"{weights_path} does not fit the model in {config_path.name} ({err}); "
                           f"{rebuild_hint(name)}") from err
    return model.to(device).eval()


def save(name: str, model: nn.Module, model_config: dict, recipe: dict, card: str,
         folder: Path | str | None = None, half: bool = True) -> Path:
    """Write ``NAME.safetensors`` (float16 if ``half``), ``NAME.json`` and ``NAME.md``."""
    from safetensors.torch import save_file

    weights_path, config_path, card_path = paths(name, folder)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu()
             for k, v in model.state_dict().items()}
    save_file(state, str(weights_path))
    config = {"name": name, "model": model_config, "recipe": recipe, "sha256": sha256(weights_path),
              "parameters": sum(v.numel() for v in state.values())}
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    card_path.write_text(card)
    return weights_path
