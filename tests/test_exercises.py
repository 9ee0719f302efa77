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
