"""TRELLIS at book scale: sparse structure, then structured latents, then Gaussians (§4).

Xiang et al., *Structured 3D Latents for Scalable and Versatile 3D Generation* (CVPR 2025,
arXiv:2412.01506). Two rectified flows (:mod:`gsbook.flow`), each in the latent of its own VAE:

=============  ============================================================================  =======
module         holds                                                                         stage
=============  ============================================================================  =======
``structure``  ShapeWorld occupancy and its shell (the active voxels); :class:`StructureVAE`  1
               (32³ → 8³ × 8); :class:`StructureFlow`, a DiT with adaLN-Zero and
               cross-attention to the caption; :func:`sample_structure` (and the
               sub-volume edit)
``slat``       the structured latent on the active voxels: features from multi-view renders    2
               projected onto them (:func:`voxel_features`); :func:`sparse_attention` over the
               occupied voxels only; :class:`SLatVAE` (a voxel transformer to 8 channels per
               voxel, decoded to 4 Gaussians per voxel); :class:`SLatFlow` and
               :func:`sample_slat`
=============  ============================================================================  =======

:mod:`~gsbook.methods.trellis.pipeline` runs both stages end to end (:func:`trellis_text_to_3d`) and
makes the two edits (:func:`edit_appearance`, :func:`edit_region`).

The recipes that train the models are :mod:`gsbook.recipes.trellis_structure`
(``python -m gsbook.train trellis_ss_vae``, ``trellis_ss_flow``) and :mod:`gsbook.recipes.trellis_slat`
(``trellis_slat_vae``, ``trellis_slat_flow``).
"""

from gsbook.methods.trellis.structure import (STRUCTURE_RESOLUTION, StructureAttention, StructureDiTBlock,
                                              StructureFlow, StructureFlowConfig, StructureResBlock, StructureVAE,
                                              StructureVAEConfig, fold3d, occupied_fraction, sample_structure,
                                              sincos_3d_positions, structure_grid, structure_vae_loss,
                                              surface_voxels, timestep_embedding, top_region_mask, unfold3d,
                                              voxel_iou)
from gsbook.methods.trellis.slat import (GAUSSIAN_CHANNELS, SLAT_CHANNELS, SLAT_RESOLUTION, SLatEncoding, SLatFlow,
                                         SLatFlowConfig, SLatVAE, SLatVAEConfig, VoxelAttention, VoxelBlock, coarsen,
                                         feature_cameras, hammersley, judge_feature_maps, pad_voxels,
                                         position_embedding, sample_slat, shell_coords, slat_flow_loss, slat_vae_loss,
                                         sparse_attention, voxel_centres, voxel_features, voxel_visibility)
from gsbook.methods.trellis.pipeline import (TrellisConfig, TrellisModels, TrellisResult, decode_slat,
                                             edit_appearance, edit_region, trellis_text_to_3d, voxel_gaussians,
                                             voxel_normals)

__all__ = ["STRUCTURE_RESOLUTION", "structure_grid", "surface_voxels", "occupied_fraction", "voxel_iou",
           "fold3d", "unfold3d", "StructureVAEConfig", "StructureResBlock", "StructureVAE", "structure_vae_loss",
           "StructureFlowConfig", "StructureAttention", "StructureDiTBlock", "timestep_embedding",
           "sincos_3d_positions", "StructureFlow", "top_region_mask", "sample_structure",
           "SLAT_RESOLUTION", "SLAT_CHANNELS", "GAUSSIAN_CHANNELS", "shell_coords", "voxel_centres", "pad_voxels",
           "feature_cameras", "voxel_visibility", "judge_feature_maps", "voxel_features", "sparse_attention",
           "position_embedding", "VoxelAttention", "VoxelBlock", "SLatVAEConfig", "SLatVAE", "SLatEncoding",
           "slat_vae_loss", "hammersley", "coarsen", "SLatFlowConfig", "SLatFlow", "slat_flow_loss", "sample_slat",
           "TrellisConfig", "TrellisModels", "TrellisResult", "trellis_text_to_3d", "decode_slat", "edit_appearance",
           "edit_region", "voxel_normals", "voxel_gaussians"]
