"""``gsbook generate``: one command, the same files for every method, bad input refused.

The DreamGaussian runs use the ``ci`` profile with 20 stage-1 steps and a tiny stage 2
(``--set``), so the real command runs end to end in seconds; the files it writes are read back
with the readers a user would use (gsbook.io, trimesh, PIL)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import plyfile
import pytest
import torch
import trimesh
from PIL import Image

import gsbook.generate as gen
from gsbook.config import cuda_available
from gsbook.gaussians import init_ball
from gsbook.io import load_ply, load_splat, ply_property_names
from gsbook.mesh import TexturedMesh
from gsbook.viewer import ViewerServer

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--profile", "ci", "--steps", "20", "--device", "cpu", "--quiet",
        "--set", "mesh_resolution=32", "--set", "max_faces=2000", "--set", "texture_size=64",
        "--set", "bake_resolution=64", "--set", "refine_steps=2", "--set", "refine_sampler_steps=10",
        "--set", "refine_resolution=32"]
COMMON_FILES = {"gaussians.ply", "gaussians.splat", "turntable.png", "result.json"}
MESH_FILES = {"mesh.glb", "mesh.obj", "mesh.mtl", "mesh.png"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One whole DreamGaussian run (both stages) through the command's ``main``."""
    out = tmp_path_factory.mktemp("generate") / "red-ball"
    assert gen.main(["dreamgaussian", "a red ball", *TINY, "--seed", "3", "--out", str(out)]) == out
    return out, json.loads((out / "result.json").read_text())


def leftovers(folder: Path) -> list[str]:
    """Hidden work folders the command would have left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ============================================================================== the files
def test_writes_the_common_files_and_the_mesh(run):
    out, result = run
    assert {p.name for p in out.iterdir()} == COMMON_FILES | MESH_FILES
    assert set(result["files"]) == COMMON_FILES | MESH_FILES
    assert leftovers(out.parent) == []


def test_ply_has_the_standard_3dgs_layout_and_the_count(run):
    out, result = run
    names = [p.name for p in plyfile.PlyData.read(str(out / "gaussians.ply"))["vertex"].properties]
    assert names == ply_property_names(0)
    for name in ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
                 "rot_0", "rot_1", "rot_2", "rot_3"]:
        assert name in names
    g = load_ply(out / "gaussians.ply")
    assert g.n == result["counts"]["gaussians"] > 0
    assert torch.isfinite(g.means).all()
    splat = load_splat(out / "gaussians.splat")
    assert splat.n == g.n
    assert torch.allclose(splat.means.sort(0).values, g.means.sort(0).values)


def test_mesh_glb_and_obj_reload_with_their_texture(run):
    out, result = run
    faces = result["counts"]["mesh_faces"]
    assert faces > 0
    glb = trimesh.load(str(out / "mesh.glb"), force="mesh", process=False)
    assert len(glb.faces) == faces
    assert glb.visual.material.baseColorTexture is not None
    assert glb.visual.uv.shape == (len(glb.vertices), 2)
    assert "map_Kd mesh.png" in (out / "mesh.mtl").read_text()
    assert (out / "mesh.obj").read_text().startswith("mtllib mesh.mtl")
    obj = trimesh.load(str(out / "mesh.obj"), force="mesh", process=False)
    assert len(obj.faces) == faces
    assert getattr(obj.visual.material, "image", None) is not None
    texture = Image.open(out / "mesh.png")
    assert texture.size == (64, 64)                         # --set texture_size=64
    assert TexturedMesh.load(out / "mesh.glb").n_faces == faces


def test_turntable_has_8_views_of_the_gaussians_and_of_the_mesh(run):
    out, result = run
    t = result["turntable"]
    assert t["views"] == 8 and t["rows"] == ["gaussians", "mesh"]
    assert t["elevations"] == [15.0, 30.0] * 4 and t["azimuths"] == [45.0 * i for i in range(8)]
    image = Image.open(out / "turntable.png")
    assert image.size == (8 * t["width"], 2 * t["height"])
    pixels = np.asarray(image.convert("RGB"))
    assert (pixels[0, 0] == 255).all()                      # on white
    for row in range(2):
        for view in range(8):
            tile = pixels[row * t["height"]:(row + 1) * t["height"], view * t["width"]:(view + 1) * t["width"]]
            assert (tile < 250).any(), f"view {view} of row {row} is empty"


def test_result_json_says_what_ran_and_what_the_judge_read(run):
    out, result = run
    assert result["method"] == "dreamgaussian" and result["prompt"] == "a red ball"
    assert result["seed"] == 3 and result["config"]["seed"] == 3
    assert result["profile"] == "ci" and result["device"] == "cpu"
    assert result["config"]["steps"] == 20 and result["config"]["refine_steps"] == 2
    assert result["options"] == {"steps": 20, "stages": 2}
    seconds = result["seconds"]
    for stage in ("load", "stage1", "mesh", "stage2", "judge", "total"):
        assert seconds[stage] >= 0
    assert seconds["total"] >= seconds["stage1"] + seconds["stage2"]
    for kind in ("gaussians", "mesh"):
        judged = result["judge"][kind]
        assert judged["caption"] == "a red ball"
        assert len(judged["readings"]) == 8 and all(isinstance(r, str) for r in judged["readings"])
        assert len(judged["category"]) == len(judged["colour"]) == 8
        scores = judged["scores"]
        assert scores["n"] == 8
        for head in ("category", "colour", "part_colour", "all"):
            assert 0.0 <= scores[head] <= 1.0
        worst, best = judged["worst_and_best"]
        assert 0.0 <= worst <= best <= 1.0
    stage1 = result["extra"]["stage1"]
    assert len(stage1["t"]) == len(stage1["n"]) == 20
    assert stage1["n"][-1] == result["counts"]["gaussians"]
    assert len(result["extra"]["stage2"]["loss"]) == 2
    assert result["versions"] == {"gsbook": gen.__version__, "torch": torch.__version__}


def test_a_seed_gives_the_same_gaussians_and_force_replaces_the_folder(run, tmp_path):
    """Stage 1 alone with the same seed makes the same Gaussians, byte for byte; ``--force``
    replaces a folder (nothing of the old one stays); one stage means no mesh and one row."""
    first, _ = run
    out = tmp_path / "again"
    out.mkdir()
    (out / "old.txt").write_text("from before")
    gen.main(["dreamgaussian", "a", "red", "ball", *TINY, "--seed", "3", "--stages", "1", "--force",
              "--out", str(out)])
    assert {p.name for p in out.iterdir()} == COMMON_FILES
    for name in ("gaussians.ply", "gaussians.splat"):
        assert (out / name).read_bytes() == (first / name).read_bytes()
    result = json.loads((out / "result.json").read_text())
    assert result["prompt"] == "a red ball"
    assert result["judge"]["mesh"] is None and result["counts"]["mesh_faces"] is None
    assert Image.open(out / "turntable.png").size == (8 * 64, 64)
    assert leftovers(tmp_path) == []


# ============================================================================== bad input
@pytest.fixture
def never_runs(monkeypatch):
    """DreamGaussian replaced by a method that fails the test if it is ever reached."""
    def boom(request, progress):
        raise AssertionError("the method ran (a model would have loaded) despite bad input")

    method = gen.GENERATORS["dreamgaussian"]
    monkeypatch.setitem(gen.GENERATORS, "dreamgaussian", gen.Method(method.name, method.summary, boom,
                                                                    method.add_arguments, method.configure))


def refused(capsys, argv: list[str]) -> str:
    """Run the command on bad input: exit status 2, one line on stderr; return that line."""
    with pytest.raises(SystemExit) as exit_:
        gen.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gsbook generate: error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("argv, says", [
    (["nerf", "a red ball"], ["unknown method 'nerf'", "dreamgaussian"]),
    (["dreamgaussian", "a red banana"], ["'banana'", "vocabulary", "ball", "mushroom"]),
    (["dreamgaussian", "a", "red", "banana"], ["'banana'"]),
    (["dreamgaussian", "a red ball on a blue box"], ["scene", "one object"]),
    (["dreamgaussian", "a red ball", "--steps", "0"], ["--steps", "≥ 1", "0"]),
    (["dreamgaussian", "a red ball", "--steps", "many"], ["--steps", "'many'"]),
    (["dreamgaussian", "a red ball", "--stages", "3"], ["--stages", "3", "1, 2"]),
    (["dreamgaussian", "a red ball", "--profile", "huge"], ["--profile", "ci", "cpu", "gpu"]),
    (["dreamgaussian", "a red ball", "--set", "nope=1"], ["nope", "refine_steps"]),
    (["dreamgaussian", "a red ball", "--set", "refine_steps"], ["KEY=VALUE"]),
    (["dreamgaussian", "a red ball", "--set", "seed=4"], ["--seed"]),
    (["dreamgaussian", "a red ball", "--set", "steps=4"], ["--steps"]),
    (["dreamgaussian", "a red ball", "--set", "refine_steps=2.5"], ["refine_steps", "whole number"]),
    (["dreamgaussian", "a red ball", "--set", "t_range=0.1"], ["t_range", "2 numbers"]),
    (["dreamgaussian", "a red ball", "--set", "resolution=4"], ["resolution ≥ 8"]),
    (["dreamgaussian", "a red ball", "--device", "tpu"], ["--device"]),
    ([], ["choose a method", "dreamgaussian"]),
    (["dreamgaussian", "a red ball", "--out"], ["--out"]),
])
def test_bad_input_is_refused_in_one_line_and_writes_nothing(argv, says, tmp_path, capsys, never_runs):
    out = tmp_path / "out"
    if "--out" not in argv:
        argv = argv + ["--out", str(out)]
    err = refused(capsys, argv)
    for word in says:
        assert word in err, f"{word!r} not in {err!r}"
    assert list(tmp_path.iterdir()) == []


def test_cuda_without_cuda_is_refused(tmp_path, capsys, never_runs):
    if cuda_available():
        pytest.skip("this machine has CUDA")
    err = refused(capsys, ["dreamgaussian", "a red ball", "--device", "cuda", "--out", str(tmp_path / "o")])
    assert "--device cpu" in err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_kept_without_force(tmp_path, capsys, never_runs):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    err = refused(capsys, ["dreamgaussian", "a red ball", "--out", str(out)])
    assert str(out) in err and "--force" in err
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    assert "not a folder" in refused(capsys, ["dreamgaussian", "a red ball", "--out", str(tmp_path / "file"),
                                              "--force"])


def test_force_never_replaces_the_working_folder(tmp_path, capsys, never_runs, monkeypatch):
    (tmp_path / "mine.txt").write_text("keep me")
    monkeypatch.chdir(tmp_path)
    err = refused(capsys, ["dreamgaussian", "a red ball", "--out", ".", "--force"])
    assert "working folder" in err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


# ============================================================================== the registry
def tiny_mesh() -> TexturedMesh:
    vertices = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    uvs = torch.tensor([[0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.9]])
    return TexturedMesh(vertices, faces, uvs, torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(0)))


def fake_method(extra_images=None):
    """A method that loads no model: a ball of Gaussians and a tetrahedron."""
    calls = []

    def run(request: gen.Request, progress: bool) -> gen.Generated:
        calls.append(request)
        g = init_ball(50, 0.4, generator=torch.Generator().manual_seed(request.seed), device="cpu")
        return gen.Generated(g, config={"size": request.config}, seconds={"make": 0.01}, mesh=tiny_mesh(),
                             extra_images=extra_images or {}, extra={"note": "fake"})

    def add_arguments(parser):
        parser.add_argument("--size", type=int, default=7)

    def configure(args):
        if args.size > 10:
            raise ValueError(f"--size is at most 10, got {args.size}")
        return args.size

    return gen.Method("fake", "a stand-in", run, add_arguments, configure), calls


def test_a_registered_method_gets_the_same_files_and_scoring(tmp_path, monkeypatch, capsys):
    method, calls = fake_method({"views": torch.rand(4, 16, 16, 3), "front": torch.rand(3, 16, 16)})
    monkeypatch.setitem(gen.GENERATORS, "fake", method)
    gen.main(["--list"])
    assert "fake" in capsys.readouterr().out
    err = refused(capsys, ["fake", "a blue cone", "--size", "11", "--out", str(tmp_path / "no")])
    assert "--size is at most 10" in err and not calls
    out = tmp_path / "fake"
    gen.main(["fake", "a blue cone", "--size", "5", "--seed", "2", "--quiet", "--out", str(out)])
    assert calls[0].config == 5 and calls[0].options == {"size": 5} and calls[0].seed == 2
    assert {p.name for p in out.iterdir()} == COMMON_FILES | MESH_FILES | {"views.png", "front.png"}
    assert Image.open(out / "views.png").size == (4 * 16, 16)
    assert Image.open(out / "front.png").size == (16, 16)
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "fake" and result["config"] == {"size": 5} and result["extra"] == {"note": "fake"}
    assert result["counts"] == {"gaussians": 50, "mesh_faces": 4, "voxels": None}
    assert len(result["judge"]["gaussians"]["readings"]) == len(result["judge"]["mesh"]["readings"]) == 8


def test_a_crash_while_writing_leaves_no_folder(tmp_path, monkeypatch):
    method, _ = fake_method({"broken": torch.rand(16)})     # not an image: fails after the .ply is written
    monkeypatch.setitem(gen.GENERATORS, "fake", method)
    with pytest.raises(ValueError):
        gen.main(["fake", "a blue cone", "--quiet", "--out", str(tmp_path / "new" / "folders" / "out")])
    assert list(tmp_path.iterdir()) == []


def test_extra_images_cannot_overwrite_the_common_files(tmp_path, monkeypatch):
    method, _ = fake_method({"turntable": torch.rand(16, 16, 3)})
    monkeypatch.setitem(gen.GENERATORS, "fake", method)
    with pytest.raises(ValueError, match="turntable"):
        gen.main(["fake", "a blue cone", "--quiet", "--out", str(tmp_path / "out")])
    assert list(tmp_path.iterdir()) == []


# ============================================================================== --view
@pytest.fixture
def stand_in_viewer_javascript(tmp_path, monkeypatch) -> Path:
    """A vendor folder whose viewer files are stand-ins (the browser test uses the real ones)."""
    vendor = tmp_path / "vendor" / "splats"
    vendor.mkdir(parents=True)
    for name in ("gaussian-splats-3d.module.js", "three.module.min.js", "LICENSE.gaussian-splats-3d.txt",
                 "LICENSE.three.txt"):
        (vendor / name).write_text(f"// {name}\n")
    monkeypatch.setenv("GSBOOK_VENDOR", str(vendor.parent))
    return vendor


def test_view_writes_a_3d_page_serves_it_and_sends_the_browser_there(tmp_path, monkeypatch, capsys,
                                                                     stand_in_viewer_javascript):
    """``--view``: view.html and its JavaScript join the files, the folder is served on 127.0.0.1
    and the web browser is sent to the page; the command serves until stopped (here, by the
    stand-in reader once it has read the page; tests/site/test_splat_viewer.py looks at it in Chromium)."""
    method, _ = fake_method()
    monkeypatch.setitem(gen.GENERATORS, "fake", method)
    opened, fetched = [], {}

    def reader(server):
        for name in ("view.html", "viewer/gaussian-splats-3d.module.js", "gaussians.splat"):
            with urllib.request.urlopen(server.url + name, timeout=10) as response:
                fetched[name] = response.read()
        server.close()

    monkeypatch.setattr(ViewerServer, "wait", reader)
    monkeypatch.setattr(gen.webbrowser, "open", opened.append)
    out = tmp_path / "fake"
    gen.main(["fake", "a blue cone", "--quiet", "--view", "--out", str(out)])
    assert {p.name for p in out.iterdir()} == COMMON_FILES | MESH_FILES | {"view.html", "viewer"}
    assert {"view.html", "viewer"} <= set(json.loads((out / "result.json").read_text())["files"])
    assert len(opened) == 1 and opened[0].startswith("http://127.0.0.1:") and opened[0].endswith("/view.html")
    assert opened[0] in capsys.readouterr().out                  # printed even with --quiet
    page = fetched["view.html"].decode()
    assert "<title>fake · a blue cone</title>" in page and '"url":"gaussians.splat"' in page
    assert "50 Gaussians; the judge reads category" in page
    assert fetched["gaussians.splat"] == (out / "gaussians.splat").read_bytes()
    assert fetched["viewer/gaussian-splats-3d.module.js"] == (stand_in_viewer_javascript /
                                                              "gaussian-splats-3d.module.js").read_bytes()
    with pytest.raises(urllib.error.URLError):                    # stopped: the port is free again
        urllib.request.urlopen(opened[0], timeout=5)
    with pytest.raises(FileNotFoundError, match="view.html"):
        gen.view(tmp_path, open_browser=False, wait=False)


def test_view_without_the_viewer_javascript_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys,
                                                                            never_runs):
    monkeypatch.setenv("GSBOOK_VENDOR", str(tmp_path / "no-vendor"))
    err = refused(capsys, ["dreamgaussian", "a red ball", "--view", "--out", str(tmp_path / "out")])
    assert "--view" in err and "tools/fetch_assets.py" in err
    assert list(tmp_path.iterdir()) == []


def test_register_adds_a_method(monkeypatch):
    monkeypatch.setattr(gen, "GENERATORS", dict(gen.GENERATORS))

    @gen.register("another", "one more")
    def run(request, progress):
        raise NotImplementedError

    assert gen.GENERATORS["another"].run is run and gen.GENERATORS["another"].summary == "one more"
    with pytest.raises(ValueError, match="one word"):
        gen.register("two words", "no")


def test_check_prompt_takes_one_object_and_names_what_it_refuses():
    from gsbook.world import PromptError

    assert gen.check_prompt("a blue lamp with a grey base") == "a blue lamp with a grey base"
    with pytest.raises(gen.UsageError, match="two objects"):
        gen.check_prompt("a red ball on a blue box")
    with pytest.raises(PromptError, match="teapot"):
        gen.check_prompt("a red teapot")


def test_build_request_is_the_request_the_command_makes(tmp_path):
    from gsbook.methods import FeedForwardConfig

    request = gen.build_request(["lgm", "a", "red", "ball", "--profile", "ci", "--seed", "3", "--set", "sampler_steps=2"])
    assert (request.method, request.prompt, request.seed, request.profile, request.device) == \
        ("lgm", "a red ball", 3, "ci", "cpu")
    assert request.config == FeedForwardConfig.for_profile("ci", seed=3, sampler_steps=2)
    assert not (Path(tempfile.gettempdir()) / "gsbook-request-never-written").exists(), "nothing is written"
    stage1 = gen.build_request(["dreamgaussian", "a red ball", "--stages", "1", "--profile", "ci", "--out", str(tmp_path)])
    assert stage1.options["stages"] == 1 and not any(tmp_path.iterdir())
    with pytest.raises(gen.UsageError, match="two objects"):
        gen.build_request(["lgm", "a red ball on a blue box", "--profile", "ci"])
    with pytest.raises(gen.UsageError, match="unknown method 'nerf'"):
        gen.build_request(["nerf", "a red ball"])
    with pytest.raises(gen.UsageError, match="--view belong to the command"):
        gen.build_request(["lgm", "a red ball", "--view"])


def test_parse_settings_reads_each_field_as_its_type():
    from gsbook.methods import DreamGaussianConfig

    got = gen.parse_settings(DreamGaussianConfig, ["refine_steps=3", "guidance_scale=7.5", "weighting=sds",
                                                   "t_range=0.1,0.9", "mesh-resolution=16"])
    assert got == {"refine_steps": 3, "guidance_scale": 7.5, "weighting": "sds", "t_range": (0.1, 0.9),
                   "mesh_resolution": 16}


# ============================================================================== the console script
def test_cli_dispatches_generate_and_train(capsys):
    gen.cli(["generate", "--list"])
    assert capsys.readouterr().out.split()[0] == "dreamgaussian"
    gen.cli(["train", "--list"])
    assert "judge" in capsys.readouterr().out.split()
    gen.cli(["--help"])
    assert "generate" in capsys.readouterr().out
    for argv in ([], ["bake"]):
        with pytest.raises(SystemExit) as exit_:
            gen.cli(argv)
        assert exit_.value.code == 2
        assert "usage: gsbook" in capsys.readouterr().err


def test_console_script_and_module_run():
    script = Path(sys.executable).with_name("gsbook")
    if script.exists():
        done = subprocess.run([str(script), "generate", "--list"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("dreamgaussian"), done.stderr
        done = subprocess.run([str(script), "generate", "dreamgaussian", "a red banana", "--out", "/nonexistent/x"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.startswith("gsbook generate: error: ") and "'banana'" in done.stderr
    done = subprocess.run([sys.executable, "-m", "gsbook.generate", "dreamgaussian", "--help"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and "--stages" in done.stdout and "--force" in done.stdout
    if not script.exists():
        pytest.skip(f"no console script at {script}: pip install -e . to make one (the module ran)")


# ============================================================================== LGM and GRM (§3)
@pytest.fixture
def feedforward_never_runs(monkeypatch):
    """LGM and GRM replaced by a method that fails the test if it is ever reached."""
    def boom(request, progress):
        raise AssertionError("the method ran (a model would have loaded) despite bad input")

    for name in ("lgm", "grm"):
        m = gen.GENERATORS[name]
        monkeypatch.setitem(gen.GENERATORS, name, dataclasses_replace(m, run=boom))


def dataclasses_replace(obj, **changes):
    import dataclasses
    return dataclasses.replace(obj, **changes)


def png(path: Path, shape=(64, 64, 4), mode="RGBA") -> Path:
    array = np.zeros(shape, np.uint8)
    array[16:48, 16:48] = 200
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.mark.parametrize("method", ["lgm", "grm"])
def test_feedforward_bad_input_is_refused_before_any_model_loads(method, tmp_path, capsys, feedforward_never_runs):
    out = ["--out", str(tmp_path / "out")]
    assert "needs a prompt, --image FRONT.png or --views" in refused(capsys, [method, *out])
    assert "give a prompt" in refused(capsys, [method, "--ground-truth", *out])
    assert "no alpha channel" in refused(capsys, [method, "--image", str(png(tmp_path / "rgb.png", (64, 64, 3), "RGB")), *out])
    assert "not square" in refused(capsys, [method, "--image", str(png(tmp_path / "wide.png", (64, 80, 4))), *out])
    (tmp_path / "notes.png").write_text("hello")
    assert "not an image" in refused(capsys, [method, "--image", str(tmp_path / "notes.png"), *out])
    assert "no such file" in refused(capsys, [method, "--image", str(tmp_path / "missing.png"), *out])
    good = str(png(tmp_path / "good.png"))
    assert "--views" in refused(capsys, [method, "--views", good, good, *out])
    assert "not allowed with argument" in refused(capsys, [method, "a red ball", "--image", good, "--ground-truth", *out])
    assert "'banana'" in refused(capsys, [method, "a red banana", *out])
    assert "sampler_steps" in refused(capsys, [method, "a red ball", "--set", "sampler_steps=0", *out])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.png", "notes.png", "rgb.png", "wide.png"]


def shipped(name: str) -> bool:
    from gsbook.zoo import model_names
    return name in model_names()


@pytest.mark.parametrize("method", ["lgm", "grm"])
def test_feedforward_from_ground_truth_views_writes_the_files(method, tmp_path):
    if not shipped(method):
        pytest.skip(f"no shipped {method} weights (python -m gsbook.train {method})")
    out = tmp_path / method
    gen.main([method, "a blue lamp with a grey base", "--ground-truth", "--quiet", "--profile", "ci",
              "--device", "cpu", "--out", str(out)])
    assert {p.name for p in out.iterdir()} == COMMON_FILES | {"views.png"}
    assert Image.open(out / "views.png").size == (4 * 64, 64)
    result = json.loads((out / "result.json").read_text())
    assert result["counts"]["gaussians"] == load_ply(out / "gaussians.ply").n == 4096
    assert result["extra"]["views_from"] == "ground truth" and result["extra"]["model"] == method
    assert {"load", "views", "reconstruct", "total"} <= set(result["seconds"])


def test_feedforward_from_an_image_alone_is_judged_against_what_the_front_view_shows(tmp_path):
    if not (shipped("lgm") and shipped("prior_mv")):
        pytest.skip("needs the shipped lgm and prior_mv weights")
    from gsbook.methods.feedforward import ground_truth_views
    front = ground_truth_views("a red ball", seed=1)[0]
    alpha = (front < 0.98).any(-1, keepdim=True).float()
    rgba = torch.cat([front, alpha], -1)
    Image.fromarray((rgba.numpy() * 255).round().astype(np.uint8), mode="RGBA").save(tmp_path / "front.png")
    out = tmp_path / "from-image"
    gen.main(["lgm", "--image", str(tmp_path / "front.png"), "--quiet", "--profile", "ci", "--device", "cpu",
              "--out", str(out)])
    result = json.loads((out / "result.json").read_text())
    assert result["prompt"] == "a red ball" and result["extra"]["prompt_from"].startswith("the judge's reading")
    assert result["extra"]["views_from"] == "multi-view prior from the image"
    assert result["extra"]["caption"] == "a red ball"                # the 2D prior read it; the prior drew from it
    assert result["extra"]["caption_from"] == "the 2D prior's reading of the image" and "read" in result["seconds"]
