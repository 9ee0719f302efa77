"""gsbook.diffusion: the 2D prior's model, conditioning, training loop (loss, resume, EMA) and sampling."""

from __future__ import annotations

import math

import pytest
import torch

from gsbook import zoo
from gsbook.diffusion import (EMPTY_CAPTION, Prior2DConfig, TextToImagePrior, caption_features, guided_noise,
                              pooled_features, sample)
from gsbook.diffusion.evaluation import random_captions
from gsbook.diffusion.training import (LAPTOP_RECIPE, TrainConfig, TrainingData, diffusion_loss, learning_rate,
                                       save_grid, train, training_batch)

TINY = Prior2DConfig(channels=(16, 16, 16), norm_groups=8)


def tiny_model(seed: int = 0) -> TextToImagePrior:
    torch.manual_seed(seed)
    return TextToImagePrior(TINY).eval()


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


def test_forward_shape_and_clear_errors():
    model = tiny_model()
    tokens, mask = caption_features(["a red ball", "a green tree with a brown trunk"])
    x = torch.randn(2, 3, 32, 32)
    assert model(x, torch.tensor([0, 999]), tokens, mask).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"x_t must be \[B, 3, 32, 32\]"):
        model(torch.randn(2, 3, 64, 64), torch.tensor([1, 2]), tokens, mask)
    with pytest.raises(ValueError, match="tokens must be"):
        model(x, torch.tensor([1, 2]), tokens[:, :, :10], mask)
    with pytest.raises(ValueError, match="mask must be"):
        model(x, torch.tensor([1, 2]), tokens, mask[:, :3])
    with pytest.raises(ValueError, match="divisible"):
        Prior2DConfig(image_size=30)


def test_padding_tokens_do_not_change_the_prediction():
    # The mask must hide padding: the same caption alone or padded beside a longer one.
    model = tiny_model()
    alone_tok, alone_mask = caption_features(["a red ball"])
    both_tok, both_mask = caption_features(["a red ball", "a green tree with a brown trunk"])
    assert both_tok.shape[1] > alone_tok.shape[1]
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([300])
    with torch.no_grad():
        a = model(x, t, alone_tok, alone_mask)
        b = model(x, t, both_tok[:1], both_mask[:1])
    assert torch.allclose(a, b, atol=1e-5)


def test_pooled_features_are_minilm_sentence_embeddings():
    from gsbook.text import encode

    feats = encode(["a red ball", "a white snowman with a black hat"])
    assert torch.allclose(pooled_features(feats.tokens, feats.mask), feats.pooled, atol=1e-5)


def test_training_batch_backgrounds_dropout_and_determinism():
    data = synthetic_data()
    x0, tokens, mask = training_batch(data, 64, 0.0, torch.Generator().manual_seed(1))
    corners = x0[:, :, 0, 0]                                   # background pixels
    assert set(corners.flatten().tolist()) == {-1.0, 1.0}      # black and white, nothing else
    assert ((corners == 1).all(1) | (corners == -1).all(1)).all()
    again = training_batch(data, 64, 0.0, torch.Generator().manual_seed(1))
    assert torch.equal(x0, again[0]) and torch.equal(tokens, again[1])
    _, dropped, dropped_mask = training_batch(data, 16, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(dropped, data.tokens[[data.empty_index] * 16])
    assert dropped_mask.sum(1).eq(2).all()                     # "" is [CLS] [SEP]


def test_min_snr_weighting_matches_its_formula():
    model = tiny_model()
    data = synthetic_data()
    x0, tokens, mask = training_batch(data, 8, 0.0, torch.Generator().manual_seed(0))
    plain = diffusion_loss(model, x0, tokens, mask, torch.Generator().manual_seed(5), min_snr_gamma=None)
    weighted = diffusion_loss(model, x0, tokens, mask, torch.Generator().manual_seed(5), min_snr_gamma=5.0)
    # Redo the draws by hand.
    g = torch.Generator().manual_seed(5)
    abar = model.alphas_cumprod
    t = torch.randint(0, len(abar), (8,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    x_t = abar[t].sqrt().view(-1, 1, 1, 1) * x0 + (1 - abar[t]).sqrt().view(-1, 1, 1, 1) * noise
    with torch.no_grad():
        per = (model(x_t, t, tokens, mask) - noise).square().mean((1, 2, 3))
    snr = abar[t] / (1 - abar[t])
    assert torch.allclose(plain, per.mean(), rtol=1e-5)
    assert torch.allclose(weighted, (per * snr.clamp(max=5) / snr).mean(), rtol=1e-5)


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
        loss = diffusion_loss(model, *training_batch(data, 16, 0.1, gen), gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10


def test_resume_continues_exactly(tmp_path):
    data = synthetic_data()
    straight, report = train(_config(4), folder=tmp_path / "a", progress=False, data=data)
    train(_config(2), folder=tmp_path / "b", progress=False, data=data)
    resumed, _ = train(_config(4), folder=tmp_path / "b", progress=False, data=data)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6), name
    assert report["steps"] == 4 and (tmp_path / "a" / "latest.pt").exists()
    assert (tmp_path / "a" / "samples-00004.png").exists()         # a sample grid per checkpoint
    fresh, _ = train(_config(4), folder=tmp_path / "b", resume=False, progress=False, data=data)
    assert torch.allclose(next(iter(fresh.state_dict().values())), next(iter(straight.state_dict().values())))


def test_returned_model_holds_the_ema_weights(tmp_path):
    data = synthetic_data()
    ema_model, _ = train(_config(4), folder=tmp_path, progress=False, data=data)
    state = torch.load(tmp_path / "latest.pt", weights_only=True)
    raw = TextToImagePrior(TINY)
    raw.load_state_dict(state["model"])
    shadow = state["ema"]["shadow_params"]
    for p, s, r in zip(ema_model.parameters(), shadow, raw.parameters()):
        assert torch.allclose(p, s)
    assert any(not torch.allclose(p, r) for p, r in zip(ema_model.parameters(), raw.parameters()))


def test_guidance_scale_extremes():
    model = tiny_model()
    tokens, mask = caption_features([EMPTY_CAPTION, "a red ball"])
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([400])
    with torch.no_grad():
        uncond = model(x, t, tokens[:1], mask[:1])
        cond = model(x, t, tokens[1:], mask[1:])
        assert torch.allclose(guided_noise(model, x, t, tokens, mask, 0.0), uncond, atol=1e-5)
        assert torch.allclose(guided_noise(model, x, t, tokens, mask, 1.0), cond, atol=1e-5)
        assert torch.allclose(guided_noise(model, x, t, tokens, mask, 3.0), uncond + 3 * (cond - uncond), atol=1e-4)


def test_sampling_is_seeded_and_in_range():
    model = tiny_model()
    captions = ["a red ball", "a blue box"]
    seed = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = sample(model, captions, steps=3, generator=seed())                 # DDPM: fresh noise every step
    assert a.shape == (2, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, sample(model, captions, steps=3, generator=seed()))
    # DDIM (η = 0) is a deterministic map of the starting noise: batching does not change it.
    c = sample(model, captions, steps=3, sampler="ddim", generator=seed())
    d = sample(model, captions, steps=3, sampler="ddim", generator=seed(), batch=1)
    assert torch.allclose(c, d, atol=1e-5) and not torch.allclose(a, c, atol=1e-3)
    with pytest.raises(ValueError, match="steps"):
        sample(model, ["a red ball"], steps=0)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(model, ["a red ball"], sampler="euler")


def test_random_captions_respect_the_split():
    from gsbook.world import parse
    from gsbook.world.captions import held_out_pairs

    held = held_out_pairs()
    for split, inside in (("train", False), ("unseen", True)):
        for c in random_captions(50, split, seed=3):
            spec = parse(c)
            assert ((spec.colour, spec.category) in held) == inside


def test_save_grid_writes_a_png(tmp_path):
    from PIL import Image

    path = save_grid(torch.rand(5, 3, 8, 8), tmp_path / "g.png", nrow=4, scale=2)
    assert Image.open(path).size == (2 * (4 * 10 + 2), 2 * (2 * 10 + 2))


def test_zoo_round_trip_and_corrupt_weights(tmp_path):
    model = tiny_model()
    zoo.save("prior2d", model, TINY.to_dict(), {"steps": 0}, "# card\n", folder=tmp_path)
    loaded = zoo.load("prior2d", folder=tmp_path)
    tokens, mask = caption_features(["a red ball"])
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([10])
    with torch.no_grad():
        assert torch.allclose(model(x, t, tokens, mask), loaded(x, t, tokens, mask), atol=5e-2)
    weights = tmp_path / "prior2d.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7] + b"garbage")
    with pytest.raises(zoo.WeightsError, match=r"prior2d\.safetensors is corrupt.*python -m gsbook\.train prior2d"):
        zoo.load("prior2d", folder=tmp_path)


def test_shipped_prior_loads_offline_and_fits_the_budget():
    model = zoo.load("prior2d")
    assert model.num_parameters < 7_000_000
    total = sum(p.stat().st_size for name in ("judge", "prior2d") for p in zoo.paths(name)[:1])
    assert total <= 15 * 2**20


def test_laptop_recipe_is_a_smaller_run_of_the_same_recipe():
    shipped, laptop = TrainConfig(), TrainConfig.laptop()
    assert (laptop.steps, laptop.batch, laptop.n_assets) == (4500, 64, 8000) == tuple(LAPTOP_RECIPE.values())
    assert laptop.steps * laptop.batch < shipped.steps * shipped.batch / 5     # a sixth of the images seen
    assert (laptop.lr, laptop.model) == (shipped.lr, shipped.model)
    assert laptop.key() != shipped.key()                                      # separate checkpoint folders
    assert TrainConfig.laptop(steps=10).steps == 10


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_shipped_prior_samples_what_the_caption_says(sampler):
    from gsbook import judge as judging

    captions = ["a red ball", "a blue box", "a green cone", "a yellow can"]
    images = sample(zoo.load("prior2d"), captions, steps=25, guidance=3.0, sampler=sampler,
                    generator=torch.Generator().manual_seed(0))
    scores = judging.accuracy(judging.load(), images, captions)
    # With ᾱ_t ≈ 1e-9 at t = 999, a clipping DDIM that starts there read 1 of these 4 categories right.
    assert scores.category >= 0.75 and scores.colour >= 0.75, scores


def test_a_long_cpu_run_warns_and_points_at_the_laptop_recipe():
    from gsbook.train import prior2d_cpu_notice

    notice = prior2d_cpu_notice(TrainConfig(), "cpu")
    assert "--laptop" in notice and "roughly 5 h" in notice
    assert prior2d_cpu_notice(TrainConfig(), "cuda") is None
    assert prior2d_cpu_notice(TrainConfig.laptop(), "cpu") is None
