"""The book's own diffusion priors, on diffusers models and schedulers (§1 onwards).

==============  ==========================================================================
module          holds
==============  ==========================================================================
``prior2d``     :class:`TextToImagePrior`: 32² text-to-image ε-prediction model (SDS critic)
``sampling``    DDIM sampling with classifier-free guidance
``training``    the training loop: data, loss, EMA, checkpoints and resume, sample grid
``evaluation``  judging samples of seen and held-out captions; the model card
==============  ==========================================================================
"""

from gsbook.diffusion.prior2d import (EMPTY_CAPTION, Prior2DConfig, TextToImagePrior, caption_features, load,
                                      pooled_features)
from gsbook.diffusion.sampling import guided_noise, sample

__all__ = ["EMPTY_CAPTION", "Prior2DConfig", "TextToImagePrior", "caption_features", "load", "pooled_features",
           "guided_noise", "sample"]
