"""Write the student version of the chapters: solutions replaced by stubs.

    python tools/make_student.py                 # every chapter → _build/student/
    python tools/make_student.py chapters/01_sds.ipynb --out handout/

Exercise cells keep their reference solution between nbgrader's markers::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

nbgrader's own ``ClearSolutions`` preprocessor replaces each such region by
``# YOUR CODE HERE`` / ``raise NotImplementedError()``, and ``ClearHiddenTests`` removes the
graded cells' hidden tests (between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``:
they check the student's function on inputs the student never sees). A Markdown answer cell (nbgrader's
"manually graded answer", holding an instructor's model answer and tagged ``remove-cell`` so that the
website leaves it out) becomes an empty ``YOUR ANSWER HERE`` cell. Everything else (prose, the
visible checks) is kept. Teachers using nbgrader run ``python tools/make_course.py --out COURSE``
instead: it puts the chapters in a course's ``source/`` folder and runs ``nbgrader generate_assignment``
(the cells carry nbgrader metadata: solution cells, graded check cells and answer cells, with their
points), which writes this same edition into ``release/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def student_version(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with every solution region replaced by a stub, every hidden test
    removed, and no outputs."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb, _ = ClearSolutions(enforce_metadata=False).preprocess(nbformat.from_dict(notebook), {})
    nb, _ = ClearHiddenTests(enforce_metadata=False).preprocess(nb, {})
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        elif cell.metadata.get("nbgrader", {}).get("solution"):
            # the model answer is gone; the student's answer cell is shown wherever the edition is
            tags = [t for t in cell.metadata.get("tags", []) if t != "remove-cell"]
            cell.metadata["tags"] = tags
    return nb


def has_solutions(notebook: nbformat.NotebookNode) -> bool:
    return any("### BEGIN SOLUTION" in cell.source for cell in notebook.cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: chapters/*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    args.out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if not has_solutions(nb):
            continue
        target = args.out / path.name
        nbformat.write(student_version(nb), target)
        print(f"{path} → {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
