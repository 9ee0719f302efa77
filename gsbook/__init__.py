"""gsbook: the library behind the book "Generating 3D Gaussian Splatting scenes".

The library is layered. A module may import modules of its own layer or of a layer below,
never one above, and no two modules may import each other, directly or around a loop
(``tests/test_layers.py`` reads every import, those inside functions too, and fails on
either). Bottom to top:

================  =====================================================  ==========================
layer             modules                                                holds
================  =====================================================  ==========================
foundations       ``config`` ``zoo`` ``images`` ``gaussians``            profiles and devices; the
                  ``cameras`` ``render`` ``io`` ``mesh`` ``baselines``   weights store; pictures;
                  ``era`` ``viewer``                                     Gaussians, cameras, the
                                                                         rasterizer, file formats,
                                                                         meshes; §0's baselines;
                                                                         the era's systems and
                                                                         their reported numbers;
                                                                         the WebGL 3D viewer page
data              ``world`` ``text``                                     ShapeWorld; MiniLM features
generative maths  ``diffusion`` ``flow``                                 noise schedules, DDPM/DDIM,
                                                                         CFG, the book's priors;
                                                                         rectified flow
critics           ``sds`` ``judge``                                      score distillation and its
                                                                         prior adapters; the judge
methods           ``methods``                                            one whole method per module
top               ``recipes`` ``train`` ``generate``                     training recipes and model
                  ``exercises`` ``harness``                              cards; the ``train`` and
                                                                         ``generate`` commands; the
                                                                         chapters' self-checks; one
                                                                         harness timing every
                                                                         generator (§5)
================  =====================================================  ==========================

``zoo`` sits at the bottom because it is only a weights store (files, checksums, model
cards): it imports no model. Each model class owns its config and loads itself with
``from_shipped()``, as diffusers' ``from_pretrained`` does.

Each package re-exports its public names, and no two packages export different things under
one name, so chapters import one way: ``from gsbook.sds import BookPrior, score_distillation``.
Each symbol is taught in a chapter; the module docstrings say which.
"""

__version__ = "0.1.0"

# The layer table that tests/test_layers.py enforces (bottom first). Every top-level module or
# package of gsbook appears exactly once.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundations", ("config", "zoo", "images", "gaussians", "cameras", "render", "io", "mesh", "baselines",
                     "era", "viewer")),
    ("data", ("world", "text")),
    ("generative maths", ("diffusion", "flow")),
    ("critics", ("sds", "judge")),
    ("methods", ("methods",)),
    ("top", ("recipes", "train", "generate", "exercises", "harness", "open_problems")),
)
