"""The exercises' self-checks accept right answers, explain wrong ones, and the student version strips solutions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
import torch

from gsbook.exercises import check_anneal, check_sds_gradient

ROOT = Path(__file__).resolve().parents[1]


def right_sds(eps_hat, eps, abar, t):
    return (1 - abar[t]).view(-1, 1, 1, 1) * (eps_hat - eps)


def test_sds_gradient_check(capsys):
    check_sds_gradient(right_sds)
    assert "✓" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"expected w\(t\) = 1 − ᾱ_t"):
        check_sds_gradient(lambda eps_hat, eps, abar, t: eps_hat - eps)
    with pytest.raises(AssertionError, match="broadcast"):
        check_sds_gradient(lambda eps_hat, eps, abar, t: (1 - abar[t]) * (eps_hat - eps).mean((1, 2, 3)))

    def stub(*args):
        raise NotImplementedError()
    with pytest.raises(AssertionError, match="not written yet"):
        check_sds_gradient(stub)


def test_anneal_check(capsys):
    def right(step, total):
        t = round((1 - min(1.0, step / total)) * 1000)
        return min(max(t, 20), 980)
    check_anneal(right)
    assert "✓" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"anneal_timestep\(0, 10\) = 1000, expected 980"):
        check_anneal(lambda step, total: round((1 - step / total) * 1000))


def _make_student():
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_student_version_of_chapter_1_has_stubs_not_solutions(tmp_path):
    make_student = _make_student()
    source = nbformat.read(ROOT / "chapters" / "01_sds.ipynb", as_version=4)
    assert make_student.has_solutions(source)
    assert make_student.main([str(ROOT / "chapters" / "01_sds.ipynb"), "--out", str(tmp_path)]) == 0
    student = nbformat.read(tmp_path / "01_sds.ipynb", as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text
    assert text.count("raise NotImplementedError()") >= 2
    assert "check_sds_gradient(sds_gradient)" in text and "check_anneal(anneal_timestep)" in text
    # the stubbed functions fail their checks with the "not written yet" message
    namespace: dict = {}
    for cell in student.cells:
        if cell.cell_type == "code" and "def sds_gradient" in cell.source:
            exec(cell.source, namespace)
    with pytest.raises(AssertionError, match="not written yet"):
        check_sds_gradient(namespace["sds_gradient"])


def _run_cells(cells, namespace: dict) -> None:
    """Execute notebook cells as a kernel would, with their source findable by ``inspect``."""
    import linecache

    for i, cell in enumerate(cells):
        filename = f"<cell-{id(cell)}-{i}>"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
        exec(compile(cell.source, filename, "exec"), namespace)


def _exercise_cells(notebook):
    """Chapter 2's exercise cells: the solution cells and the graded cells, in order."""
    return [c for c in notebook.cells if c.cell_type == "code" and "nbgrader" in c.metadata]


def test_chapter_2_solutions_pass_their_hidden_tests_and_the_student_version_has_neither(tmp_path):
    make_student = _make_student()
    path = ROOT / "chapters" / "02_dreamgaussian.ipynb"
    source = nbformat.read(path, as_version=4)
    cells = _exercise_cells(source)
    graded = [c for c in cells if c.metadata["nbgrader"]["grade"]]
    assert len(graded) >= 2 and all("### BEGIN HIDDEN TESTS" in c.source for c in graded)
    _run_cells(cells, {"torch": torch})                  # the teacher's copy: solutions pass every test

    assert make_student.main([str(path), "--out", str(tmp_path)]) == 0
    student = nbformat.read(tmp_path / path.name, as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    student_cells = _exercise_cells(student)
    namespace = {"torch": torch}
    for solution, check in zip(student_cells[::2], student_cells[1::2]):
        _run_cells([solution], namespace)
        with pytest.raises(NotImplementedError):   # a stub fails its check instead of passing it
            _run_cells([check], namespace)

    # a subtly wrong answer (growing *at* the threshold) passes the visible checks; the hidden tests catch it
    wrong = nbformat.from_dict(source)
    for cell in _exercise_cells(wrong):
        cell.source = cell.source.replace("grow = mean > threshold", "grow = mean >= threshold")
    namespace = {"torch": torch}
    exercise = _exercise_cells(wrong)
    _run_cells(exercise[:2], namespace)
    visible_only = nbformat.from_dict(exercise[3])
    visible_only.source = visible_only.source.split("### BEGIN HIDDEN TESTS")[0]
    _run_cells([exercise[2], visible_only], namespace)
    with pytest.raises(AssertionError, match="clone at the limit"):
        _run_cells([exercise[3]], namespace)
