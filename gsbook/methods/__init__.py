"""Whole methods, one per module, each readable top to bottom (§1 onwards).

==========  =====================================================================  =======
module      holds                                                                  chapter
==========  =====================================================================  =======
``sds2d``   :class:`ImageSDS`: score distillation on 2D Gaussians (Figure 1, the    §1
            experiment bench)
==========  =====================================================================  =======

DreamGaussian, LGM, GRM and Trellis arrive here. The layer sits above the critics
(:mod:`gsbook.sds`, :mod:`gsbook.judge`) and everything below; nothing below imports it.
"""

from gsbook.methods.sds2d import (SDS_ABLATION, AblationRow, ImageSDS, ImageSDSConfig, ablate, distill_images,
                                  initial_gaussians)

__all__ = ["ImageSDS", "ImageSDSConfig", "distill_images", "initial_gaussians", "SDS_ABLATION", "AblationRow",
           "ablate"]
