"""Shared by tests/test_lgm.py and tests/test_grm.py: the four input cameras and a ShapeWorld
object's ground-truth renders to reconstruct, so both reconstructors are tested on the same target."""

from __future__ import annotations

import torch

from gsbook.cameras import Cameras, four_views, orbit
from gsbook.render import render


def cams(size: int = 32, elevation: float = 0.0) -> Cameras:
    """The four input views (azimuth 0/90/180/270) at ``size``²."""
    return four_views(elevation, width=size, height=size, device="cpu")


def target_views(n: int = 512, size: int = 32):
    """A ShapeWorld object's ``n`` ground-truth Gaussians rendered from the 4 input views and 2
    others: ``(input cameras, input images [1, 4, S, S, 3], supervision cameras, target images
    [1, 6, S, S, 3], target alphas [1, 6, S, S])``."""
    from gsbook.world import make_asset
    gt = make_asset("a red mushroom").gaussians(n)
    inputs = cams(size)
    supervision = Cameras.cat([inputs, orbit(30.0, [45.0, 225.0], width=size, height=size, device="cpu")])
    with torch.no_grad():
        seen, target = render(gt, inputs), render(gt, supervision)
    return inputs, seen.image[None], supervision, target.image[None], target.alpha[None]


def assert_checkpoint_round_trip(model_class, config, tmp_path) -> None:
    """A trained-looking model saved with ``checkpoint()`` and read back with
    ``from_checkpoint()`` gives bit-identical outputs; a fresh model does not (so the check can
    fail); the config's dict round trip is exact and refuses unknown keys."""
    import pytest

    torch.manual_seed(0)
    assert type(config).from_dict(config.to_dict()) == config
    model = model_class(config).eval()
    with torch.no_grad():                                   # make the weights not the initial ones
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    torch.save(model.checkpoint(), tmp_path / "model.pt")
    loaded = model_class.from_checkpoint(torch.load(tmp_path / "model.pt", weights_only=True)).eval()
    assert type(loaded) is model_class and loaded.config == config
    x = model.prepare_inputs(torch.rand(1, 4, 32, 32, 3), cams())
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
        assert not torch.equal(model_class(config).eval()(x), model(x))
    with pytest.raises(ValueError, match="unknown"):
        type(config).from_dict(config.to_dict() | {"bogus": 1})


def overfit(model, steps: int = 100, lr: float = 3e-3) -> tuple[float, float]:
    """Fit ``model`` (LGM or GRM) to :func:`target_views`' one object with Adam for ``steps`` (100
    take either tiny network's loss down ~26×, the tests ask 10×);
    return ``(first loss, best of the last 10)``. Shared by both reconstructors' overfit tests."""
    from gsbook.methods.lgm import lgm_loss

    torch.manual_seed(0)
    inputs, seen, supervision, images, alphas = target_views(512)
    x = model.prepare_inputs(seen, inputs)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = lgm_loss(model.gaussians(x), supervision, images, alphas)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], min(losses[-10:])
