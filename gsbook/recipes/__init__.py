"""Training recipes and model cards: how each shipped model is made (``python -m gsbook.train NAME``).

==============  ==============================================================  ==========
module          recipe                                                          model
==============  ==============================================================  ==========
``judge``       ShapeWorld classifier: data, augmentation, loop, evaluation      ``judge``
``prior2d``     the 2D prior: data, batches, loop, EMA, checkpoints and resume   ``prior2d``
``prior2d_eval``  the prior judged on seen and held-out captions; its model card  ``prior2d``
``prior_mv``    the multi-view prior, fine-tuned from ``prior2d``: data, loop,    ``prior_mv``
                EMA, evaluation, card
``reconstr-``   LGM and GRM on the same data and loss: the loop, the unseen-     ``lgm``,
``uctor``       split evaluation against ground truth, the cards                  ``grm``
``trellis_``    TRELLIS stage 1: ShapeWorld occupancies (cached), the structure  ``trellis_ss_vae``,
``structure``   VAE and its latent scale, the structure flow, their evaluations  ``trellis_ss_flow``
                and cards
``trellis_``    TRELLIS stage 2: cached voxel features and views, the SLat VAE's  ``trellis_slat_vae``,
``slat``        render-loss loop and unseen-split PSNR; the SLat flow             ``trellis_slat_flow``
==============  ==============================================================  ==========

Each recipe has one size per profile (``for_profile``): ``gpu`` is the shipped recipe,
``cpu`` what fits a laptop, ``ci`` a smoke run for the tests. The loops are plain PyTorch
(data through ``torch.utils.data`` where it streams), so scaling out changes the config,
not the code. The models themselves live below (:mod:`gsbook.judge`,
:mod:`gsbook.diffusion`); this is the top layer, and nothing imports it but ``gsbook.train``.
"""

from gsbook.recipes.common import hardware, load_checkpoint, save_checkpoint, warmup_cosine
from gsbook.recipes.judge import (JudgeRecipe, evaluate_judge, judge_batch, judge_card, run_judge_recipe,
                                  train_judge)
from gsbook.recipes.prior2d import (LAPTOP_RECIPE, TrainConfig, TrainingData, checkpoint_folder, cpu_hours,
                                    learning_rate, load_training_data, prior_batch, train_prior2d)
from gsbook.recipes.prior2d_eval import (LAPTOP_MEASURED, PriorScores, evaluate_prior, finish_prior2d_recipe,
                                         laptop_note)
from gsbook.recipes.prior_mv import (MultiViewData, PriorMVRecipe, evaluate_prior_mv, load_multiview_data,
                                     multiview_batch, prior_mv_card, remeasure_prior_mv, run_prior_mv_recipe,
                                     refine_prior_mv, train_prior_mv)
from gsbook.recipes.reconstructor import (RECONSTRUCTORS, SHIPPED_REFINE_STEPS, ReconstructionData,
                                          ReconstructionScores, ReconstructorRecipe, d_ssim, evaluate_reconstructor,
                                          load_reconstruction_data, make_reconstructor, reconstruction_batch,
                                          reconstructor_card, refined_model, run_reconstructor_recipe, soften,
                                          train_reconstructor)
from gsbook.recipes.trellis_structure import (StructureData, StructureFlowRecipe, StructureVAERecipe,
                                             augment_structure, category_references, evaluate_ss_flow,
                                             evaluate_ss_vae, measure_latent_scale, run_ss_flow_recipe,
                                             run_ss_vae_recipe, ss_flow_card, ss_vae_card, structure_data,
                                             train_ss_flow, train_ss_vae)
from gsbook.recipes.trellis_slat import (SLatData, SLatFlowRecipe, SLatFlowScores, SLatVAERecipe, SLatVAEScores,
                                         encode_slat_data, evaluate_slat_flow, evaluate_slat_vae, load_slat_data,
                                         run_slat_flow_recipe, run_slat_vae_recipe, slat_flow_card, slat_vae_card,
                                         train_slat_flow, train_slat_vae)

__all__ = ["hardware", "warmup_cosine", "save_checkpoint", "load_checkpoint",
           "MultiViewData", "PriorMVRecipe", "evaluate_prior_mv", "load_multiview_data", "multiview_batch",
           "prior_mv_card", "run_prior_mv_recipe", "remeasure_prior_mv", "refine_prior_mv", "train_prior_mv",
           "RECONSTRUCTORS", "ReconstructionData", "ReconstructionScores", "ReconstructorRecipe", "d_ssim",
           "SHIPPED_REFINE_STEPS", "evaluate_reconstructor", "load_reconstruction_data", "make_reconstructor",
           "reconstruction_batch",
           "reconstructor_card", "refined_model", "run_reconstructor_recipe", "soften", "train_reconstructor",
           "SLatData", "SLatFlowRecipe", "SLatFlowScores", "SLatVAERecipe", "SLatVAEScores", "encode_slat_data",
           "evaluate_slat_flow", "evaluate_slat_vae",
           "load_slat_data", "run_slat_flow_recipe", "run_slat_vae_recipe", "slat_flow_card", "slat_vae_card",
           "train_slat_flow", "train_slat_vae",
           "JudgeRecipe", "evaluate_judge", "judge_batch", "judge_card", "run_judge_recipe", "train_judge",
           "LAPTOP_RECIPE", "TrainConfig", "TrainingData", "checkpoint_folder", "cpu_hours", "learning_rate",
           "load_training_data", "prior_batch", "train_prior2d",
           "LAPTOP_MEASURED", "PriorScores", "evaluate_prior", "finish_prior2d_recipe", "laptop_note",
           "StructureData", "structure_data", "augment_structure", "category_references", "StructureVAERecipe",
           "train_ss_vae", "evaluate_ss_vae", "measure_latent_scale", "ss_vae_card", "run_ss_vae_recipe",
           "StructureFlowRecipe", "train_ss_flow", "evaluate_ss_flow", "ss_flow_card", "run_ss_flow_recipe"]
