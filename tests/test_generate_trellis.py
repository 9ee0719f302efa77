"""``gsbook generate trellis``: the common files plus the voxels, the two edits as options, bad
input refused before any model loads; and the voxel file's round trip (gsbook.io)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gsbook.generate as gen
from gsbook.io import PlyFormatError, load_ply, load_voxels, save_ply, save_voxels
from gsbook.methods.trellis import shell_coords, structure_grid
from gsbook.zoo import model_names

COMMON_FILES = {"gaussians.ply", "gaussians.splat", "turntable.png", "result.json"}
FAST = ["--profile", "ci", "--device", "cpu", "--quiet", "--steps", "10"]
SHIPPED = {"trellis_ss_vae", "trellis_ss_flow", "trellis_slat_vae", "trellis_slat_flow"} <= set(model_names())
needs_weights = pytest.mark.skipif(not SHIPPED, reason="the Trellis weights are not shipped in this checkout")


# ============================================================================== voxel files
def test_voxels_round_trip_exactly_and_sit_at_the_voxel_centres(tmp_path):
    coords = shell_coords(structure_grid("a red mushroom with a white stem", 32))
    save_voxels(tmp_path / "v.ply", coords, 32)
    back, resolution = load_voxels(tmp_path / "v.ply")
    assert resolution == 32 and torch.equal(back, coords)
    import plyfile
    rows = plyfile.PlyData.read(str(tmp_path / "v.ply"))["vertex"].data
    assert rows["x"][0] == pytest.approx(-1 + (int(coords[0, 0]) + 0.5) * 2 / 32)


def test_voxel_files_refuse_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        save_voxels(tmp_path / "v.ply", torch.tensor([[0, 0, 32]]), 32)
    with pytest.raises(ValueError, match="integer"):
        save_voxels(tmp_path / "v.ply", torch.zeros(3, 3), 32)
    from gsbook.gaussians import init_ball
    save_ply(tmp_path / "g.ply", init_ball(4, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(PlyFormatError, match="not a gsbook voxel file"):
        load_voxels(tmp_path / "g.ply")


# ============================================================================== the command
@pytest.mark.parametrize("argv, message", [
    (["--regenerate-top", "1.5"], "fraction of the height"),
    (["--appearance", "a plaid ball"], "plaid"),
    (["--appearance", "a red ball", "--regenerate-top", "0.3"], "not allowed with"),
    (["--steps", "0"], "≥ 1"),
])
def test_bad_options_exit_2_with_one_line_before_any_model_loads(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        gen.main(["trellis", "a red ball", "--out", str(tmp_path / "out"), *FAST, *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_trellis_is_listed(capsys):
    gen.main(["--list"])
    assert any(line.startswith("trellis ") for line in capsys.readouterr().out.splitlines())


@needs_weights
def test_writes_the_common_files_the_voxels_and_their_structure(tmp_path):
    out = tmp_path / "snowman"
    assert gen.main(["trellis", "a red snowman with a black hat", "--out", str(out), *FAST]) == out
    result = json.loads((out / "result.json").read_text())
    assert {p.name for p in out.iterdir()} == COMMON_FILES | {"voxels.ply", "structure.png"}
    coords, resolution = load_voxels(out / "voxels.ply")
    per_voxel = result["extra"]["gaussians_per_voxel"]
    assert resolution == 32 and result["counts"]["voxels"] == len(coords) == result["extra"]["active_voxels"]
    assert load_ply(out / "gaussians.ply").n == result["counts"]["gaussians"] == per_voxel * len(coords)
    assert result["config"]["steps"] == 10 and {"structure", "slat", "decode"} <= set(result["seconds"])


@needs_weights
def test_appearance_edit_keeps_the_voxels_and_is_judged_against_the_new_prompt(tmp_path):
    plain, edited = tmp_path / "plain", tmp_path / "edited"
    gen.main(["trellis", "a red mushroom with a white stem", "--out", str(plain), *FAST])
    gen.main(["trellis", "a red mushroom with a white stem", "--out", str(edited), *FAST,
              "--appearance", "a purple mushroom with a white stem"])
    result = json.loads((edited / "result.json").read_text())
    assert result["prompt"] == "a purple mushroom with a white stem"
    assert result["extra"]["edit"] == {"kind": "appearance", "from": "a red mushroom with a white stem",
                                       "to": "a purple mushroom with a white stem"}
    assert torch.equal(load_voxels(plain / "voxels.ply")[0], load_voxels(edited / "voxels.ply")[0])
    assert (edited / "before.png").exists()


@needs_weights
def test_region_edit_reports_no_change_outside_the_region(tmp_path):
    out = tmp_path / "lamp"
    gen.main(["trellis", "a red lamp", "--out", str(out), *FAST, "--regenerate-top", "0.33"])
    edit = json.loads((out / "result.json").read_text())["extra"]["edit"]
    assert edit["kind"] == "region" and edit["voxels_changed_outside"] == 0
