"""Guards for the chapters' auto-graded exercises: the answer must be the reader's own code.

An exercise in a chapter is a pair of nbgrader cells. The first holds the reference solution
between ``### BEGIN SOLUTION`` / ``### END SOLUTION``; the graded cell below it checks a few
*visible* properties of the reader's function and then, between ``### BEGIN HIDDEN TESTS`` /
``### END HIDDEN TESTS``, compares it with the formula on inputs the reader never sees (other
schedules, shapes, timesteps). ``python tools/make_student.py`` replaces the solutions by stubs
and removes the hidden tests; nbgrader's ``generate_assignment`` does the same.

Most exercises re-derive something the library already does, so an answer could simply call
the library. Two guards refuse that:

* :func:`own_code` reads the function's source and rejects one that mentions ``gsbook`` or
  ``diffusers``;
* :func:`forbid` makes the library's own implementation raise while a check runs, which also
  catches a call through a name imported elsewhere in the notebook (``from gsbook.diffusion
  import ddim_step as step`` in another cell).

====================  ==========  ===============================================================
exercise              chapter     the library code :func:`forbid` switches off
====================  ==========  ===============================================================
``ddim_update``       §1          ``gsbook.diffusion``'s ``alpha_sigma`` / ``predicted_x0`` /
                                  ``ddim_step`` (every noise formula goes through
                                  ``alpha_sigma``), diffusers' ``DDIMScheduler.step``
``anneal_timestep``   §1          ``gsbook.sds``'s ``DreamGaussianAnneal`` and
                                  ``timestep_range``
====================  ==========  ===============================================================
"""

from __future__ import annotations

import inspect
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator
from unittest import mock

__all__ = ["LIBRARY", "own_code", "forbid"]

# exercise → the dotted paths of the library code that would answer it.
LIBRARY: dict[str, tuple[str, ...]] = {
    "ddim_update": ("gsbook.diffusion.noise.alpha_sigma", "gsbook.diffusion.noise.predicted_x0",
                    "gsbook.diffusion.noise.ddim_step",
                    "diffusers.schedulers.scheduling_ddim.DDIMScheduler.step"),
    "anneal_timestep": ("gsbook.sds.schedules.timestep_range", "gsbook.sds.schedules._progress",
                        "gsbook.sds.schedules.DreamGaussianAnneal.timestep"),
}


def own_code(fn: Callable, banned: tuple[str, ...] = ("gsbook", "diffusers")) -> None:
    """Raise ``AssertionError`` if the source of ``fn`` mentions one of the ``banned`` packages."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):          # no source to read (a builtin, a lambda typed at a prompt)
        return
    found = [name for name in banned if name in source]
    if found:
        raise AssertionError(f"{getattr(fn, '__name__', 'your function')} uses {', '.join(found)}: "
                             "write the formula yourself, with torch and math only")


@contextmanager
def forbid(exercise: str) -> Iterator[None]:
    """While the block runs, the library code that answers ``exercise`` (see :data:`LIBRARY`)
    raises an ``AssertionError`` that says so.

    Raises:
        KeyError: for an exercise :data:`LIBRARY` does not list.
    """
    if exercise not in LIBRARY:
        raise KeyError(f"no exercise {exercise!r}; known: {sorted(LIBRARY)}")

    def refuse(*args, **kwargs):
        raise AssertionError(f"{exercise} called the library's own implementation; "
                             "write the formula yourself, with torch and math only")

    with ExitStack() as stack:
        for target in LIBRARY[exercise]:
            stack.enter_context(mock.patch(target, side_effect=refuse))
        yield
