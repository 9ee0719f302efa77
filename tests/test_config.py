import pytest
import torch

from gsbook import config


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("GSBOOK_PROFILE", "ci")
    assert config.profile() == "ci"
    assert config.pick(ci=1, cpu=2, gpu=3) == 1
    monkeypatch.setenv("GSBOOK_PROFILE", " CPU ")
    assert config.pick(ci=1, cpu=2, gpu=3) == 2
    assert config.device() == torch.device("cpu")


def test_default_profile_follows_the_device(monkeypatch):
    monkeypatch.delenv("GSBOOK_PROFILE", raising=False)
    assert config.profile() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_bad_profiles_are_explained(monkeypatch):
    monkeypatch.setenv("GSBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="choose one of ci, cpu, gpu"):
        config.profile()
    if not torch.cuda.is_available():
        monkeypatch.setenv("GSBOOK_PROFILE", "gpu")
        with pytest.raises(RuntimeError, match="needs a CUDA device"):
            config.profile()


def test_seed_everything_is_deterministic():
    a = config.seed_everything(3)
    x = torch.rand(3, generator=a), torch.rand(3)
    b = config.seed_everything(3)
    y = torch.rand(3, generator=b), torch.rand(3)
    assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
