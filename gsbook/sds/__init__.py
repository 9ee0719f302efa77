"""Score distillation: turn a frozen 2D diffusion prior into gradients on renders (§1, §2).

====================  ====================================================================================
module                holds
====================  ====================================================================================
``prior``             :class:`DiffusionPrior` protocol, :class:`PromptEmbeddings`, ``x_t = α_t x + σ_t ε``
``weighting``         ``w(t)``: ``"sds"`` (DreamFusion), ``"uniform"``, ``"fantasia"``, ``"lucid"``
``schedules``         timestep range and schedules: uniform, DreamGaussian's anneal, narrowing
``guidance``          classifier-free guidance in one batched prior call
``views``             DreamFusion's view-dependent prompts (front / side / back / overhead)
``distill``           :func:`score_distillation` (SDS) and its stop-gradient loss
``ism``               :func:`interval_score_matching` (LucidDreamer's ISM)
``oracle``            :class:`OraclePrior`: exact denoiser toward target images (the toy critic)
``stable_diffusion``  :class:`StableDiffusionPrior`: diffusers' Stable Diffusion, offline
====================  ====================================================================================

Minimal loop (renders ``[B, H, W, 3]`` from :func:`gsbook.render.rasterize`)::

    prior = OraclePrior(target.permute(2, 0, 1))             # or StableDiffusionPrior.from_pretrained(...)
    emb = prior.encode_prompts(["a red mushroom"])
    sched = DreamGaussianAnneal(prior.num_train_timesteps, total_steps=500)
    for step in range(500):
        out = score_distillation(prior, render(params), emb, schedule=sched, step=step)
        out.loss.backward(); opt.step(); opt.zero_grad()
"""

from gsbook.sds.distill import SDSOutput, prepare_images, score_distillation, stop_gradient_loss
from gsbook.sds.guidance import GuidedNoise, classifier_free_guidance
from gsbook.sds.ism import ISMOutput, ddim_invert, ddim_step, interval_score_matching
from gsbook.sds.oracle import OraclePrior
from gsbook.sds.prior import (DiffusionPrior, PromptEmbeddings, add_noise, alpha_sigma,
                              scheduler_alphas_cumprod)
from gsbook.sds.schedules import (DreamGaussianAnneal, NarrowingSchedule, UniformSchedule,
                                  make_schedule, timestep_range)
from gsbook.sds.stable_diffusion import StableDiffusionPrior, resolve_pipeline_folder
from gsbook.sds.views import view_dependent_prompts, view_direction
from gsbook.sds.weighting import WEIGHTINGS, sds_weight

__all__ = [
    "DiffusionPrior", "PromptEmbeddings", "add_noise", "alpha_sigma", "scheduler_alphas_cumprod",
    "WEIGHTINGS", "sds_weight",
    "timestep_range", "UniformSchedule", "DreamGaussianAnneal", "NarrowingSchedule", "make_schedule",
    "GuidedNoise", "classifier_free_guidance",
    "view_direction", "view_dependent_prompts",
    "SDSOutput", "prepare_images", "stop_gradient_loss", "score_distillation",
    "ISMOutput", "ddim_step", "ddim_invert", "interval_score_matching",
    "OraclePrior", "StableDiffusionPrior", "resolve_pipeline_folder",
]
