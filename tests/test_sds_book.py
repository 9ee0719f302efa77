"""The book's prior behind the SDS protocol (gsbook.sds.BookPrior) and the 2D SDS bench (gsbook.methods.sds2d)."""

from __future__ import annotations

import pytest
import torch

from gsbook.diffusion import Prior2DConfig, TextToImagePrior, caption_features
from gsbook.methods import ImageSDS, ImageSDSConfig, distill_images
from gsbook.sds import BookPrior, DiffusionPrior, interval_score_matching, pack_text, score_distillation, unpack_text
from gsbook.world import PromptError


@pytest.fixture(scope="module")
def prior() -> BookPrior:
    torch.manual_seed(0)
    return BookPrior(TextToImagePrior(Prior2DConfig(channels=(16, 16, 16), norm_groups=8)))


def test_book_prior_speaks_the_protocol(prior):
    assert isinstance(prior, DiffusionPrior)
    assert prior.image_size == (32, 32) and prior.num_train_timesteps == 1000
    assert prior.alphas_cumprod[0] > 0.99 and prior.alphas_cumprod[-1] < 1e-3     # cosine schedule


def test_prompt_embeddings_pack_tokens_and_mask(prior):
    emb = prior.encode_prompts(["a red ball", "a green tree with a brown trunk"])
    tokens, mask = caption_features(["a red ball", "a green tree with a brown trunk"])
    L = tokens.shape[1]
    assert emb.cond.shape == emb.uncond.shape == (2, L, 385)
    got_tokens, got_mask = unpack_text(emb.cond)
    assert torch.equal(got_mask, mask) and torch.allclose(got_tokens, tokens)
    assert unpack_text(emb.uncond)[1].sum(1).tolist() == [2, 2]                   # "" = [CLS] [SEP]
    t, m = unpack_text(pack_text(tokens, mask))
    assert torch.equal(t, tokens) and torch.equal(m, mask)


def test_vocabulary_check(prior):
    with pytest.raises(PromptError, match="dragon"):
        prior.encode_prompts(["a red dragon"])
    prior.encode_prompts(["a red ball, side view"])          # view suffixes pass
    loose = BookPrior(prior.model, check_vocabulary=False)
    assert loose.encode_prompts(["a red dragon"]).cond.shape[0] == 1
    with pytest.raises(ValueError, match="negative"):
        prior.encode_prompts(["a red ball"], negative=["", ""])


def test_predict_noise_is_the_model(prior):
    emb = prior.encode_prompts(["a blue box"])
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([250])
    tokens, mask = caption_features(["a blue box"])
    with torch.no_grad():
        assert torch.allclose(prior.predict_noise(x, t, emb.cond), prior.model(x, t, tokens, mask), atol=1e-6)


def test_sds_gradient_on_pixels_is_twice_g(prior):
    # x = 2·rgb − 1, so ∂loss/∂rgb = 2 g exactly (no resize at 32²).
    rgb = torch.rand(2, 3, 32, 32, requires_grad=True)
    out = score_distillation(prior, rgb, prior.encode_prompts(["a red ball"]), guidance_scale=7.5,
                             layout="BCHW", generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.allclose(rgb.grad, 2 * out.grad, atol=1e-6)
    assert torch.allclose(out.grad, out.weight * (out.eps - out.noise), atol=1e-6)


def test_ism_runs_with_the_book_prior(prior):
    rgb = torch.rand(1, 32, 32, 3, requires_grad=True)
    out = interval_score_matching(prior, rgb, prior.encode_prompts(["a red ball"]),
                                  generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0


SMALL = ImageSDSConfig(steps=4, n_gaussians=8, resolution=16, batch=2)


def test_image_sds_moves_the_gaussians_and_is_reproducible(prior):
    run = ImageSDS(prior, "a red ball", SMALL, snapshot_every=2)
    start = run.gaussians.colors.detach().clone()
    image = run.run()
    assert image.shape == (16, 16, 3) and 0 <= image.min() and image.max() <= 1
    assert run.iteration == 4 and len(run.history) == 4 and sorted(run.snapshots) == [0, 2, 4]
    assert not torch.allclose(run.gaussians.colors, start)
    # DreamGaussian's anneal: t falls over the run.
    ts = [h["t"] for h in run.history]
    assert ts == sorted(ts, reverse=True) and ts[0] > ts[-1]
    again = ImageSDS(prior, "a red ball", SMALL).run()
    assert torch.allclose(image, again)
    run.reset()
    assert run.iteration == 0 and torch.allclose(run.gaussians.colors, start)


def test_image_sds_variants_and_errors(prior):
    images, seconds = distill_images(prior, ["a red ball", "a blue box"], SMALL, method="ism", steps=2)
    assert images.shape == (2, 16, 16, 3) and len(seconds) == 2
    with pytest.raises(ValueError, match="method"):
        ImageSDSConfig(method="vsd")
    with pytest.raises(ValueError, match="unknown timestep schedule"):
        ImageSDS(prior, "a red ball", ImageSDSConfig(schedule="cosine", steps=2, n_gaussians=4, resolution=16))
    with pytest.raises(PromptError):
        ImageSDS(prior, "a red dragon", SMALL)
