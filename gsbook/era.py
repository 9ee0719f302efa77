"""The era's systems and their own numbers: one table that every chapter reads (§0, §5, §6).

:data:`ERA` holds one :class:`Entry` per system, from DreamFusion to TRELLIS: its first arXiv
version (``date``), where it was published (``venue``), what goes in and what comes out
(``io``), which of §0's two strategies it follows, and the time per asset *as its paper or
official code reports it*. Each time says what it covers (``task``: a whole text→3D run, an
image→3D run, a reconstruction from given views, …), on what hardware where the source says
(``hardware``; empty where it does not) and where the figure comes from (``source``: a table,
a section, the abstract, the official README). Where no figure could be confirmed the entry
says so and ``seconds`` is ``None``; nothing here is guessed. A paper that reports more than
one time (GRM's reconstruction against its text→3D run, LGM's two steps) keeps the others in
``also``.

Chapters never type these numbers: they render them with :func:`time_text`,
:func:`reported_times` and :func:`comparison_table`, and :func:`bilingual` wraps the English
and the Chinese rendering in the classes the book's language toggle shows and hides
(``lang-en`` / ``lang-zh``, as ``tools/sphinxext/gsbook_lang.py`` gives tagged Markdown cells).
``tests/test_era.py`` checks the table's invariants and greps the chapters for typed copies.

Foundations layer: this module imports nothing from gsbook (plain dataclasses).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = ["Timing", "Entry", "ERA", "STRATEGIES", "SHORT_ZH", "TASKS", "era_entry", "months_between",
           "time_text", "hardware_text", "reported_times", "comparison_table", "bilingual"]

# strategy key → (English label, Chinese label, colour)
STRATEGIES = {
    "optimisation": ("optimisation (score distillation)", "优化派（分数蒸馏）", "#c0504d"),
    "feed-forward": ("feed-forward (trained once)", "前馈派（训练一次）", "#4f81bd"),
    "prior": ("multi-view prior (used by both)", "多视角先验（两派共用）", "#9bbb59"),
}
SHORT_ZH = {"optimisation": "优化", "feed-forward": "前馈", "prior": "先验"}

# What a reported time covers → its Chinese label.
TASKS = {
    "text→3D": "文本→3D",
    "image→3D": "图像→3D",
    "text/image→3D": "文本/图像→3D",
    "reconstruction only": "仅重建",
    "2D/multi-view prior": "二维/多视角先验",
}


@dataclass(frozen=True)
class Timing:
    """One reported time: what it covers, as written (English, Chinese), in seconds, and where from.

    ``seconds`` is ``None`` where the source gives no figure; ``time`` then says so."""

    task: str                  # a key of TASKS
    time: str                  # as reported, e.g. "~0.1 s", "within 20 s", "not reported"
    time_zh: str               # the same in Chinese, e.g. "约 0.1 秒"
    seconds: float | None
    source: str                # where in the paper or its official code, e.g. "Tab. 1", "abstract"
    scope: str = ""            # what else the reader must know, e.g. "from 4 posed views"
    scope_zh: str = ""


@dataclass(frozen=True)
class Entry:
    """One system of the era. ``time``/``seconds``/``task``/``source`` is its headline figure."""

    name: str
    date: str                  # first arXiv version (v1), YYYY-MM-DD
    venue: str
    io: str                    # input → output of the whole system
    strategy: str              # a key of STRATEGIES
    task: str                  # a key of TASKS: what the headline time covers
    time: str                  # time per asset as reported (English text)
    time_zh: str               # the same in Chinese
    seconds: float | None      # that figure as a number; None where there is none
    hardware: str              # as the source states it; "" where it does not
    hardware_zh: str
    source: str                # where the time (and hardware) come from
    cite: str                  # BibTeX key in references.bib
    note: str = ""
    scope: str = ""
    scope_zh: str = ""
    also: tuple[Timing, ...] = field(default=())

    @property
    def day(self) -> dt.date:
        return dt.date.fromisoformat(self.date)

    @property
    def timings(self) -> tuple[Timing, ...]:
        """The headline time first, then the others the source reports."""
        head = Timing(self.task, self.time, self.time_zh, self.seconds, self.source, self.scope, self.scope_zh)
        return (head, *self.also)


_NOT_REPORTED = ("not reported", "未报告")

ERA: list[Entry] = [
    Entry("DreamFusion", "2022-09-29", "ICLR 2023", "text → NeRF", "optimisation",
          "text→3D", "~1.5 h", "约 1.5 小时", 5400, "1 TPUv4 machine (4 chips)", "1 台 TPUv4 机器（4 颗芯片）",
          "Sec. 3.2, step 4 'Optimization': 15,000 iterations, around 1.5 hours",
          "poole2023dreamfusion", "introduces SDS"),
    Entry("Magic3D", "2022-11-18", "CVPR 2023", "text → NeRF → textured mesh", "optimisation",
          "text→3D", "~40 min", "约 40 分钟", 2400, "", "",
          "abstract ('in 40 minutes'); the GPU count was not confirmed in the paper text "
          "(the GaussianDreamer authors describe it as multi-GPU)",
          "lin2023magic3d", "coarse-to-fine, mesh stage"),
    Entry("Zero-1-to-3", "2023-03-20", "ICCV 2023", "image + camera → novel view", "prior",
          "2D/multi-view prior", "— (a 2D prior)", "—（二维先验）", None, "", "",
          "not applicable: a view-synthesis model, no per-asset 3D time",
          "liu2023zero1to3", "view-conditioned diffusion; 3D by SDS on top"),
    Entry("Shap-E", "2023-05-03", "arXiv 2023", "text / image → implicit 3D (NeRF, mesh)", "feed-forward",
          "text/image→3D", "seconds, no figure given", "数秒，未给出具体数字", None, "", "",
          "abstract: 'in a matter of seconds'; no figure or hardware given",
          "jun2023shape", "diffusion over implicit-function weights"),
    Entry("ProlificDreamer", "2023-05-25", "NeurIPS 2023", "text → NeRF → mesh", "optimisation",
          "text→3D", *_NOT_REPORTED, None, "", "",
          "no per-asset time in the abstract or the official README (the paper body was not checked)",
          "wang2023prolificdreamer", "variational score distillation (VSD)"),
    Entry("MVDream", "2023-08-31", "ICLR 2024", "text → 4 consistent views", "prior",
          "2D/multi-view prior", "— (a multi-view prior)", "—（多视角先验）", None, "", "",
          "not applicable: a multi-view diffusion model, used through SDS or a reconstructor",
          "shi2024mvdream", "multi-view SDS; LGM's front end"),
    # GSGEN and DreamGaussian share their first arXiv day; GSGEN's number (2309.16585) is the lower one.
    Entry("GSGEN", "2023-09-28", "CVPR 2024", "text → 3DGS", "optimisation",
          "text→3D", *_NOT_REPORTED, None, "", "",
          "no per-asset time in the abstract, the project page or the official README "
          "(the paper body was not checked)",
          "chen2024gsgen", "SDS on Gaussians from a Point-E start, with a 3D prior; same day as DreamGaussian"),
    Entry("DreamGaussian", "2023-09-28", "ICLR 2024", "text / image → 3DGS → textured mesh", "optimisation",
          "image→3D", "~2 min", "约 2 分钟", 120, "1 V100", "1 块 V100",
          "abstract ('in just 2 minutes from a single-view image'); official README: 500 + 50 iterations, "
          "~1 min each, tested on a V100",
          "tang2024dreamgaussian", "SDS on Gaussians, then mesh and texture refinement; same day as GSGEN",
          also=(Timing("text→3D", "no figure confirmed", "未核实到数字", None,
                       "the abstract and the official README give only the image→3D time"),)),
    Entry("GaussianDreamer", "2023-10-12", "CVPR 2024", "text → 3DGS", "optimisation",
          "text→3D", "within 15 min", "15 分钟以内", 900, "1 GPU", "1 块 GPU",
          "abstract from v2 and the CVPR version ('within 15 minutes on one GPU'; v1 said 25 minutes)",
          "yi2024gaussiandreamer", "3D-diffusion initialisation + SDS"),
    Entry("LRM", "2023-11-08", "ICLR 2024", "image → triplane NeRF", "feed-forward",
          "image→3D", "within 5 s", "5 秒以内", 5, "", "",
          "abstract ('within just 5 seconds'); no inference hardware given there",
          "hong2024lrm", "large reconstruction model"),
    Entry("Instant3D", "2023-11-10", "ICLR 2024", "text → 4 views → triplane NeRF", "feed-forward",
          "text→3D", "within 20 s", "20 秒以内", 20, "", "",
          "abstract ('within 20 seconds'); no inference hardware given there",
          "li2024instant3d", "sparse-view generation + LRM"),
    Entry("LucidDreamer", "2023-11-19", "CVPR 2024", "text → 3DGS", "optimisation",
          "text→3D", "~35 min", "约 35 分钟", 2100, "1 A100", "1 块 A100",
          "official README, teaser caption ('within ~35mins in A100')",
          "liang2024luciddreamer", "interval score matching (ISM)"),
    Entry("LGM", "2024-02-07", "ECCV 2024", "text / image → 4 views → 3DGS", "feed-forward",
          "text/image→3D", "~5 s", "约 5 秒", 5, "", "",
          "abstract and Sec. 1 ('approximately 5 seconds'); Fig. 2 splits it into ~4 s of multi-view "
          "generation and ~1 s of Gaussian generation; no inference GPU named",
          "tang2024lgm", "U-Net emits pixel-aligned Gaussians",
          also=(Timing("reconstruction only", "~1 s", "约 1 秒", 1, "Fig. 2 ('Gaussian Generation ~ 1s')",
                       "Gaussians from the 4 generated views", "由 4 张生成的视图得到高斯"),)),
    Entry("GRM", "2024-03-21", "ECCV 2024", "4 views → 3DGS", "feed-forward",
          "reconstruction only", "~0.1 s", "约 0.1 秒", 0.1, "", "",
          "abstract ('around 0.1s'); Tab. 1: 0.11 s from 4 input views; no inference GPU named",
          "xu2024grm", "transformer, pixel-aligned Gaussians",
          scope="from 4 posed views", scope_zh="输入为 4 张带位姿的视图",
          also=(Timing("image→3D", "5 s", "5 秒", 5, "Tab. 2 (Zero123++ views, then GRM)"),
                Timing("text→3D", "8 s", "8 秒", 8, "Tab. 3 and Fig. 5 (Instant3D's views, then GRM)"))),
    Entry("TRELLIS", "2024-12-02", "CVPR 2025", "text / image → sparse voxels → 3DGS / mesh", "feed-forward",
          "text/image→3D", "~10 s", "约 10 秒", 10, "", "",
          "Fig. 1 caption ('in about 10 seconds'); no GPU named there",
          "xiang2025trellis", "rectified flow over structured latents"),
]


def era_entry(name: str) -> Entry:
    """The entry called ``name`` (case-insensitive); a clear error listing the names otherwise."""
    for e in ERA:
        if e.name.lower() == name.lower():
            return e
    raise KeyError(f"no system {name!r} in gsbook.era.ERA; known: {', '.join(e.name for e in ERA)}")


def months_between(a: str, b: str) -> int:
    """Whole calendar months from date ``a`` to date ``b`` (YYYY-MM-DD)."""
    da, db = dt.date.fromisoformat(a), dt.date.fromisoformat(b)
    return (db.year - da.year) * 12 + (db.month - da.month)


def _check_lang(lang: str) -> None:
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', not {lang!r}")


def _timing_text(t: Timing, lang: str, task: bool) -> str:
    _check_lang(lang)
    time = t.time if lang == "en" else t.time_zh
    if not task or t.task == "2D/multi-view prior":
        return time
    if lang == "en":
        label = t.task + (f", {t.scope}" if t.scope else "")
        return f"{time} ({label})"
    label = TASKS[t.task] + (f"，{t.scope_zh}" if t.scope_zh else "")
    return f"{time}（{label}）"


def time_text(name: str | Entry, lang: str = "en", task: bool = True) -> str:
    """The headline time of one system as the chapters print it, with what it covers.

    >>> time_text("GRM")
    '~0.1 s (reconstruction only, from 4 posed views)'
    >>> time_text("DreamFusion", "zh")
    '约 1.5 小时（文本→3D）'
    """
    e = name if isinstance(name, Entry) else era_entry(name)
    return _timing_text(e.timings[0], lang, task)


def hardware_text(name: str | Entry, lang: str = "en") -> str:
    """The hardware as the source states it, or a plain 'not stated'."""
    _check_lang(lang)
    e = name if isinstance(name, Entry) else era_entry(name)
    if lang == "en":
        return e.hardware or "hardware not stated"
    return e.hardware_zh or "未说明硬件"


def reported_times(names: list[str], lang: str = "en") -> str:
    """A Markdown list: each system's reported times, what each covers, and the hardware.

    (Each figure's ``source`` is shown in §6's table, :func:`widgets.era_timeline.timeline_html`.)"""
    _check_lang(lang)
    lines = []
    for name in names:
        e = era_entry(name)
        times = ("; " if lang == "en" else "；").join(_timing_text(t, lang, True) for t in e.timings)
        hw = hardware_text(e, lang)
        if lang == "en":
            lines.append(f"- **{e.name}** ({e.venue}): {times}; {hw}.")
        else:
            lines.append(f"- **{e.name}**（{e.venue}）：{times}；{hw}。")
    return "\n".join(lines)


def _span(strategy: str, lang: str) -> str:
    """'fastest (name) to slowest (name)' over the entries of a strategy that report a figure."""
    timed = sorted((e for e in ERA if e.strategy == strategy and e.seconds is not None), key=lambda e: e.seconds)
    if not timed:
        return "—"
    fast, slow = timed[0], timed[-1]

    def one(e: Entry) -> str:
        t = e.timings[0]
        if lang == "en":
            return f"{t.time} ({e.name}, {t.task}" + (f", {t.scope})" if t.scope else ")")
        return f"{t.time_zh}（{e.name}，{TASKS[t.task]}" + (f"，{t.scope_zh}）" if t.scope_zh else "）")

    if lang == "en":
        return f"{one(fast)} to {one(slow)}"
    right = one(slow)
    return f"{one(fast)}到{' ' if right[:1].isascii() else ''}{right}"   # a space before a Latin word or a digit


def comparison_table(lang: str = "en") -> str:
    """§0's table of the two strategies, as Markdown; its time row comes from :data:`ERA`."""
    _check_lang(lang)
    if lang == "en":
        rows = [("", "optimisation (SDS)", "feed-forward (LRM-style)"),
                ("trained on 3D data", "no (a 2D diffusion model)", "yes, once"),
                ("work per new asset", "thousands of render-and-update steps",
                 "one forward pass (or a few dozen flow steps)"),
                ("time per asset, as each paper reports it", _span("optimisation", "en"),
                 _span("feed-forward", "en")),
                ("limited by", "the 2D critic's idea of the prompt; speed", "the 3D training set"),
                ("chapters", "§1, §2", "§3, §4")]
    else:
        rows = [("", "优化派（SDS）", "前馈派（LRM 风格）"),
                ("是否用 3D 数据训练", "否（用的是 2D 扩散模型）", "是，训练一次"),
                ("每个新资产的工作量", "几千次“渲染—更新”", "一次前向（或几十步流采样）"),
                ("论文报告的单资产耗时", _span("optimisation", "zh"), _span("feed-forward", "zh")),
                ("受限于", "2D 评审对 prompt 的理解；速度", "3D 训练集"),
                ("对应章节", "§1、§2", "§3、§4")]
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def bilingual(en: str, zh: str) -> str:
    """English then Chinese Markdown, each in a ``<div>`` with the language toggle's class.

    JupyterLab shows both; on the website the reader's choice hides one (``_assets/gsbook.css``)."""
    return f'<div class="lang-en">\n\n{en.strip()}\n\n</div>\n<div class="lang-zh">\n\n{zh.strip()}\n\n</div>\n'
