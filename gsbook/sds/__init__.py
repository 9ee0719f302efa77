"""Score distillation: turn a frozen 2D diffusion prior into gradients on renders (§1, §2).

====================  ====================================================================================
module                holds
====================  ====================================================================================
``prior``             :class:`DiffusionPrior` protocol, :class:`PromptEmbeddings`, :class:`CountingPrior`
``weighting``         ``w(t)``: ``"sds"`` (DreamFusion), ``"uniform"``, ``"fantasia"``, ``"lucid"``
``schedules``         timestep range and schedules: uniform, DreamGaussian's anneal, narrowing
``guidance``          classifier-free guidance in one batched prior call
``views``             DreamFusion's view-dependent prompts (front / side / back / overhead)
``distill``           :func:`score_distillation` (SDS) and its stop-gradient loss
``ism``               :func:`interval_score_matching` (LucidDreamer's ISM)
``refine``            :func:`refine_images`: the prior redraws a render (img2img; DreamGaussian's stage 2)
``oracle``            :class:`OraclePrior`: exact denoiser toward target images (the toy critic)
``book``              :class:`BookPrior`: the book's own 32² prior (:mod:`gsbook.diffusion`)
``stable_diffusion``  :class:`StableDiffusionPrior`: diffusers' Stable Diffusion, offline
====================  ====================================================================================

The noise maths (``x_t = α_t x + σ_t ε``, DDIM steps, the CFG combination) is
:mod:`gsbook.diffusion`'s; this package is the layer above it. Minimal loop (renders
``[B, H, W, 3]`` from :func:`gsbook.render.rasterize`)::

    prior = OraclePrior(target.permute(2, 0, 1))             # or StableDiffusionPrior.from_pretrained(...)
    emb = prior.encode_prompts(["a red mushroom"])
    sched = DreamGaussianAnneal(prior.num_train_timesteps, total_steps=500)
    for step in range(500):
        out = score_distillation(prior, render(params), emb, schedule=sched, step=step)
        out.loss.backward(); opt.step(); opt.zero_grad()
"""

from gsbook.sds.book import BookPrior, pack_text, unpack_text
from gsbook.sds.distill import (SDSOutput, draw_noise, prepare_images, sample_timesteps, score_distillation,
                                stop_gradient_loss)
from gsbook.sds.guidance import GuidedNoise, classifier_free_guidance
from gsbook.sds.ism import ISMOutput, ddim_invert, interval_score_matching
from gsbook.sds.oracle import OraclePrior, target_image
from gsbook.sds.prior import CountingPrior, DiffusionPrior, PromptEmbeddings
from gsbook.sds.refine import ddim_timesteps, refine_images
from gsbook.sds.schedules import (DreamGaussianAnneal, NarrowingSchedule, TimestepSchedule, UniformSchedule,
                                  make_schedule, timestep_range)
from gsbook.sds.stable_diffusion import REQUIRED_COMPONENTS, StableDiffusionPrior, resolve_pipeline_folder
from gsbook.sds.views import view_dependent_prompts, view_direction
from gsbook.sds.weighting import WEIGHTINGS, sds_weight

__all__ = [
    "DiffusionPrior", "PromptEmbeddings", "CountingPrior",
    "WEIGHTINGS", "sds_weight",
    "timestep_range", "TimestepSchedule", "UniformSchedule", "DreamGaussianAnneal", "NarrowingSchedule",
    "make_schedule",
    "GuidedNoise", "classifier_free_guidance",
    "view_direction", "view_dependent_prompts",
    "SDSOutput", "prepare_images", "stop_gradient_loss", "draw_noise", "sample_timesteps", "score_distillation",
    "ISMOutput", "ddim_invert", "interval_score_matching", "ddim_timesteps", "refine_images",
    "OraclePrior", "target_image", "BookPrior", "pack_text", "unpack_text",
    "StableDiffusionPrior", "resolve_pipeline_folder", "REQUIRED_COMPONENTS",
]
