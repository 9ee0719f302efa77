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
    assert set(LIBRARY) == {"ddim_update", "anneal_timestep"}


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
