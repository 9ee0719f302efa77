"""Cached multi-view datasets: contents, determinism, splits, cache reuse and invalidation."""

import json

import numpy as np
import pytest
import torch

import gsbook.world.asset as asset_module
from gsbook.world import held_out_pairs, parse
from gsbook.world import dataset as ds
from gsbook.world.dataset import DatasetConfig, ShapeWorldDataset, asset_record, render_record

SMALL = dict(n_assets=6, views=3, resolution=16, shard_size=4)


@pytest.fixture
def small(tmp_path):
    config = DatasetConfig(**SMALL)
    return ShapeWorldDataset(config, root=tmp_path, workers=1, progress=False), tmp_path


def test_items_hold_views_cameras_and_captions(small):
    data, _ = small
    assert len(data) == 6
    item = data[5]                                       # second shard
    assert item["rgb"].shape == (3, 16, 16, 3) and item["rgb"].dtype == torch.float32
    assert item["alpha"].shape == item["depth"].shape == (3, 16, 16)
    assert item["viewmats"].shape == (3, 4, 4) and item["Ks"].shape == (3, 3, 3)
    assert 0 <= item["rgb"].min() and item["rgb"].max() <= 1
    covered = item["alpha"] > 0.99
    assert covered.any()
    # White background where nothing is; depth only where something is, near the camera radius.
    assert torch.all(item["rgb"][item["alpha"] == 0] == 1)
    assert torch.all(item["depth"][item["alpha"] == 0] == 0)
    assert 1.2 < item["depth"][covered].min() and item["depth"][covered].max() < 3.8
    spec = parse(item["caption"])
    assert spec.category == data.records[5]["category"]
    cams = data.cameras(5)
    assert len(cams) == 3 and cams.width == 16


def test_cached_items_equal_a_fresh_render(small):
    data, _ = small
    fresh = render_record(data.config, asset_record(data.config, 2))
    item = data[2]
    assert torch.equal(item["rgb"], torch.from_numpy(fresh["rgb"]).float() / 255)
    assert torch.equal(item["depth"], torch.from_numpy(fresh["depth"]).float())


def test_second_call_reuses_the_cache(small, monkeypatch):
    data, root = small
    def refuse(*args, **kwargs):
        raise AssertionError("the cache should have been reused")
    monkeypatch.setattr(ds, "render_record", refuse)
    again = ShapeWorldDataset(data.config, root=root, workers=1, progress=False)
    assert again.folder == data.folder
    assert torch.equal(again[1]["rgb"], data[1]["rgb"])


def test_generator_version_change_rebuilds(small, monkeypatch):
    data, root = small
    monkeypatch.setattr(asset_module, "GENERATOR_VERSION", asset_module.GENERATOR_VERSION + 1)
    calls = []
    real = ds.render_record
    monkeypatch.setattr(ds, "render_record", lambda *a: calls.append(1) or real(*a))
    rebuilt = ShapeWorldDataset(data.config, root=root, workers=1, progress=False)
    assert rebuilt.folder != data.folder
    assert f"-v{asset_module.GENERATOR_VERSION}-" in rebuilt.folder.name
    assert len(calls) == 6
    assert json.loads((rebuilt.folder / "index.json").read_text())["generator_version"] == \
        asset_module.GENERATOR_VERSION


def test_interrupted_builds_resume_from_finished_shards(tmp_path, monkeypatch):
    config = DatasetConfig(**SMALL)
    real = ds.render_record
    done = []
    def fail_in_second_shard(cfg, record):
        if len(done) == 5:
            raise RuntimeError("power cut")
        done.append(1)
        return real(cfg, record)
    monkeypatch.setattr(ds, "render_record", fail_in_second_shard)
    with pytest.raises(RuntimeError, match="power cut"):
        ShapeWorldDataset(config, root=tmp_path, workers=1, progress=False)
    done.clear()
    monkeypatch.setattr(ds, "render_record", lambda cfg, r: done.append(1) or real(cfg, r))
    data = ShapeWorldDataset(config, root=tmp_path, workers=1, progress=False)
    assert len(done) == 2 and len(data) == 6             # only the unfinished shard was rendered


def test_splits_hold_out_assets_and_caption_combinations():
    held = held_out_pairs()
    train = [asset_record(DatasetConfig(split="train"), i) for i in range(300)]
    val = [asset_record(DatasetConfig(split="val"), i) for i in range(100)]
    unseen = [asset_record(DatasetConfig(split="unseen"), i) for i in range(100)]
    assert not any((r["colour"], r["category"]) in held for r in train + val)
    assert all((r["colour"], r["category"]) in held for r in unseen)
    assert not {r["seed"] for r in train} & {r["seed"] for r in val}
    assert len({r["category"] for r in train}) == 16 and len({r["colour"] for r in train}) == 11
    # Multi-part objects always name a part colour different from the main one.
    assert all(r["part_colour"] != r["colour"] for r in train if r["part_colour"])


def test_four_views_black_background_and_parallel_build_agree(tmp_path):
    config = DatasetConfig(n_assets=4, views=4, view_mode="four", resolution=16, background="black",
                           shard_size=2)
    serial = ShapeWorldDataset(config, root=tmp_path / "a", workers=1, progress=False)
    parallel = ShapeWorldDataset(config, root=tmp_path / "b", workers=2, progress=False)
    for i in range(4):
        assert torch.equal(serial[i]["rgb"], parallel[i]["rgb"])
    item = serial[0]
    assert torch.all(item["rgb"][item["alpha"] == 0] == 0)
    centres = serial.cameras(0).centers
    np.testing.assert_allclose(centres[:, 1].numpy(), 0.0, atol=1e-5)        # elevation 0
    np.testing.assert_allclose(centres.norm(dim=1).numpy(), 2.5, atol=1e-5)


def test_bad_configs_fail_clearly():
    with pytest.raises(ValueError, match="split"):
        DatasetConfig(split="holdout")
    with pytest.raises(ValueError, match="exactly 4 views"):
        DatasetConfig(view_mode="four", views=8)


def test_works_with_a_dataloader(small):
    data, _ = small
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=3)))
    assert batch["rgb"].shape == (3, 3, 16, 16, 3) and len(batch["caption"]) == 3


def test_split_captions_respect_the_split():
    from gsbook.world import held_out_pairs, parse, split_captions

    held = held_out_pairs()
    for split, inside in (("train", False), ("unseen", True)):
        captions = split_captions(50, split, seed=3)
        assert captions == split_captions(50, split, seed=3) and len(set(captions)) > 20
        for c in captions:
            spec = parse(c)
            assert ((spec.colour, spec.category) in held) == inside


def test_stacked_views_are_the_items_in_uint8(tmp_path):
    from gsbook.world import DatasetConfig, ShapeWorldDataset, StackedViews

    ds = ShapeWorldDataset(DatasetConfig(n_assets=5, views=2, resolution=16, shard_size=3), root=tmp_path,
                           progress=False)
    views = ds.stacked()
    assert views.rgb.dtype == torch.uint8 and views.rgb.shape == (10, 16, 16, 3) and views.alpha.shape == (10, 16, 16)
    assert views.asset.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]            # across two shards
    item = ds[3]
    assert torch.equal(views.rgb[6:8].float() / 255, item["rgb"]) and torch.equal(views.alpha[7].float() / 255,
                                                                                  item["alpha"][1])
    assert views.captions()[7] == item["caption"] and int(views.labels("category")[7]) == item["category"]
    both = StackedViews.cat([views, views])
    assert len(both) == 20 and both.captions()[17] == item["caption"] and both.asset[-1] == 9
