"""ShapeWorld: the book's procedural 3D world (taught in §0; every model in the book trains on it).

Sixteen categories built from analytic primitives × eleven named colours, captions and a
parser, exact ground truth (SDF, surface Gaussians, occupancy, meshes), cached multi-view
datasets and a gallery. It stands in for Objaverse: see §0, "Meet ShapeWorld".

One file per part: ``primitives`` (SDFs and surface samplers), ``categories`` (how each
object is built), ``colours``, ``captions`` (templates and the parser), ``asset`` (one
object and its ground truth), ``raycast`` (exact renders), ``dataset`` (cached multi-view
datasets), ``gallery``, ``checks`` (independent silhouettes and inside tests).

    >>> from gsbook.world import make_asset
    >>> asset = make_asset("a red mushroom with a white stem", seed=0)
    >>> asset.occupancy(16).shape
    torch.Size([16, 16, 16])
"""

from .asset import (BOUND, GENERATOR_VERSION, Asset, SurfaceSamples, grid_centres, make_asset,
                    make_scene)
from .captions import (GRID_CAPTIONS, RELATIONS, ObjectSpec, PromptError, SceneSpec, caption, held_out_pairs,
                       parse, vocabulary)
from .categories import CATEGORIES, CATEGORY_NAMES, Category
from .colours import COLOUR_NAMES, COLOURS, colour_rgb
from .dataset import (SPLITS, VIEW_MODES, DatasetConfig, ShapeWorldDataset, StackedViews, asset_record, split_captions,
                      split_specs)
from .gallery import gallery_figure, gallery_images
from .raycast import render_asset

__all__ = [
    "BOUND", "GENERATOR_VERSION", "Asset", "SurfaceSamples", "grid_centres", "make_asset", "make_scene",
    "GRID_CAPTIONS", "RELATIONS", "ObjectSpec", "PromptError", "SceneSpec", "caption", "held_out_pairs", "parse", "vocabulary",
    "CATEGORIES", "CATEGORY_NAMES", "Category", "COLOUR_NAMES", "COLOURS", "colour_rgb",
    "SPLITS", "VIEW_MODES", "DatasetConfig", "ShapeWorldDataset", "StackedViews", "asset_record",
    "split_captions", "split_specs", "gallery_figure", "gallery_images", "render_asset",
]
