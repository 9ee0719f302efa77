"""Whole methods, one per module, each readable top to bottom (§1 onwards).

==========  =====================================================================  =======
module      holds                                                                  chapter
==========  =====================================================================  =======
``sds2d``   :class:`ImageSDS`: score distillation on 2D Gaussians (Figure 1, the    §1
            experiment bench)
``dream-``  :class:`DreamGaussian`: text → 3D Gaussians → textured mesh (Figure 2)   §2
``gaussian``
``lgm``     :class:`LGM`: four posed views → an asymmetric multi-view U-Net →        §3
            4 × 32² pixel-aligned Gaussians, and its rendering loss
``grm``     :class:`GRM`: the same views → patches of all four views in one          §3
            transformer sequence → windowed-attention upsampler → 4 × 32²
            Gaussians placed at a predicted depth on their pixel's ray
            (LGM's inputs, decoding and loss)
``feed-``   the pipelines around them: text or an image → the multi-view prior's   §3
``forward`` 4 views → Gaussians; given or ground-truth views → Gaussians
``trellis`` TRELLIS, a package: stage 1 (``structure``: occupancy → structure VAE →   §4
            a flow DiT over its latent), stage 2 (``slat``: structured latents on the
            occupied voxels → Gaussians); every name it exports is exported here
``dream-``  :class:`DreamFusion`: text → NeRF by SDS, the 2022 baseline, and its     §5
``fusion``  conversion to Gaussians (:func:`nerf_to_gaussians`)
==========  =====================================================================  =======

The layer sits above the critics
(:mod:`gsbook.sds`, :mod:`gsbook.judge`) and everything below; nothing below imports it.
"""

from gsbook.methods.dreamgaussian import (BOOK_CHANGES, DREAMGAUSSIAN_ABLATION, PAPER_SETTINGS, DreamGaussian, DreamGaussianConfig, DreamGaussianResult,
                                          DreamGaussianStrategy, TextureRefiner, bake_cameras, bake_mesh, dreamgaussian_text_to_3d,
                                          extract_mesh, position_lr, prune_size)
from gsbook.methods.feedforward import (SHAPEWORLD_BORDER, VIEW_SUBSETS, FeedForwardConfig, FeedForwardResult, caption_for, complete_views, draw_views,
                                        feedforward_text_to_3d, ground_truth_views, key_background, load_view_image, match_front_scale,
                                        object_height, recenter_views,
                                        reconstruct, reconstruct_from_views, rotate_about_up, upsample_views)
from gsbook.methods.grm import (GRM, GRM_RAW_CHANNELS, GRMBlock, GRMConfig, GRMUpsampler, grm_box_depths, grm_positions,
                                grm_rays)
from gsbook.methods.lgm import (LGM, LGM_CHANNELS, LGM_VIEWS, ColourShortcut, LGMConfig, LGMCrossViewAttention,
                                LGMResnetBlock, LGMSplats, input_colour, lgm_activate, lgm_decode, lgm_loss)
from gsbook.methods import trellis
from gsbook.methods.trellis import *  # noqa: F401,F403 — exactly the names in trellis.__all__
from gsbook.methods.sds2d import (SDS_ABLATION, AblationRow, ImageSDS, ImageSDSConfig, ablate, distill_images,
                                  initial_gaussians)
from gsbook.methods.dreamfusion import (DREAMFUSION_SETTINGS, DreamFusion, DreamFusionConfig, DreamFusionNeRF,
                                        DreamFusionResult, dreamfusion_text_to_3d, nerf_to_gaussians, render_nerf)

__all__ = ["PAPER_SETTINGS", "BOOK_CHANGES", "DREAMGAUSSIAN_ABLATION", "DreamGaussian", "DreamGaussianConfig", "DreamGaussianStrategy", "prune_size", "position_lr", "extract_mesh", "bake_cameras",
           "bake_mesh", "TextureRefiner", "DreamGaussianResult", "dreamgaussian_text_to_3d", "ImageSDS", "ImageSDSConfig", "distill_images", "initial_gaussians", "SDS_ABLATION", "AblationRow",
           "ablate", "LGMConfig", "LGM", "LGMResnetBlock", "LGMCrossViewAttention", "LGMSplats", "lgm_activate", "lgm_decode",
           "lgm_loss", "LGM_VIEWS", "LGM_CHANNELS", "GRMConfig", "GRM", "GRMBlock", "GRMUpsampler", "grm_rays", "grm_box_depths",
           "grm_positions", "GRM_RAW_CHANNELS", "FeedForwardConfig", "FeedForwardResult", "caption_for", "match_front_scale", "object_height", "feedforward_text_to_3d",
           "ground_truth_views", "load_view_image", "reconstruct", "upsample_views", "VIEW_SUBSETS", "rotate_about_up",
           "draw_views", "complete_views", "key_background", "recenter_views", "SHAPEWORLD_BORDER", "reconstruct_from_views", "ColourShortcut", "input_colour"]
__all__ += trellis.__all__
__all__ += ["DREAMFUSION_SETTINGS", "DreamFusionConfig", "DreamFusionNeRF", "DreamFusion", "render_nerf",
            "nerf_to_gaussians", "DreamFusionResult", "dreamfusion_text_to_3d"]
