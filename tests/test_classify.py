"""The Diffusion Classifier (gsbook.diffusion.classify): paired noise, the two passes, their cost,
clear errors, and the shipped 2D prior reading ShapeWorld's front views back as their captions."""

from __future__ import annotations

import pytest
import torch

from gsbook.diffusion import TextToImagePrior, caption_features
from gsbook.diffusion.classify import denoising_errors, read_caption
from gsbook.diffusion.prior2d import Prior2DConfig
from gsbook.world.categories import CATEGORIES
from gsbook.world.colours import COLOUR_NAMES


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return TextToImagePrior(Prior2DConfig(channels=(32, 32, 64), norm_groups=8)).eval()


@pytest.fixture(scope="module")
def front():
    return torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))


def test_every_caption_is_scored_on_the_same_noisy_image(small, front):
    errors = denoising_errors(small, front, ["a red ball", "a blue box", "a red ball"], trials=3, seed=5)
    assert errors.shape == (3,) and errors[0] == errors[2] != errors[1]     # the same draws: a paired comparison
    by_one = torch.stack([denoising_errors(small, front, [c], trials=3, seed=5)[0] for c in ("a red ball", "a blue box")])
    torch.testing.assert_close(errors[:2], by_one)                          # chunking changes nothing
    assert not torch.equal(denoising_errors(small, front, ["a red ball"], trials=3, seed=6), errors[:1])
    big = torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(0))
    assert denoising_errors(small, big, ["a red ball"], trials=1).shape == (1,)   # resized to the prior's 32²


def test_errors_are_the_mean_eps_miss_at_the_stated_timesteps(small, front):
    from gsbook.diffusion.noise import add_noise

    got = denoising_errors(small, front, ["a red ball"], trials=2, t_range=(200, 600), seed=3)
    g = torch.Generator().manual_seed(3)
    x0 = front.permute(2, 0, 1)[None] * 2 - 1
    miss = []
    for t in (200, 600):
        eps = torch.randn(x0.shape, generator=g)
        tt = torch.tensor([t])
        x_t = add_noise(x0, eps, tt, small.alphas_cumprod)
        tokens, mask = caption_features(["a red ball"])
        with torch.no_grad():
            miss.append((small(x_t, tt, tokens, mask) - eps).square().mean())
    torch.testing.assert_close(got[0], torch.stack(miss).mean())


def test_read_caption_runs_two_passes_and_counts_them(small, front):
    reading = read_caption(small, front, trials=1, shortlist=2)
    assert len(reading.shortlist) == 2 and reading.shortlist[0][1] <= reading.shortlist[1][1]
    parts = sum(len(COLOUR_NAMES) - 1 if CATEGORIES[c.split()[-1]].part else 1 for c, _ in reading.shortlist)
    assert reading.evaluations == len(COLOUR_NAMES) * len(CATEGORIES) + parts
    shortlisted = {c for c, _ in reading.shortlist}
    head = reading.caption.split(" with ")[0]
    assert head in shortlisted                                              # pass two only refines pass one's picks
    assert (reading.spec.part_colour is not None) == bool(CATEGORIES[reading.spec.category].part)


def test_clear_errors(small, front):
    with pytest.raises(ValueError, match="trials must be at least 1"):
        denoising_errors(small, front, ["a red ball"], trials=0)
    with pytest.raises(ValueError, match="no captions"):
        denoising_errors(small, front, [])
    with pytest.raises(ValueError, match="t_range must lie in"):
        denoising_errors(small, front, ["a red ball"], t_range=(500, 1000))
    with pytest.raises(ValueError, match=r"image must be \[H, W, 3\]"):
        denoising_errors(small, front.permute(2, 0, 1), ["a red ball"])
    with pytest.raises(ValueError, match="shortlist must be at least 1"):
        read_caption(small, front, shortlist=0)


@pytest.mark.parametrize("truth", ["a red ball", "a green mushroom with a white stem"])
def test_the_shipped_prior_reads_a_front_view_as_its_caption(truth):
    from gsbook.methods.feedforward import ground_truth_views

    front = ground_truth_views(truth, seed=2, size=32)[0]
    reading = read_caption(TextToImagePrior.from_shipped(), front, trials=4)
    assert reading.caption == truth, reading
