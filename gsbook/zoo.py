"""The weights store: the book's shipped models as files, checked, loaded offline (§1 onwards).

Every model the book trains lives in ``gsbook/weights/`` as three files:

* ``NAME.safetensors`` — the weights (float16 where that loses nothing that matters);
* ``NAME.json`` — the model's class, its config, the recipe's settings and the SHA-256 of the
  weights, so that a damaged file is caught instead of giving a silently wrong model;
* ``NAME.md`` — the model card: data, steps, wall time, hardware and measured quality.

This module knows files, not models: it imports none. A model class owns its config and
loads itself, as diffusers' ``from_pretrained`` does::

    from gsbook.judge import Judge
    judge = Judge.from_shipped()            # gsbook/weights/judge.*, on the profile's device

by inheriting :class:`ShippedModel`. :func:`load_model` does the same from a name alone: the
JSON names the class (``"class": "gsbook.judge:Judge"``), which is imported by that string
(diffusers' ``_class_name``). ``python -m gsbook.train NAME`` reproduces a model's three files;
a missing or corrupt file raises :class:`WeightsError` naming the file and that command.
Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import ClassVar, TypeVar

import torch
from torch import Tensor, nn

from .config import resolve_device

__all__ = ["WEIGHTS_DIR", "WeightsError", "ShippedModel", "model_names", "rebuild_hint", "weight_paths",
           "sha256", "read_config", "read_weights", "load_model", "save_model"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
M = TypeVar("M", bound="ShippedModel")


class WeightsError(RuntimeError):
    """A shipped model's file is missing, unreadable or does not match its config."""


def rebuild_hint(name: str) -> str:
    return f"rebuild it with `python -m gsbook.train {name}`"


def weight_paths(name: str, folder: Path | str | None = None) -> tuple[Path, Path, Path]:
    """``(weights, config, card)`` paths of model ``name``."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    return folder / f"{name}.safetensors", folder / f"{name}.json", folder / f"{name}.md"


def model_names(folder: Path | str | None = None) -> list[str]:
    """Names of the shipped models (those with a JSON config that names a class)."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    names = []
    for path in sorted(folder.glob("*.json")):
        try:
            if "class" in json.loads(path.read_text()):
                names.append(path.stem)
        except (json.JSONDecodeError, UnicodeDecodeError):
            names.append(path.stem)          # listed, so that loading it reports the damage
    return names


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_config(name: str, folder: Path | str | None = None) -> dict:
    """The JSON config of a shipped model (raises :class:`WeightsError` if absent or unreadable)."""
    _, config_path, _ = weight_paths(name, folder)
    if not config_path.exists():
        raise WeightsError(f"{config_path} is missing; {rebuild_hint(name)}")
    try:
        return json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WeightsError(f"{config_path} is not valid JSON ({err}); {rebuild_hint(name)}") from err


def read_weights(name: str, folder: Path | str | None = None) -> tuple[dict, dict[str, Tensor]]:
    """``(config, state_dict)`` of a shipped model, the weights checked against the config's
    SHA-256 and returned as float32 CPU tensors."""
    from safetensors.torch import load_file

    weights_path, config_path, _ = weight_paths(name, folder)
    config = read_config(name, folder)
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
    return config, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


class ShippedModel:
    """What a model class adds to load and save itself as shipped weights.

    A subclass (an ``nn.Module``) sets ``shipped_name`` and implements :meth:`from_config` and
    :meth:`config_dict`; then ``Model.from_shipped()`` builds it from ``gsbook/weights/NAME.*``
    and ``model.save_shipped(recipe, card)`` writes those files.
    """

    shipped_name: ClassVar[str]

    @classmethod
    def from_config(cls: type[M], config: dict) -> M:
        """A fresh model from the ``"model"`` entry of its JSON config."""
        raise NotImplementedError

    def config_dict(self) -> dict:
        """What :meth:`from_config` needs to build this model again (JSON-able)."""
        raise NotImplementedError

    @classmethod
    def from_shipped(cls: type[M], device: str | torch.device | None = None,
                     folder: Path | str | None = None) -> M:
        """The shipped model in eval mode, as float32, on ``device`` (default: the profile's).

        Raises:
            WeightsError: a file is missing or corrupt (the message names it and the rebuild command).
        """
        name = cls.shipped_name
        config, state = read_weights(name, folder)
        model = cls.from_config(config["model"])
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise WeightsError(f"{weight_paths(name, folder)[0]} does not fit the model in {name}.json ({err}); "
                               f"{rebuild_hint(name)}") from err
        return model.to(resolve_device(device)).eval()

    def save_shipped(self, recipe: dict, card: str, folder: Path | str | None = None, half: bool = True) -> Path:
        """Write ``NAME.safetensors`` (float16 if ``half``), ``NAME.json`` and the card ``NAME.md``."""
        cls = type(self)
        return save_model(cls.shipped_name, self, self.config_dict(), recipe, card, folder, half,
                          class_path=f"{cls.__module__}:{cls.__qualname__}")


def load_model(name: str, device: str | torch.device | None = None, folder: Path | str | None = None) -> nn.Module:
    """Shipped model ``name``, built by the class its JSON names (``"module:Class"``).

    Raises:
        KeyError: no model of that name (the message lists the names).
        WeightsError: a file is missing or corrupt.
    """
    if name not in model_names(folder):
        raise KeyError(f"no shipped model named {name!r}; the zoo has: {', '.join(model_names(folder))}")
    module, _, qualname = read_config(name, folder)["class"].partition(":")
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return cls.from_shipped(device, folder)


def save_model(name: str, model: nn.Module, model_config: dict, recipe: dict, card: str,
               folder: Path | str | None = None, half: bool = True, class_path: str | None = None) -> Path:
    """Write ``NAME.safetensors`` (float16 if ``half``), ``NAME.json`` and ``NAME.md``."""
    from safetensors.torch import save_file

    weights_path, config_path, card_path = weight_paths(name, folder)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu()
             for k, v in model.state_dict().items()}
    save_file(state, str(weights_path))
    config = {"name": name, **({"class": class_path} if class_path else {}), "model": model_config,
              "recipe": recipe, "sha256": sha256(weights_path),
              "parameters": sum(v.numel() for v in state.values())}
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    card_path.write_text(card)
    return weights_path
