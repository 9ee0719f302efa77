"""Tests for gsbook.sds: score distillation, CFG, weightings, schedules, ISM, priors."""

from __future__ import annotations

import shutil

import pytest
import torch

from gsbook.diffusion import ddim_step, scheduler_alphas_cumprod
from gsbook.sds import (CountingPrior, DreamGaussianAnneal, NarrowingSchedule, OraclePrior, PromptEmbeddings,
                        UniformSchedule, classifier_free_guidance,
                        interval_score_matching, make_schedule, score_distillation, sds_weight,
                        timestep_range, view_dependent_prompts, view_direction)

T = 1000


def sd_alphas_cumprod() -> torch.Tensor:
    """Stable Diffusion's schedule written out by hand (scaled_linear β, 0.00085 → 0.012)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, T, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


ABAR = sd_alphas_cumprod()


def hand_weight(name: str, abar: torch.Tensor) -> torch.Tensor:
    return {"sds": 1 - abar, "uniform": torch.ones_like(abar),
            "fantasia": abar.sqrt() * (1 - abar), "lucid": ((1 - abar) / abar).sqrt()}[name]


def two_target_prior(shape=(3, 4, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    t_c, t_u = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
    return OraclePrior({"a red ball": t_c}, uncond_target=t_u, alphas_cumprod=ABAR), t_c, t_u


# ---------------------------------------------------------------- SDS gradient, by hand

@pytest.mark.parametrize("weighting", ["sds", "uniform", "fantasia", "lucid"])
def test_sds_gradient_on_linear_renderer_matches_hand_formula(weighting):
    prior, t_c, t_u = two_target_prior()
    g = torch.Generator().manual_seed(1)
    n_params, b = 7, 2
    A = torch.randn(b * 48, n_params, generator=g, dtype=torch.float64)
    theta = torch.randn(n_params, generator=g, dtype=torch.float64, requires_grad=True)
    x = (A @ theta).view(b, 3, 4, 4).float()                     # the "render", BCHW
    t = torch.tensor([100, 700])
    eps = torch.randn(b, 3, 4, 4, generator=g)
    s = 30.0
    emb = prior.encode_prompts(["a red ball"])
    out = score_distillation(prior, x, emb, guidance_scale=s, weighting=weighting, t=t, noise=eps,
                             layout="BCHW")
    out.loss.backward()

    abar = ABAR[t].view(-1, 1, 1, 1)
    a, sig = abar.sqrt(), (1 - abar).sqrt()
    xd = x.detach()
    x_t = a * xd + sig * eps
    eps_u, eps_c = (x_t - a * t_u) / sig, (x_t - a * t_c) / sig
    g_hand = hand_weight(weighting, abar) * (eps_u + s * (eps_c - eps_u) - eps)
    torch.testing.assert_close(out.grad, g_hand, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(theta.grad, A.T @ g_hand.double().reshape(-1), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.loss, 0.5 * g_hand.pow(2).sum(), rtol=1e-4, atol=1e-4)


def test_sds_reductions_scale_the_gradient():
    prior, _, _ = two_target_prior()
    x = torch.rand(2, 4, 4, 3, requires_grad=True)              # BHWC
    emb = prior.encode_prompts(["a red ball"])
    grads = {}
    for red in ("sum", "batch_mean", "mean"):
        out = score_distillation(prior, x, emb, t=torch.tensor([300, 600]),
                                 noise=torch.zeros(2, 3, 4, 4), reduction=red)
        grads[red] = torch.autograd.grad(out.loss, x)[0]
    torch.testing.assert_close(grads["batch_mean"], grads["sum"] / 2)
    torch.testing.assert_close(grads["mean"], grads["sum"] / 96)
    # BHWC: the gradient on the render is g permuted back to channels-last
    torch.testing.assert_close(grads["sum"], out.grad.permute(0, 2, 3, 1))


def test_oracle_sds_is_scaled_l2_for_a_single_target():
    target = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    prior = OraclePrior(target, alphas_cumprod=ABAR)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([400])
    out = score_distillation(prior, x, prior.encode_prompts(["anything"]), t=t, layout="BCHW",
                             generator=torch.Generator().manual_seed(2))
    a, s = ABAR[400].sqrt(), (1 - ABAR[400]).sqrt()
    torch.testing.assert_close(out.grad, (1 - ABAR[400]) * a / s * (x - target), rtol=1e-4, atol=1e-5)


def test_oracle_sds_pulls_image_to_target():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 16, 16, generator=gen)
    prior = OraclePrior({"a sun over a hill": target}, alphas_cumprod=ABAR)
    emb = prior.encode_prompts(view_dependent_prompts("a sun over a hill", [0.0, 180.0]))
    img = torch.rand(2, 16, 16, 3, generator=gen).requires_grad_(True)   # two views, BHWC
    opt = torch.optim.SGD([img], lr=1.0)
    sched = UniformSchedule(T)
    mse = []
    for step in range(40):
        out = score_distillation(prior, img, emb, schedule=sched, step=step, generator=gen)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        mse.append(float((img.detach().permute(0, 3, 1, 2) - target).pow(2).mean()))
    assert mse[-1] < 1e-3 * mse[0]
    assert all(b <= a + 1e-9 for a, b in zip(mse, mse[1:]))


def test_sds_resizes_renders_to_prior_size():
    prior, _, _ = two_target_prior()                              # 4×4 prior
    img = torch.rand(1, 9, 9, 3, requires_grad=True)
    out = score_distillation(prior, img, prior.encode_prompts(["a red ball"]), t=torch.tensor([500]))
    assert out.x.shape == (1, 3, 4, 4)
    out.loss.backward()
    assert img.grad.shape == img.shape and img.grad.abs().sum() > 0


# ---------------------------------------------------------------- CFG

def test_cfg_combination_and_one_batched_call():
    prior, _, _ = two_target_prior()
    counting = CountingPrior(prior)
    g = torch.Generator().manual_seed(3)
    x_t = torch.randn(3, 3, 4, 4, generator=g)
    t = torch.tensor([50, 500, 950])
    emb = PromptEmbeddings(torch.rand(3, 3, 4, 4, generator=g), torch.rand(3, 3, 4, 4, generator=g))
    out = classifier_free_guidance(counting, x_t, t, emb, guidance_scale=7.5)
    assert counting.batches == [6]
    eps_u = prior.predict_noise(x_t, t, emb.uncond)
    eps_c = prior.predict_noise(x_t, t, emb.cond)
    torch.testing.assert_close(out.eps_uncond, eps_u)
    torch.testing.assert_close(out.eps_cond, eps_c)
    torch.testing.assert_close(out.eps, eps_u + 7.5 * (eps_c - eps_u))

    counting.reset()
    score_distillation(counting, torch.rand(3, 4, 4, 3), prior.encode_prompts(["a red ball"]),
                       generator=g)
    assert counting.batches == [6]                                 # SDS: one prior call per step


def test_cfg_scale_one_is_conditional():
    prior, _, _ = two_target_prior()
    x_t, t = torch.randn(2, 3, 4, 4), torch.tensor([10, 900])
    emb = prior.encode_prompts(["a red ball"]).for_batch(2)
    out = classifier_free_guidance(prior, x_t, t, emb, 1.0)
    torch.testing.assert_close(out.eps, out.eps_cond)


# ---------------------------------------------------------------- weightings, schedules

def test_weightings_match_their_formulas():
    t = torch.tensor([0, 20, 500, 980, 999])
    for name in ("sds", "uniform", "fantasia", "lucid"):
        torch.testing.assert_close(sds_weight(name, ABAR, t).view(-1), hand_weight(name, ABAR[t]))
    torch.testing.assert_close(sds_weight("dreamfusion", ABAR, t), sds_weight("sds", ABAR, t))
    torch.testing.assert_close(sds_weight("ism", ABAR, t), sds_weight("lucid", ABAR, t))
    assert sds_weight("sds", ABAR, t).shape == (5, 1, 1, 1)


def test_timestep_range_is_dreamgaussians():
    assert timestep_range(1000) == (20, 980)
    assert timestep_range(1000, (0.5, 0.5)) == (500, 500)


def test_uniform_schedule_bounds_and_determinism():
    sched = UniformSchedule(T, (0.02, 0.98))
    a = sched(0, 4000, generator=torch.Generator().manual_seed(5))
    b = sched(17, 4000, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.dtype == torch.long
    assert int(a.min()) == 20 and int(a.max()) == 980           # both ends reached, none beyond
    assert abs(a.float().mean().item() - 500) < 15


def test_dreamgaussian_anneal_values_monotone_deterministic():
    sched = DreamGaussianAnneal(T, total_steps=500)
    ts = [sched.timestep(s) for s in range(0, 601)]
    assert ts[0] == 980 and ts[500] == 20 and ts[600] == 20     # held at min after the end
    assert ts[250] == 500                                        # round((1 - 0.5) * 1000)
    assert ts[100] == 800
    assert all(b <= a for a, b in zip(ts, ts[1:]))
    assert all(20 <= v <= 980 for v in ts)
    # linear between the clipping plateaus: steps of 2 timesteps per step (1000 / 500)
    assert all(ts[s] - ts[s + 1] == 2 for s in range(20, 480))
    batch = sched(123, 4)
    assert batch.tolist() == [sched.timestep(123)] * 4
    assert torch.equal(sched(123, 4), batch)


def test_narrowing_schedule_upper_bound_shrinks():
    sched = NarrowingSchedule(T, total_steps=100, t_range=(0.02, 0.98), t_max_final=0.5)
    ups = [sched.upper(s) for s in range(0, 121)]
    assert ups[0] == 980 and ups[100] == 500 and ups[120] == 500 and ups[50] == 740
    assert all(b <= a for a, b in zip(ups, ups[1:]))
    for step in (0, 50, 100):
        ts = sched(step, 2000, generator=torch.Generator().manual_seed(step))
        assert int(ts.min()) >= 20 and int(ts.max()) <= sched.upper(step)
        assert int(ts.max()) >= sched.upper(step) - 5
        assert torch.equal(ts, sched(step, 2000, generator=torch.Generator().manual_seed(step)))


def test_make_schedule_by_name():
    assert isinstance(make_schedule("uniform", T), UniformSchedule)
    assert isinstance(make_schedule("dreamgaussian", T, total_steps=10), DreamGaussianAnneal)
    assert isinstance(make_schedule("narrowing", T, total_steps=10, t_max_final=0.6), NarrowingSchedule)
    with pytest.raises(ValueError, match="unknown timestep schedule 'cosine'"):
        make_schedule("cosine", T)


# ---------------------------------------------------------------- view-dependent prompts

def test_view_dependent_prompts_follow_dreamfusion_rule():
    az = [0.0, 44.0, 46.0, 90.0, -90.0, 134.0, 136.0, 180.0, -170.0, 360.0]
    assert view_direction(az) == ["front", "front", "side", "side", "side", "side", "back", "back",
                                  "back", "front"]
    assert view_direction([0.0, 0.0], [70.0, 30.0]) == ["overhead", "front"]
    assert view_dependent_prompts("a lamp", [0, 180]) == ["a lamp, front view", "a lamp, back view"]


# ---------------------------------------------------------------- ISM

def test_ddim_step_inverts_and_denoises_back():
    x = torch.randn(2, 3, 4, 4)
    eps = torch.randn(2, 3, 4, 4)
    a, b = torch.tensor([0, 100]), torch.tensor([300, 900])
    torch.testing.assert_close(ddim_step(ddim_step(x, eps, a, b, ABAR), eps, b, a, ABAR), x,
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("delta_t,inv_steps", [(50, 1), (50, 3), (2000, 2)])
def test_ism_on_oracle_prior_matches_closed_form(delta_t, inv_steps):
    # With the oracle, every unconditional DDIM prediction along the inversion is the same ε_0,
    # so x_t = α_t x*_∅ + σ_t ε_0 and g = w(t) · s · (α_t / σ_t) · (x*_∅ − x*_y), for any x.
    prior, t_c, t_u = two_target_prior()
    counting = CountingPrior(prior)
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(2, 4, 4, 3, generator=gen, requires_grad=True)
    t = torch.tensor([300, 800])
    s_cfg = 7.5
    out = interval_score_matching(counting, x, prior.encode_prompts(["a red ball"]), t=t,
                                  guidance_scale=s_cfg, delta_t=delta_t, inversion_steps=inv_steps,
                                  generator=gen)
    abar = ABAR[t].view(-1, 1, 1, 1)
    expected = ((1 - abar) / abar).sqrt() * s_cfg * (abar.sqrt() / (1 - abar).sqrt()) * (t_u - t_c)
    torch.testing.assert_close(out.grad, expected.expand_as(out.grad), rtol=1e-3, atol=1e-3)
    assert out.s.tolist() == [max(v - delta_t, 0) for v in t.tolist()]
    inv_calls = 0 if delta_t >= 800 else inv_steps
    assert counting.batches == [2] * inv_calls + [2, 4]       # inversion, ε(x_s, s, ∅), one CFG call
    assert (counting.calls, counting.images) == (inv_calls + 2, 2 * inv_calls + 6)
    out.loss.backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()


def test_ism_gradient_shape_and_finite_on_resized_batch():
    prior, _, _ = two_target_prior()
    img = torch.rand(3, 7, 5, 3, requires_grad=True)
    out = interval_score_matching(prior, img, prior.encode_prompts(["a red ball"]),
                                  schedule=DreamGaussianAnneal(T, 10), step=3,
                                  generator=torch.Generator().manual_seed(0))
    assert out.grad.shape == (3, 3, 4, 4) and torch.isfinite(out.grad).all()
    assert out.t.tolist() == [700] * 3
    out.loss.backward()
    assert torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0


# ---------------------------------------------------------------- errors

def test_errors_have_clear_messages():
    prior, _, _ = two_target_prior()
    emb = prior.encode_prompts(["a red ball"])
    img = torch.rand(1, 4, 4, 3)
    with pytest.raises(ValueError, match="unknown SDS weighting 'dreamfusionn'.*'fantasia'"):
        score_distillation(prior, img, emb, weighting="dreamfusionn", t=torch.tensor([10]))
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\), got \(0.0, 0.98\)"):
        UniformSchedule(T, (0.0, 0.98))
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\)"):
        DreamGaussianAnneal(T, 10, (0.02, 1.0))
    with pytest.raises(ValueError, match="t_min <= t_max"):
        timestep_range(T, (0.9, 0.1))
    with pytest.raises(ValueError, match=r"images must be 4-D .*\[H, W, 3\]\? add a batch dim"):
        score_distillation(prior, torch.rand(4, 4, 3), emb)
    with pytest.raises(ValueError, match="3 colour channels in layout BHWC"):
        score_distillation(prior, torch.rand(1, 3, 4, 4), emb)
    with pytest.raises(ValueError, match="NaN or inf"):
        score_distillation(prior, torch.full((1, 4, 4, 3), float("nan")), emb)
    with pytest.raises(ValueError, match="noise must have the encoded shape"):
        score_distillation(prior, img, emb, noise=torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="2 prompt embeddings for a batch of 3 views"):
        score_distillation(prior, torch.rand(3, 4, 4, 3), prior.encode_prompts(["a red ball"] * 2))
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 999\]"):
        score_distillation(prior, img, emb, t=torch.tensor([1000]))
    with pytest.raises(TypeError, match="integer indices"):
        score_distillation(prior, img, emb, t=torch.tensor([0.5]))
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        score_distillation(prior, img, emb, t=torch.tensor([5]), reduction="avg")
    with pytest.raises(ValueError, match="layout must be 'BHWC' or 'BCHW'"):
        score_distillation(prior, img, emb, layout="NHWC")
    with pytest.raises(KeyError, match="no target for prompt 'a blue box'.*'a red ball'"):
        prior.encode_prompts(["a blue box"])
    with pytest.raises(ValueError, match="delta_t must be >= 1"):
        interval_score_matching(prior, img, emb, delta_t=0)


# ---------------------------------------------------------------- Stable Diffusion adapter

@pytest.fixture(scope="module")
def tiny_sd_folder(tmp_path_factory):
    from fixtures.tiny_sd import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def sd_prior(tiny_sd_folder):
    from gsbook.sds import StableDiffusionPrior

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return StableDiffusionPrior.from_pretrained(tiny_sd_folder, device="cpu", dtype=torch.float32)


def test_scheduler_alphas_cumprod_is_stable_diffusions():
    torch.testing.assert_close(scheduler_alphas_cumprod(), ABAR)


def test_stable_diffusion_sds_gradient_reaches_render_through_vae(sd_prior):
    from gsbook.sds import prepare_images

    assert sd_prior.image_size == (16, 16) and sd_prior.num_train_timesteps == 1000
    torch.testing.assert_close(sd_prior.alphas_cumprod, ABAR)
    emb = sd_prior.encode_prompts(view_dependent_prompts("a red mushroom", [0.0, 180.0]))
    assert emb.cond.shape == (2, 16, 16) and not torch.equal(emb.cond, emb.uncond)
    renders = torch.rand(2, 20, 20, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    counting = CountingPrior(sd_prior)
    out = score_distillation(counting, renders, emb, guidance_scale=7.5, t=torch.tensor([200, 800]),
                             generator=torch.Generator().manual_seed(1))
    assert counting.batches == [4]
    assert out.x.shape == (2, 4, 8, 8) and out.x.requires_grad
    (g_x,) = torch.autograd.grad(out.loss, out.x, retain_graph=True)
    torch.testing.assert_close(g_x, out.grad)                   # ∂loss/∂latents = g exactly
    out.loss.backward()
    assert renders.grad is not None and torch.isfinite(renders.grad).all()
    assert renders.grad.abs().sum() > 0
    # the render gradient is the VAE encoder's vector-Jacobian product with g
    (vjp,) = torch.autograd.grad(prepare_images(sd_prior, renders), renders, out.grad)
    torch.testing.assert_close(renders.grad, vjp, rtol=1e-4, atol=1e-6)
    assert all(not p.requires_grad for p in sd_prior.unet.parameters())


def test_stable_diffusion_ism_step(sd_prior):
    renders = torch.rand(1, 16, 16, 3, requires_grad=True)
    out = interval_score_matching(sd_prior, renders, sd_prior.encode_prompts(["a lamp"]),
                                  t=torch.tensor([500]), delta_t=100, inversion_steps=2,
                                  generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert out.grad.shape == (1, 4, 8, 8) and torch.isfinite(renders.grad).all()


def test_stable_diffusion_loads_cached_model_id_offline(tiny_sd_folder, tmp_path, monkeypatch):
    from gsbook.sds import StableDiffusionPrior

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "hub" / "models--gsbook--tiny-sd"
    shutil.copytree(tiny_sd_folder, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    prior = StableDiffusionPrior.from_pretrained("gsbook/tiny-sd", cache_dir=tmp_path / "hub")
    assert prior.image_size == (16, 16)
    with pytest.raises(FileNotFoundError, match="'gsbook/not-there' is not in the local Hugging Face cache"):
        StableDiffusionPrior.from_pretrained("gsbook/not-there", cache_dir=tmp_path / "hub")


def test_stable_diffusion_folder_without_unet_names_it(tiny_sd_folder, tmp_path):
    from gsbook.sds import StableDiffusionPrior

    broken = tmp_path / "no-unet"
    shutil.copytree(tiny_sd_folder, broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(FileNotFoundError) as err:
        StableDiffusionPrior.from_pretrained(broken)
    msg = str(err.value)
    assert str(broken) in msg and "missing unet/config.json" in msg and "vae" not in msg.split("Expected")[0]
    with pytest.raises(FileNotFoundError, match="no such pipeline folder"):
        StableDiffusionPrior.from_pretrained(tmp_path / "does-not-exist")


# ---------------------------------------------------------------- refinement (img2img)

def test_ddim_timesteps_are_stable_diffusions_leading_spacing():
    from gsbook.sds import ddim_timesteps

    assert ddim_timesteps(1000, 50)[:3] == [980, 960, 940] and ddim_timesteps(1000, 50)[-1] == 0
    assert len(ddim_timesteps(1000, 50)[int(50 * 0.8):]) == 10          # strength 0.8: the last 10 steps
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(1000, 0)


def test_refining_with_the_oracle_redraws_its_target_and_counts_the_calls():
    from gsbook.sds import refine_images

    target = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    oracle = CountingPrior(OraclePrior(target, alphas_cumprod=ABAR))
    render = torch.rand(2, 8, 8, 3, generator=torch.Generator().manual_seed(1))
    out = refine_images(oracle, render, oracle.encode_prompts(["x"]), strength=0.8, steps=50, guidance_scale=100.0,
                        generator=torch.Generator().manual_seed(2))
    assert out.shape == (2, 3, 8, 8)
    torch.testing.assert_close(out, target.expand(2, 3, 8, 8), atol=1e-4, rtol=1e-4)
    assert oracle.batches == [4] * 10                       # 10 DDIM steps, one CFG pair of 2 images each
    with pytest.raises(ValueError, match="strength"):
        refine_images(oracle, render, oracle.encode_prompts(["x"]), strength=1.0)
