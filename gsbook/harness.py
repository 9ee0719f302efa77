"""One harness for every generator: the same prompts, the same clocks, the same judge (§5).

§5 sets three tables of times side by side: the essay's (:data:`ESSAY_TIMES`), the papers'
own (:data:`gsbook.era.ERA`) and the book's, measured here on the reader's machine. The
harness runs each prompt through each generator of ``gsbook generate`` (:data:`CONTENDERS`,
through the command's own registry :data:`gsbook.generate.GENERATORS`, so what is timed is
exactly what the command runs) and measures, per asset:

* **wall time** (``time.perf_counter``) and **CPU time** (``time.process_time``: the CPU
  seconds of every thread of the process, so with 2 threads it can reach twice the wall
  time) of the method's whole run; the seconds it spent loading its networks (the method's
  own ``seconds["load"]``) are reported apart, and :attr:`HarnessRow.generate_seconds` (wall
  less loading) is what the ratios use, as the papers' times leave loading out too;
* the **judge's** reading of the 8 turntable views every ``gsbook generate`` result is judged
  from (:func:`gsbook.generate.turntable_views`, :func:`gsbook.generate.score`), and of the
  mesh when the method makes one;
* the number of **primitives** and the size in bytes of the ``.splat`` file it would write;
* **counts the machine cannot change**: the calls of each network (the outermost
  ``nn.Module`` calls by class, :func:`count_network_calls`) and what the method counts itself
  (``result.json``'s ``extra.counts``, e.g. DreamFusion's MLP queries).

**2D SDS** is not a ``gsbook generate`` method: it makes a picture, not an object, so there is
no turntable to judge and no ``.splat`` to write. It is in the table as the floor of what
score distillation costs (the same prior calls, no 3D renderer in the loop): the harness runs
:class:`gsbook.methods.ImageSDS` directly with §1's settings, judges its one image and counts
its 2D Gaussians.

Machines and loads differ, so the harness never asserts a time; :func:`ratios` turns the
medians into ratios and orders of magnitude (``log10``), which travel between machines far
better than seconds do. :func:`times_table` and :func:`ratio_table` write them as Markdown, in
English or Chinese (:func:`gsbook.era.bilingual` puts the two together).

    rows = run_harness(["a red ball"], ["trellis", "lgm", "dreamfusion"], profile="ci")
    print(times_table(rows)); print(ratio_table(rows))
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import Tensor

from .config import PROFILES, profile as active_profile, resolve_device
from .era import era_entry
from .generate import (GENERATORS, Generated, Request, build_request, check_prompt, score, turntable_views,
                       write_result)
from .io import save_splat
from .judge import Judge

__all__ = ["Contender", "CONTENDERS", "ESSAY_TIMES", "SDS2D_STEPS", "SDS_STAGES", "NETWORKS", "HarnessRow", "Ratio",
           "RATIO_PAIRS", "HARNESS_PROMPTS", "PAPER_SDS_STEPS", "TrainingCost", "contender", "request_for", "count_network_calls", "run_one", "run_harness", "medians", "ratios",
           "times_table", "ratio_table", "at_paper_steps", "training_cost", "break_even_assets"]


# ============================================================================== what runs
@dataclass(frozen=True)
class Contender:
    """One generator the harness runs.

    Attributes:
        key: the harness's name for it (``--only`` in ``benchmarks/harness.py``).
        method: a method of ``gsbook generate`` (:data:`gsbook.generate.GENERATORS`), or ``"sds2d"``.
        options: the method's own command-line options, as typed after the prompt.
        label, label_zh: what the tables call it.
        era: its entry in :data:`gsbook.era.ERA` whose time it is measured against (``""``: none).
    """

    key: str
    method: str
    options: tuple[str, ...] = ()
    label: str = ""
    label_zh: str = ""
    era: str = ""


CONTENDERS: dict[str, Contender] = {c.key: c for c in (
    Contender("sds2d", "sds2d", (), "2D SDS (one image)", "二维 SDS（一张图）"),
    Contender("dreamgaussian-1", "dreamgaussian", ("--stages", "1"), "DreamGaussian, stage 1",
              "DreamGaussian 第一阶段"),          # the papers and the essay time the whole recipe only
    Contender("dreamgaussian", "dreamgaussian", ("--stages", "2"), "DreamGaussian, both stages",
              "DreamGaussian 两个阶段", "DreamGaussian"),
    Contender("lgm", "lgm", (), "LGM (text → 4 views → Gaussians)", "LGM（文本 → 4 视图 → 高斯）", "LGM"),
    Contender("grm", "grm", (), "GRM (text → 4 views → Gaussians)", "GRM（文本 → 4 视图 → 高斯）", "GRM"),
    Contender("trellis", "trellis", (), "Trellis", "Trellis", "TRELLIS"),
    Contender("dreamfusion", "dreamfusion", (), "DreamFusion (NeRF)", "DreamFusion（NeRF）", "DreamFusion"),
)}

# §5's prompts, fixed before the harness first ran; nothing was tuned on them. (DreamFusion's
# settings were checked on "a red ball" and "a green tree with a brown trunk" only.)
HARNESS_PROMPTS: tuple[str, ...] = ("a blue box", "a yellow mushroom with a white stem", "a pink cone")

# The score-distillation steps of the papers' own runs, as gsbook.era's sources give them: DreamFusion
# optimises for 15,000 iterations (Sec. 3.2); DreamGaussian's stage 1 runs 500 (its README: 500 + 50).
PAPER_SDS_STEPS: dict[str, int] = {"dreamfusion": 15_000, "dreamgaussian": 500, "dreamgaussian-1": 500}

# The shipped networks each contender runs (the judge aside): what was trained once so that each asset is cheap.
NETWORKS: dict[str, tuple[str, ...]] = {
    "sds2d": ("prior2d",), "dreamgaussian-1": ("prior2d",), "dreamgaussian": ("prior2d",), "dreamfusion": ("prior2d",),
    "lgm": ("prior_mv", "lgm"), "grm": ("prior_mv", "grm"),
    "trellis": ("trellis_ss_vae", "trellis_ss_flow", "trellis_slat_vae", "trellis_slat_flow"),
}

# The stage whose seconds are the score-distillation loop, for the methods that have one (method → stage).
SDS_STAGES = {"dreamgaussian": "stage1", "dreamfusion": "optimise"}

# 2D SDS's steps per profile: §1's (ImageSDSConfig(steps=pick(cpu=300, gpu=600))), and half §1's ci run in ci.
SDS2D_STEPS = {"ci": 40, "cpu": 300, "gpu": 600}

# The essay's §5 table ("numbers as of mid-2025"): contender key → (time, in Chinese, seconds, what it covers, in Chinese).
ESSAY_TIMES: dict[str, tuple[str, str, float, str, str]] = {
    "trellis": ("~2 s", "约 2 秒", 2.0, "image → 3DGS", "图像 → 3DGS"),
    "lgm": ("~1 s", "约 1 秒", 1.0, "4 views → 3DGS", "4 视图 → 3DGS"),
    "dreamgaussian": ("~2 min", "约 2 分钟", 120.0, "text → 3DGS, per scene", "文字 → 3DGS，每场景"),
    "dreamfusion": ("~30 min", "约 30 分钟", 1800.0, "text → NeRF", "文字 → NeRF"),
}


def contender(name: str | Contender) -> Contender:
    """The contender called ``name``: a key of :data:`CONTENDERS`, or any method registered with
    ``gsbook generate`` (run with its default options).

    Raises:
        ValueError: ``name`` is neither (the message lists both).
    """
    if isinstance(name, Contender):
        if name.method != "sds2d" and name.method not in GENERATORS:
            raise ValueError(f"contender {name.key!r}: {name.method!r} is not a gsbook generate method; "
                             f"methods: {', '.join(GENERATORS)}")
        return name
    if name in CONTENDERS:
        return CONTENDERS[name]
    if name in GENERATORS:
        return Contender(name, name, (), name, name)
    raise ValueError(f"unknown generator {name!r}; the harness runs {', '.join(CONTENDERS)} "
                     f"(and any gsbook generate method: {', '.join(GENERATORS)})")


# ============================================================================== counting
@contextmanager
def count_network_calls() -> Iterator[Counter]:
    """Count the outermost ``nn.Module`` calls, by class name, while the block runs.

    A call made inside another module's call (a UNet's blocks, an MLP's layers) is not
    counted: ``{"TextToImagePrior": 60}`` means sixty evaluations of the prior, however many
    layers each one ran. Global module hooks cost a few microseconds per module call, which
    is small beside what the networks themselves do."""
    counts: Counter = Counter()
    depth = 0

    def enter(module, args):
        nonlocal depth
        if depth == 0:
            counts[type(module).__name__] += 1
        depth += 1

    def leave(module, args, output):
        nonlocal depth
        depth -= 1

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(enter),
             torch.nn.modules.module.register_module_forward_hook(leave, always_call=True)]
    try:
        yield counts
    finally:
        for hook in hooks:
            hook.remove()


# ============================================================================== one asset
@dataclass
class HarnessRow:
    """One asset: one contender on one prompt.

    Attributes:
        key, label, method, options: the contender (:class:`Contender`).
        prompt, seed, profile, device, threads: what ran where (``threads``: torch's CPU threads).
        wall_seconds, cpu_seconds: the method's whole run (loading included), by the wall clock
            and in CPU time of all threads.
        load_seconds: of which loading its networks (the method's own measure).
        stage_seconds: the method's own seconds per stage (``load`` included).
        primitives: Gaussians made (2D Gaussians for 2D SDS).
        splat_bytes: the size of the ``.splat`` file of those Gaussians (``None`` for 2D SDS).
        judge: the judge's scores over the views (``category``, ``colour``, ``part_colour``,
            ``all`` in [0, 1]; ``n`` views: 8, or 1 for 2D SDS).
        mesh_judge: the same for the mesh, when the method makes one.
        network_calls: outermost network calls by class (:func:`count_network_calls`).
        counts: what the method counts itself (``result.json``'s ``extra.counts`` and the plain
            numbers of ``extra``: DreamFusion's ``mlp_queries_optimise``, Trellis' ``active_voxels``, …).
        sds_steps, sds_seconds: for the score-distillation methods, the optimisation's steps and
            the seconds of that stage (:data:`SDS_STAGES`); ``None`` for the others.
    """

    key: str
    label: str
    method: str
    options: tuple[str, ...]
    prompt: str
    seed: int
    profile: str
    device: str
    threads: int
    wall_seconds: float
    cpu_seconds: float
    load_seconds: float
    stage_seconds: dict[str, float]
    primitives: int
    splat_bytes: int | None
    judge: dict[str, float]
    mesh_judge: dict[str, float] | None = None
    network_calls: dict[str, int] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    sds_steps: int | None = None
    sds_seconds: float | None = None

    @property
    def generate_seconds(self) -> float:
        """Wall seconds less loading: the time per asset the papers report."""
        return self.wall_seconds - self.load_seconds

    @property
    def seconds_per_step(self) -> float | None:
        """Seconds of one score-distillation step (render, prior, backward, update), where there are steps."""
        return None if not self.sds_steps or self.sds_seconds is None else self.sds_seconds / self.sds_steps

    @classmethod
    def from_dict(cls, data: dict) -> "HarnessRow":
        """Inverse of :meth:`to_dict` (its derived fields are dropped), e.g. for the rows of
        ``chapters/data/harness.json``."""
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in names}, "options": tuple(data.get("options", ()))})

    def to_dict(self) -> dict:
        """JSON-ready (rounded) for ``chapters/data/harness.json``."""
        out = asdict(self)
        for name in ("wall_seconds", "cpu_seconds", "load_seconds"):
            out[name] = round(out[name], 3)
        out["generate_seconds"] = round(self.generate_seconds, 3)
        out["seconds_per_step"] = None if self.seconds_per_step is None else round(self.seconds_per_step, 4)
        out["stage_seconds"] = {k: round(v, 3) for k, v in self.stage_seconds.items()}
        out["options"] = list(self.options)
        return out


def _scores(judge: Judge, views: Tensor, prompt: str) -> dict[str, float]:
    s = score(judge, views, prompt)["scores"]
    return {k: s[k] for k in ("category", "colour", "part_colour", "all", "n")}


def _method_counts(extra: dict) -> dict:
    """What a method counted itself: ``extra["counts"]`` and the plain numbers at the top of
    ``extra`` (e.g. Trellis' ``active_voxels``, a network's ``parameters``)."""
    numbers = {k: v for k, v in extra.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {**numbers, **extra.get("counts", {})}


def _who(c: Contender, prompt: str, seed: int, profile: str, device: str) -> dict:
    """The fields of a row that say what ran where."""
    return dict(key=c.key, label=c.label, method=c.method, options=c.options, prompt=prompt, seed=seed,
                profile=profile, device=device, threads=torch.get_num_threads())


def _splat_size(generated: Generated) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gaussians.splat"
        save_splat(path, generated.gaussians.detach())
        return path.stat().st_size


def request_for(c: Contender, prompt: str, profile: str, seed: int = 0, device: str | None = None) -> Request:
    """The request ``gsbook generate METHOD PROMPT OPTIONS --profile … --seed … --device …`` would make
    (:func:`gsbook.generate.build_request`: the command's own parser, checks and ``configure``);
    ``device``: default the profile's (:func:`gsbook.config.resolve_device`)."""
    return build_request([c.method, prompt, *c.options, "--profile", profile, "--device", str(resolve_device(device)),
                          "--seed", str(seed), "--quiet"])


def _run_generator(c: Contender, prompt: str, profile: str, seed: int, device: str, judge: Judge,
                   progress: bool, out_dir: Path | None) -> HarnessRow:
    request = request_for(c, prompt, profile, seed, device)
    method = GENERATORS[c.method]
    torch.manual_seed(seed)                     # as the command does before it runs a method
    with count_network_calls() as calls:
        wall, cpu = time.perf_counter(), time.process_time()
        generated = method.run(request, progress)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    views = turntable_views(generated, device)
    stage = SDS_STAGES.get(c.method)
    if out_dir is not None:
        folder = Path(out_dir) / c.key / "-".join(prompt.split())
        folder.mkdir(parents=True, exist_ok=True)
        write_result(request, generated, folder, judge, wall)
    return HarnessRow(**_who(c, prompt, seed, profile, device), wall_seconds=wall, cpu_seconds=cpu,
                      load_seconds=float(generated.seconds.get("load", 0.0)), stage_seconds=dict(generated.seconds),
                      primitives=generated.gaussians.n, splat_bytes=_splat_size(generated),
                      judge=_scores(judge, views["gaussians"], prompt),
                      mesh_judge=_scores(judge, views["mesh"], prompt) if "mesh" in views else None,
                      network_calls=dict(calls), counts=_method_counts(generated.extra),
                      sds_steps=generated.config.get("steps") if stage else None,
                      sds_seconds=generated.seconds.get(stage) if stage else None)


def _run_sds2d(c: Contender, prompt: str, profile: str, seed: int, device: str, judge: Judge,
               progress: bool) -> HarnessRow:
    """§1's 2D SDS on the book's prior: one image, judged alone (see the module docstring)."""
    from .methods.sds2d import ImageSDS, ImageSDSConfig
    from .sds import BookPrior

    config = ImageSDSConfig(steps=SDS2D_STEPS[profile], seed=seed)
    torch.manual_seed(seed)
    with count_network_calls() as calls:
        wall, cpu = time.perf_counter(), time.process_time()
        prior = BookPrior(device=device)
        load = time.perf_counter() - wall
        run = ImageSDS(prior, prompt, config)
        image = run.run(progress=progress)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return HarnessRow(**_who(c, prompt, seed, profile, device), wall_seconds=wall, cpu_seconds=cpu,
                      load_seconds=load, stage_seconds={"load": load, "sds": run.seconds},
                      primitives=config.n_gaussians, splat_bytes=None, judge=_scores(judge, image[None].cpu(), prompt),
                      network_calls=dict(calls), counts={"noised_copies_per_step": config.batch},
                      sds_steps=run.iteration, sds_seconds=run.seconds)


def run_one(name: str | Contender, prompt: str, *, profile: str | None = None, seed: int = 0,
            device: str | None = None, judge: Judge | None = None, progress: bool = False,
            out_dir: Path | str | None = None) -> HarnessRow:
    """One contender on one prompt (see the module docstring for what is measured).

    ``device``: default the profile's. ``out_dir``: also write the asset's ``gsbook generate``
    files into ``out_dir/KEY/PROMPT-WORDS`` (not for 2D SDS, which makes no 3D asset)."""
    c = contender(name)
    device = str(resolve_device(device))
    profile = profile or active_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    judge = judge or Judge.from_shipped(device)
    if c.method == "sds2d":
        return _run_sds2d(c, prompt, profile, seed, device, judge, progress)
    return _run_generator(c, prompt, profile, seed, device, judge, progress, Path(out_dir) if out_dir else None)


def _warm_up(prompts: Sequence[str], device: str) -> None:
    """What the first generator would otherwise pay for alone, once: importing and building the
    networks' code (diffusers' lazy modules take seconds the first time; building the 2D prior
    once does it) and the prompts' text features (cached on disk after the first time)."""
    from . import methods  # noqa: F401
    from .sds import BookPrior
    from .text import encode

    BookPrior(device=device)
    encode(list(prompts) + [""])


def run_harness(prompts: Sequence[str], contenders: Sequence[str | Contender] | None = None, *,
                profile: str | None = None, seed: int = 0, device: str | None = None, progress: bool = True,
                out_dir: Path | str | None = None) -> list[HarnessRow]:
    """Every contender (default: all of :data:`CONTENDERS`) on every prompt, one row each, in
    that order (``device``: default the profile's). Every name is checked before anything runs."""
    from tqdm.auto import tqdm

    device = str(resolve_device(device))
    chosen = [contender(c) for c in (contenders if contenders is not None else CONTENDERS)]
    if not prompts:
        raise ValueError("run_harness needs at least one prompt")
    profile = profile or active_profile()
    for c in chosen:                              # bad prompts and options fail here, before any run
        for prompt in prompts:
            if c.method != "sds2d":
                request_for(c, prompt, profile, seed, device)
            else:
                check_prompt(prompt)
    _warm_up(prompts, device)
    judge = Judge.from_shipped(device)
    rows = []
    bar = tqdm([(c, p) for c in chosen for p in prompts], desc="harness", disable=not progress)
    for c, prompt in bar:
        bar.set_postfix_str(f"{c.key} · {prompt}")
        rows.append(run_one(c, prompt, profile=profile, seed=seed, device=device, judge=judge, progress=progress,
                            out_dir=out_dir))
    return rows


# ============================================================================== summaries
def medians(rows: Sequence[HarnessRow]) -> dict[str, dict]:
    """Per contender key (in the rows' order): medians over its prompts of ``generate_seconds``,
    ``wall_seconds``, ``cpu_seconds``, ``primitives``, ``splat_bytes``, ``seconds_per_step`` and
    each stage's seconds; the mean judge scores; the network calls summed over the prompts; the
    label and the number of prompts."""
    by_key: dict[str, list[HarnessRow]] = {}
    for r in rows:
        by_key.setdefault(r.key, []).append(r)
    out = {}
    for key, group in by_key.items():
        splats = [r.splat_bytes for r in group if r.splat_bytes is not None]
        per_step = [r.seconds_per_step for r in group if r.seconds_per_step is not None]
        out[key] = {"label": group[0].label, "prompts": len(group),
                    **{k: statistics.median(getattr(r, k) for r in group)
                       for k in ("generate_seconds", "wall_seconds", "cpu_seconds", "primitives")},
                    "splat_bytes": statistics.median(splats) if splats else None,
                    "seconds_per_step": statistics.median(per_step) if per_step else None,
                    "category": statistics.fmean(r.judge["category"] for r in group),
                    "colour": statistics.fmean(r.judge["colour"] for r in group),
                    "views": group[0].judge["n"],
                    "network_calls": dict(sum((Counter(r.network_calls) for r in group), Counter())),
                    "stage_seconds": {s: statistics.median(r.stage_seconds.get(s, 0.0) for r in group)
                                      for s in group[0].stage_seconds}}
    return out


@dataclass
class Ratio:
    """How many times longer ``slow`` takes than ``fast``: by the essay, by the papers' headline
    times (:data:`gsbook.era.ERA`) and on this machine (medians of ``generate_seconds``);
    ``None`` where a side has no figure."""

    slow: str
    fast: str
    essay: float | None
    papers: float | None
    book: float | None

    @staticmethod
    def magnitude(ratio: float | None) -> float | None:
        """Orders of magnitude, ``log10(ratio)``."""
        return None if ratio is None or ratio <= 0 else math.log10(ratio)


# The essay's comparison ("three to four orders of magnitude") and its steps between.
RATIO_PAIRS: tuple[tuple[str, str], ...] = (("dreamfusion", "lgm"), ("dreamfusion", "trellis"),
                                            ("dreamfusion", "dreamgaussian"), ("dreamgaussian", "lgm"),
                                            ("dreamgaussian", "trellis"))


def at_paper_steps(rows: Sequence[HarnessRow]) -> dict[str, float]:
    """Per score-distillation contender in the rows (:data:`PAPER_SDS_STEPS`): the seconds its
    run would take here with the paper's number of steps — the median seconds per step times
    the paper's steps, plus what the rest of the run took (loading aside). The book shrinks its
    optimisation runs far more than its networks; this puts the steps back."""
    out = {}
    for key, m in medians(rows).items():
        if key in PAPER_SDS_STEPS and m["seconds_per_step"] is not None:
            rest = m["generate_seconds"] - m["stage_seconds"].get(SDS_STAGES.get(CONTENDERS[key].method, ""), 0.0)
            out[key] = m["seconds_per_step"] * PAPER_SDS_STEPS[key] + max(rest, 0.0)
    return out


def _divide(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _paper_seconds(key: str) -> float | None:
    c = CONTENDERS.get(key)
    return era_entry(c.era).seconds if c is not None and c.era else None


def ratios(rows: Sequence[HarnessRow], pairs: Sequence[tuple[str, str]] = RATIO_PAIRS) -> list[Ratio]:
    """:class:`Ratio` for each ``(slow, fast)`` pair of contender keys."""
    measured = medians(rows)
    book = {k: m["generate_seconds"] for k, m in measured.items()}
    essay = {k: v[2] for k, v in ESSAY_TIMES.items()}
    return [Ratio(slow, fast, _divide(essay.get(slow), essay.get(fast)),
                  _divide(_paper_seconds(slow), _paper_seconds(fast)), _divide(book.get(slow), book.get(fast)))
            for slow, fast in pairs]


def _seconds_text(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        value = f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.0f} s"
        return value if lang == "en" else value.replace(" s", " 秒")
    minutes = seconds / 60
    return f"{minutes:.1f} min" if lang == "en" else f"{minutes:.1f} 分钟"


def _times_text(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"×{ratio:,.0f} (10^{Ratio.magnitude(ratio):.1f})" if ratio >= 10 else f"×{ratio:.2g}"


def _check_lang(lang: str) -> None:
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', not {lang!r}")


def times_table(rows: Sequence[HarnessRow], lang: str = "en") -> str:
    """Markdown: one line per contender — the essay's time, the paper's (:func:`gsbook.era.time_text`),
    this machine's (median time per asset, loading excluded; CPU time; one SDS step), the judge,
    the primitives, the ``.splat`` size and the network calls (summed over the prompts)."""
    from .era import time_text

    _check_lang(lang)
    head = (["generator", "the essay", "its paper", "this machine", "CPU time", "one SDS step",
             "judge: category / colour", "primitives", ".splat", "network calls"] if lang == "en" else
            ["生成器", "原文", "论文报告", "本机实测", "CPU 时间", "每步 SDS", "评审：类别 / 颜色", "基元数", ".splat",
             "网络调用"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, m in medians(rows).items():
        c = CONTENDERS.get(key, Contender(key, key, (), m["label"], m["label"]))
        essay = ESSAY_TIMES.get(key)
        essay_text = ("—" if essay is None else f"{essay[0]} ({essay[3]})" if lang == "en"
                      else f"{essay[1]}（{essay[4]}）")
        paper = time_text(c.era, lang) if c.era else "—"
        calls = ", ".join(f"{n} × {k}" for k, n in sorted(m["network_calls"].items(), key=lambda kv: -kv[1]))
        splat = "—" if m["splat_bytes"] is None else f"{m['splat_bytes'] / 1024:,.0f} KiB"
        lines.append("| " + " | ".join([c.label if lang == "en" else c.label_zh, essay_text, paper,
                                        _seconds_text(m["generate_seconds"], lang), _seconds_text(m["cpu_seconds"], lang),
                                        _seconds_text(m["seconds_per_step"], lang),
                                        f"{m['category']:.0%} / {m['colour']:.0%} ({m['views']})",
                                        f"{m['primitives']:,.0f}", splat, calls or "—"]) + " |")
    return "\n".join(lines)


def ratio_table(rows: Sequence[HarnessRow], lang: str = "en", pairs: Sequence[tuple[str, str]] = RATIO_PAIRS,
                machine: str | None = None) -> str:
    """Markdown: for each pair, how many times longer by the essay, by the papers and on this
    machine, with orders of magnitude (``10^x``). ``machine`` heads the rows' column (default
    "this machine"; e.g. "the book's machine" for a committed run)."""
    _check_lang(lang)
    names = {k: c.era or c.label for k, c in CONTENDERS.items()}      # the pairs' systems go by their papers' names
    head = (["slower / faster", "the essay", "the papers", machine or "this machine"] if lang == "en" else
            ["慢 / 快", "原文", "论文", machine or "本机"])
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|"]
    for r in ratios(rows, pairs):
        lines.append(f"| {names.get(r.slow, r.slow)} / {names.get(r.fast, r.fast)} | {_times_text(r.essay)} | "
                     f"{_times_text(r.papers)} | {_times_text(r.book)} |")
    return "\n".join(lines)


# ============================================================================== paying once, per asset
@dataclass(frozen=True)
class TrainingCost:
    """What training a contender's own networks cost, from the shipped models' recipes.

    Attributes:
        key: the contender.
        seconds: wall seconds of training, summed over its networks (:data:`NETWORKS`).
        networks: network name → (seconds, the hardware it trained on).
    """

    key: str
    seconds: float
    networks: dict[str, tuple[float, str]]


def training_cost(key: str, folder: Path | str | None = None) -> TrainingCost:
    """The training time of contender ``key``'s networks, as their model cards record it
    (``recipe.wall_time_s``). The hardware differs between networks (most were trained on
    the book's CPU, some on a GPU); it is returned beside each time so that a reader sees it.

    Raises:
        ValueError: ``key`` is not in :data:`NETWORKS`, or a recipe records no wall time.
    """
    from .zoo import read_config

    if key not in NETWORKS:
        raise ValueError(f"no networks listed for {key!r}; known: {', '.join(NETWORKS)}")
    networks = {}
    for name in NETWORKS[key]:
        recipe = read_config(name, folder).get("recipe", {})
        if "wall_time_s" not in recipe:
            raise ValueError(f"the shipped model {name!r} records no training time (recipe.wall_time_s)")
        networks[name] = (float(recipe["wall_time_s"]), str(recipe.get("hardware", "unknown hardware")))
    return TrainingCost(key, sum(s for s, _ in networks.values()), networks)


def break_even_assets(train_seconds: float, fast_seconds: float, slow_seconds: float) -> int | None:
    """How many assets before a method that pays ``train_seconds`` once and ``fast_seconds``
    per asset has cost no more in all than one that pays ``slow_seconds`` per asset: the
    smallest ``n ≥ 1`` with ``train + n·fast ≤ n·slow``, i.e. ``max(1, ceil(train / (slow − fast)))``.

    Returns ``None`` when no number of assets does it (``slow ≤ fast`` with training to pay,
    or ``slow < fast``).

    Raises:
        ValueError: a negative time.
    """
    if min(train_seconds, fast_seconds, slow_seconds) < 0:
        raise ValueError(f"times must be ≥ 0, got train {train_seconds}, fast {fast_seconds}, slow {slow_seconds}")
    saved = slow_seconds - fast_seconds                   # what each asset saves
    if saved < 0 or (saved == 0 and train_seconds > 0):
        return None
    n = 1 if train_seconds == 0 else math.ceil(train_seconds / saved)
    while n > 1 and train_seconds + (n - 1) * fast_seconds <= (n - 1) * slow_seconds:
        n -= 1                                            # ceil of a rounded-up quotient can be one too many
    return max(n, 1)
