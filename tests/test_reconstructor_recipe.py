"""§3's training recipes and pipelines: LGM/GRM's data, loop, resume and evaluation; the
multi-view front end's image loading and the ground-truth views."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from gsbook.cameras import four_views
from gsbook.images import psnr
from gsbook.methods.feedforward import (FeedForwardConfig, ground_truth_views, load_view_image, reconstruct,
                                        upsample_views)
from gsbook.methods.lgm import LGM
from gsbook.recipes.common import warmup_cosine
from gsbook.recipes.reconstructor import (ReconstructorRecipe, evaluate_reconstructor, load_reconstruction_data,
                                          make_reconstructor, reconstruction_batch, refined_model, soften,
                                          train_reconstructor)
from gsbook.render import render


@pytest.fixture(scope="module")
def data():
    return load_reconstruction_data(6, "train", seed=5, progress=False)


def tiny(model: str = "lgm", **overrides) -> ReconstructorRecipe:
    return ReconstructorRecipe.for_profile("ci", model=model, **overrides)


def test_warmup_cosine_rises_then_decays_to_the_floor():
    lrs = [warmup_cosine(1.0, s, 100, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_recipe_refuses_bad_settings():
    with pytest.raises(ValueError, match="unknown reconstructor 'nerf'"):
        ReconstructorRecipe(model="nerf")
    with pytest.raises(ValueError, match="other_views"):
        ReconstructorRecipe(other_views=9)
    with pytest.raises(ValueError, match="render_size"):
        ReconstructorRecipe(render_size=24)
    assert tiny().key() == tiny(steps=99).key() != tiny(lr=5e-4).key()


def test_shipped_stage_two_lengths():
    """LGM's shipped recipe refines for 3,800 steps, GRM's for 1,200; an explicit value wins, and
    the stage-two length changes neither stage's checkpoint key (a longer run resumes a shorter)."""
    assert ReconstructorRecipe(model="lgm").refine_steps == 3800
    assert ReconstructorRecipe.for_profile("cpu", model="grm").refine_steps == 1200
    assert ReconstructorRecipe(model="lgm", refine_steps=0).refine_steps == 0
    shipped, shorter = ReconstructorRecipe(model="lgm"), ReconstructorRecipe(model="lgm", refine_steps=1200)
    assert shipped.refine_key() == shorter.refine_key() and shipped.key() == shorter.key()


def test_the_two_datasets_hold_the_same_objects_and_the_cameras_scale(data):
    """Four input views and random views of the same assets; a ground-truth object rendered with
    the batch's 32² cameras matches the 64² render area-downsampled (so the Ks scaling is right)."""
    from gsbook.world import make_asset
    from gsbook.world.captions import ObjectSpec

    assert data.inputs.shape == (6, 4, 64, 64, 3) and data.others.shape == (6, 8, 64, 64, 3)
    r = data.records[0]
    g = make_asset(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"]).gaussians()
    big = render(g, data.other_cameras(0))
    small = render(g, data.other_cameras(0, size=32))
    down = torch.nn.functional.avg_pool2d(big.alpha.permute(0, 3, 1, 2), 2)[:, 0]     # [8, 32, 32]

    def centroid(alpha):                                   # [V, 2], in 32² pixels
        ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        w = alpha / alpha.sum((1, 2), keepdim=True)
        return torch.stack([(w * xs).sum((1, 2)), (w * ys).sum((1, 2))], -1)
    assert (centroid(small.alpha[..., 0]) - centroid(down)).abs().max() < 0.15
    # Same coverage up to the rasterizer's 0.3 px² low-pass, which widens every splat more at 32²
    # (about +20% here); unscaled intrinsics would give 4× the area.
    assert (small.alpha[..., 0].sum((1, 2)) / down.sum((1, 2)) - 1).abs().max() < 0.35
    # and the stored random views are that object's exact renders (the datasets agree on assets)
    from gsbook.world.raycast import render_asset
    fresh = render_asset(make_asset(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"]),
                         data.other_cameras(0))["rgb"]
    assert psnr(fresh, data.others[0].float() / 255).min() > 45


def test_batch_shapes_and_soft_inputs(data):
    recipe = tiny(batch=3, soft_inputs=1.0)
    inputs, cameras, images, alphas = reconstruction_batch(data, torch.tensor([0, 1, 2]), recipe,
                                                           torch.Generator().manual_seed(0))
    V = 4 + recipe.other_views
    assert inputs.shape == (3, 4, 64, 64, 3) and images.shape == (3, V, 32, 32, 3) and alphas.shape == (3, V, 32, 32)
    assert len(cameras) == 3 and all(len(c) == V and c.width == 32 for c in cameras)
    torch.testing.assert_close(inputs, soften(data.inputs[:3].float() / 255))
    sharp, *_ = reconstruction_batch(data, torch.tensor([0]), tiny(soft_inputs=0.0), torch.Generator())
    torch.testing.assert_close(sharp, data.inputs[:1].float() / 255)


# Networks small enough to train three times in a test (64² inputs, as the data has), and stage one
# only (refine_steps=0; test_refine_stage_* covers stage two): resuming is the loop's business, not the
# network's size.
SMALL = {"lgm": dict(down_channels=(16, 32, 32), down_attention=(False, True, True), up_channels=(32, 32),
                     up_attention=(True, False), norm_groups=4, attention_heads=2),
         "grm": dict(width=64, depth=2, heads=2)}


@pytest.mark.parametrize("model", ["lgm", "grm"])
def test_training_runs_checkpoints_and_resumes_exactly(model, data, tmp_path):
    recipe = tiny(model, steps=2, checkpoint_every=1, refine_steps=0, model_config=SMALL[model])
    first, report = train_reconstructor(recipe, data=data, progress=False, folder=tmp_path)
    assert report["steps"] == 2 and len(report["history_every_50"]) == 1 and math.isfinite(report["final_loss"])
    assert report["model_config"]["depth" if model == "grm" else "norm_groups"] == (2 if model == "grm" else 4)
    longer, _ = train_reconstructor(tiny(model, steps=3, checkpoint_every=1, refine_steps=0, model_config=SMALL[model]), data=data,
                                    progress=False, folder=tmp_path)
    straight, _ = train_reconstructor(tiny(model, steps=3, checkpoint_every=1, refine_steps=0, model_config=SMALL[model]), data=data,
                                      progress=False, folder=tmp_path / "fresh")
    for a, b in zip(longer.parameters(), straight.parameters()):
        torch.testing.assert_close(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), straight.parameters()))


@pytest.mark.parametrize("model", ["lgm", "grm"])
def test_refine_stage_starts_where_stage_one_ended(model, data, tmp_path):
    """Stage two adds the zero-initialised colour shortcut: same output at its first step, then it learns."""
    recipe = tiny(model)
    stage_one = make_reconstructor(model).eval()
    refined = refined_model(stage_one, recipe).eval()
    assert refined.colour_shortcut is not None and stage_one.colour_shortcut is None
    x = stage_one.prepare_inputs(data.inputs[:2].float() / 255, data.input_cameras())
    with torch.no_grad():
        torch.testing.assert_close(refined(x), stage_one(x))
    stage = recipe.refine_stage()
    assert (stage.render_size, stage.batch, stage.lr, stage.steps) == (64, 2, recipe.refine_lr, 2)
    assert stage.model_config["rgb_skip"] and stage.key() != recipe.key()
    with pytest.raises(ValueError, match="changes the network's output"):
        refined_model(stage_one, tiny(model, refine_config={"cross_view": False}))
    trained, report = train_reconstructor(recipe, data=data, progress=False, folder=tmp_path)
    assert trained.config.rgb_skip and len(report["stage_times_s"]) == 2
    assert trained.colour_shortcut.linear.weight.abs().sum() > 0          # it learned something
    assert (tmp_path / f"refine-{recipe.refine_key()}" / "latest.pt").exists()
    # Stage one's key ignores the refine settings: a new second stage reuses stage one's checkpoint.
    assert tiny(model, refine_lr=1e-4).key() == recipe.key() != tiny(model, lr=1e-4).key()
    assert tiny(model, refine_lr=1e-4).refine_key() != recipe.refine_key()


def test_colour_shortcut_maps_the_input_colour_under_each_gaussian():
    from gsbook.methods.lgm import LGMConfig, input_colour
    model = LGM(LGMConfig(rgb_skip=True)).eval()
    x = torch.zeros(1, 4, 9, 64, 64)
    x[:, :, 1, :32] = 2.0                                   # green channel set in the top half of every view
    colour = input_colour(x, 32)
    assert colour.shape == (4, 3, 32, 32) and (colour[:, 1, :16] == 2).all() and (colour[:, 1, 16:] == 0).all()
    with torch.no_grad():
        base = model(x)
        model.colour_shortcut.linear.weight.copy_(torch.eye(3)[:, :, None, None])
        shifted = model(x)
    delta = shifted - base                                  # [1, 4, 14, 32, 32]: only the colour channels move
    assert delta[:, :, :11].abs().max() == 0
    torch.testing.assert_close(delta[0, :, 11:], colour)


def test_evaluation_scores_ground_truth_views_and_the_ceiling(data, monkeypatch):
    """A network whose Gaussians are ShapeWorld's own scores the ceiling's PSNR; an untrained one scores far less."""
    class Oracle(LGM):
        def gaussians(self, x):
            from gsbook.world import make_asset
            from gsbook.world.captions import ObjectSpec
            r = data.records[self.calls]
            self.calls += 1
            return [make_asset(ObjectSpec(r["category"], r["colour"], r["part_colour"]), r["seed"]).gaussians()]

    oracle = Oracle()
    oracle.calls = 0
    scores = evaluate_reconstructor(oracle, data=data, progress=False)
    assert scores.n_assets == 6 and scores.psnr == pytest.approx(scores.psnr_ceiling, abs=1e-6)
    assert scores.psnr > 17 and scores.category > 0.7
    untrained = evaluate_reconstructor(make_reconstructor("lgm"), data=data, progress=False, ceiling=False)
    assert untrained.psnr < scores.psnr - 3 and math.isnan(untrained.psnr_ceiling)


# ============================================================================== the pipelines' inputs
def test_ground_truth_views_are_the_four_orthogonal_renders():
    views = ground_truth_views("a red box", seed=2)
    assert views.shape == (4, 64, 64, 3)
    assert not torch.allclose(views[0], views[1])          # a box turned by a random yaw: sides differ
    assert (views < 0.95).any(-1).float().mean() > 0.05     # an object, not an empty view


def save_png(path, array, mode):
    Image.fromarray(array, mode=mode).save(path)
    return path


def test_load_view_image_puts_the_object_on_white_and_resizes(tmp_path):
    import numpy as np
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[32:96, 32:96] = (255, 0, 0, 255)                 # an opaque red square on transparency
    view = load_view_image(save_png(tmp_path / "v.png", rgba, "RGBA"), 64)
    assert view.shape == (64, 64, 3)
    assert torch.allclose(view[0, 0], torch.ones(3)) and torch.allclose(view[32, 32], torch.tensor([1.0, 0, 0]))


@pytest.mark.parametrize("make, says", [
    (lambda p: p, "no such file"),
    (lambda p: (p.write_text("not an image"), p)[1], "not an image"),
    (lambda p: save_png(p, __import__("numpy").zeros((64, 48, 4), "uint8"), "RGBA"), "48×64 is not square"),
    (lambda p: save_png(p, __import__("numpy").zeros((8, 8, 4), "uint8"), "RGBA"), "out of range"),
    (lambda p: save_png(p, __import__("numpy").zeros((64, 64, 3), "uint8"), "RGB"), "no alpha channel"),
])
def test_load_view_image_refuses_bad_images_clearly(make, says, tmp_path):
    path = make(tmp_path / "view.png")
    with pytest.raises(ValueError, match=says):
        load_view_image(path, 64)


def test_reconstruct_reads_32_or_64_pixel_views_and_checks_the_count():
    model = make_reconstructor("grm").eval()
    g64 = reconstruct(model, torch.rand(4, 64, 64, 3))
    g32 = reconstruct(model, torch.rand(4, 32, 32, 3))
    assert g64.n == g32.n == model.config.n_gaussians == 4096
    with pytest.raises(ValueError, match=r"views must be \[4, H, W, 3\]"):
        reconstruct(model, torch.rand(3, 64, 64, 3))
    assert upsample_views(torch.rand(2, 4, 32, 32, 3)).shape == (2, 4, 64, 64, 3)
    with pytest.raises(ValueError, match="sampler_steps"):
        FeedForwardConfig(sampler_steps=0)
    assert four_views(width=64, height=64).width == 64
