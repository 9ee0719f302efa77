"""The course kit: ``tools/make_course.py`` writes an nbgrader course folder, and nbgrader's own
``autograde`` gives the reference solutions full marks and the released stubs zero, for every chapter
that has auto-graded cells (found by reading the chapters, not listed here).

How the grading runs. The command makes one course folder for the whole module (every chapter, plus
``--exercises``). For each chapter with auto-graded cells, two students submit its ``<ch>_exercises``
assignment and ``nbgrader autograde`` grades them, as a teacher would run it, from the course folder:

* ``solver`` hands in the released notebook with the instructor's solutions typed into its solution
  cells: every auto-graded cell must score full marks, with the hidden tests (which nbgrader puts back
  from the gradebook) having run;
* ``stub`` hands in the released notebook untouched: every auto-graded cell must score zero, each
  failing on the stub's ``NotImplementedError``.

Why ``<ch>_exercises`` and not the whole chapter: autograde executes a submission from its first cell,
and a whole chapter takes 50–90 s in the ci profile, so two submissions of three chapters would take
five to nine minutes. The exercises assignment holds the chapter's exercise section unchanged (the same
cells, nbgrader ids, points and hidden tests, checked below against the chapter) after one read-only
cell with the chapter's import statements, so autograde runs the same graded code in seconds. One
chapter whose whole run takes seconds (§6) is also graded whole, which covers the whole-chapter
assignments' own path (the chapter's earlier cells, its data files). (Solutions against stubs by direct
execution, and wrong answers that pass only the visible checks, are tests/test_exercises.py's job.)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOC = [c["file"] for part in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"] for c in part["chapters"]
       if c["file"].startswith("chapters/")]
WHOLE = "06_era"          # a graded chapter that executes in seconds: graded whole as well


def _tool():
    spec = importlib.util.spec_from_file_location("make_course", ROOT / "tools" / "make_course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kit = _tool()
GRADED = [Path(doc).name for doc in TOC if kit.has_autograded(nbformat.read(ROOT / f"{doc}.ipynb", as_version=4))]
# nbgrader runs `alembic` from the venv's scripts folder, which is not on PATH when the venv is
# not activated (./run.sh test calls .venv/bin/python directly).
ENV = {**os.environ, "GSBOOK_PROFILE": "ci", "OMP_NUM_THREADS": "1",
       "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("course")
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "make_course.py"), "--out", str(out), "--exercises"],
                         env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def _read(course: Path, where: str, assignment: str, student: str | None = None) -> nbformat.NotebookNode:
    folder = course / where / (student or "") / assignment
    return nbformat.read(folder / f"{assignment}.ipynb", as_version=4)


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _text(nb) -> str:
    return "\n".join(c.source for c in nb.cells)


# ----------------------------------------------------------------------------------------- the folder
def test_there_are_graded_chapters_to_prove():
    assert {"01_sds", "02_dreamgaussian", "06_era"} <= set(GRADED)


def test_the_course_folder_has_every_chapter_in_nbgraders_layout(course):
    assert (course / "nbgrader_config.py").is_file() and (course / "gradebook.db").is_file()
    assert (course / "README.md").is_file()
    for doc in TOC:
        name = Path(doc).name
        chapter = nbformat.read(ROOT / f"{doc}.ipynb", as_version=4)
        source, release = _read(course, "source", name), _read(course, "release", name)
        assert [c.source for c in source.cells] == [c.source for c in chapter.cells], f"{name}: source/ is the chapter"
        assert len(release.cells) == len(chapter.cells)
        for rel in kit.data_files(chapter):                    # what the chapter reads travels with it
            assert (course / "release" / name / rel).is_file(), rel


def test_the_nbgrader_config_keeps_the_gradebook_here_and_the_books_cell_limit(course, monkeypatch):
    from traitlets.config import PyFileConfigLoader

    from gsbook.config import CELL_TIMEOUT_S

    for profile, limit in CELL_TIMEOUT_S.items():
        monkeypatch.setenv("GSBOOK_PROFILE", profile)
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
        assert config.Execute.timeout == limit
    assert config.CourseDirectory.db_url == f"sqlite:///{course / 'gradebook.db'}"
    assert config.CourseDirectory.root == str(course)


def test_the_release_is_the_student_edition(course):
    """nbgrader's release: stubs for solutions, no hidden tests, empty answer cells, locked and checksummed
    graded cells; cell for cell the edition tools/make_student.py writes."""
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    make_student = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_student)
    for name in GRADED:
        source, release = _read(course, "source", name), _read(course, "release", name)
        text = _text(release)
        assert "### BEGIN SOLUTION" in _text(source) and "### BEGIN SOLUTION" not in text
        assert "### BEGIN HIDDEN TESTS" not in text and "**Model answer**" not in text and "**参考答案**" not in text
        solutions = [c for c in release.cells if c.cell_type == "code" and _meta(c).get("solution")]
        assert solutions and all("raise NotImplementedError()" in c.source for c in solutions)
        answers = [c for c in release.cells if c.cell_type == "markdown" and _meta(c).get("solution")]
        assert all(c.source == "YOUR ANSWER HERE" and "remove-cell" not in c.metadata.get("tags", []) for c in answers)
        graded = [c for c in release.cells if _meta(c).get("grade")]
        assert all(_meta(c)["locked"] or _meta(c).get("solution") for c in graded)
        assert all("checksum" in _meta(c) for c in graded)
        student = make_student.student_version(nbformat.read(ROOT / "chapters" / f"{name}.ipynb", as_version=4))
        assert [c.source for c in release.cells] == [c.source for c in student.cells], name


def test_the_exercises_assignment_is_the_chapters_exercise_section(course):
    for name in GRADED:
        chapter, short = _read(course, "source", name), _read(course, "source", name + kit.EXERCISES_SUFFIX)
        start = next(i for i, c in enumerate(chapter.cells) if kit.EXERCISES.search(c.source))
        assert [c.source for c in short.cells[2:]] == [c.source for c in chapter.cells[start:]]
        assert [c.metadata for c in short.cells[2:]] == [c.metadata for c in chapter.cells[start:]]
        setup = short.cells[1]
        assert _meta(setup)["locked"] and not _meta(setup)["grade"]
        assert all(line.startswith(("import ", "from ", "#")) or line.startswith(" ")
                   for line in setup.source.splitlines()), "the setup cell only imports"


def test_the_answer_key_lists_every_graded_cell(course):
    key = (course / "answer_key.md").read_text(encoding="utf-8")
    for name in GRADED:
        for cell in _read(course, "source", name).cells:
            if _meta(cell).get("grade") or _meta(cell).get("solution"):
                assert f"`{_meta(cell)['grade_id']}`" in key
    assert "### BEGIN HIDDEN TESTS" in key


# ----------------------------------------------------------------------------------------- autograde
def _submit(course: Path, assignment: str) -> None:
    """Two students hand in ``assignment``: the release with the instructor's solutions, and the bare release."""
    source, release = _read(course, "source", assignment), _read(course, "release", assignment)
    reference = {_meta(c)["grade_id"]: c.source for c in source.cells if c.cell_type == "code" and _meta(c).get("solution")}
    solved = nbformat.from_dict(release)
    for cell in solved.cells:
        if _meta(cell).get("grade_id") in reference:
            cell.source = reference[_meta(cell)["grade_id"]]
    for student, nb in (("solver", solved), ("stub", release)):
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{assignment}.ipynb")
        for extra in (course / "release" / assignment).iterdir():          # the data files, as fetched
            if extra.is_dir():
                shutil.copytree(extra, folder / extra.name, dirs_exist_ok=True)


def _autograde(course: Path, assignment: str) -> dict[str, dict[str, tuple[float, float]]]:
    """``nbgrader autograde ASSIGNMENT`` from the course folder; each student's (score, max) per auto-graded cell."""
    from nbgrader.api import Gradebook

    _submit(course, assignment)
    run = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment, "--create", "--force"],
                         cwd=course, env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in ("solver", "stub"):
            notebook = gradebook.find_submission_notebook(assignment, assignment, student)
            scores[student] = {g.name: (g.auto_score, g.max_score) for g in notebook.grades if g.cell_type == "code"}
    return scores


def _check_grades(course: Path, assignment: str) -> None:
    source = _read(course, "source", assignment)
    graded = {_meta(c)["grade_id"]: _meta(c)["points"] for c in source.cells if kit.is_autograded(c)}
    scores = _autograde(course, assignment)
    assert set(scores["solver"]) == set(graded) == set(scores["stub"])
    assert scores["solver"] == {k: (float(p), float(p)) for k, p in graded.items()}, "the solutions: full marks"
    assert scores["stub"] == {k: (0.0, float(p)) for k, p in graded.items()}, "the stubs: zero"

    solved, stub = _read(course, "autograded", assignment, "solver"), _read(course, "autograded", assignment, "stub")
    for sol_cell, stub_cell in zip(solved.cells, stub.cells):
        if _meta(sol_cell).get("grade_id") not in graded:
            continue
        hidden = next(c for c in source.cells if _meta(c).get("grade_id") == _meta(sol_cell)["grade_id"]).source
        assert sol_cell.source == stub_cell.source == hidden, "autograde ran the teacher's cell, hidden tests included"
        assert not [o for o in sol_cell.outputs if o.output_type == "error"]
        assert [o.ename for o in stub_cell.outputs if o.output_type == "error"] == ["NotImplementedError"]


@pytest.mark.parametrize("chapter", GRADED)
def test_autograde_gives_the_solutions_full_marks_and_the_stubs_zero(course, chapter):
    _check_grades(course, chapter + kit.EXERCISES_SUFFIX)


@pytest.mark.skipif(WHOLE not in GRADED, reason=f"{WHOLE} has no auto-graded cells")
def test_autograde_grades_a_whole_chapter_the_same_way(course):
    _check_grades(course, WHOLE)


# ----------------------------------------------------------------------------------------- instructors
def test_instructor_material_is_off_the_website():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "instructors" in config["exclude_patterns"]
    assert "instructors" not in (ROOT / "_toc.yml").read_text()
    notes = ROOT / "instructors"
    assert (notes / "README.md").is_file()
    for doc in TOC:
        text = (notes / f"{Path(doc).name}.md").read_text(encoding="utf-8")
        assert "## Learning objectives" in text, doc
