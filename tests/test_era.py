"""gsbook.era: the one table of the era's systems and their reported numbers, and the chapters' use of it.

The data's invariants (dates, venues, cite keys, strategies, tasks, times that agree with their numbers);
GSGEN beside DreamGaussian; the helpers the chapters print with; and a grep over every chapter for a
per-asset time typed next to a system's name, so that those numbers come only from gsbook.era.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
from pathlib import Path

import pytest

from gsbook import era
from gsbook.era import ERA, STRATEGIES, TASKS, Entry, bilingual, comparison_table, era_entry, reported_times, time_text

ROOT = Path(__file__).resolve().parents[1]
BIB_KEYS = set(re.findall(r"@\w+\{([^,]+),", (ROOT / "references.bib").read_text(encoding="utf-8")))
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
UNIT_S = {"s": 1, "min": 60, "h": 3600, "秒": 1, "分钟": 60, "小时": 3600}
NUMBER_EN = re.compile(r"(\d+(?:\.\d+)?)\s*(s|min|h)(?![A-Za-z])")
NUMBER_ZH = re.compile(r"(\d+(?:\.\d+)?)\s*(秒|分钟|小时)")


def _typography():
    """tests/test_typography.py's checker of Chinese text, loaded by path."""
    spec = importlib.util.spec_from_file_location("_typography", ROOT / "tests" / "test_typography.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.problems


def _timings():
    return [(e, t) for e in ERA for t in e.timings]


# ---------------------------------------------------------------------------------------------- the data
def test_names_are_unique_and_the_era_is_complete():
    names = [e.name for e in ERA]
    assert len(set(names)) == len(names)
    for must in ("DreamFusion", "Magic3D", "Zero-1-to-3", "Shap-E", "ProlificDreamer", "MVDream", "GSGEN",
                 "DreamGaussian", "GaussianDreamer", "LRM", "Instant3D", "LucidDreamer", "LGM", "GRM", "TRELLIS"):
        assert must in names


def test_dates_are_iso_first_arxiv_days_in_order():
    for e in ERA:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", e.date), e
        assert dt.date(2022, 1, 1) <= dt.date.fromisoformat(e.date) <= dt.date(2025, 12, 31), e
    assert [e.date for e in ERA] == sorted(e.date for e in ERA)


def test_cite_keys_exist_and_fields_are_filled():
    for e in ERA:
        assert e.cite in BIB_KEYS, f"{e.name}: {e.cite} missing from references.bib"
        assert e.venue and e.source and e.note and "→" in e.io, e.name
        assert e.strategy in STRATEGIES, e.name
        assert bool(e.hardware) == bool(e.hardware_zh), f"{e.name}: hardware in one language only"


def test_every_time_says_what_it_covers_and_where_it_comes_from():
    for e, t in _timings():
        assert t.task in TASKS, (e.name, t.task)
        assert t.time and t.time_zh and t.source, (e.name, t)
        assert bool(t.scope) == bool(t.scope_zh), (e.name, t)
    for e in ERA:
        assert (e.strategy == "prior") == (e.task == "2D/multi-view prior"), e.name
        if e.strategy == "prior":
            assert e.seconds is None and not e.also, e.name


@pytest.mark.parametrize("entry, timing", _timings(), ids=lambda x: getattr(x, "name", None) or x.task)
def test_seconds_agree_with_the_time_text_in_both_languages(entry, timing):
    en, zh = NUMBER_EN.findall(timing.time), NUMBER_ZH.findall(timing.time_zh)
    if timing.seconds is None:
        assert not en and not zh, f"{entry.name}: a figure in the text but seconds=None: {timing}"
        return
    assert timing.seconds > 0
    assert len(en) == 1 and len(zh) == 1, f"{entry.name}: one figure per time text: {timing}"
    for value, unit in (en[0], zh[0]):
        assert float(value) * UNIT_S[unit] == pytest.approx(timing.seconds), (entry.name, timing)


def test_a_figure_that_is_not_there_is_said_to_be_missing():
    for e, t in _timings():
        if t.seconds is None and t.task != "2D/multi-view prior":
            assert re.search(r"not reported|not confirmed|no figure|no per-asset", t.source + " " + t.time), (e.name, t)


def test_gsgen_is_on_the_timeline_beside_dreamgaussian():
    gsgen, dg = era_entry("GSGEN"), era_entry("DreamGaussian")
    assert gsgen.date == dg.date == "2023-09-28"
    assert gsgen.cite == "chen2024gsgen" and "3DGS" in gsgen.io and gsgen.strategy == "optimisation"
    assert not any("first" in e.note.lower() and "Gaussian" in e.note for e in ERA), \
        "no entry may call a system the first on Gaussians (GSGEN and DreamGaussian share the day)"


def test_caveats_travel_with_the_numbers():
    dg, grm, lgm = era_entry("DreamGaussian"), era_entry("GRM"), era_entry("LGM")
    assert dg.task == "image→3D" and any(t.task == "text→3D" for t in dg.also)
    assert grm.task == "reconstruction only" and "4" in grm.scope and grm.seconds == pytest.approx(0.1)
    assert {t.task for t in grm.also} == {"image→3D", "text→3D"}
    assert "reconstruction only" in time_text("GRM") and "4" in time_text("GRM")
    assert lgm.seconds == 5 and [t.seconds for t in lgm.also] == [1]


def test_widgets_show_the_same_table():
    from widgets import era_timeline

    assert era_timeline.ERA is ERA and era_timeline.STRATEGIES is STRATEGIES
    html = era_timeline.timeline_html()
    for e in ERA:
        assert f"<b>{e.name}</b>" in html
    assert "reconstruction only" in html and "1 TPUv4 machine (4 chips)" in html and "hardware · 硬件" in html


# ---------------------------------------------------------------------------------------------- helpers
def test_era_entry_and_time_text():
    assert era_entry("grm") is era_entry("GRM")
    with pytest.raises(KeyError, match="known: DreamFusion"):
        era_entry("NoSuchNeRF")
    assert time_text("DreamFusion") == "~1.5 h (text→3D)"
    assert time_text("DreamFusion", "zh") == "约 1.5 小时（文本→3D）"
    assert time_text("DreamFusion", task=False) == "~1.5 h"
    assert time_text("MVDream") == era_entry("MVDream").time                 # a prior: no task label
    with pytest.raises(ValueError, match="lang"):
        time_text("LGM", "fr")


def test_months_between():
    assert era.months_between("2022-09-29", "2024-12-02") == 27
    assert era.months_between("2024-01-31", "2024-02-01") == 1


def test_comparison_table_computes_its_time_row():
    for lang, row in (("en", "time per asset"), ("zh", "论文报告的单资产耗时")):
        table = comparison_table(lang)
        lines = table.splitlines()
        assert len({line.count("|") for line in lines}) == 1, "every row has the same number of cells"
        time_row = next(line for line in lines if row in line)
        opt = [e for e in ERA if e.strategy == "optimisation" and e.seconds is not None]
        ff = [e for e in ERA if e.strategy == "feed-forward" and e.seconds is not None]
        for group in (opt, ff):
            fast, slow = min(group, key=lambda e: e.seconds), max(group, key=lambda e: e.seconds)
            assert fast.name in time_row and slow.name in time_row
            assert time_text(fast, lang, task=False) in time_row and time_text(slow, lang, task=False) in time_row
    assert "reconstruction only" in comparison_table("en") and "仅重建" in comparison_table("zh")


def test_reported_times_lists_every_timing_and_the_hardware():
    text = reported_times(["GRM", "DreamFusion"], "en")
    assert text.count("\n- ") == 1 and "8 s (text→3D)" in text and "1 TPUv4 machine (4 chips)" in text
    assert "未说明硬件" in reported_times(["GRM"], "zh")


def test_bilingual_uses_the_language_toggle_classes():
    out = bilingual("**en**", "**中文**")
    assert out.index('<div class="lang-en">') < out.index("**en**") < out.index('<div class="lang-zh">') \
        < out.index("**中文**")
    assert out.count("</div>") == 2 and "\n\n**en**\n\n" in out             # blank lines: Markdown inside HTML


def test_generated_chinese_follows_the_glossary():
    problems = _typography()
    texts = [comparison_table("zh"), reported_times([e.name for e in ERA], "zh")]
    texts += [time_text(e, "zh") for e in ERA]
    bad = [p for text in texts for p in problems(text)]
    assert not bad, bad


# ---------------------------------------------------------------------------------------------- chapters
NAMES = [e.name for e in ERA] + ["Trellis"]
_WORD = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty|thirty|forty|fifty)"
TYPED_TIME = re.compile(
    r"(?:~|≈|约\s*)?\d+(?:[.,]\d+)?\s*(?:s|secs?|seconds?|min|mins|minutes?|h|hrs?|hours?)(?![A-Za-z])"
    rf"|\b{_WORD}\s+(?:seconds?|minutes?|hours?)\b"
    r"|[\d一两二三四五六七八九十百几]+\s*(?:秒|分钟|小时)|一个半小时|十分之一秒"
    r"|\b(?:an|half an) hour\b|\ba tenth of a second\b|\btens of (?:seconds|minutes)\b"
    r"|\ba few (?:seconds|minutes|hours)\b",
    re.I)
# a sentence: up to a full stop (not a decimal point), a semicolon, a table cell or a line break
SENTENCE = re.compile(r"(?<!\d)\.(?!\d)|[;。；!?！？|\n]")


def typed_times(text: str) -> list[str]:
    """Sentences that name a system of the era and carry a per-asset time typed by hand."""
    found = []
    for sentence in SENTENCE.split(text):
        names = [n for n in NAMES if re.search(rf"(?<![A-Za-z]){re.escape(n)}(?![A-Za-z])", sentence)]
        times = [m.group(0) for m in TYPED_TIME.finditer(sentence)]
        if names and times:
            found.append(f"{'/'.join(names)}: {times} in …{sentence.strip()[:120]}…")
    return found


@pytest.mark.parametrize("text", [
    "DreamFusion takes about 1.5 h per prompt.",
    "about an hour and a half for DreamFusion",
    "| ~0.1 s (GRM) to a few seconds (LGM, TRELLIS) |",
    "DreamGaussian 每个 prompt 约 2 分钟。",
    "DreamFusion 式的 NeRF 则要几十分钟",
    "LGM 和 GRM 分别约五秒和十分之一秒",
    'assert ok, "DreamGaussian\'s ~2 minutes, on two CPU cores"',
    "Magic3D cut that to about 40 minutes",
])
def test_the_grep_finds_typed_times(text):
    assert typed_times(text), text


@pytest.mark.parametrize("text", [
    'print(f"{name}: {time_text(name)}")',                                   # the numbers come from gsbook.era
    'f"({df.seconds:,.0f} s against {lgm.seconds:g} s)"',
    "Both stages together take under a minute per prompt on two cores.",      # the book's own measurement
    "DreamGaussian's first stage renders 1 view per step at 64² pixels.",
    "LGM takes four views with Plücker rays; the book trains it for 300 steps.",
    "DreamGaussian 的第二阶段用 50 步精修贴图。",
    "the judge reads the 8 views of DreamGaussian's output",
    "tens of thousands of Gaussians in LGM's output",
])
def test_the_grep_leaves_other_numbers_alone(text):
    assert not typed_times(text), typed_times(text)


def _cells(path: Path):
    return [(i, c["cell_type"], "".join(c["source"])) for i, c in enumerate(json.loads(path.read_text("utf-8"))["cells"])
            if c["cell_type"] in ("markdown", "code")]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_take_the_eras_times_from_gsbook_era(path):
    bad = [f"cell {i} ({kind}): {hit}" for i, kind, text in _cells(path) for hit in typed_times(text)]
    assert not bad, f"{path.name} types the era's per-asset times; render them with gsbook.era instead:\n" \
        + "\n".join(bad)


FIRST = re.compile(r"\bfirst\b(?!\s+(?:stage|step|view|input|row|column|two|three))|首个|第一个", re.I)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_calls_dreamgaussian_the_first_without_gsgen(path):
    bad = [f"cell {i}: …{s.strip()[:120]}…" for i, _, text in _cells(path) for s in SENTENCE.split(text)
           if "DreamGaussian" in s and FIRST.search(s) and "GSGEN" not in s]
    assert not bad, "\n".join(bad)
