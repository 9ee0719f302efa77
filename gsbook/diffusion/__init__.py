"""Diffusion models: the shared noise maths and the book's own priors, on diffusers (§1 onwards).

==============  ==========================================================================
module          holds
==============  ==========================================================================
``noise``       ``x_t = α_t x + σ_t ε``, x̂₀, DDIM steps, classifier-free guidance, timestep checks
``prior2d``     :class:`TextToImagePrior`: 32² text-to-image ε-prediction model (SDS critic), its loss
``sampling``    DDPM / DDIM sampling with classifier-free guidance
``multiview``   :class:`MultiViewPrior`: four views jointly (cross-view attention, camera
                embedding, an optional known front view), built from ``prior2d``; its sampler
``classify``    :func:`read_caption`: a 2D prior read backwards, the caption that best explains
                an image (the Diffusion Classifier; §3's image → 3D)
==============  ==========================================================================

This is the generative-maths layer: it imports foundations and data, never ``sds`` (which
builds score distillation on top of it). The recipes that train the priors live in
:mod:`gsbook.recipes`.
"""

from gsbook.diffusion.noise import (add_noise, alpha_sigma, check_timesteps, ddim_step, guide, predicted_x0,
                                    scheduler_alphas_cumprod)
from gsbook.diffusion.prior2d import (EMPTY_CAPTION, Prior2DConfig, TextToImagePrior, caption_features,
                                      diffusion_loss, pooled_features)
from gsbook.diffusion.multiview import (MV_AZIMUTHS, MV_VIEWS, MultiViewAttnProcessor, MultiViewPrior,
                                        MultiViewPriorConfig, camera_features, multiview_loss, sample_views)
from gsbook.diffusion.sampling import guided_noise, sample
from gsbook.diffusion.classify import CaptionReading, denoising_errors, read_caption

__all__ = ["add_noise", "alpha_sigma", "check_timesteps", "ddim_step", "guide", "predicted_x0",
           "scheduler_alphas_cumprod",
           "EMPTY_CAPTION", "Prior2DConfig", "TextToImagePrior", "caption_features", "diffusion_loss",
           "pooled_features", "guided_noise", "sample",
           "MV_AZIMUTHS", "MV_VIEWS", "MultiViewAttnProcessor", "MultiViewPrior", "MultiViewPriorConfig",
           "camera_features", "multiview_loss", "sample_views", "CaptionReading", "denoising_errors", "read_caption"]
