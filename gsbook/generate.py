"""``gsbook generate METHOD PROMPT --out DIR``: one command, one output, for every generator.

Every generator of the book (DreamGaussian in §2; LGM, GRM and Trellis later) runs through
this command and writes the same files into ``DIR``:

* ``gaussians.ply`` — the Gaussians in the standard 3DGS layout (:func:`gsbook.io.save_ply`),
  and ``gaussians.splat`` (:func:`gsbook.io.save_splat`) for web viewers;
* ``turntable.png`` — the Gaussians rendered on white from :func:`gsbook.cameras.turntable`
  (8 azimuths, elevations 15° and 30°), one row; when the method makes a mesh, a second row
  shows the textured mesh from the same cameras;
* ``result.json`` — method, prompt, seed, profile, device, the full config, seconds per stage
  and in all, the Gaussian and face counts, and the judge's reading of each of the 8 views,
  of the Gaussians and of the mesh; gsbook's and torch's versions;
* what the method adds: ``mesh.glb`` and ``mesh.obj`` (+ ``mesh.mtl``, ``mesh.png``) for a
  textured mesh; one PNG per extra image (e.g. the 4 input views of LGM);
* with ``--view``: ``view.html`` and its JavaScript in ``viewer/`` (:mod:`gsbook.viewer`), a
  WebGL 3D viewer of ``gaussians.splat``; the command then serves ``DIR`` on 127.0.0.1, opens
  the page in the web browser and serves until Ctrl-C.

Every method is scored the same way, here and nowhere else: the same judge
(:class:`gsbook.judge.Judge`), the same 8 views (:func:`score`).

Bad input fails fast, with a one-line message and exit status 2, and writes nothing: an
unknown method, a prompt with a word ShapeWorld does not have (checked before any model
loads), an impossible setting, an existing non-empty ``DIR`` without ``--force``. The files
are written into a hidden folder beside ``DIR`` and renamed into place at the end, so a run
that fails midway leaves no half-written ``DIR``.

    gsbook generate --list
    gsbook generate dreamgaussian "a red ball" --out out/red-ball
    gsbook generate dreamgaussian "a red ball" --out out/red-ball --force --view
    gsbook generate dreamgaussian a blue mushroom with a white stem --profile ci --out out/m --force
    python -m gsbook.generate dreamgaussian "a green box" --steps 200 --stages 1 --out out/cube

Adding a method is registering one function (:func:`register`): it receives a
:class:`Request` and returns :class:`Generated`; the command does the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import webbrowser
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from . import __version__
from .cameras import turntable
from .config import PROFILES, cuda_available, profile
from .gaussians import Gaussians
from .images import hwc, to_pil
from .io import save_ply, save_splat, save_voxels
from .judge import Judge, read_views
from .mesh import TexturedMesh, render_textured_mesh
from .render import render
from .viewer import VIEW_PAGE, ViewerAssetsMissing, ViewerServer, library_files, serve_folder, write_viewer_page
from .world import BOUND, ObjectSpec, PromptError, parse

__all__ = ["Request", "Generated", "Method", "GENERATORS", "register", "build_request", "check_prompt", "UsageError",
           "parse_settings", "turntable_views", "score", "write_result", "view", "cli"]

PROG = "gsbook generate"
TURNTABLE_VIEWS = 8                    # the views every method is judged from: turntable(8) …
TURNTABLE_ELEVATIONS = (15.0, 30.0)    # … at 15° and 30° in turn (turntable's default)
RESERVED = {"gaussians", "turntable", "result", "mesh", "voxels"}   # file stems the common files use


# ============================================================================== the registry
@dataclass(frozen=True)
class Request:
    """What the command asks a method for.

    Attributes:
        method: the registered name.
        prompt: the prompt, already checked against ShapeWorld's vocabulary (one object).
        seed, profile, device: the run's seed, the profile that sizes it, where it runs.
        config: what the method's ``configure`` returned (its validated settings).
        options: the method's own command-line options (e.g. ``{"stages": 2}``).
    """

    method: str
    prompt: str
    seed: int
    profile: str
    device: str
    config: Any = None
    options: dict = field(default_factory=dict)


@dataclass
class Generated:
    """What a method made.

    Attributes:
        gaussians: the result (every method makes Gaussians).
        config: the full settings actually used, JSON-ready (``dataclasses.asdict`` of the config).
        seconds: seconds per stage, e.g. ``{"load": …, "stage1": …, "mesh": …, "stage2": …}``.
        mesh: a textured mesh, when the method makes one (written as ``mesh.glb`` and ``mesh.obj``,
            and judged like the Gaussians).
        extra_images: name → image ``[H, W, 3]`` or views ``[V, H, W, 3]`` (one row), in [0, 1],
            written as ``NAME.png``.
        extra: anything else JSON-ready for ``result.json`` (keep it compact: lists of numbers).
        prompt: what the object is meant to be, when that is not the request's prompt: a method run
            from an image says what it made (e.g. the judge's reading of the image), an edit what
            it was edited to; it is what the turntable is judged against.
        voxels: ``[N, 3]`` integer indices of the active voxels, when the method makes a sparse
            structure (Trellis), written as ``voxels.ply`` (:func:`gsbook.io.save_voxels`) on a
            grid of ``voxel_resolution``³ over ShapeWorld's cube.
    """

    gaussians: Gaussians
    config: dict
    seconds: dict[str, float]
    mesh: TexturedMesh | None = None
    extra_images: dict[str, Tensor] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    prompt: str | None = None
    voxels: Tensor | None = None
    voxel_resolution: int = 0


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def _no_config(args: argparse.Namespace) -> None:
    return None


@dataclass(frozen=True)
class Method:
    """One registered generator.

    Attributes:
        name: the command's METHOD.
        summary: one line for ``--list`` and ``--help``.
        run: ``(request, progress) -> Generated``; loads its models and generates. ``progress``
            asks for progress bars (tqdm).
        add_arguments: adds the method's own options to its sub-parser (e.g. ``--stages``).
        configure: ``(args) -> config``: builds and checks the method's settings from the parsed
            options, before any model loads; a ``ValueError`` it raises is reported as bad input.
            ``args`` has ``seed``, ``profile``, ``device``, ``set`` (the ``--set`` pairs) and the
            method's options.
        prompt_optional: the method can run without a prompt (e.g. from an image); it then
            returns the prompt it settled on in :attr:`Generated.prompt`.
    """

    name: str
    summary: str
    run: Callable[[Request, bool], Generated]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    configure: Callable[[argparse.Namespace], Any] = _no_config
    prompt_optional: bool = False


GENERATORS: dict[str, Method] = {}


def register(name: str, summary: str, *, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
             configure: Callable[[argparse.Namespace], Any] | None = None, prompt_optional: bool = False):
    """Decorator: register ``run(request, progress) -> Generated`` as method ``name``::

        @register("lgm", "text → 4 views → Gaussians (§3)", add_arguments=..., configure=...)
        def run_lgm(request: Request, progress: bool) -> Generated: ...
    """
    if not name or name.startswith("-") or any(c.isspace() for c in name):
        raise ValueError(f"a method name is one word, got {name!r}")

    def add(run: Callable[[Request, bool], Generated]):
        GENERATORS[name] = Method(name, summary, run, add_arguments or _no_arguments, configure or _no_config,
                                  prompt_optional)
        return run

    return add


class UsageError(ValueError):
    """Bad input to the command: reported as one line, exit status 2, nothing written."""


# ============================================================================== settings
def _convert(name: str, text: str, default: Any) -> Any:
    """``text`` read as the type of ``default`` (a config field's default)."""
    def number(kind, word):
        try:
            return kind(word)
        except ValueError:
            raise UsageError(f"--set {name}={text}: {name} is {'a whole number' if kind is int else 'a number'}, "
                             f"got {word!r}") from None

    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"--set {name}={text}: {name} is true or false")
    if isinstance(default, int):
        return number(int, text)
    if isinstance(default, float):
        return number(float, text)
    if isinstance(default, tuple):
        parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
        if len(parts) != len(default):
            raise UsageError(f"--set {name}={text}: {name} is {len(default)} numbers separated by commas, "
                             f"e.g. {','.join(map(str, default))}")
        return tuple(number(type(d), p.strip()) for d, p in zip(default, parts))
    return text


def parse_settings(config_class: type, pairs: Sequence[str] | None, reserved: dict[str, str] | None = None) -> dict:
    """``["key=value", …]`` (the ``--set`` options) → overrides for the dataclass ``config_class``,
    each value read as its field's type.

    Args:
        reserved: field → the option that sets it instead (``{"seed": "--seed"}``).

    Raises:
        UsageError: not ``key=value``, an unknown or reserved field, a value of the wrong type.
    """
    reserved = reserved or {}
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    out = {}
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--set takes KEY=VALUE, got {pair!r}")
        if name in reserved:
            raise UsageError(f"--set {name}: use {reserved[name]} instead")
        if name not in fields:
            raise UsageError(f"--set {name}: {config_class.__name__} has no setting {name!r}; "
                             f"settings: {', '.join(n for n in fields if n not in reserved)}")
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out[name] = _convert(name, text.strip(), default)
    return out


# ============================================================================== scoring
@torch.no_grad()
def turntable_views(generated: Generated, device: str | torch.device | None = None) -> dict[str, Tensor]:
    """The judged views: ``{"gaussians": [8, 64, 64, 3]}`` and, when there is a mesh,
    ``"mesh"`` from the same cameras (:func:`gsbook.cameras.turntable`), on white, on the CPU."""
    device = torch.device(device) if device is not None else generated.gaussians.device
    cams = turntable(TURNTABLE_VIEWS, TURNTABLE_ELEVATIONS, device=device)
    views = {"gaussians": render(generated.gaussians.detach().to(device), cams, background=1.0).image}
    if generated.mesh is not None:
        views["mesh"] = render_textured_mesh(generated.mesh.to(device), cams, background=1.0)[0]
    return {k: v.detach().float().clamp(0, 1).cpu() for k, v in views.items()}


def score(judge: Judge, views: Tensor, prompt: str) -> dict:
    """The judge's reading of each view against the prompt: ``readings`` (per view),
    ``scores`` (averages over the views, each in [0, 1]) and ``worst_and_best`` (per-view scores)."""
    readings = read_views(judge, views, prompt)
    return {**readings.to_dict(), "scores": asdict(readings.scores()),
            "worst_and_best": list(readings.worst_and_best())}


# ============================================================================== writing
def _dumps(value: Any, indent: int = 0) -> str:
    """JSON with objects spread over lines but lists of plain values on one line (compact histories)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)) and value and any(isinstance(v, (dict, list, tuple)) for v in value):
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 2) for v in value) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (Path, torch.device, torch.dtype)):
        return str(value)
    if isinstance(value, Tensor) and value.numel() <= 64:
        return value.tolist()
    if dataclasses.is_dataclass(value):
        return asdict(value)
    raise TypeError(f"result.json cannot hold {type(value).__name__}")


def _row(views: Tensor) -> Tensor:
    """``[V, H, W, 3]`` → one row ``[H, V·W, 3]`` (no padding: each view is exactly W wide)."""
    return torch.cat(list(views), dim=1)


def _image(value: Tensor) -> Tensor:
    if value.dim() == 4:
        return _row(value.detach().float().cpu())
    return hwc(value)


def write_result(request: Request, generated: Generated, out_dir: Path | str, judge: Judge,
                 seconds_before: float = 0.0, view: bool = False) -> dict:
    """Write every file of one run into ``out_dir`` (which exists): the Gaussians (``.ply``,
    ``.splat``), the mesh when there is one, the extra images, ``turntable.png`` and
    ``result.json``, whose contents it returns. ``seconds_before``: time spent before this
    call (model loading and generation), for the total. ``view``: also ``view.html`` and
    ``viewer/`` (:func:`gsbook.viewer.write_viewer_page`), the Gaussians in a WebGL viewer."""
    start = time.perf_counter()
    out = Path(out_dir)
    for name in generated.extra_images:
        if name in RESERVED or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"extra image name {name!r}: use letters, digits, - and _, and none of {sorted(RESERVED)}")
    g = generated.gaussians.detach()
    save_ply(out / "gaussians.ply", g)
    save_splat(out / "gaussians.splat", g)
    if generated.mesh is not None:
        generated.mesh.save(out / "mesh.glb")
        generated.mesh.save(out / "mesh.obj")          # + mesh.mtl, mesh.png
    if generated.voxels is not None:
        save_voxels(out / "voxels.ply", generated.voxels, generated.voxel_resolution, BOUND)
    for name, image in generated.extra_images.items():
        to_pil(_image(image)).save(out / f"{name}.png")

    views = turntable_views(generated, request.device)
    to_pil(torch.cat([_row(v) for v in views.values()], dim=0)).save(out / "turntable.png")
    judge_start = time.perf_counter()
    judged = {kind: score(judge, v, request.prompt) for kind, v in views.items()}
    judge_seconds = time.perf_counter() - judge_start

    cams = turntable(TURNTABLE_VIEWS, TURNTABLE_ELEVATIONS, device="cpu")
    seconds = {k: float(v) for k, v in generated.seconds.items()}
    seconds["judge"] = judge_seconds
    seconds["write"] = time.perf_counter() - start - judge_seconds
    seconds["total"] = seconds_before + (time.perf_counter() - start)
    result = {
        "method": request.method,
        "prompt": request.prompt,
        "seed": request.seed,
        "profile": request.profile,
        "device": str(request.device),
        "options": request.options,
        "config": generated.config,
        "seconds": seconds,
        "counts": {"gaussians": g.n, "mesh_faces": generated.mesh.n_faces if generated.mesh is not None else None,
                   "voxels": int(generated.voxels.shape[0]) if generated.voxels is not None else None},
        "turntable": {"views": TURNTABLE_VIEWS, "width": cams.width, "height": cams.height,
                      "elevations": [TURNTABLE_ELEVATIONS[i % len(TURNTABLE_ELEVATIONS)]
                                     for i in range(TURNTABLE_VIEWS)],
                      "azimuths": [360.0 * i / TURNTABLE_VIEWS for i in range(TURNTABLE_VIEWS)],
                      "rows": list(views)},
        "judge": {"gaussians": judged["gaussians"], "mesh": judged.get("mesh")},
        "extra": generated.extra,
        "versions": {"gsbook": __version__, "torch": torch.__version__},
    }
    if view:
        s = judged["gaussians"]["scores"]
        write_viewer_page(out, "gaussians.splat", title=f"{request.method} · {request.prompt}",
                          caption=f"{g.n:,} Gaussians; the judge reads category {s['category']:.0%}, "
                                  f"colour {s['colour']:.0%} of {s['n']} views")
    result["files"] = sorted([p.name for p in out.iterdir()] + ["result.json"])
    (out / "result.json").write_text(_dumps(result) + "\n", encoding="utf-8")
    return result


# ============================================================================== the output folder
def _protected(path: Path) -> bool:
    """Folders ``--force`` never deletes: the filesystem root, home, the working folder and
    its ancestors."""
    path = path.resolve()
    cwd = Path.cwd().resolve()
    return path == Path(path.anchor) or path == Path.home().resolve() or path == cwd or path in cwd.parents


def _check_out(out: Path, force: bool) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError(f"--out {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UsageError(f"--out {out} exists and is not empty; use --force to replace it, or choose another --out")
        if _protected(out):
            raise UsageError(f"--out {out} is the working folder, one above it, or home; --force will not "
                             "replace it: choose a new folder")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomically(out: Path, force: bool, write: Callable[[Path], Any]) -> Any:
    """``write(tmp)`` into a hidden folder beside ``out``, then rename it to ``out`` (replacing
    an existing one only when ``force``, or when it is empty). On any failure the hidden folder
    is removed and ``out`` is as it was."""
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]   # deepest first
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except BaseException:
        _remove_empty(created)
        raise
    try:
        value = write(tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        _check_out(out, force)                     # again: something may have appeared meanwhile
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "replaced")
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old / "replaced", out)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
        return value
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove the folders this run created (deepest first), as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


# ============================================================================== the command
class _Parser(argparse.ArgumentParser):
    """argparse, but an error raises :class:`UsageError` (one line, exit 2, from :func:`main`)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number ≥ 1 is needed, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number ≥ 1 is needed, got {value}")
    return value


COMMON = ("method", "prompt", "out", "seed", "profile", "device", "force", "quiet", "set", "list", "view")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Run one of the book's generators and write its standard files into DIR:\n"
                                 "gaussians.ply, gaussians.splat, turntable.png, result.json\n"
                                 "(+ what the method adds: mesh.glb, mesh.obj, …).",
                     epilog=f"Each method's options: {PROG} METHOD --help. Examples:\n"
                            f"  {PROG} dreamgaussian 'a red ball' --out out/red-ball\n"
                            f"  {PROG} dreamgaussian a blue box --profile ci --stages 1 --out out/cube --force")
    parser.add_argument("--list", action="store_true", help="list the methods and exit")
    common = _Parser(add_help=False)
    common.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder for the files (must not exist or be empty, unless --force)")
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0): the same seed, the same files")
    common.add_argument("--profile", choices=PROFILES, default=None,
                        help="workload size (default: the active profile, GSBOOK_PROFILE or gpu/cpu by machine)")
    common.add_argument("--device", default=None, help="cpu or cuda (default: cuda if there is one)")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one field of the method's config (repeatable), e.g. --set refine_steps=10")
    common.add_argument("--force", action="store_true", help="replace DIR if it exists")
    common.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    common.add_argument("--view", action="store_true",
                        help=f"also write {VIEW_PAGE} (a WebGL 3D viewer of the Gaussians), then serve DIR on "
                             "127.0.0.1 and open it in the web browser until Ctrl-C")
    methods = parser.add_subparsers(dest="method", metavar="METHOD", title="methods")
    for m in GENERATORS.values():
        sub = methods.add_parser(m.name, parents=[common], help=m.summary, description=m.summary)
        sub.add_argument("prompt", nargs="*" if m.prompt_optional else "+", metavar="PROMPT",
                         help="what to make, in ShapeWorld's words (quoted, or as separate words)"
                              + (" (optional with an image)" if m.prompt_optional else ""))
        m.add_arguments(sub)
    return parser


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"[{PROG}] {message}", file=sys.stderr, flush=True)


def check_prompt(prompt: str) -> str:
    """``prompt``, if the generators can take it: one object of ShapeWorld's vocabulary (e.g.
    ``"a red ball"``). Otherwise :class:`UsageError` (a scene of two objects) or the parser's
    ``PromptError`` (an unknown word; it names the word and lists the vocabulary)."""
    spec = parse(prompt)                             # PromptError names the word and lists the vocabulary
    if not isinstance(spec, ObjectSpec):
        raise UsageError(f"prompt {prompt!r} describes a scene of two objects; the generators and the judge "
                         "read one object, e.g. 'a red ball'")
    return prompt


def _prepare(argv: Sequence[str]) -> tuple[argparse.Namespace, Method, Request] | None:
    """Parse and check everything (no model loads, nothing is written). ``None``: ``--list`` ran."""
    argv = list(argv)
    if argv and not argv[0].startswith("-") and argv[0] not in GENERATORS:
        raise UsageError(f"unknown method {argv[0]!r}; methods: {', '.join(GENERATORS)} ({PROG} --list)")
    if not (set(argv) & {"-h", "--help", "--list"}) and (not argv or argv[0] not in GENERATORS):
        raise UsageError(f"choose a method: {', '.join(GENERATORS)} "
                         f"(e.g. {PROG} dreamgaussian 'a red ball' --out DIR; {PROG} --help)")
    args = build_parser().parse_args(argv)
    if args.list:
        for m in GENERATORS.values():
            print(f"{m.name:<16}{m.summary}")
        return None
    if args.method is None:
        raise UsageError(f"choose a method: {', '.join(GENERATORS)}")
    method = GENERATORS[args.method]
    args.prompt = " ".join(args.prompt).strip()
    if args.prompt or not method.prompt_optional:
        check_prompt(args.prompt)
    try:
        args.profile = args.profile or profile()
    except (ValueError, RuntimeError) as error:
        raise UsageError(str(error)) from None
    args.device = args.device or ("cuda" if cuda_available() else "cpu")
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {args.device}: not a device; use cpu or cuda") from None
    if device.type == "cuda" and not cuda_available():
        raise UsageError(f"--device {args.device}, but PyTorch sees no CUDA device; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {args.device}: the book runs on cpu or cuda")
    _check_out(args.out, args.force)
    if args.view:                                    # before any model loads: the JavaScript must be here
        try:
            library_files(fetch=True, log=lambda line: _say(args.quiet, f"--view: {line}"))
        except (ViewerAssetsMissing, subprocess.TimeoutExpired) as error:
            raise UsageError(f"--view: {error}") from None
    config = method.configure(args)
    options = {k: v for k, v in vars(args).items() if k not in COMMON}
    return args, method, Request(method.name, args.prompt, args.seed, args.profile, args.device, config, options)


def build_request(argv: Sequence[str]) -> Request:
    """The :class:`Request` that ``gsbook generate ARGV`` would hand its method: the command's own
    parser, checks and ``configure``, for a library caller (§5's harness, §7) that runs the method
    itself (``GENERATORS[request.method].run(request, progress)``) and writes no files. ``argv`` is
    the command line after ``gsbook generate``, e.g. ``["lgm", "a red ball", "--profile", "ci"]``;
    ``--out`` may be left out (nothing is written), ``--list``, ``--help`` and ``--view`` may not.
    Bad input raises :class:`UsageError` (or :class:`gsbook.text.PromptError`), as the command's one-line errors."""
    argv = list(argv)
    if set(argv) & {"--list", "-h", "--help", "--view"}:
        raise UsageError("build_request makes a request to run: --list, --help and --view belong to the command")
    if "--out" not in argv:                          # the parser wants one; a folder that is never created
        argv += ["--out", str(Path(tempfile.gettempdir()) / "gsbook-request-never-written")]
    prepared = _prepare(argv)
    assert prepared is not None                      # only --list returns None
    return prepared[2]


def main(argv: Sequence[str] | None = None) -> Path | None:
    """``gsbook generate …``: returns the folder written (``None`` for ``--list``); bad input
    exits with status 2 and one line on stderr."""
    argv = sys.argv[1:] if argv is None else list(argv)
    start = time.perf_counter()
    try:
        prepared = _prepare(argv)
    except (UsageError, PromptError, ValueError) as error:
        _fail(error, 2)
    if prepared is None:
        return None
    args, method, request = prepared
    quiet = args.quiet
    torch.manual_seed(request.seed)
    _say(quiet, f"{method.name} · {request.prompt!r} · seed {request.seed} · profile {request.profile} · "
                f"{request.device}")
    try:
        generated = method.run(request, not quiet)
    except (PromptError, ValueError) as error:     # e.g. nothing to make a mesh of
        _fail(f"{method.name} failed, nothing written: {error}", 1)
    if generated.prompt is not None:
        request = dataclasses.replace(request, prompt=generated.prompt)
    judge = Judge.from_shipped(request.device)
    try:
        result = _write_atomically(args.out, args.force,
                                   lambda tmp: write_result(request, generated, tmp, judge,
                                                            time.perf_counter() - start, view=args.view))
    except UsageError as error:
        _fail(error, 2)
    for kind, judged in result["judge"].items():
        if judged is not None:
            s = judged["scores"]
            _say(quiet, f"judge · {kind}: category {s['category']:.0%} · colour {s['colour']:.0%} · "
                        f"all {s['all']:.0%} of {s['n']} views")
    _say(quiet, f"wrote {args.out}: {', '.join(result['files'])} ({result['seconds']['total']:.1f} s)")
    if args.view:
        view(args.out)
    return args.out


def view(out: Path, open_browser: bool = True, wait: bool = True) -> ViewerServer:
    """Serve ``out`` (a folder with ``view.html``) on 127.0.0.1, print the page's address, open
    it in the web browser and, when ``wait``, serve until Ctrl-C. Returns the server (closed
    when ``wait``; the caller closes it otherwise)."""
    if not (Path(out) / VIEW_PAGE).is_file():
        raise FileNotFoundError(f"{out}: no {VIEW_PAGE}; run {PROG} … --view")
    server = serve_folder(out)
    url = server.url + VIEW_PAGE
    # Printed even with --quiet: it is what the reader asked for.
    print(f"[{PROG}] 3D view: {url}  (serving {out}; Ctrl-C stops)", flush=True)
    if open_browser:
        webbrowser.open(url)
    if wait:
        server.wait()
    return server


def _fail(error: Exception | str, status: int):
    message = " ".join(str(error).split())                   # one line
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(status)


USAGE = """usage: gsbook COMMAND ...

commands:
  generate   run a generator: gsbook generate METHOD PROMPT --out DIR   (gsbook generate --help)
  train      train one of the book's models: gsbook train NAME          (gsbook train --help)
"""


def cli(argv: Sequence[str] | None = None) -> None:
    """The ``gsbook`` console script: ``gsbook generate …`` or ``gsbook train …``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return
    if not argv:
        print(USAGE, end="", file=sys.stderr)
        raise SystemExit(2)
    command, rest = argv[0], argv[1:]
    if command == "generate":
        main(rest)
    elif command == "train":
        from .train import main as train_main

        train_main(rest)
    else:
        print(f"gsbook: error: unknown command {command!r}\n{USAGE}", end="", file=sys.stderr)
        raise SystemExit(2)


# ============================================================================== the methods
# --- DreamGaussian (§2) ------------------------------------------------------------------
def _dreamgaussian_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="stage-1 (SDS) steps (default: the profile's: ci 60, cpu and gpu 500)")
    parser.add_argument("--stages", type=int, choices=(1, 2), default=2,
                        help="1: Gaussians only; 2: also the textured mesh (default 2)")


def _dreamgaussian_configure(args: argparse.Namespace):
    from .methods import DreamGaussianConfig

    overrides = parse_settings(DreamGaussianConfig, args.set, reserved={"seed": "--seed", "steps": "--steps"})
    if args.steps is not None:
        overrides["steps"] = args.steps
    return DreamGaussianConfig.for_profile(args.profile, seed=args.seed, **overrides)


def _rounded(values: Sequence[float], digits: int = 4) -> list[float]:
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in values]


@register("dreamgaussian", "text → Gaussians (SDS) → textured mesh (§2, DreamGaussian)",
          add_arguments=_dreamgaussian_arguments, configure=_dreamgaussian_configure)
def run_dreamgaussian(request: Request, progress: bool) -> Generated:
    """DreamGaussian with the book's prior (:func:`gsbook.methods.dreamgaussian_text_to_3d`)."""
    from .methods import dreamgaussian_text_to_3d
    from .sds import BookPrior

    start = time.perf_counter()
    prior = BookPrior(device=request.device)
    load = time.perf_counter() - start
    result = dreamgaussian_text_to_3d(prior, request.prompt, request.config, stages=request.options["stages"],
                                      progress=progress)
    extra: dict = {
        "stages": request.options["stages"],
        "stage1": {"t": [h["t"] for h in result.stage1_history], "n": [h["n"] for h in result.stage1_history],
                   "grad_norm": _rounded([h["grad_norm"] for h in result.stage1_history])},
    }
    if result.mesh is not None:
        extra["stage2"] = {"loss": _rounded([h["loss"] for h in result.stage2_history]),
                           "vertices": int(result.mesh.vertices.shape[0]),
                           "texture_size": int(result.mesh.texture.shape[0])}
    return Generated(result.gaussians, config=asdict(result.config), seconds={"load": load, **result.seconds},
                     mesh=result.mesh, extra=extra)


# --- LGM and GRM (§3) ----------------------------------------------------------------------
def _feedforward_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", type=Path, default=None, metavar="FRONT.png",
                        help="image → 3D: the object's front view, a square PNG with transparency; the "
                             "multi-view prior draws the other three views from it and a caption (the "
                             "prompt; without one, the 2D prior reads a caption from the image)")
    source.add_argument("--views", type=Path, nargs=4, default=None, metavar=("FRONT", "RIGHT", "BACK", "LEFT"),
                        help="reconstruct four given views (azimuth 0°, 90°, 180°, 270°; square PNGs with "
                             "transparency); no diffusion")
    source.add_argument("--ground-truth", action="store_true",
                        help="reconstruct ShapeWorld's own renders of the prompt's object (shape from --seed); "
                             "no diffusion")


def _feedforward_configure(args: argparse.Namespace):
    from .methods.feedforward import FeedForwardConfig, load_view_image

    if args.ground_truth and not args.prompt:
        raise UsageError("--ground-truth renders the prompt's object: give a prompt")
    if not args.prompt and args.image is None and args.views is None:
        raise UsageError(f"{args.method} needs a prompt, --image FRONT.png or --views F R B L")
    for path in ([args.image] if args.image is not None else []) + list(args.views or []):
        load_view_image(path, 64)                   # bad files fail here, before any model loads
    overrides = parse_settings(FeedForwardConfig, args.set, reserved={"seed": "--seed"})
    return FeedForwardConfig.for_profile(args.profile, seed=args.seed, **overrides)


def _read_prompt(views: Tensor, device: str) -> str:
    """What the judge reads in the front view: the prompt an image-only run is judged against."""
    from .world.captions import caption

    return caption(Judge.from_shipped(device).predict(views[:1].to(device))[0])


def run_feedforward(request: Request, progress: bool) -> Generated:
    """LGM or GRM (the method's name) behind a front end: the multi-view prior (text or image),
    four given views, or ShapeWorld's ground truth (:mod:`gsbook.methods.feedforward`)."""
    from .diffusion.multiview import MultiViewPrior
    from .methods.feedforward import (feedforward_text_to_3d, ground_truth_views, load_view_image,
                                      reconstruct)
    from .zoo import load_model

    opts, config = request.options, request.config
    start = time.perf_counter()
    model = load_model(request.method, device=request.device)
    drawn_from = {}
    seconds = {"load": time.perf_counter() - start}
    size = model.config.input_size
    if opts.get("ground_truth") or opts.get("views"):
        t = time.perf_counter()
        views = (ground_truth_views(request.prompt, request.seed, size) if opts.get("ground_truth")
                 else torch.stack([load_view_image(p, size) for p in opts["views"]]))
        seconds["views"] = time.perf_counter() - t
        t = time.perf_counter()
        gaussians = reconstruct(model, views)
        seconds["reconstruct"] = time.perf_counter() - t
        source = "ground truth" if opts.get("ground_truth") else "given views"
    else:
        t = time.perf_counter()
        prior = MultiViewPrior.from_shipped(device=request.device)
        seconds["load"] += time.perf_counter() - t
        image = load_view_image(opts["image"], prior.config.base.image_size) if opts.get("image") else None
        result = feedforward_text_to_3d(model, prior, request.prompt, config, image=image, progress=progress)
        views, gaussians = result.views, result.gaussians
        seconds.update(result.seconds)
        source = "multi-view prior" + (" from the image" if image is not None else "")
        if image is not None:                       # what the prior drew from, with the image
            drawn_from = {"caption": result.caption, "caption_from": "the command" if request.prompt else
                          ("the 2D prior's reading of the image" if result.caption else "none (the image alone)")}
    prompt = None if request.prompt else _read_prompt(views, request.device)
    return Generated(gaussians.detach(), config=asdict(config), seconds=seconds, extra_images={"views": views},
                     extra={"views_from": source, **drawn_from, "model": request.method,
                            "parameters": sum(p.numel() for p in model.parameters()),
                            "prompt_from": "the judge's reading of the front view" if prompt else "the command"},
                     prompt=prompt)


for _name, _summary in (("lgm", "text or image → 4 views → Gaussians in one U-Net pass (§3, LGM)"),
                        ("grm", "text or image → 4 views → Gaussians in one transformer pass (§3, GRM)")):
    register(_name, _summary, add_arguments=_feedforward_arguments, configure=_feedforward_configure,
             prompt_optional=True)(run_feedforward)


# --- Trellis (§4) ----------------------------------------------------------------------------
def _trellis_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="Euler steps of each stage (default 25)")
    edit = parser.add_mutually_exclusive_group()
    edit.add_argument("--appearance", default=None, metavar="PROMPT",
                      help="edit: keep the generated structure and draw its appearance from PROMPT "
                           "(e.g. 'a purple mushroom with a white stem')")
    edit.add_argument("--regenerate-top", type=float, default=None, metavar="FRACTION",
                      help="edit: redraw the top FRACTION of the volume (e.g. 0.33), holding the rest")


def _trellis_configure(args: argparse.Namespace):
    from .methods.trellis import TrellisConfig

    if args.appearance is not None:
        args.appearance = check_prompt(" ".join(args.appearance.split()))
    if args.regenerate_top is not None and not 0 < args.regenerate_top < 1:
        raise UsageError(f"--regenerate-top is a fraction of the height in (0, 1), got {args.regenerate_top}")
    overrides = parse_settings(TrellisConfig, args.set, reserved={"seed": "--seed", "steps": "--steps"})
    if args.steps is not None:
        overrides["steps"] = args.steps
    return TrellisConfig.for_profile(args.profile, seed=args.seed, **overrides)


def _voxel_views(occupancy: Tensor, device: str) -> Tensor:
    """``[8, 64, 64, 3]``: the structure's active voxels (:func:`gsbook.methods.trellis.voxel_gaussians`)
    from the turntable's cameras."""
    from .methods.trellis import voxel_gaussians

    cams = turntable(TURNTABLE_VIEWS, TURNTABLE_ELEVATIONS, device=device)
    return render(voxel_gaussians(occupancy).to(device), cams, background=1.0).image.detach().clamp(0, 1).cpu()


@register("trellis", "text → sparse voxels → structured latent → Gaussians, two rectified flows (§4, TRELLIS); "
                     "edits: --appearance, --regenerate-top",
          add_arguments=_trellis_arguments, configure=_trellis_configure)
def run_trellis(request: Request, progress: bool) -> Generated:
    """Trellis at book scale (:mod:`gsbook.methods.trellis`): the four shipped networks, caption →
    structure → SLat → Gaussians; with an edit option, the edit of that object is the result
    (and the object before it is written as ``before.png``)."""
    from .methods.trellis import TrellisModels, edit_appearance, edit_region, top_region_mask, trellis_text_to_3d

    opts, config = request.options, request.config
    start = time.perf_counter()
    models = TrellisModels.from_shipped(request.device)
    seconds = {"load": time.perf_counter() - start}
    result = trellis_text_to_3d(models, request.prompt, config)
    seconds.update(result.seconds)
    extra_images, extra = {}, {"parameters": models.parameters(), "active_voxels": len(result.coords),
                               "gaussians_per_voxel": models.slat_vae.config.gaussians_per_voxel}
    prompt = None
    if opts.get("appearance") or opts.get("regenerate_top"):
        before = result
        edit_start = time.perf_counter()
        if opts.get("appearance"):
            result = edit_appearance(models, before, opts["appearance"], config)
            prompt = opts["appearance"]
            extra["edit"] = {"kind": "appearance", "from": request.prompt, "to": prompt}
        else:
            region = top_region_mask(before.occupancy.shape[-1], opts["regenerate_top"])
            result = edit_region(models, before, region=region, config=config)
            changed = int((result.occupancy != before.occupancy).sum())
            outside = int((result.occupancy[~region] != before.occupancy[~region]).sum())
            extra["edit"] = {"kind": "region", "region": f"top {opts['regenerate_top']:g} of the height",
                             "voxels_changed_inside": changed - outside, "voxels_changed_outside": outside}
        seconds["edit"] = time.perf_counter() - edit_start
        extra_images["before"] = render(before.gaussians.to(request.device),
                                        turntable(TURNTABLE_VIEWS, TURNTABLE_ELEVATIONS, device=request.device),
                                        background=1.0).image.detach().clamp(0, 1).cpu()
        extra["active_voxels_before"] = len(before.coords)
    extra_images["structure"] = _voxel_views(result.occupancy, request.device)
    return Generated(result.gaussians, config=asdict(config), seconds=seconds, extra_images=extra_images,
                     extra=extra, prompt=prompt, voxels=result.coords, voxel_resolution=result.occupancy.shape[-1])


# --- DreamFusion, the NeRF baseline (§5) ---------------------------------------------------------
def _dreamfusion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="SDS steps on the NeRF (default: the profile's: ci 60, cpu 500, gpu 15000)")


def _dreamfusion_configure(args: argparse.Namespace):
    from .methods.dreamfusion import DreamFusionConfig

    overrides = parse_settings(DreamFusionConfig, args.set, reserved={"seed": "--seed", "steps": "--steps"})
    chosen_steps = {} if args.steps is None else {"steps": args.steps}
    return DreamFusionConfig.for_profile(args.profile, seed=args.seed, **overrides, **chosen_steps)


@register("dreamfusion", "text → NeRF by SDS → Gaussians from its density grid (§5's baseline, DreamFusion)",
          add_arguments=_dreamfusion_arguments, configure=_dreamfusion_configure)
def run_dreamfusion(request: Request, progress: bool) -> Generated:
    """DreamFusion at book scale with the book's prior (:func:`gsbook.methods.dreamfusion_text_to_3d`):
    the NeRF is written as the Gaussians it converts to (:func:`gsbook.methods.nerf_to_gaussians`);
    ``result.json``'s ``extra.counts`` holds its MLP queries and prior calls."""
    from .methods.dreamfusion import dreamfusion_text_to_3d
    from .sds import BookPrior

    start = time.perf_counter()
    prior = BookPrior(device=request.device)
    load = time.perf_counter() - start
    result = dreamfusion_text_to_3d(request.prompt, request.config, prior=prior, progress=progress)
    extra = {"counts": result.counts,
             "history": {"t": [h["t"] for h in result.history],
                         "grad_norm": _rounded([h["grad_norm"] for h in result.history])}}
    return Generated(result.gaussians, config=asdict(result.config), seconds={"load": load, **result.seconds},
                     extra=extra)


if __name__ == "__main__":
    main()
