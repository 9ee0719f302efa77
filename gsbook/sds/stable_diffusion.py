"""Stable Diffusion as a score-distillation prior, through diffusers (§1 at full scale).

The adapter DreamFusion-style pipelines use (stable-dreamfusion, DreamGaussian's
``guidance/sd_utils.py``, threestudio), reduced to the :class:`~gsbook.sds.prior.DiffusionPrior`
protocol:

* ``encode_images``: ``rgb ∈ [0, 1]`` → ``2·rgb − 1`` → VAE encoder → latent mean (or a
  sample) × ``vae.config.scaling_factor``; differentiable, so SDS gradients on the latents
  reach the rendered pixels through the encoder;
* ``encode_prompts``: CLIP tokenizer (padded to ``model_max_length``) → CLIP text encoder;
* ``predict_noise``: the UNet's ε-prediction (``prediction_type`` must be ``"epsilon"``);
* ``alphas_cumprod`` from the pipeline's scheduler config (as ``DDIMScheduler``).

Loading never touches the network: a local folder (``save_pretrained`` layout) or a model id
that is already in the local Hugging Face cache (``local_files_only=True``; set
``HF_HUB_OFFLINE=1`` to be sure). diffusers and transformers are imported lazily, so
``import gsbook.sds`` stays light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from gsbook.config import resolve_device
from gsbook.diffusion import check_timesteps
from gsbook.sds.prior import PromptEmbeddings

__all__ = ["StableDiffusionPrior", "resolve_pipeline_folder", "REQUIRED_COMPONENTS"]

#: sub-folder → the config file that must be inside it
REQUIRED_COMPONENTS: dict[str, str] = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
}


def _check_pipeline_folder(folder: Path, what: str) -> Path:
    missing = [f"{sub}/{cfg}" for sub, cfg in REQUIRED_COMPONENTS.items()
               if not (folder / sub / cfg).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{what} {str(folder)!r} is not a diffusers Stable Diffusion pipeline folder: missing "
            f"{', '.join(missing)}. Expected sub-folders {sorted(REQUIRED_COMPONENTS)} as written "
            "by StableDiffusionPipeline.save_pretrained.")
    return folder


def resolve_pipeline_folder(model_id_or_folder: str | os.PathLike,
                            cache_dir: str | os.PathLike | None = None) -> Path:
    """A local pipeline folder, or the snapshot folder of a model id in the local HF cache.

    Raises:
        FileNotFoundError: a folder that lacks a component (named), a path that does not
            exist, or a model id that is not in the local cache (never downloads).
    """
    path = Path(model_id_or_folder).expanduser()
    if path.is_dir():
        return _check_pipeline_folder(path, "folder")
    text = str(model_id_or_folder)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise FileNotFoundError(f"no such pipeline folder: {text!r} (not a directory)")
    from huggingface_hub import snapshot_download

    try:
        snap = snapshot_download(repo_id=text, cache_dir=cache_dir, local_files_only=True)
    except Exception as err:  # LocalEntryNotFoundError and friends
        raise FileNotFoundError(
            f"model id {text!r} is not in the local Hugging Face cache"
            f"{' ' + repr(str(cache_dir)) if cache_dir else ''} and gsbook never downloads weights. "
            f"Fetch it once where a network is allowed (`hf download {text}`), or pass the "
            f"folder of a saved pipeline. ({type(err).__name__})") from None
    return _check_pipeline_folder(Path(snap), f"cached snapshot of {text!r} at")


class StableDiffusionPrior:
    """Stable Diffusion (1.x / 2.x layout) behind the :class:`~gsbook.sds.prior.DiffusionPrior` protocol.

    Build with :meth:`from_pretrained`. All modules are frozen (``requires_grad_(False)``,
    ``eval()``); gradients still flow *through* the VAE encoder to its input.

    Attributes: ``unet``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``,
    ``alphas_cumprod [T]``, ``num_train_timesteps``, ``image_size`` (UNet sample size × the
    VAE's downsampling factor, e.g. 512 for SD 2.1-base), ``device``, ``dtype``.
    """

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler, device: str | torch.device | None = None,
                 dtype: torch.dtype = torch.float32, latent_mode: str = "mean"):
        if latent_mode not in ("mean", "sample"):
            raise ValueError(f"latent_mode must be 'mean' or 'sample', got {latent_mode!r}")
        pred = getattr(scheduler.config, "prediction_type", "epsilon")
        if pred != "epsilon":
            raise ValueError(f"StableDiffusionPrior needs an epsilon-prediction model, the "
                             f"scheduler says prediction_type={pred!r}")
        self.device, self.dtype, self.latent_mode = resolve_device(device), dtype, latent_mode
        self.unet, self.vae, self.text_encoder = unet, vae, text_encoder
        for m in (unet, vae, text_encoder):
            m.to(self.device, dtype).eval().requires_grad_(False)
        self.tokenizer, self.scheduler = tokenizer, scheduler
        self.alphas_cumprod = scheduler.alphas_cumprod.detach().float().to(self.device)
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        size = unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        self.image_size = (h * self.vae_scale_factor, w * self.vae_scale_factor)

    @classmethod
    def from_pretrained(cls, model_id_or_folder: str | os.PathLike, device: str | torch.device | None = None,
                        dtype: torch.dtype = torch.float32, *, cache_dir: str | os.PathLike | None = None,
                        latent_mode: str = "mean") -> StableDiffusionPrior:
        """Load from a pipeline folder or a cached model id (e.g. ``"stabilityai/stable-diffusion-2-1-base"``,
        DreamGaussian's default), offline, on ``device`` (default: the profile's).
        ``dtype=torch.float16`` is for CUDA."""
        folder = resolve_pipeline_folder(model_id_or_folder, cache_dir)
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        kw = dict(local_files_only=True)
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, **kw)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, **kw)
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=dtype, **kw)
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", **kw)
        scheduler = DDIMScheduler.from_pretrained(folder, subfolder="scheduler", **kw)
        return cls(unet, vae, text_encoder, tokenizer, scheduler, device, dtype, latent_mode)

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str],
                       negative: Sequence[str] | None = None) -> PromptEmbeddings:
        """CLIP features ``cond``, ``uncond``: ``[B, L, D]`` (``L`` = tokenizer.model_max_length)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        negative = [""] * len(prompts) if negative is None else list(negative)
        if len(negative) != len(prompts):
            raise ValueError(f"{len(negative)} negative prompts for {len(prompts)} prompts")
        ids = self.tokenizer(list(prompts) + negative, padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length, return_tensors="pt").input_ids
        feats = self.text_encoder(ids.to(self.device))[0]
        n = len(prompts)
        return PromptEmbeddings(feats[:n], feats[n:])

    def encode_images(self, rgb: Tensor) -> Tensor:
        """``rgb [B, 3, H, W]`` in [0, 1] → latents ``[B, 4, H/f, W/f]`` × scaling_factor (differentiable)."""
        dist = self.vae.encode((2.0 * rgb - 1.0).to(self.device, self.dtype)).latent_dist
        z = dist.mean if self.latent_mode == "mean" else dist.sample()
        return z * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode_images(self, z: Tensor) -> Tensor:
        """Latents → ``rgb [B, 3, H, W]`` in [0, 1] (the VAE decoder)."""
        img = self.vae.decode((z / self.vae.config.scaling_factor).to(self.dtype)).sample
        return (img.float() / 2 + 0.5).clamp(0, 1)

    @torch.no_grad()
    def predict_noise(self, x_t: Tensor, t: Tensor, embeddings: Tensor) -> Tensor:
        """UNet ε-prediction: ``x_t [N, 4, h, w]``, ``t [N]``, ``embeddings [N, L, D]`` → ``[N, 4, h, w]``."""
        t = check_timesteps(t, self.num_train_timesteps, x_t.shape[0])
        return self.unet(x_t.to(self.device, self.dtype), t.to(self.device),
                         encoder_hidden_states=embeddings.to(self.device, self.dtype)).sample.float()
