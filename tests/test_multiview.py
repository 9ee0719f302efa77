"""The multi-view prior: built from the 2D prior, views that see each other, cameras, the image
condition, the sampler, saving; and its recipe's batches."""

from __future__ import annotations

import pytest
import torch

from gsbook.diffusion import TextToImagePrior, caption_features
from gsbook.diffusion.multiview import (MV_AZIMUTHS, MultiViewPrior, MultiViewPriorConfig, camera_features,
                                        multiview_loss, sample_views)
from gsbook.diffusion.prior2d import Prior2DConfig

SMALL = Prior2DConfig(channels=(32, 32, 64), norm_groups=8)


@pytest.fixture(scope="module")
def prior2d():
    torch.manual_seed(0)
    model = TextToImagePrior(SMALL).eval()
    with torch.no_grad():                       # a trained-looking model, so zero-init tricks can show
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def text():
    return caption_features(["a red ball", "a blue box"])


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 3, 32, 32, generator=g), torch.tensor([700, 200])


def test_without_cross_view_attention_it_is_the_2d_prior_view_by_view(prior2d, text):
    model = MultiViewPrior.from_prior2d(prior2d, cross_view=False).eval()
    x, t = inputs()
    tokens, mask = text
    with torch.no_grad():
        mv = model(x, t, tokens, mask)
        ref = prior2d(x.flatten(0, 1), t.repeat_interleave(4), tokens.repeat_interleave(4, 0),
                      mask.repeat_interleave(4, 0))
    torch.testing.assert_close(mv.flatten(0, 1), ref, atol=1e-5, rtol=0)


def test_views_see_each_other_only_through_cross_view_attention(prior2d, text):
    x, t = inputs()
    x2 = x.clone()
    x2[:, 3] += 1.0                                     # change the left view only
    for cross, moves in ((True, True), (False, False)):
        model = MultiViewPrior.from_prior2d(prior2d, cross_view=cross).eval()
        with torch.no_grad():
            change = (model(x2, t, *text)[:, 0] - model(x, t, *text)[:, 0]).abs().max()
        assert (change > 1e-3) == moves, (cross, change)
    with torch.no_grad():                               # objects of a batch never mix
        model = MultiViewPrior.from_prior2d(prior2d).eval()
        x3 = x.clone()
        x3[1] += 1.0
        torch.testing.assert_close(model(x3, t, *text)[0], model(x, t, *text)[0], atol=1e-5, rtol=0)


def test_cameras_and_the_image_start_silent_and_then_matter(prior2d, text):
    model = MultiViewPrior.from_prior2d(prior2d).eval()
    x, t = inputs()
    cond = torch.rand_like(x)
    known = torch.tensor([[True, False, False, False]] * 2)
    with torch.no_grad():
        plain = model(x, t, *text)
        torch.testing.assert_close(model(x, t, *text, cond, known), plain)             # zero-initialised
        torch.testing.assert_close(model(x, t, *text, cond, torch.zeros_like(known)), plain)
        for p in (model.camera[2].weight, model.base.unet.conv_in.weight):
            p.add_(0.05 * torch.randn_like(p))
        assert not torch.allclose(model(x, t, *text, cond, known), model(x, t, *text), atol=1e-4)
        # a view's image counts only where the mask says it is known
        torch.testing.assert_close(model(x, t, *text, cond, torch.zeros_like(known)), model(x, t, *text))
    feats = camera_features(torch.tensor(MV_AZIMUTHS), torch.zeros(4))
    torch.testing.assert_close(feats[:, :2], torch.tensor([[0.0, 1], [1, 0], [0, -1], [-1, 0]]), atol=1e-6, rtol=0)


def test_loss_trains_every_new_part(prior2d, text):
    model = MultiViewPrior.from_prior2d(prior2d)
    x0 = torch.rand(2, 4, 3, 32, 32) * 2 - 1
    loss = multiview_loss(model, x0, *text, torch.tensor([[True, False, False, False]] * 2),
                          torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.camera[2].weight.grad.abs().sum() > 0
    c_img = 12
    assert model.base.unet.conv_in.weight.grad[:, c_img:].abs().sum() > 0    # the image and mask inputs


def test_sampler_returns_four_views_and_keeps_the_given_front_view(prior2d):
    model = MultiViewPrior.from_prior2d(prior2d).eval()
    views = sample_views(model, ["a red ball"], steps=3, generator=torch.Generator().manual_seed(0))
    assert views.shape == (1, 4, 32, 32, 3) and 0 <= views.min() and views.max() <= 1
    again = sample_views(model, ["a red ball"], steps=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(views, again)
    front = torch.rand(1, 32, 32, 3)
    with_image = sample_views(model, [""], images=front, steps=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(with_image[:, 0], front)
    with pytest.raises(ValueError, match=r"images must be \[B=1, 32, 32, 3\]"):
        sample_views(model, ["a red ball"], images=torch.rand(1, 64, 64, 3), steps=2)
    with pytest.raises(ValueError, match="sampler"):
        sample_views(model, ["a red ball"], steps=2, sampler="euler")


def test_shipped_files_round_trip(prior2d, tmp_path):
    model = MultiViewPrior.from_prior2d(prior2d).eval()
    with torch.no_grad():
        model.camera[2].weight.add_(0.1)
    model.save_shipped({"recipe": "test"}, "# card", folder=tmp_path, half=False)
    loaded = MultiViewPrior.from_shipped(device="cpu", folder=tmp_path)
    assert loaded.config.to_dict() == model.config.to_dict() == MultiViewPriorConfig(base=SMALL).to_dict()
    x, t = inputs()
    tokens, mask = caption_features(["a red ball", "a blue box"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, t, tokens, mask), model(x, t, tokens, mask))
    with pytest.raises(ValueError, match="4 views"):
        MultiViewPriorConfig(views=6)


def test_recipe_batches_drop_captions_and_give_front_views():
    from gsbook.recipes.prior_mv import MultiViewData, PriorMVRecipe, multiview_batch

    tokens, mask = caption_features(["a red ball", ""])
    data = MultiViewData(torch.randint(0, 256, (10, 4, 32, 32, 3), dtype=torch.uint8), torch.zeros(10, dtype=torch.long),
                         ["a red ball", ""], tokens, mask)
    recipe = PriorMVRecipe(batch=2000, caption_dropout=0.25, image_condition=0.5)
    x0, tok, msk, known = multiview_batch(data, recipe, torch.Generator().manual_seed(0))
    assert x0.shape == (2000, 4, 3, 32, 32) and -1 <= x0.min() and x0.max() <= 1
    dropped = (msk.sum(1) == mask[1].sum()).float().mean()
    assert 0.2 < dropped < 0.3
    assert 0.45 < known[:, 0].float().mean() < 0.55 and not known[:, 1:].any()


# --- §3's view-count study: real views completed by the prior, a second pass turned by 45° ---------------
def test_rotate_about_up_turns_the_scene_the_way_azimuth_grows():
    from gsbook.cameras import four_views
    from gsbook.images import psnr
    from gsbook.methods.feedforward import rotate_about_up
    from gsbook.render import render
    from gsbook.world import make_asset

    g = make_asset("a red chair with blue legs", 3).gaussians()
    cams = lambda offset: four_views(0.0, width=24, height=24, azimuth_offset_deg=offset, device="cpu")  # noqa: E731
    seen = render(g, cams(0.0)).image
    # turned by +45° and seen from cameras turned by +45°: exactly the original views
    torch.testing.assert_close(render(rotate_about_up(g, 45.0), cams(45.0)).image, seen, atol=2e-4, rtol=0)
    assert psnr(render(rotate_about_up(g, -45.0), cams(45.0)).image, seen).min() < 25     # the other way is wrong
    back = rotate_about_up(rotate_about_up(g, 30.0), -30.0)
    torch.testing.assert_close(back.means, g.means, atol=1e-5, rtol=0)
    torch.testing.assert_close(back.covariances, g.covariances, atol=1e-6, rtol=0)


def test_complete_views_keeps_the_real_views_and_draws_the_rest(prior2d):
    from gsbook.methods.feedforward import FeedForwardConfig, complete_views, draw_views

    prior = MultiViewPrior.from_prior2d(prior2d).eval()
    real = torch.rand(4, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    config = FeedForwardConfig(sampler_steps=2)
    drawn = draw_views(prior, real[0], "a red ball", config)
    assert drawn.shape == (4, 32, 32, 3)
    views = complete_views(prior, real, (0, 2), "a red ball", config, drawn=drawn)
    assert torch.equal(views[[0, 2]], real[[0, 2]]) and not torch.equal(views[1], real[1])
    again = complete_views(prior, real, (0, 2), "a red ball", config)          # the same draw without the cache
    torch.testing.assert_close(again, views)
    assert torch.equal(complete_views(prior, real, (0, 1, 2, 3)), real)
    with pytest.raises(ValueError, match="must include the front view"):
        complete_views(prior, real, (1, 2))


def test_front_end_picks_its_sampler_by_whether_there_is_a_caption(prior2d, monkeypatch):
    from gsbook.diffusion import multiview
    from gsbook.methods.feedforward import FeedForwardConfig, draw_views

    config = FeedForwardConfig()
    assert (config.sampler, config.image_sampler) == ("ddpm", "ddim")
    assert config.sampler_for("a red ball") == "ddpm" and config.sampler_for("") == config.sampler_for("  ") == "ddim"
    with pytest.raises(ValueError, match="unknown image_sampler 'euler'"):
        FeedForwardConfig(image_sampler="euler")
    with pytest.raises(ValueError, match="unknown sampler"):
        FeedForwardConfig(sampler="heun")
    used = []
    real = multiview.sample_views
    monkeypatch.setattr(multiview, "sample_views", lambda *a, **k: used.append(k["sampler"]) or real(*a, **k))
    prior = MultiViewPrior.from_prior2d(prior2d).eval()
    front = torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(3))
    for caption in ("a red ball", ""):                  # caption_trials=0: "" is the image alone
        draw_views(prior, front, caption, FeedForwardConfig(sampler_steps=1, caption_trials=0))
    assert used == ["ddpm", "ddim"]


def test_image_mode_reads_a_caption_unless_given_one_or_told_not_to(prior2d, monkeypatch):
    from gsbook.diffusion import multiview
    from gsbook.diffusion.classify import read_caption
    from gsbook.methods import feedforward
    from gsbook.methods.feedforward import FeedForwardConfig, caption_for, draw_views

    front = torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(4))
    config = FeedForwardConfig(sampler_steps=1, caption_trials=1)
    read = read_caption(prior2d, front, trials=1, seed=config.seed).caption
    assert caption_for(front, "", config, reader=prior2d) == read != ""
    assert caption_for(front, "a blue box", config, reader=None) == "a blue box"      # given: no reader loaded
    assert caption_for(front, "", FeedForwardConfig(caption_trials=0), reader=None) == ""
    with pytest.raises(ValueError, match="caption_trials must be ≥ 0"):
        FeedForwardConfig(caption_trials=-1)
    with pytest.raises(ValueError, match="guidance must be ≥ 0"):
        FeedForwardConfig(guidance=-1.0)
    seen = []
    real = multiview.sample_views
    monkeypatch.setattr(multiview, "sample_views", lambda p, c, **k: seen.append((c, k["sampler"])) or real(p, c, **k))
    prior = MultiViewPrior.from_prior2d(prior2d).eval()
    draw_views(prior, front, "", config, reader=prior2d)
    assert seen == [([read], "ddpm")]                 # the read caption, drawn as a caption is
    from gsbook.methods.lgm import LGM, LGMConfig
    model = LGM(LGMConfig(down_channels=(16, 16, 16, 16), up_channels=(16, 16, 16), norm_groups=4)).eval()
    result = feedforward.feedforward_text_to_3d(model, prior, "", config, image=front[::2, ::2], reader=prior2d)
    assert result.caption == read_caption(prior2d, front[::2, ::2], trials=1).caption and "read" in result.seconds
    assert feedforward.feedforward_text_to_3d(model, prior, "a blue box", config, image=front[::2, ::2]).caption \
        == "a blue box"


def test_reconstruct_from_views_counts_passes_and_shares_one_draw(prior2d, monkeypatch):
    from gsbook.methods import feedforward
    from gsbook.methods.feedforward import FeedForwardConfig, reconstruct_from_views
    from gsbook.methods.lgm import LGM, LGMConfig

    prior = MultiViewPrior.from_prior2d(prior2d).eval()
    model = LGM(LGMConfig(down_channels=(16, 16, 16, 16), up_channels=(16, 16, 16), norm_groups=4)).eval()
    gen = torch.Generator().manual_seed(2)
    real = {0.0: torch.rand(4, 64, 64, 3, generator=gen), 45.0: torch.rand(4, 64, 64, 3, generator=gen)}
    draws = []
    real_draw = feedforward.draw_views
    monkeypatch.setattr(feedforward, "draw_views", lambda *a, **k: draws.append(1) or real_draw(*a, **k))
    cache, config = {}, FeedForwardConfig(sampler_steps=1, caption_trials=0)
    sizes = {n: len(reconstruct_from_views(model, prior, real, n, config=config, drawn=cache)) for n in (1, 2, 4, 6, 8)}
    assert sizes == {1: 4096, 2: 4096, 4: 4096, 6: 8192, 8: 8192}
    assert len(draws) == 2 and set(cache) == {0.0, 45.0}            # one draw per set of four, reused
    with torch.no_grad():                                           # four real views: no prior involved at all
        four = reconstruct_from_views(model, None, real, 4)
    torch.testing.assert_close(four.means, feedforward.reconstruct(model, real[0.0]).means)
    with pytest.raises(ValueError, match="n_views must be one of"):
        reconstruct_from_views(model, prior, real, 5)
    with pytest.raises(ValueError, match="azimuth offset 45"):
        reconstruct_from_views(model, prior, {0.0: real[0.0]}, 6)


def test_prior_mv_card_states_each_time_and_every_score():
    from dataclasses import asdict

    from gsbook.judge import Scores
    from gsbook.recipes.prior_mv import PriorMVRecipe, prior_mv_card

    report = {**asdict(PriorMVRecipe()), "parameters": 1234, "captions": 5, "wall_time_s": 2427.4, "data_time_s": 6.0,
              "eval_time_s": 311.0, "loss_every_100": [0.02, 0.01], "hardware": "a test machine"}
    scores = {"text/seen": Scores(0.84, 0.935, 0.78, 0.75, 200), "image/unseen (views 2-4)": Scores(0.9, 0.927, 0.87, 0.8, 150)}
    card = prior_mv_card(report, scores, total_s=1090.9, grid="grid.png")
    assert "40.5 min of training (summed over resumed runs)" in card and "5.2 min of evaluation" in card
    assert "| text/seen | 84.0% | 93.5% | 78.0% | 200 |" in card and "a test machine" in card
    assert "stage two" not in card.lower()
    assert "Reproduce: `python -m gsbook.train prior_mv` (seed 0;" in card
    flagged = prior_mv_card({**report, "command": "python -m gsbook.train prior_mv --profile gpu --steps 2500"}, scores,
                            total_s=1090.9, grid="grid.png")
    assert "Reproduce: `python -m gsbook.train prior_mv --profile gpu --steps 2500` (seed 0;" in flagged, \
        "the card names the flags the weights were trained with"
    two = {**report, "refine_steps": 1000, "refine": {"wall_time_s": 1200.0, "loss_every_100": [0.015, 0.014]},
           "refine_note": "Stage two started from the shipped weights."}
    card = prior_mv_card(two, scores, total_s=2290.9, grid="grid.png")
    assert "Then stage two, from those EMA weights: 1000 steps at lr 0.0001" in card
    assert "50% also lose their caption" in card and "Stage two 20.0 min; ε-MSE by 100 steps: 0.015, 0.014." in card
    assert "Stage two started from the shipped weights." in card


def test_key_background_puts_the_object_on_white():
    from gsbook.methods.feedforward import key_background

    gen = torch.Generator().manual_seed(0)
    views = (0.6 + 0.03 * torch.randn(2, 4, 32, 32, 3, generator=gen)).clamp(0, 1)     # noisy grey backgrounds
    views[..., 10:22, 8:20, :] = torch.tensor([0.8, 0.1, 0.1])                        # a red square
    keyed = key_background(views)
    assert keyed.shape == views.shape
    background = torch.ones(32, 32, dtype=torch.bool)
    background[6:26, 4:24] = False                                                     # well away from the square
    back = keyed[..., background, :]
    assert back.mean() > 0.99 and (back.amin(-1) > 0.97).float().mean() > 0.98, "the background becomes white"
    torch.testing.assert_close(keyed[..., 10:22, 8:20, :], views[..., 10:22, 8:20, :])  # the object stays
    white = torch.ones(4, 32, 32, 3)
    torch.testing.assert_close(key_background(white), white)                           # nothing to key out


def test_recenter_views_frames_each_object_as_lgm_does():
    from gsbook.methods.feedforward import SHAPEWORLD_BORDER, recenter_views

    views = torch.ones(1, 4, 32, 32, 3)
    views[0, 0, 2:26, 4:16] = torch.tensor([0.9, 0.1, 0.1])        # tall red bar, too large and off centre
    views[0, 1, 20:26, 20:26] = torch.tensor([0.1, 0.1, 0.9])      # small blue square in a corner
    out = recenter_views(views, size=64)
    assert out.shape == (1, 4, 64, 64, 3)

    def box(view):
        mask = (1 - view).amax(-1) > 0.1
        r, c = mask.any(-1).nonzero(), mask.any(-2).nonzero()
        return int(r[0]), int(r[-1]), int(c[0]), int(c[-1])

    span = round((1 - 2 * SHAPEWORLD_BORDER) * 64)                  # 38 of 64 pixels
    for j in (0, 1):                                                 # each view on its own: the largest side spans 38
        top, bottom, left, right = box(out[0, j])
        assert max(bottom - top, right - left) + 1 == span
        assert abs((top + bottom) / 2 - 31.5) <= 1 and abs((left + right) / 2 - 31.5) <= 1
    assert box(out[0, 0])[3] - box(out[0, 0])[2] + 1 == 19          # the bar keeps its 2:1 shape
    assert out[0, 0, 32, 32].argmax() == 0 and out[0, 1, 32, 32].argmax() == 2
    torch.testing.assert_close(out[0, 2:], torch.ones(2, 64, 64, 3))  # empty views stay white
    # together: one scale for the four views, so the small square stays 6/24 of the bar's height
    shared = recenter_views(views, size=64, together=True)
    assert max(box(shared[0, 0])[1] - box(shared[0, 0])[0], 0) + 1 == span
    t, b, _, _ = box(shared[0, 1])
    assert abs((b - t + 1) - span * 6 / 24) <= 1


def test_recenter_views_leaves_shapeworld_views_nearly_as_they_are():
    from gsbook.images import psnr
    from gsbook.methods.feedforward import ground_truth_views, recenter_views

    views = ground_truth_views("a green can", seed=0, size=64)
    assert psnr(recenter_views(views, together=True), views).mean() > 20


def test_stage_two_batches_give_the_front_view_without_a_caption():
    from gsbook.recipes.prior_mv import MultiViewData, PriorMVRecipe, multiview_batch

    tokens, mask = caption_features(["a red ball", ""])
    data = MultiViewData(torch.randint(0, 256, (10, 4, 32, 32, 3), dtype=torch.uint8), torch.zeros(10, dtype=torch.long),
                         ["a red ball", ""], tokens, mask)
    recipe = PriorMVRecipe(batch=2000, caption_dropout=0.1, image_condition=0.5)
    one = multiview_batch(data, recipe, torch.Generator().manual_seed(0))
    two = multiview_batch(data, recipe, torch.Generator().manual_seed(0), image_only=0.5)
    empty = lambda m: m.sum(1) == mask[1].sum()                      # noqa: E731
    torch.testing.assert_close(two[0], one[0])                       # same objects, same known views
    assert torch.equal(two[3], one[3])
    known = one[3][:, 0]
    image_alone = lambda batch: (empty(batch[2]) & known).float().mean().item()  # noqa: E731
    assert 0.03 < image_alone(one) < 0.08                            # stage one: 10% of half
    assert 0.25 < image_alone(two) < 0.30                            # stage two: 10% + 90% × 50% of half
    assert not (empty(two[2]) & ~known & ~empty(one[2])).any()       # rows with no image keep their caption


def test_stage_two_settings_do_not_move_stage_one_checkpoints():
    from gsbook.recipes.prior_mv import PriorMVRecipe

    a, b = PriorMVRecipe(), PriorMVRecipe(refine_steps=10, refine_lr=1.0, refine_image_only=0.9)
    assert a.key() == b.key() and a.refine_key() != b.refine_key()
    assert a.key() != PriorMVRecipe(lr=1e-3).key()


def test_reproduce_command_names_the_flags_that_change_the_weights():
    from gsbook.train import reproduce_command

    assert reproduce_command("prior_mv", "gpu", {"steps": 2500, "checkpoint_every": 250, "refine_steps": 400}) == \
        "python -m gsbook.train prior_mv --profile gpu --steps 2500 --refine-steps 400"
    assert reproduce_command("prior2d", "cpu", {}) == "python -m gsbook.train prior2d --profile cpu"


def test_match_front_scale_zooms_drawn_views_to_the_fronts_height():
    from gsbook.methods.feedforward import match_front_scale, object_height

    def square(half: int, centre: tuple[int, int] = (32, 32)) -> torch.Tensor:
        view = torch.ones(64, 64, 3)
        view[centre[0] - half:centre[0] + half, centre[1] - half:centre[1] + half] = torch.tensor([0.8, 0.1, 0.1])
        return view

    views = torch.stack([square(10), square(13), square(13), torch.ones(64, 64, 3)])   # the last: nothing drawn
    views[1, 2, 2] = 0.0                                       # a stray speck does not count as the object
    assert [object_height(v) for v in views] == [20, 26, 26, 0]
    out = match_front_scale(views)
    assert torch.equal(out[0], views[0]) and torch.equal(out[3], views[3])   # the real front, and an empty view
    assert [abs(object_height(v) - 20) <= 1 for v in out[1:3]] == [True, True]
    rows = (((1 - out[1]).amax(-1) > 0.1).sum(-1) >= 2).nonzero().flatten()
    assert abs((rows[0] + rows[-1]).item() / 2 - 31.5) <= 1          # zoomed about the centre: still centred
    assert out[1, 0, 0].tolist() == [1.0, 1.0, 1.0]                  # white where the zoom samples outside
    kept = match_front_scale(views, drawn=(2,))
    assert torch.equal(kept[1], views[1]) and abs(object_height(kept[2]) - 20) <= 1    # only the drawn ones move
    assert torch.equal(match_front_scale(torch.ones(4, 64, 64, 3)), torch.ones(4, 64, 64, 3))
