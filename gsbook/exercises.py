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
  ``diffusers`` (or the packages an exercise names: ``gsplat``, ``scipy``, …);
* :func:`forbid` makes the library's own implementation raise while a check runs, which also
  catches a call through a name imported elsewhere in the notebook (``from gsbook.diffusion
  import ddim_step as step`` in another cell): the module attribute is patched, and a plain
  Python function's code is swapped for one that raises, so that every name bound to the
  same function object refuses too.

=============================  =======  ===========================================================
exercise                       chapter  the library code :func:`forbid` switches off
=============================  =======  ===========================================================
``ddim_update``                §1       ``gsbook.diffusion``'s ``alpha_sigma`` / ``predicted_x0`` /
                                        ``ddim_step`` (every noise formula goes through
                                        ``alpha_sigma``), diffusers' ``DDIMScheduler.step``
``anneal_timestep``            §1       ``gsbook.sds``'s ``DreamGaussianAnneal`` and
                                        ``timestep_range``
``covariance_3d``              §0       ``gsbook.gaussians``' ``quat_to_rotmat`` / ``covariances``;
                                        gsplat's ``_quat_to_rotmat`` / ``_quat_scale_to_covar_preci``
``composite_back_to_front``    §0       ``gsbook.render``'s compositors (``CompositeFunction.forward``,
                                        ``composite_dense``), ``gsbook.baselines.volume_render``;
                                        gsplat's ``accumulate``
``fisheye_covariance_2d``      §0       ``gsbook.render``'s ``project`` / ``world_to_camera`` /
                                        ``perspective_jacobian``; gsplat's ``_fisheye_proj``,
                                        ``_world_to_cam``, ``_fully_fused_projection``
``camera_plucker``             §3       ``gsbook.cameras``' ``plucker_rays`` / ``pixel_rays`` /
                                        ``rays_from``
``ray_box_chord``              §3       ``gsbook.methods.grm``'s ``grm_box_depths``
``splat_activations``          §3       ``gsbook.methods.lgm``'s ``lgm_activate`` / ``lgm_decode``
``flow_pair``                  §4       ``gsbook.flow``'s ``interpolate`` / ``velocity_target``
``euler_cfg``                  §4       ``gsbook.flow.euler_sample`` (its code under the ``no_grad``
                                        wrapper too), ``gsbook.diffusion``'s ``guide``
``active_voxels``              §4       ``gsbook.methods.trellis``' ``surface_voxels`` / ``shell_coords``
``month_gap``                  §6       ``gsbook.era.months_between``
``nearest_bone``               §7       ``gsbook.open_problems``' ``bone_distances`` / ``bone_weights``
``skin_covariance``            §7       ``gsbook.open_problems``' ``blend_transforms`` / ``skin``
``back_gap``                   §7       ``gsbook.open_problems``' ``azimuth_offsets`` / ``front_back_gap``
``median_seconds``             §5       ``gsbook.harness.medians``
``payback``                    §5       ``gsbook.harness.break_even_assets``
=============================  =======  ===========================================================
"""

from __future__ import annotations

import inspect
import pkgutil
import types
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
    "covariance_3d": ("gsbook.gaussians.quat_to_rotmat", "gsbook.gaussians.covariances",
                      "gsplat.cuda._torch_impl._quat_to_rotmat",
                      "gsplat.cuda._torch_impl._quat_scale_to_covar_preci"),
    "composite_back_to_front": ("gsbook.render.compositing.CompositeFunction.forward",
                                "gsbook.render.dense.composite_dense",
                                "gsbook.baselines.volume_render", "gsplat.cuda._torch_impl.accumulate"),
    "fisheye_covariance_2d": ("gsbook.render.project.project", "gsbook.render.project.world_to_camera",
                              "gsbook.render.project.perspective_jacobian",
                              "gsplat.cuda._torch_impl._fisheye_proj", "gsplat.cuda._torch_impl._world_to_cam",
                              "gsplat.cuda._torch_impl._fully_fused_projection"),
    "camera_plucker": ("gsbook.cameras.plucker_rays", "gsbook.cameras.pixel_rays", "gsbook.cameras.rays_from"),
    "ray_box_chord": ("gsbook.methods.grm.grm_box_depths",),
    "splat_activations": ("gsbook.methods.lgm.lgm_activate", "gsbook.methods.lgm.lgm_decode"),
    "flow_pair": ("gsbook.flow.interpolate", "gsbook.flow.velocity_target"),
    # euler_sample is wrapped by torch.no_grad (a closure): its own code is the wrapper's __wrapped__,
    # listed before the wrapper, which is then replaced by a mock (targets are switched off in order)
    "euler_cfg": ("gsbook.flow.euler_sample.__wrapped__", "gsbook.flow.euler_sample", "gsbook.diffusion.noise.guide"),
    "active_voxels": ("gsbook.methods.trellis.structure.surface_voxels", "gsbook.methods.trellis.slat.shell_coords"),
    "month_gap": ("gsbook.era.months_between",),
    "nearest_bone": ("gsbook.open_problems.bone_distances", "gsbook.open_problems.bone_weights"),
    "skin_covariance": ("gsbook.open_problems.blend_transforms", "gsbook.open_problems.skin"),
    "back_gap": ("gsbook.open_problems.azimuth_offsets", "gsbook.open_problems.front_back_gap"),
    "median_seconds": ("gsbook.harness.medians",),
    "payback": ("gsbook.harness.break_even_assets",),
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

    message = (f"{exercise} called the library's own implementation; "
               "write the formula yourself, with torch and math only")

    def refuse(*args, **kwargs):
        raise AssertionError(message)

    with ExitStack() as stack:
        for target in LIBRARY[exercise]:
            owner, attribute = target.rsplit(".", 1)
            function = _plain_function(inspect.getattr_static(pkgutil.resolve_name(owner), attribute))
            if function is not None:
                stack.enter_context(_refusing_code(function, message))
            stack.enter_context(mock.patch(target, side_effect=refuse))
        yield


def _plain_function(obj) -> types.FunctionType | None:
    """The Python function behind ``obj`` (a function, staticmethod or classmethod) when its code
    can be swapped (no closure), else None."""
    obj = getattr(obj, "__func__", obj) if isinstance(obj, (staticmethod, classmethod)) else obj
    return obj if isinstance(obj, types.FunctionType) and not obj.__closure__ else None


@contextmanager
def _refusing_code(function: types.FunctionType, message: str) -> Iterator[None]:
    """While the block runs, ``function`` — whatever name it is called by — raises ``AssertionError(message)``."""
    namespace: dict = {}
    exec(f"def refuse(*args, **kwargs):\n    raise AssertionError({message!r})\n", namespace)
    saved = function.__code__, function.__defaults__, function.__kwdefaults__
    function.__defaults__, function.__kwdefaults__ = None, None
    function.__code__ = namespace["refuse"].__code__
    try:
        yield
    finally:
        function.__code__, function.__defaults__, function.__kwdefaults__ = saved
