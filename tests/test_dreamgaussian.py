"""gsbook.methods.dreamgaussian: densification, the learning-rate schedule, both stages on tiny runs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from gsbook.cameras import orbit
from gsbook.diffusion import Prior2DConfig, TextToImagePrior
from gsbook.gaussians import Gaussians, init_ball
from gsbook.methods import (DreamGaussian, DreamGaussianConfig, DreamGaussianStrategy, TextureRefiner, bake_cameras,
                            bake_mesh, dreamgaussian_text_to_3d, extract_mesh, position_lr)
from gsbook.mesh import TexturedMesh, render_textured_mesh
from gsbook.render import render
from gsbook.sds import BookPrior, CountingPrior, OraclePrior


@pytest.fixture(scope="module")
def tiny_prior():
    """Random weights: exercises the plumbing in seconds (pictures are not the point)."""
    torch.manual_seed(0)
    return BookPrior(TextToImagePrior(Prior2DConfig(channels=(16, 16, 16), norm_groups=8)), device="cpu")


def tiny_config(**overrides) -> DreamGaussianConfig:
    return DreamGaussianConfig(**{"steps": 12, "n_init": 200, "resolution": 32, "densify_every": 4,
                                  "mesh_resolution": 32, "max_faces": 2000, "texture_size": 64,
                                  "bake_resolution": 48, "refine_steps": 3, "refine_resolution": 32,
                                  "refine_sampler_steps": 10, **overrides})


def test_position_lr_is_3dgs_exponential_decay():
    c = DreamGaussianConfig()
    assert position_lr(c, 0) == pytest.approx(0.01) and position_lr(c, 300) == pytest.approx(0.0002)
    assert position_lr(c, 150) == pytest.approx(math.sqrt(0.01 * 0.0002))      # log-linear: the geometric mean
    assert position_lr(c, 1000) == pytest.approx(0.0002)


def test_config_refuses_impossible_settings():
    with pytest.raises(ValueError, match="steps"):
        DreamGaussianConfig(steps=0)
    with pytest.raises(ValueError, match="probability"):
        DreamGaussianConfig(invert_background=1.5)
    assert DreamGaussianConfig.for_profile("ci").steps < DreamGaussianConfig.for_profile("cpu").steps


def _params_and_optimizers(gaussians: Gaussians):
    params = gaussians.parameter_dict()
    optimizers = {k: torch.optim.Adam([{"params": p, "lr": 1e-3, "name": k}], eps=1e-15) for k, p in params.items()}
    return params, optimizers


def _one_step(params, optimizers, strategy, state, step, cams):
    out = render(Gaussians.from_params(params), cams, background=1.0)
    strategy.step_pre_backward(params, optimizers, state, step, out.info)
    (out.image - 0.0).square().sum().backward()              # pull every pixel to black: big gradients
    for opt in optimizers.values():
        opt.step()
        opt.zero_grad(set_to_none=True)
    strategy.step_post_backward(params, optimizers, state, step, out.info, packed=False)


def test_densification_grows_where_gradients_exceed_the_threshold_and_keeps_optimiser_state_aligned():
    cams = orbit(10.0, [0.0, 120.0], width=32, height=32)
    g = init_ball(64, generator=torch.Generator().manual_seed(0), device="cpu")
    g = Gaussians(g.means, g.quats, g.log_scales, torch.full_like(g.opacity_logits, 2.0), g.sh)
    params, optimizers = _params_and_optimizers(g)
    strategy = DreamGaussianStrategy(refine_start_iter=0, refine_every=2, grow_grad2d=1e-6, grow_scale3d=0.01,
                                     prune_opa=0.005, prune_scale3d=10.0, refine_scale2d_stop_iter=0, reset_every=10**6)
    state = strategy.initialize_state(scene_scale=0.5)
    n0 = params["means"].shape[0]
    for step in (1, 2):
        _one_step(params, optimizers, strategy, state, step, cams)
    n1 = params["means"].shape[0]
    assert n1 > n0, "every visible Gaussian's gradient exceeds 1e-6: it must clone or split"
    for key, p in params.items():
        opt_state = optimizers[key].state[optimizers[key].param_groups[0]["params"][0]]
        assert optimizers[key].param_groups[0]["params"][0] is p
        assert opt_state["exp_avg"].shape == p.shape and opt_state["exp_avg_sq"].shape == p.shape, key
    # A threshold no gradient reaches: nothing grows.
    quiet = DreamGaussianStrategy(refine_start_iter=0, refine_every=2, grow_grad2d=1e9, prune_opa=0.0,
                                  prune_scale3d=10.0, refine_scale2d_stop_iter=0, reset_every=10**6)
    params2, optimizers2 = _params_and_optimizers(g)
    state2 = quiet.initialize_state(scene_scale=0.5)
    for step in (1, 2):
        _one_step(params2, optimizers2, quiet, state2, step, cams)
    assert params2["means"].shape[0] == n0


def test_dreamgaussian_prunes_oversized_gaussians_at_every_refinement():
    cams = orbit(10.0, 0.0, width=16, height=16)
    g = init_ball(32, generator=torch.Generator().manual_seed(1), device="cpu")
    log_scales = torch.full_like(g.log_scales, math.log(0.01))     # small: kept
    log_scales[:4] = math.log(0.2)                                 # 0.2 > prune_scale3d · scene_scale = 0.05
    g = Gaussians(g.means, g.quats, log_scales, g.opacity_logits, g.sh)
    params, optimizers = _params_and_optimizers(g)
    strategy = DreamGaussianStrategy(refine_start_iter=0, refine_every=1, grow_grad2d=1e9, prune_opa=0.0,
                                     prune_scale3d=0.1, refine_scale2d_stop_iter=0, reset_every=700)
    state = strategy.initialize_state(scene_scale=0.5)
    _one_step(params, optimizers, strategy, state, 1, cams)       # step 1 < reset_every: gsplat's own would keep them
    assert params["means"].shape[0] == 28


def test_stage1_runs_is_seeded_and_records_its_history(tiny_prior):
    a = DreamGaussian(tiny_prior, "a red cone", tiny_config())
    b = DreamGaussian(tiny_prior, "a red cone", tiny_config())
    a.run()
    torch.manual_seed(99)                                          # the global RNG must not matter
    b.run()
    assert a.iteration == 12 and len(a.history) == 12
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert {"t", "n", "grad_norm", "loss", "seconds"} <= set(a.history[0])
    ts = [h["t"] for h in a.history]
    assert ts == sorted(ts, reverse=True) and ts[0] == 980          # DreamGaussian's anneal
    assert a.gaussians.n == a.n and not a.gaussians.means.requires_grad


def test_stage1_asks_the_prior_once_per_step(tiny_prior):
    counter = CountingPrior(tiny_prior)
    run = DreamGaussian(counter, "a red cone", tiny_config(views=2, steps=3))
    run.run()
    assert counter.batches == [4, 4, 4]                             # one CFG call on 2 views per step


def test_a_prompt_outside_the_vocabulary_is_refused(tiny_prior):
    with pytest.raises(ValueError, match="giraffe"):
        DreamGaussian(tiny_prior, "a red giraffe", tiny_config())


def test_mesh_extraction_baking_and_refinement_on_a_known_scene():
    # A solid red ball of Gaussians: the mesh must be a closed blob that renders red.
    g = init_ball(800, radius=0.4, opacity=0.6, rgb=0.5, generator=torch.Generator().manual_seed(2), device="cpu")
    c0 = 0.28209479177387814                       # SH degree 0: rgb = C0 · sh + 0.5
    g = Gaussians(g.means, g.quats, g.log_scales, g.opacity_logits,
                  torch.zeros_like(g.sh) + torch.tensor([0.4, -0.3, -0.3]) / c0)
    config = tiny_config(texture_size=64)
    vertices, faces = extract_mesh(g, config)
    assert len(faces) <= config.max_faces and vertices.abs().max() < 0.7
    mesh = bake_mesh(g, vertices, faces, config)
    assert isinstance(mesh, TexturedMesh) and mesh.texture.shape == (64, 64, 3)
    views = orbit(20.0, [0.0, 90.0, 180.0, 270.0], width=32, height=32)

    def covered_colour(m: TexturedMesh) -> Tensor:
        image, alpha, _ = render_textured_mesh(m, views, background=1.0)
        return image[alpha[..., 0] > 0.5].mean(0)

    red = covered_colour(mesh)
    assert red[0] > 0.7 and red[1] < 0.4 and red[2] < 0.4
    assert len(bake_cameras(config)) == 26
    # Refinement toward an oracle that knows a blue image pulls what the mesh shows toward blue.
    target = torch.zeros(3, 32, 32)
    target[2] = 1.0
    refiner = TextureRefiner(OraclePrior(target), "the target", mesh,
                             replace_config(config, refine_steps=8, refine_views=4))
    refined = refiner.run()
    after = covered_colour(refined)
    assert after[2] > red[2] + 0.1 and after[0] < red[0] - 0.1
    assert len(refiner.history) == 8 and refiner.history[-1]["strength"] == pytest.approx(0.95)


def replace_config(config, **changes):
    from dataclasses import replace

    return replace(config, **changes)


def test_the_whole_recipe_on_a_tiny_run(tiny_prior):
    result = dreamgaussian_text_to_3d(tiny_prior, "a red cone", tiny_config(), stages=2)
    assert set(result.seconds) == {"stage1", "mesh", "stage2"}
    assert result.gaussians.n == result.stage1_history[-1]["n"]
    assert result.mesh is not None and result.mesh.n_faces == result.baked.n_faces
    assert len(result.stage2_history) == 3
    one = dreamgaussian_text_to_3d(tiny_prior, "a red cone", tiny_config(), stages=1)
    assert one.mesh is None and "stage2" not in one.seconds
    assert torch.equal(one.gaussians.means, result.gaussians.means)
    with pytest.raises(ValueError, match="stages"):
        dreamgaussian_text_to_3d(tiny_prior, "a red cone", tiny_config(), stages=3)


def test_the_cpu_profile_is_dreamgaussians_recipe_except_the_changes_it_explains():
    from dataclasses import asdict

    from gsbook.methods import BOOK_CHANGES, PAPER_SETTINGS

    book = asdict(DreamGaussianConfig.for_profile("cpu"))
    differs = {k for k, v in PAPER_SETTINGS.items() if book[k] != v}
    assert differs == set(BOOK_CHANGES), f"changed without a reason: {differs - set(BOOK_CHANGES)}; " \
                                         f"explained but unchanged: {set(BOOK_CHANGES) - differs}"


def test_ism_in_place_of_sds_asks_the_prior_more(tiny_prior):
    counter = CountingPrior(tiny_prior)
    DreamGaussian(counter, "a red cone", tiny_config(steps=2, distillation="ism")).run()
    assert counter.calls > 2
    with pytest.raises(ValueError, match="distillation"):
        tiny_config(distillation="vsd")


def test_fewer_initial_gaussians_are_not_pruned_as_oversized():
    from gsbook.methods import prune_size

    assert prune_size(DreamGaussianConfig()) == pytest.approx(0.05)              # DreamGaussian's 0.1 × 0.5
    assert prune_size(DreamGaussianConfig(n_init=625)) == pytest.approx(0.1)      # (5000 / 625)^(1/3) = 2
    assert prune_size(DreamGaussianConfig(n_init=50_000)) == pytest.approx(0.05)  # never below DreamGaussian's
    # 200 points in DreamGaussian's ball: nearly all exceed its fixed 0.05, few exceed the scaled limit
    # (5,000 points lose 3% either way).
    largest = init_ball(200, generator=torch.Generator().manual_seed(0), device="cpu").scales.max(-1).values
    assert float((largest > 0.05).float().mean()) > 0.9
    assert float((largest > prune_size(DreamGaussianConfig(n_init=200))).float().mean()) < 0.15
