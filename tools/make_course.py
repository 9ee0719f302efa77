"""The course kit: an nbgrader course folder with the student edition of every chapter, in one command.

    python tools/make_course.py --out COURSE                   # every chapter of _toc.yml
    python tools/make_course.py --out COURSE 01_sds 06_era     # some chapters
    python tools/make_course.py --out COURSE --exercises       # also each chapter's exercises alone

It writes, in the layout ``nbgrader`` expects (run nbgrader's commands from inside ``COURSE``)::

    COURSE/nbgrader_config.py          course id, the gradebook (an sqlite file here), autograde's per-cell
                                       limit (gsbook.config.CELL_TIMEOUT_S of the profile GSBOOK_PROFILE names)
    COURSE/source/<ch>/<ch>.ipynb      the instructor's version: reference solutions, hidden tests, model
                                       answers, nbgrader metadata; beside it the files the chapter reads (data/…)
    COURSE/release/<ch>/<ch>.ipynb     the student edition, made by nbgrader's own ``generate_assignment``:
                                       solutions replaced by stubs, hidden tests removed, model answers
                                       replaced by empty answer cells, cells locked and checksummed
    COURSE/gradebook.db                nbgrader's gradebook, which generate_assignment fills
    COURSE/answer_key.md               every exercise: points, reference solution, hidden tests, model answers
    COURSE/README.md                   what to run next (nbgrader's collect → autograde → formgrade)

``--exercises`` adds, for every chapter with auto-graded cells, the assignment ``<ch>_exercises``: the
chapter's title, one read-only setup cell holding the chapter's own import statements, and the
chapter from its ``## Exercises`` heading to the end, exactly as in the chapter (same cells, same
nbgrader ids, same hidden tests). It grades in seconds, where autograde on a whole chapter executes
the chapter first (a minute or more per submission). ``tests/test_course_kit.py`` grades both
kinds of submission of it with ``nbgrader autograde``: the reference solutions get full marks,
the released stubs get zero.

Grading, once students have submitted (``submitted/<student>/<ch>/<ch>.ipynb``; ``nbgrader collect``
puts them there when the course uses nbgrader's exchange)::

    cd COURSE
    GSBOOK_PROFILE=ci nbgrader autograde 01_sds     # the ci profile executes each chapter in about a minute
    nbgrader formgrade                               # or the Formgrader in JupyterLab, for the open questions
    nbgrader generate_feedback 01_sds

The website never shows any of this: a model answer carries the ``remove-cell`` tag in the chapter
(the edition here drops the tag, so the released answer cell shows in JupyterLab), and the course
folder lives outside the book. ``python tools/make_student.py`` writes the same student edition
without nbgrader's course layout.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_student import has_solutions  # noqa: E402
from notebooks import chapters as toc_chapters  # noqa: E402

EXERCISES = re.compile(r"^##\s+Exercises\b", re.M)
DATA = re.compile(r"""["'](data/[\w./-]+)["']""")
EXERCISES_SUFFIX = "_exercises"

CONFIG = '''\
"""nbgrader's configuration for this course folder (written by gsbook's tools/make_course.py).

Run nbgrader from this folder: `nbgrader generate_assignment CH`, `nbgrader autograde CH`, …
"""
import os

c = get_config()  # noqa: F821  (traitlets provides it)
here = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = here
c.CourseDirectory.course_id = "gsbook"
# The gradebook: an sqlite file inside this folder.
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(here, "gradebook.db")
# The stubs the student edition shows in place of a solution (nbgrader's defaults, spelled out).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# autograde executes every submission. A cell may run as long as the book allows one in the profile
# GSBOOK_PROFILE names (ci, cpu or gpu), not nbgrader's default 30 s: gsbook.config.CELL_TIMEOUT_S, copied
# here when the folder was written (importing gsbook here would load torch for every nbgrader command);
# without GSBOOK_PROFILE, the longest.
CELL_TIMEOUT_S = {timeouts!r}
c.Execute.timeout = CELL_TIMEOUT_S.get(os.environ.get("GSBOOK_PROFILE", ""), max(CELL_TIMEOUT_S.values()))
'''

README = """\
# gsbook course folder

Written by `python tools/make_course.py` from the book's chapters; run nbgrader from this folder.

| folder | what |
|---|---|
| `source/<ch>/` | the instructor's version of each chapter: reference solutions, hidden tests, model answers |
| `release/<ch>/` | the student edition (`nbgrader generate_assignment`); hand these out |
| `answer_key.md` | every exercise's points, solution, hidden tests and model answer |
| `gradebook.db` | nbgrader's gradebook (sqlite) |

Assignments: {assignments}

Grading: put each student's notebook in `submitted/<student>/<ch>/<ch>.ipynb` (or `nbgrader collect <ch>`), then
`GSBOOK_PROFILE=ci nbgrader autograde <ch>` (auto-graded cells), the Formgrader for the open questions, and
`nbgrader generate_feedback <ch>`. With `--exercises` the command also writes, for each chapter with auto-graded
cells, an `<ch>{suffix}` assignment: only that chapter's exercises, graded in seconds. The instructors' notes (objectives, exercise times, rubrics) are in the book's `instructors/` folder.
"""


# ----------------------------------------------------------------------------------------- editions
def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_autograded(cell) -> bool:
    """A code cell nbgrader grades by running it (its hidden tests included)."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def has_autograded(notebook) -> bool:
    return any(is_autograded(c) for c in notebook.cells)


def instructor_version(notebook) -> nbformat.NotebookNode:
    """The chapter as nbgrader's ``source/``: no outputs, and the model answers without the website's
    ``remove-cell`` tag (so that the released answer cells show in JupyterLab)."""
    nb = nbformat.from_dict(notebook)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        elif nbgrader_meta(cell).get("solution"):
            cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if t != "remove-cell"]
            if not cell.metadata["tags"]:
                del cell.metadata["tags"]
    return nb


def chapter_imports(cells) -> str:
    """The top-level import statements of ``cells``, in order and without repeats."""
    seen: list[str] = []
    for cell in cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                statement = ast.get_source_segment(source, node)
                if statement not in seen:
                    seen.append(statement)
    return "\n".join(seen)


def exercises_version(notebook) -> nbformat.NotebookNode:
    """The chapter's exercises alone: its title, a read-only cell with the chapter's imports (what the
    exercise cells may use from earlier in the chapter), then every cell from ``## Exercises`` on."""
    nb = instructor_version(notebook)
    start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and EXERCISES.search(c.source)),
                 None)
    if start is None:
        raise ValueError("the chapter has no '## Exercises' heading")
    title = nbformat.v4.new_markdown_cell(nb.cells[0].source.splitlines()[0] + " · exercises · 习题")
    title.id = "exercises-title"
    setup = nbformat.v4.new_code_cell(
        "# The chapter's imports: what the exercises may use from earlier in the chapter.\n"
        + chapter_imports(nb.cells[:start]))
    setup.id = "exercises-setup"
    setup.metadata["nbgrader"] = {"grade": False, "grade_id": "exercises_setup", "locked": True,
                                  "schema_version": 3, "solution": False, "task": False}
    out = nbformat.from_dict(nb)
    out.cells = [title, setup, *nb.cells[start:]]
    return out


def data_files(notebook) -> list[str]:
    """The files under chapters/data/ that the chapter's code reads (``"data/NAME"``)."""
    names = {m for c in notebook.cells if c.cell_type == "code" for m in DATA.findall(c.source)}
    return sorted(n for n in names if (ROOT / "chapters" / n).is_file())


# ----------------------------------------------------------------------------------------- answer key
def answer_key(books: dict[str, nbformat.NotebookNode]) -> str:
    lines = ["# Answer key · 参考答案", "",
             "Written by `tools/make_course.py` from the chapters. For instructors only: do not hand this out.",
             "Each exercise: its nbgrader cells (`grade_id`), points, the reference solution, the graded cell with",
             "its hidden tests, and the model answers of the open questions.", ""]
    for name, nb in books.items():
        cells = [c for c in nb.cells if "nbgrader" in c.metadata and nbgrader_meta(c).get("grade_id") != "exercises_setup"]
        if not cells:
            continue
        auto = sum(nbgrader_meta(c).get("points", 0) for c in cells if is_autograded(c))
        manual = sum(nbgrader_meta(c).get("points", 0) for c in cells
                     if nbgrader_meta(c).get("grade") and not is_autograded(c))
        lines += [f"## {nb.cells[0].source.splitlines()[0].lstrip('# ')}", "",
                  f"`{name}`: {auto} points auto-graded, {manual} points graded by hand.", ""]
        for cell in cells:
            meta = nbgrader_meta(cell)
            kind = ("auto-graded check" if is_autograded(cell) else
                    "answer, graded by hand" if meta.get("grade") else
                    "solution" if meta.get("solution") else "read-only")
            points = f", {meta['points']} points" if meta.get("grade") else ""
            lines += [f"### `{meta['grade_id']}` ({kind}{points}; cell id `{cell.get('id', '?')}`)", ""]
            if cell.cell_type == "code":
                lines += ["```python", cell.source, "```", ""]
            else:
                lines += [cell.source, ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- nbgrader
def with_scripts_on_path(env: dict | None = None) -> dict:
    """``env`` (default: this process's) with this Python's scripts folder first on PATH: nbgrader
    upgrades its gradebook by running the ``alembic`` command, which lives beside the Python
    that runs nbgrader (e.g. ``.venv/bin``) and is not on PATH when the venv is not activated."""
    import os

    env = dict(os.environ if env is None else env)
    scripts = str(Path(sys.executable).parent)
    if scripts not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    return env


def nbgrader_api(course: Path):
    """nbgrader's API on ``course``, configured by its nbgrader_config.py."""
    import os

    os.environ.update(with_scripts_on_path())
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config, PyFileConfigLoader

    config = Config()
    config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config())
    return NbGraderAPI(config=config)


def _run(what: str, action, *args) -> None:
    result = action(*args)
    if not result.get("success"):
        # nbgrader puts the cause in the log and only a pointer to it in "error": show both.
        raise RuntimeError(f"nbgrader {what} failed:\n{result.get('log') or ''}\n{result.get('error') or ''}")


def generate(course: Path, assignments: list[str]) -> None:
    """``nbgrader generate_assignment`` for each assignment (source/ → release/, recorded in the gradebook)."""
    api = nbgrader_api(course)
    for name in assignments:
        _run(f"generate_assignment {name}", api.generate_assignment, name)


def autograde(course: Path, assignment: str, student: str) -> None:
    """``nbgrader autograde`` of one student's submission (submitted/<student>/<assignment>/)."""
    _run(f"autograde {assignment} {student}", nbgrader_api(course).autograde, assignment, student)


# ----------------------------------------------------------------------------------------- the command
def resolve(names: list[str]) -> list[Path]:
    known = [ROOT / f"{doc}.ipynb" for doc in toc_chapters()]
    if not names:
        return known
    paths = []
    for name in names:
        stem = Path(name).stem
        match = [p for p in known if p.stem == stem or p.stem.split("_", 1)[0] == stem]
        if len(match) != 1:
            raise SystemExit(f"no chapter {name!r}; choose from {', '.join(p.stem for p in known)}")
        paths.append(match[0])
    return paths


def make_course(out: Path, paths: list[Path], exercises: bool = False, log=print) -> list[str]:
    """Write the course folder ``out`` for the chapters ``paths``; returns the assignment names."""
    out.mkdir(parents=True, exist_ok=True)
    from gsbook.config import CELL_TIMEOUT_S

    (out / "nbgrader_config.py").write_text(CONFIG.replace("{timeouts!r}", repr(CELL_TIMEOUT_S)), encoding="utf-8")
    books: dict[str, nbformat.NotebookNode] = {}
    for path in paths:
        chapter = nbformat.read(path, as_version=4)
        editions = [(path.stem, instructor_version(chapter))]
        if exercises and has_autograded(chapter):
            editions.append((path.stem + EXERCISES_SUFFIX, exercises_version(chapter)))
        for name, nb in editions:
            folder = out / "source" / name
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{name}.ipynb")
            for rel in data_files(nb):
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / "chapters" / rel, folder / rel)
            books[name] = nb
    names = list(books)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        generate(out, names)
    (out / "answer_key.md").write_text(answer_key({n: nb for n, nb in books.items() if not n.endswith(EXERCISES_SUFFIX)}),
                                       encoding="utf-8")
    (out / "README.md").write_text(README.format(assignments=", ".join(f"`{n}`" for n in names),
                                                  suffix=EXERCISES_SUFFIX), encoding="utf-8")
    for name, nb in books.items():
        graded = [c for c in nb.cells if is_autograded(c)]
        what = (f"{len(graded)} auto-graded cells, {sum(nbgrader_meta(c)['points'] for c in graded)} points"
                if graded else ("solutions" if has_solutions(nb) else "no graded cells"))
        log(f"{name:28s} source/{name}/ → release/{name}/  ({what})")
    log(f"course folder: {out}  (nbgrader_config.py, gradebook.db, answer_key.md)")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter names (01_sds, or 01); default: every chapter")
    parser.add_argument("--out", type=Path, required=True, help="the course folder to write (created if missing)")
    parser.add_argument("--exercises", action="store_true",
                        help="also write <ch>_exercises: each graded chapter's exercises alone (quick to autograde)")
    args = parser.parse_args(argv)
    make_course(args.out.resolve(), resolve(args.chapters), exercises=args.exercises)
    return 0


if __name__ == "__main__":
    sys.exit(main())
