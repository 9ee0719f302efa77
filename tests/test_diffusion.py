"""gsbook.diffusion: the noise maths, the 2D prior's model and conditioning, its loss, and sampling."""

from __future__ import annotations

import pytest
import torch

from gsbook.diffusion import (EMPTY_CAPTION, Prior2DConfig, TextToImagePrior, add_noise, alpha_sigma, caption_features,
                              ddim_step, diffusion_loss, guide, guided_noise, pooled_features, predicted_x0, sample)
from gsbook.judge import Judge, accuracy
from gsbook.zoo import WeightsError, weight_paths

TINY = Prior2DConfig(channels=(16, 16, 16), norm_groups=8)


def tiny_model(seed: int = 0) -> TextToImagePrior:
    torch.manual_seed(seed)
    return TextToImagePrior(TINY).eval()


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


def test_min_snr_weighting_matches_its_formula():
    model = tiny_model()
    x0 = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    tokens, mask = caption_features(["a red box", "a blue ball"] * 4)
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


def test_shipped_round_trip_and_corrupt_weights(tmp_path):
    model = tiny_model()
    model.save_shipped({"steps": 0}, "# card\n", folder=tmp_path)
    loaded = TextToImagePrior.from_shipped("cpu", folder=tmp_path)
    assert loaded.config == TINY
    tokens, mask = caption_features(["a red ball"])
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([10])
    with torch.no_grad():
        assert torch.allclose(model(x, t, tokens, mask), loaded(x, t, tokens, mask), atol=5e-2)
    weights = tmp_path / "prior2d.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7] + b"garbage")
    with pytest.raises(WeightsError, match=r"prior2d\.safetensors is corrupt.*python -m gsbook\.train prior2d"):
        TextToImagePrior.from_shipped(folder=tmp_path)


def test_shipped_prior_loads_offline_with_its_checksum_and_fits_the_budget():
    model = TextToImagePrior.from_shipped()
    assert model.num_parameters < 7_000_000
    total = sum(weight_paths(name)[0].stat().st_size for name in ("judge", "prior2d"))
    assert total <= 15 * 2**20


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_shipped_prior_samples_what_the_caption_says(sampler):
    captions = ["a red ball", "a blue box", "a green cone", "a yellow can"]
    images = sample(TextToImagePrior.from_shipped(), captions, steps=25, guidance=3.0, sampler=sampler,
                    generator=torch.Generator().manual_seed(0))
    scores = accuracy(Judge.from_shipped(), images, captions)
    # With ᾱ_t ≈ 1e-9 at t = 999, a clipping DDIM that starts there read 1 of these 4 categories right.
    assert scores.category >= 0.75 and scores.colour >= 0.75, scores


def test_noise_maths_forward_x0_and_ddim():
    abar = torch.linspace(0.999, 0.01, 1000)
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    t = torch.tensor([10, 700])
    a, s = alpha_sigma(abar, t)
    assert a.shape == (2, 1, 1, 1) and torch.allclose(a**2 + s**2, torch.ones(2, 1, 1, 1))
    x_t = add_noise(x, eps, t, abar)
    torch.testing.assert_close(x_t, a * x + s * eps)
    torch.testing.assert_close(predicted_x0(x_t, eps, t, abar), x, rtol=1e-4, atol=1e-4)   # the true ε gives x back
    # one DDIM move with the true ε lands on the same path at the other timestep
    torch.testing.assert_close(ddim_step(x_t, eps, t, torch.tensor([300, 5]), abar),
                               add_noise(x, eps, torch.tensor([300, 5]), abar), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(guide(torch.zeros(2), torch.ones(2), 7.5), torch.full((2,), 7.5))
    with pytest.raises(ValueError, match="noise"):
        add_noise(x, eps[:1], t, abar)
