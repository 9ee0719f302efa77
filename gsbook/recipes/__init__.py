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
                                     multiview_batch, prior_mv_card, run_prior_mv_recipe, train_prior_mv)
from gsbook.recipes.reconstructor import (RECONSTRUCTORS, ReconstructionData, ReconstructionScores,
                                          ReconstructorRecipe, d_ssim, evaluate_reconstructor,
                                          load_reconstruction_data, make_reconstructor, reconstruction_batch,
                                          reconstructor_card, refined_model, run_reconstructor_recipe, soften,
                                          train_reconstructor)

__all__ = ["hardware", "warmup_cosine", "save_checkpoint", "load_checkpoint",
           "MultiViewData", "PriorMVRecipe", "evaluate_prior_mv", "load_multiview_data", "multiview_batch",
           "prior_mv_card", "run_prior_mv_recipe", "train_prior_mv",
           "RECONSTRUCTORS", "ReconstructionData", "ReconstructionScores", "ReconstructorRecipe", "d_ssim",
           "evaluate_reconstructor", "load_reconstruction_data", "make_reconstructor", "reconstruction_batch",
           "reconstructor_card", "refined_model", "run_reconstructor_recipe", "soften", "train_reconstructor",
           "JudgeRecipe", "evaluate_judge", "judge_batch", "judge_card", "run_judge_recipe", "train_judge",
           "LAPTOP_RECIPE", "TrainConfig", "TrainingData", "checkpoint_folder", "cpu_hours", "learning_rate",
           "load_training_data", "prior_batch", "train_prior2d",
           "LAPTOP_MEASURED", "PriorScores", "evaluate_prior", "finish_prior2d_recipe", "laptop_note"]
