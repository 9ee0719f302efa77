"""gsbook.recipes: the prior's and the judge's recipes — batches, schedules, the loop, resume, EMA, profiles."""

from __future__ import annotations

import math

import pytest
import torch

from gsbook.diffusion import EMPTY_CAPTION, Prior2DConfig, TextToImagePrior, caption_features, diffusion_loss
from gsbook.recipes import (LAPTOP_RECIPE, JudgeRecipe, TrainConfig, TrainingData, judge_batch, learning_rate,
                            prior_batch, train_prior2d)

TINY = Prior2DConfig(channels=(16, 16, 16), norm_groups=8)


def synthetic_data(n: int = 12) -> TrainingData:
    """Red squares on white (caption 0) and blue discs (caption 1), with real MiniLM features."""
    captions = ["a red box", "a blue ball", EMPTY_CAPTION]
    rgb = torch.full((n, 32, 32, 3), 255, dtype=torch.uint8)
    alpha = torch.zeros(n, 32, 32, dtype=torch.uint8)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    disc = (yy - 16) ** 2 + (xx - 16) ** 2 < 81
    square = (yy - 16).abs().le(8) & (xx - 16).abs().le(8)
    index = torch.arange(n) % 2
    for i in range(n):
        m = square if index[i] == 0 else disc
        rgb[i][m] = torch.tensor([230, 20, 20] if index[i] == 0 else [20, 20, 230], dtype=torch.uint8)
        alpha[i][m] = 255
    tokens, mask = caption_features(captions)
    return TrainingData(rgb, alpha, index, captions, tokens, mask)


def test_prior_batch_backgrounds_dropout_and_determinism():
    data = synthetic_data()
    x0, tokens, mask = prior_batch(data, 64, 0.0, torch.Generator().manual_seed(1))
    corners = x0[:, :, 0, 0]                                   # background pixels
    assert set(corners.flatten().tolist()) == {-1.0, 1.0}      # black and white, nothing else
    assert ((corners == 1).all(1) | (corners == -1).all(1)).all()
    again = prior_batch(data, 64, 0.0, torch.Generator().manual_seed(1))
    assert torch.equal(x0, again[0]) and torch.equal(tokens, again[1])
    _, dropped, dropped_mask = prior_batch(data, 16, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(dropped, data.tokens[[data.empty_index] * 16])
    assert dropped_mask.sum(1).eq(2).all()                     # "" is [CLS] [SEP]


def test_learning_rate_warms_up_then_decays_to_the_floor():
    c = TrainConfig(steps=1000, lr=1e-3, warmup=100, min_lr_ratio=0.1)
    assert math.isclose(learning_rate(c, 0), 1e-5)
    assert math.isclose(learning_rate(c, 99), 1e-3)
    assert learning_rate(c, 500) < learning_rate(c, 200)
    assert math.isclose(learning_rate(c, 1000), 1e-4, rel_tol=1e-6)


def _config(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch=8, lr=2e-3, warmup=2, checkpoint_every=2, model=TINY)


def test_training_reduces_the_loss(tmp_path):
    data = synthetic_data()
    torch.manual_seed(0)
    model = TextToImagePrior(TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        gen = torch.Generator().manual_seed(step)
        loss = diffusion_loss(model, *prior_batch(data, 16, 0.1, gen), gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10


def test_resume_continues_exactly(tmp_path):
    data = synthetic_data()
    straight, report = train_prior2d(_config(4), folder=tmp_path / "a", progress=False, data=data)
    train_prior2d(_config(2), folder=tmp_path / "b", progress=False, data=data)
    resumed, _ = train_prior2d(_config(4), folder=tmp_path / "b", progress=False, data=data)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6), name
    assert report["steps"] == 4 and (tmp_path / "a" / "latest.pt").exists()
    assert (tmp_path / "a" / "samples-00004.png").exists()         # a sample grid per checkpoint
    fresh, _ = train_prior2d(_config(4), folder=tmp_path / "b", resume=False, progress=False, data=data)
    assert torch.allclose(next(iter(fresh.state_dict().values())), next(iter(straight.state_dict().values())))


def test_returned_model_holds_the_ema_weights(tmp_path):
    data = synthetic_data()
    ema_model, _ = train_prior2d(_config(4), folder=tmp_path, progress=False, data=data)
    state = torch.load(tmp_path / "latest.pt", weights_only=True)
    raw = TextToImagePrior(TINY)
    raw.load_state_dict(state["model"])
    shadow = state["ema"]["shadow_params"]
    for p, s, r in zip(ema_model.parameters(), shadow, raw.parameters()):
        assert torch.allclose(p, s)
    assert any(not torch.allclose(p, r) for p, r in zip(ema_model.parameters(), raw.parameters()))


def test_each_profile_has_its_recipe_and_the_laptop_one_is_a_smaller_run_of_the_shipped_one():
    shipped, laptop = TrainConfig.for_profile("gpu"), TrainConfig.for_profile("cpu")
    assert shipped == TrainConfig() and laptop == TrainConfig.laptop()
    assert (laptop.steps, laptop.batch, laptop.n_assets) == (4500, 64, 8000) == tuple(LAPTOP_RECIPE.values())
    assert laptop.steps * laptop.batch < shipped.steps * shipped.batch / 5     # a sixth of the images seen
    assert (laptop.lr, laptop.model) == (shipped.lr, shipped.model)
    assert laptop.key() != shipped.key()                                      # separate checkpoint folders
    assert TrainConfig.laptop(steps=10).steps == 10
    smoke = TrainConfig.for_profile("ci")
    assert smoke.steps * smoke.batch < laptop.steps * laptop.batch / 100 and smoke.model == shipped.model
    assert JudgeRecipe.for_profile("cpu") == JudgeRecipe.for_profile("gpu") == JudgeRecipe()
    assert JudgeRecipe.for_profile("ci").steps < JudgeRecipe().steps / 10
    with pytest.raises(KeyError):
        TrainConfig.for_profile("tpu")


def test_a_long_cpu_run_warns_and_points_at_the_laptop_recipe():
    from gsbook.train import prior2d_cpu_notice

    notice = prior2d_cpu_notice(TrainConfig(), "cpu")
    assert "--profile cpu" in notice and "roughly 5 h" in notice
    assert prior2d_cpu_notice(TrainConfig(), "cuda") is None
    assert prior2d_cpu_notice(TrainConfig.laptop(), "cpu") is None


def test_judge_batches_put_renders_on_three_backgrounds_and_blur_half():
    g = torch.Generator().manual_seed(0)
    rgb = torch.ones(64, 16, 16, 3)                    # empty renders on white …
    alpha = torch.zeros(64, 16, 16)                    # … so every pixel is background
    x = judge_batch(rgb, alpha, g)
    assert x.shape == (64, 3, 16, 16)
    assert set(x[:, 0, 0, 0].tolist()) == {0.0, 0.5, 1.0}
    again = judge_batch(rgb, alpha, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)


def test_the_train_command_picks_the_profile_s_recipe(monkeypatch):
    import gsbook.train as train_cli

    seen = {}
    monkeypatch.setitem(train_cli.RECIPES, "prior2d", lambda args: seen.update(vars(args)))
    monkeypatch.setenv("GSBOOK_PROFILE", "ci")
    train_cli.main(["prior2d"])
    assert seen["profile"] == "ci" and seen["device"] == "cpu"
    train_cli.main(["prior2d", "--laptop"])
    assert seen["profile"] == "cpu"
    with pytest.raises(SystemExit):
        train_cli.main(["prior2d", "--laptop", "--profile", "gpu"])
