"""The chapters' exercises: solutions pass their hidden tests, wrong answers and library calls fail them,
and the student edition keeps neither solutions nor hidden tests nor model answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
import torch

from gsbook.exercises import LIBRARY, forbid, own_code

ROOT = Path(__file__).resolve().parents[1]


def _make_student():
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_cells(cells, namespace: dict) -> None:
    """Execute notebook cells as a kernel would, with their source findable by ``inspect``."""
    import linecache

    for i, cell in enumerate(cells):
        filename = f"<cell-{id(cell)}-{i}>"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
        exec(compile(cell.source, filename, "exec"), namespace)


def _exercise_cells(notebook):
    """A chapter's exercise code cells: the solution cells and the graded cells, in order."""
    return [c for c in notebook.cells if c.cell_type == "code" and "nbgrader" in c.metadata]


# ----------------------------------------------------------------------------- the guards
def test_own_code_refuses_a_function_that_calls_the_library():
    def mine(x):
        return 2 * x

    def borrowed(x):
        from gsbook.diffusion import add_noise  # noqa: F401
        return x

    own_code(mine)
    with pytest.raises(AssertionError, match="uses gsbook"):
        own_code(borrowed)


def test_forbid_switches_off_the_library_code_an_exercise_would_call():
    from gsbook.diffusion import ddim_step, scheduler_alphas_cumprod
    from gsbook.sds import DreamGaussianAnneal

    abar = scheduler_alphas_cumprod()
    x, t = torch.zeros(1, 3, 2, 2), torch.tensor([500])
    with forbid("ddim_update"), pytest.raises(AssertionError, match="ddim_update called the library"):
        ddim_step(x, x, t, t - 100, abar)                # imported by name before the guard: still caught
    with forbid("anneal_timestep"), pytest.raises(AssertionError, match="write the formula yourself"):
        DreamGaussianAnneal(1000, 10).timestep(3)
    assert DreamGaussianAnneal(1000, 10).timestep(3) == 700 and ddim_step(x, x, t, t, abar).shape == x.shape  # restored
    with pytest.raises(KeyError, match="known"):
        with forbid("no such exercise"):
            pass
    assert set(LIBRARY) == {"ddim_update", "anneal_timestep", "covariance_3d", "composite_back_to_front",
                            "fisheye_covariance_2d", "camera_plucker", "ray_box_chord", "splat_activations",
                            "flow_pair", "euler_cfg", "active_voxels", "month_gap", "median_seconds", "payback"} | SECTION_7


# §7's exercises (listed in gsbook.exercises.LIBRARY with the other chapters').
SECTION_7 = {name for name in LIBRARY if name not in {
    "ddim_update", "anneal_timestep", "covariance_3d", "composite_back_to_front", "fisheye_covariance_2d",
    "camera_plucker", "ray_box_chord", "splat_activations", "flow_pair", "euler_cfg", "active_voxels", "month_gap",
    "median_seconds", "payback"}}


def test_forbid_switches_off_section_3s_rays_boxes_and_activations():
    from gsbook.cameras import four_views, plucker_rays as rays        # bound before the guard, under another name
    from gsbook.methods.grm import grm_box_depths
    from gsbook.methods.lgm import lgm_activate

    cams = four_views(0.0, width=4, height=4, device="cpu")
    o, d = torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]])
    raw = torch.zeros(1, 4, 14, 2, 2)
    for exercise, call in (("camera_plucker", lambda: rays(cams)), ("ray_box_chord", lambda: grm_box_depths(o, d)),
                           ("splat_activations", lambda: lgm_activate(raw))):
        with forbid(exercise), pytest.raises(AssertionError, match=f"{exercise} called the library"):
            call()
    assert rays(cams).shape == (4, 4, 4, 6) and grm_box_depths(o, d)[1].item() == 1.0       # restored


def test_forbid_also_refuses_a_function_bound_to_another_name_and_restores_it():
    from gsbook.gaussians import quat_to_rotmat as rotation       # bound before the guard, under another name
    from gsbook.render import composite_dense as paint

    q = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    with forbid("covariance_3d"), pytest.raises(AssertionError, match="covariance_3d called the library"):
        rotation(q)
    with forbid("composite_back_to_front"), pytest.raises(AssertionError, match="write the formula yourself"):
        paint()
    assert torch.equal(rotation(q)[0], torch.eye(3))                # the library's own code is back afterwards
    assert rotation.__defaults__ is None and paint.__defaults__ == (None,)


# ----------------------------------------------------------------------------- the chapters
def _check_chapter(tmp_path, name: str, n_answers: int) -> nbformat.NotebookNode:
    """Solutions pass every test; the student edition has stubs that fail, and no hidden tests or answers."""
    make_student = _make_student()
    path = ROOT / "chapters" / name
    source = nbformat.read(path, as_version=4)
    cells = _exercise_cells(source)
    graded = [c for c in cells if c.metadata["nbgrader"]["grade"]]
    assert len(graded) >= 2 and all("### BEGIN HIDDEN TESTS" in c.source for c in graded)
    _run_cells(cells, {"torch": torch})                  # the teacher's copy: solutions pass every test
    answers = [c for c in source.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")]
    assert len(answers) == n_answers and all("remove-cell" in c.metadata["tags"] for c in answers)

    assert make_student.main([str(path), "--out", str(tmp_path)]) == 0
    student = nbformat.read(tmp_path / path.name, as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "Model answer" not in text
    assert text.count("YOUR ANSWER HERE") == n_answers
    assert not any("remove-cell" in c.metadata.get("tags", []) for c in student.cells)   # the answer cells show
    student_cells = _exercise_cells(student)
    namespace = {"torch": torch}
    for solution, check in zip(student_cells[::2], student_cells[1::2]):
        _run_cells([solution], namespace)
        with pytest.raises(NotImplementedError):   # a stub fails its check instead of passing it
            _run_cells([check], namespace)
    return source


def _visible_part(cell):
    visible = nbformat.from_dict(cell)
    visible.source = visible.source.split("### BEGIN HIDDEN TESTS")[0]
    return visible


def _answer_fails_only_the_hidden_tests(source, solution_index: int, old: str, new: str, message: str) -> None:
    """Replace ``old`` by ``new`` in an exercise's solution: the visible checks pass, the hidden ones fail."""
    exercise = _exercise_cells(nbformat.from_dict(source))
    solution, check = exercise[solution_index], exercise[solution_index + 1]
    assert old in solution.source
    solution.source = solution.source.replace(old, new)
    namespace = {"torch": torch}
    _run_cells(exercise[:solution_index] + [solution, _visible_part(check)], namespace)   # earlier exercises first
    with pytest.raises(AssertionError, match=message):
        _run_cells([check], namespace)


def test_chapter_1_solutions_pass_their_hidden_tests_and_the_student_version_has_neither(tmp_path):
    source = _check_chapter(tmp_path, "01_sds.ipynb", n_answers=4)
    # one timestep for the whole batch: right on the visible checks (equal rows), wrong on the hidden ones
    _answer_fails_only_the_hidden_tests(source, 0, "abar[t + 1]", "abar[t[:1] + 1]", r"t_next = ")
    # T = 1000 typed in: right for the book's schedule, wrong for the hidden tests' other schedules
    _answer_fails_only_the_hidden_tests(source, 2, "round((1 - r) * num_train_timesteps)", "round((1 - r) * 1000)",
                                        r"anneal_timestep\(\d+, \d+, 50,")


def test_chapter_1_checks_refuse_the_library_even_under_another_name():
    source = nbformat.read(ROOT / "chapters" / "01_sds.ipynb", as_version=4)
    exercise = _exercise_cells(source)
    borrowed = nbformat.from_dict(exercise[2])            # the anneal, answered by the library under an alias
    borrowed.source = ("def anneal_timestep(step, total_steps, num_train_timesteps=1000, t_range=(0.02, 0.98)):\n"
                       "    return int(schedule(num_train_timesteps, total_steps, t_range).timestep(step))\n")
    from gsbook.sds import DreamGaussianAnneal
    with pytest.raises(AssertionError, match="anneal_timestep called the library"):
        _run_cells([borrowed, _visible_part(exercise[3])], {"torch": torch, "schedule": DreamGaussianAnneal})
    imported = nbformat.from_dict(exercise[0])            # DDIM, answered by an import inside the function
    imported.source = ("def ddim_update(x_t, eps_hat, t, t_next, alphas_cumprod):\n"
                       "    from gsbook.diffusion import ddim_step\n"
                       "    return ddim_step(x_t, eps_hat, t, t_next, alphas_cumprod)\n")
    with pytest.raises(AssertionError, match="uses gsbook"):
        _run_cells([imported, _visible_part(exercise[1])], {"torch": torch})


def test_chapter_2_solutions_pass_their_hidden_tests_and_the_student_version_has_neither(tmp_path):
    source = _check_chapter(tmp_path, "02_dreamgaussian.ipynb", n_answers=0)
    # a subtly wrong answer (growing *at* the threshold) passes the visible checks; the hidden tests catch it
    _answer_fails_only_the_hidden_tests(source, 2, "grow = mean > threshold", "grow = mean >= threshold",
                                        "clone at the limit")


def test_chapter_0_solutions_pass_their_hidden_tests_and_the_student_version_has_neither(tmp_path):
    source = _check_chapter(tmp_path, "00_setup.ipynb", n_answers=6)
    # Rᵀ instead of R: the visible quarter turn about z gives the same Σ either way; random rotations do not
    _answer_fails_only_the_hidden_tests(source, 0, "M = R.reshape(quats.shape[:-1] + (3, 3)) * scales",
                                        "M = R.reshape(quats.shape[:-1] + (3, 3)).transpose(-1, -2) * scales",
                                        "Σ differs")
    # the first pixel's order used for every pixel: right for the visible one-pixel checks
    _answer_fails_only_the_hidden_tests(source, 2, "order = torch.argsort(depths, dim=-1, descending=True)",
                                        "order = torch.argsort(depths[:1], dim=-1, descending=True).expand_as(depths)",
                                        "disagree")
    # the covariance left in world axes: right for the visible camera, which is not rotated
    _answer_fails_only_the_hidden_tests(source, 4, "W @ covars @ W.T", "covars", "footprints differ")


def test_chapter_0_checks_refuse_the_library_even_under_another_name():
    from gsplat.cuda._torch_impl import _fisheye_proj

    from gsbook.gaussians import covariances
    from gsbook.render import composite_dense

    exercise = _exercise_cells(nbformat.read(ROOT / "chapters" / "00_setup.ipynb", as_version=4))
    borrowed = {
        0: ("def covariance_3d(quats, scales):\n    return sigma(quats, scales)\n", {"sigma": covariances}),
        2: ("def composite_back_to_front(colors, alphas, depths, background):\n"
            "    return paint(colors, alphas, depths, background)\n", {"paint": composite_dense}),
        4: ("def fisheye_covariance_2d(means, covars, viewmat, K, eps2d=0.3):\n"
            "    return lens(means[None, None], covars[None, None], K[None], 64, 64)[1][0, 0]\n",
            {"lens": _fisheye_proj}),
    }
    for index, (source, names) in borrowed.items():
        cell = nbformat.from_dict(exercise[index])
        cell.source = source
        name = source.split("(")[0].removeprefix("def ")
        with pytest.raises(AssertionError, match=f"{name} called the library"):
            _run_cells([cell, _visible_part(exercise[index + 1])], {"torch": torch, **names})


def test_chapter_0_fisheye_exercise_matches_gsplats_fisheye_projection():
    """The exercise's lens is gsplat's ``camera_model="fisheye"``: the reference solution agrees with gsplat's
    own projection (outside the guard) to gsplat's small epsilons."""
    from gsplat.cuda._torch_impl import _fisheye_proj

    exercise = _exercise_cells(nbformat.read(ROOT / "chapters" / "00_setup.ipynb", as_version=4))
    namespace = {"torch": torch}
    _run_cells([exercise[4]], namespace)
    g = torch.Generator().manual_seed(0)
    means_c = torch.tensor([[0.5, -0.3, 2.0], [1.5, 0.7, 1.0], [0.01, 0.02, 3.0]], dtype=torch.float64)
    A = torch.randn(3, 3, 3, generator=g, dtype=torch.float64)
    covars = 0.01 * A @ A.transpose(1, 2)
    K = torch.tensor([[50.0, 0, 40], [0, 60.0, 30], [0, 0, 1]], dtype=torch.float64)
    ours = namespace["fisheye_covariance_2d"](means_c, covars, torch.eye(4, dtype=torch.float64), K, eps2d=0.0)
    _, theirs = _fisheye_proj(means_c[None], covars[None], K[None], 80, 60)
    assert torch.allclose(ours, theirs[0], rtol=1e-5, atol=1e-5)


def test_forbid_switches_off_section_4s_flow_sampler_and_shell():
    from gsbook.diffusion import guide
    from gsbook.flow import euler_sample as sample, interpolate, velocity_target   # bound before the guard
    from gsbook.methods import shell_coords, surface_voxels

    own_loop = sample.__wrapped__                       # the sampler's code under its no_grad wrapper
    x, t = torch.ones(2, 3), torch.tensor([0.25, 0.5])
    block = torch.ones(4, 4, 4, dtype=torch.bool)
    for exercise, call in (("flow_pair", lambda: interpolate(x, x, t)), ("flow_pair", lambda: velocity_target(x, x)),
                           ("euler_cfg", lambda: sample(lambda x_, t_: -x_, x, 2)),
                           ("euler_cfg", lambda: own_loop(lambda x_, t_: -x_, x, 2)),
                           ("euler_cfg", lambda: guide(x, x, 2.0)),
                           ("active_voxels", lambda: surface_voxels(block)),
                           ("active_voxels", lambda: shell_coords(block))):
        with forbid(exercise), pytest.raises(AssertionError, match=f"{exercise} called the library"):
            call()
    # restored afterwards, with the right values
    assert torch.allclose(sample(lambda x_, t_: torch.zeros_like(x_), x, 3), x)
    assert surface_voxels(block).sum() == 4 ** 3 - 2 ** 3 and len(shell_coords(block)) == 56


def test_forbid_switches_off_section_6s_month_count():
    from gsbook.era import months_between as gap                       # bound before the guard

    with forbid("month_gap"), pytest.raises(AssertionError, match="month_gap called the library"):
        gap("2023-09-01", "2024-01-15")
    assert gap("2023-09-01", "2024-01-15") == 4                          # restored


def test_chapter_5_solutions_pass_their_hidden_tests_and_the_student_version_has_neither(tmp_path):
    source = _check_chapter(tmp_path, "05_numbers.ipynb", n_answers=2)
    # medians of the distinct values: right on the visible rows (no repeats), wrong on the hidden ones
    _answer_fails_only_the_hidden_tests(source, 0, "values = sorted(values)", "values = sorted(set(values))",
                                        r"made-up rows")
    # free training gives 0 assets: the visible checks have no free training with a saving
    _answer_fails_only_the_hidden_tests(source, 2, "n = 1 if train_seconds == 0 else max(1, math.ceil(train_seconds / saved))",
                                        "n = math.ceil(train_seconds / saved) if saved else 1", r"payback\(0\.0, ")


def test_forbid_switches_off_section_5s_medians_and_payback():
    from gsbook.harness import break_even_assets as even, medians      # bound before the guard

    with forbid("median_seconds"), pytest.raises(AssertionError, match="median_seconds called the library"):
        medians([])
    with forbid("payback"), pytest.raises(AssertionError, match="payback called the library"):
        even(1.0, 1.0, 2.0)
    assert medians([]) == {} and even(1.0, 1.0, 2.0) == 1                 # restored


def test_chapter_7_solutions_pass_their_hidden_tests_and_the_student_version_has_neither(tmp_path):
    source = _check_chapter(tmp_path, "07_open.ipynb", n_answers=4)
    # the distance to a bone's whole line, not its segment: right on the visible points, wrong on the hidden ones
    _answer_fails_only_the_hidden_tests(source, 0, "t.clamp(0, 1)[..., None]", "t[..., None]", r"random bones")


def test_forbid_switches_off_section_7s_skinning_and_gap():
    assert SECTION_7 == {"nearest_bone", "skin_covariance", "back_gap"}
    for name in SECTION_7:
        for target in LIBRARY[name]:
            assert target.startswith("gsbook.open_problems."), target
