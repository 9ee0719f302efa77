"""The weights store (gsbook.zoo): save/load round trips, clear errors for missing or corrupt files,
and the judge's scores."""

import json
import re

import pytest
import torch

from gsbook import zoo
from gsbook.judge import NONE_PART, Judge, accuracy, all_object_specs, r_precision
from gsbook.world import CATEGORY_NAMES, COLOUR_NAMES, ObjectSpec


@pytest.fixture()
def saved_judge(tmp_path):
    torch.manual_seed(0)
    model = Judge().eval()
    model.save_shipped({"steps": 0}, "# card\n", folder=tmp_path)
    return model, tmp_path


def test_round_trip(saved_judge):
    model, folder = saved_judge
    loaded = Judge.from_shipped("cpu", folder=folder)
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for k in a:  # stored as float16
        assert torch.allclose(a[k], b[k], atol=2e-2, rtol=1e-2)
    config = json.loads((folder / "judge.json").read_text())
    assert config["parameters"] == sum(p.numel() for p in model.state_dict().values())
    assert config["class"] == "gsbook.judge:Judge" and config["model"] == {"widths": [24, 48, 96, 192], "dropout": 0.2}
    assert (folder / "judge.md").read_text() == "# card\n"
    # the same model by name alone: the JSON names the class, the zoo imports it by that string
    by_name = zoo.load_model("judge", "cpu", folder=folder)
    assert type(by_name) is Judge and zoo.model_names(folder) == ["judge"]
    assert torch.equal(by_name.category.weight, loaded.category.weight)


def test_missing_file_names_it_and_the_command(saved_judge):
    _, folder = saved_judge
    (folder / "judge.safetensors").unlink()
    with pytest.raises(zoo.WeightsError, match=r"judge\.safetensors is missing.*python -m gsbook\.train judge"):
        Judge.from_shipped(folder=folder)


def test_corrupt_file_is_caught(saved_judge):
    _, folder = saved_judge
    path = folder / "judge.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF                                    # one flipped byte in the weights
    path.write_bytes(bytes(data))
    with pytest.raises(zoo.WeightsError, match=r"judge\.safetensors is corrupt.*python -m gsbook\.train judge"):
        Judge.from_shipped(folder=folder)


def test_truncated_file_without_checksum_is_caught(saved_judge):
    _, folder = saved_judge
    config = json.loads((folder / "judge.json").read_text())
    del config["sha256"]
    (folder / "judge.json").write_text(json.dumps(config))
    path = folder / "judge.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(zoo.WeightsError, match="cannot be read"):
        Judge.from_shipped(folder=folder)


def test_unknown_name_lists_the_zoo():
    shipped = zoo.model_names()
    assert {"judge", "prior2d"} <= set(shipped) and shipped == sorted(shipped)
    with pytest.raises(KeyError, match="the zoo has: " + ", ".join(shipped)):
        zoo.load_model("no-such-model")


def test_a_config_that_does_not_fit_the_weights_names_the_file(saved_judge):
    _, folder = saved_judge
    config = json.loads((folder / "judge.json").read_text())
    config["model"]["widths"] = [8, 16, 32, 64]
    (folder / "judge.json").write_text(json.dumps(config))
    with pytest.raises(zoo.WeightsError, match=r"judge\.safetensors does not fit the model in judge\.json"):
        Judge.from_shipped(folder=folder)


def test_shipped_files_keep_their_checksums():
    """The weights in gsbook/weights/ are the ones their configs were written for."""
    for name in zoo.model_names():
        weights, config, card = zoo.weight_paths(name)
        assert zoo.sha256(weights) == json.loads(config.read_text())["sha256"], name
        assert card.exists(), name


def test_every_shipped_model_has_a_card_with_its_command_and_the_zoo_fits_the_budget():
    """Each card says how to reproduce the model, on what, and how good it is; all weights ≤ 64 MB."""
    names = zoo.model_names()
    assert {"judge", "prior2d", "prior_mv", "lgm", "grm"} <= set(names)
    total = 0
    for name in names:
        weights, _, card = zoo.weight_paths(name)
        total += weights.stat().st_size
        text = card.read_text()
        assert f"python -m gsbook.train {name}" in text, f"{name}'s card does not give its command"
        assert "## Measured quality" in text or "quality" in text.lower(), name
        assert re.search(r"\d+(\.\d+)? (min|h)\b", text), f"{name}'s card gives no wall time"
    assert total <= 64 * 2 ** 20, f"the shipped weights take {total / 2 ** 20:.1f} MB, over the 64 MB budget"


class FixedJudge(Judge):
    """Always answers 'a red mushroom with a white stem'."""

    def forward(self, images):
        B = images.shape[0]
        cat = torch.full((B, len(CATEGORY_NAMES)), -9.0)
        cat[:, CATEGORY_NAMES.index("mushroom")] = 9
        col = torch.full((B, len(COLOUR_NAMES)), -9.0)
        col[:, COLOUR_NAMES.index("red")] = 9
        part = torch.full((B, len(COLOUR_NAMES) + 1), -9.0)
        part[:, COLOUR_NAMES.index("white")] = 9
        return {"category": cat, "colour": col, "part_colour": part}


def test_accuracy_and_r_precision_count_right_answers():
    judge = FixedJudge().eval()
    images = torch.rand(4, 64, 64, 3)
    intended = ["a red mushroom with a white stem", "a blue mushroom with a white stem",
                ObjectSpec("ball", "red"), "a red mushroom with a green stem"]
    s = accuracy(judge, images, intended)
    assert s.category == 0.75 and s.colour == 0.75 and s.part_colour == pytest.approx(2 / 3) and s.all == 0.25
    assert r_precision(judge, images[:1], intended[:1], generator=torch.Generator().manual_seed(0)) == 1.0
    # Against every other caption, the judge's own reading outranks the intended one.
    assert r_precision(judge, images[1:2], intended[1:2], distractors=10_000) == 0.0
    assert NONE_PART == len(COLOUR_NAMES)
    assert len(all_object_specs()) == len(set(all_object_specs()))


def test_judge_rejects_bad_images():
    with pytest.raises(ValueError, match="RGB"):
        Judge()(torch.rand(2, 4, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        Judge()(torch.full((1, 3, 8, 8), float("nan")))


def test_shipped_judge_reads_held_out_renders():
    """The shipped judge still reads ShapeWorld: new assets, both backgrounds, 64² and 32²."""
    from gsbook.images import over_background
    from gsbook.world import DatasetConfig, ShapeWorldDataset

    judge = Judge.from_shipped()
    views = ShapeWorldDataset(DatasetConfig(n_assets=24, split="test", seed=4242), progress=False).stacked()
    captions = views.captions()
    assert len(captions) == len(views) == 24 * 8
    for background in (1.0, 0.0):
        images = over_background(views.rgb.float() / 255, views.alpha.float() / 255,
                                 torch.full((len(views), 3), background))
        scores = accuracy(judge, images, captions)
        assert scores.category >= 0.95 and scores.colour >= 0.95, str(scores)
