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


def test_the_gpu_profile_carries_cuda_and_every_other_profile_the_cpu(monkeypatch):
    monkeypatch.setattr(config, "cuda_available", lambda: True)       # no allocation: torch.device only
    monkeypatch.setenv("GSBOOK_PROFILE", "gpu")
    assert config.resolve_device() == torch.device("cuda") and config.resolve_device("cpu") == torch.device("cpu")
    for name in ("ci", "cpu"):
        monkeypatch.setenv("GSBOOK_PROFILE", name)
        assert config.resolve_device() == torch.device("cpu")


def test_cell_limits_and_cache_root_are_defined_once(monkeypatch, tmp_path):
    assert config.cell_timeout("ci") == 120 and config.cell_budget("ci") == 30
    assert all(config.cell_budget(p) == config.cell_timeout(p) / 4 for p in config.PROFILES)
    with pytest.raises(ValueError, match="not a profile"):
        config.cell_timeout("fast")
    monkeypatch.setenv("GSBOOK_CACHE", str(tmp_path))
    from gsbook import text
    from gsbook.recipes import TrainConfig, checkpoint_folder

    assert config.cache_root() == tmp_path
    assert text.TextEncoder(device="cpu", cache_dir=None).cache_dir.is_relative_to(tmp_path)
    assert checkpoint_folder(TrainConfig()).is_relative_to(tmp_path)


def test_no_library_function_pins_the_cpu_by_default():
    """Library defaults are ``device=None`` (the profile's device), never a fixed "cpu" or "cuda"."""
    import ast
    from pathlib import Path

    root = Path(config.__file__).parent
    pinned = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults + \
                    node.args.kw_defaults
                for arg, default in zip(args, defaults):
                    if arg.arg == "device" and isinstance(default, ast.Constant) and isinstance(default.value, str):
                        pinned.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}(device={default.value!r})")
    assert not pinned, pinned
