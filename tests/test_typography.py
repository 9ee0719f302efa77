"""The Chinese text of every chapter follows the glossary's typography (glossary.md): full-width
punctuation next to Chinese characters, no hard line breaks inside a paragraph, the glossary's
terms. The checker itself is tested on examples first, so that a passing chapter means something."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CJK = "\u4e00-\u9fff"
CJK_OR_FULL = f"{CJK}\u3000-\u303f\uff00-\uffef"
# Code, maths, link targets and HTML are not prose: their punctuation is what it must be.
NOT_PROSE = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|\]\([^)\n]*\)|<[^>\n]+>", re.S)
HALF_WIDTH = re.compile(rf"[{CJK}][,;:!?()]|[,;:!?(][{CJK}]|[{CJK}]\)|[{CJK}]\.(?=\s|$)|[,;:!?]\**\s*[{CJK}]")
# A line that ends in Chinese and a next line that continues the paragraph (not a list item,
# heading, quote, table row, fence, display maths or blank line).
HARD_BREAK = re.compile(rf"[{CJK_OR_FULL}]\n(?![\n#>|*\-+]|\d+\.\s|\$\$|```|:::|!\[)")
# Terms that drifted once; the glossary's word for each.
BANNED = {"判别器": "评判模型（judge）", "`ci` 配置": "档位", "`cpu` 配置": "档位", "`gpu` 配置": "档位",
          "每个资产耗时几秒": "生成每个资产所需的秒数 (seconds per asset: a unit, not a claim)"}


def chinese_cells(path: Path) -> list[tuple[int, str]]:
    """``(index, source)`` of the Markdown cells that are Chinese text (≥ 10 Chinese characters)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells)
            if c["cell_type"] == "markdown" and len(re.findall(f"[{CJK}]", "".join(c["source"]))) >= 10]


def problems(text: str) -> list[str]:
    """Every typography problem of one Chinese Markdown text, each with its context."""
    prose = NOT_PROSE.sub(" ", text)
    found = [f"half-width {m.group(0)!r} in …{prose[max(0, m.start() - 12):m.end() + 12]}…"
             for m in HALF_WIDTH.finditer(prose)]
    found += [f"hard line break in …{prose[max(0, m.start() - 12):m.end() + 12]!r}…" for m in HARD_BREAK.finditer(prose)]
    found += [f"{bad!r}: the glossary says {good}" for bad, good in BANNED.items() if bad in text]
    return found


@pytest.mark.parametrize("text, expected", [
    ("这是一个例子,很短。", "half-width '子,'"),
    ("先验(prior)很重要。", "half-width '验('"),
    ("它很快.", "half-width"),
    ("**走进 3D:** 每一步都渲染。", "half-width"),
    ("第一行很长\n第二行接着写。", "hard line break"),
    ("评判的是判别器的读数。", "评判模型"),
])
def test_the_checker_finds_each_kind_of_problem(text, expected):
    assert any(expected in p for p in problems(text)), problems(text)


@pytest.mark.parametrize("text", [
    "先验（prior）很重要：它给出分数。",
    "用 `gsbook.render(x, y)` 渲染，再算 $f(x, y)$。",
    "DreamFusion ([Poole et al., 2023](../references.md#poole2023dreamfusion)) 注意到这一点。",
    "第一段。\n\n第二段。",
    "列表：\n- 第一项\n- 第二项",
])
def test_the_checker_accepts_good_text(text):
    assert problems(text) == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chinese_text_follows_the_glossary(path):
    cells = chinese_cells(path)
    assert cells, f"{path.name} has no Chinese text"
    bad = [f"cell {i}: {p}" for i, text in cells for p in problems(text)]
    assert not bad, f"{path.name}:\n" + "\n".join(bad[:20])


def test_the_glossary_is_in_the_book_and_covers_the_banned_terms():
    glossary = (ROOT / "glossary.md").read_text(encoding="utf-8")
    assert "glossary" in (ROOT / "_toc.yml").read_text()
    for english, chinese in (("judge", "评判模型"), ("profile", "档位"), ("densification", "致密化"),
                             ("rasterizer", "光栅化器"), ("cross-view attention", "跨视角注意力")):
        assert re.search(rf"\| {re.escape(english)}[^|]*\| {chinese}", glossary), english
