"""Captions: templated English for ShapeWorld objects, and a parser back (taught in §0, used in §7).

Grammar (one object, or two with a relation)::

    prompt  := object [relation object]
    object  := [article] [colour] category [with [article] colour part]
    relation:= "on" | "under" | "next to"

``caption(spec)`` writes the one canonical sentence for a spec and ``parse(text)`` reads
any sentence of the grammar back, so ``parse(caption(spec)) == spec`` for every spec and
``caption(parse(text)) == text`` for every canonical caption. A word outside the
vocabulary is an error whose message lists the vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .categories import CATEGORIES, CATEGORY_NAMES, get_category
from .colours import COLOUR_NAMES, COLOUR_SYNONYMS

# One caption per category, each with its part colour named: the sample grids of the model
# cards and of §1 use them.
GRID_CAPTIONS = [
    "a red ball", "a blue box", "a yellow can", "a green cone", "an orange ring", "a purple capsule",
    "a pink pyramid", "a red mushroom with a white stem", "a white snowman with a black hat",
    "a brown table with grey legs", "a blue chair with yellow legs", "a green lamp with a black base",
    "a green tree with a brown trunk", "a yellow house with a red roof", "a grey dumbbell with a black handle",
    "a white rocket with red fins",
]

ARTICLES = ("a", "an", "the")
RELATIONS = ("on", "under", "next to")
PART_NOUNS: tuple[str, ...] = tuple(sorted({c.part for c in CATEGORIES.values() if c.part}))


@dataclass(frozen=True)
class ObjectSpec:
    """What a caption says about one object: its category and up to two colours.

    ``colour`` colours the main body; ``part_colour`` the category's second part (the
    mushroom's stem, the house's roof, …). ``None`` means "not said".
    """
    category: str
    colour: str | None = None
    part_colour: str | None = None

    def __post_init__(self) -> None:
        category = get_category(self.category)
        for value in (self.colour, self.part_colour):
            if value is not None and value not in COLOUR_NAMES:
                raise ValueError(f"unknown colour {value!r}; ShapeWorld's colours are: {', '.join(COLOUR_NAMES)}")
        if self.part_colour is not None and category.part is None:
            raise ValueError(f"a {self.category} has one colour only; it has no second part to colour")


@dataclass(frozen=True)
class SceneSpec:
    """Two objects and how they sit: "a red ball on a blue box" is
    ``SceneSpec(ObjectSpec('ball', 'red'), 'on', ObjectSpec('box', 'blue'))``."""
    first: ObjectSpec
    relation: str
    second: ObjectSpec

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}; ShapeWorld's relations are: {', '.join(RELATIONS)}")


Spec = ObjectSpec | SceneSpec


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _object_caption(spec: ObjectSpec) -> str:
    head = f"{spec.colour} {spec.category}" if spec.colour else spec.category
    text = f"{_article(head)} {head}"
    if spec.part_colour:
        category = get_category(spec.category)
        part = f"{spec.part_colour} {category.part}"
        text += f" with {part}" if category.plural else f" with {_article(part)} {part}"
    return text


def caption(spec: Spec) -> str:
    """The canonical caption: ``"an orange mushroom with a white stem"``, ``"a red ball on a blue box"``."""
    if isinstance(spec, SceneSpec):
        return f"{_object_caption(spec.first)} {spec.relation} {_object_caption(spec.second)}"
    return _object_caption(spec)


def vocabulary() -> dict[str, tuple[str, ...]]:
    """Every word the parser knows, by role."""
    relation_words = tuple(dict.fromkeys(w for r in RELATIONS for w in r.split()))
    return {
        "articles": ARTICLES,
        "colours": COLOUR_NAMES + tuple(COLOUR_SYNONYMS),
        "categories": CATEGORY_NAMES,
        "parts": PART_NOUNS,
        "linking words": ("with",) + relation_words,
    }


def _vocabulary_text() -> str:
    return "; ".join(f"{role}: {', '.join(words)}" for role, words in vocabulary().items())


class PromptError(ValueError):
    """A prompt ShapeWorld cannot read; the message says why and lists the vocabulary."""


def _fail(prompt: str, why: str) -> PromptError:
    return PromptError(f"cannot read prompt {prompt!r}: {why}. ShapeWorld's vocabulary is — {_vocabulary_text()}.")


def _tokens(prompt: str) -> list[str]:
    words = [w for w in re.split(r"[\s,.;:!?]+", prompt.strip().lower()) if w]
    known = {w for words_ in vocabulary().values() for w in words_}
    unknown = [w for w in words if w not in known]
    if unknown:
        raise _fail(prompt, f"unknown word{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}")
    if not words:
        raise _fail(prompt, "it is empty")
    return words


def _colour(word: str) -> str:
    return COLOUR_SYNONYMS.get(word, word)


def _is_colour(word: str) -> bool:
    return _colour(word) in COLOUR_NAMES


def _parse_object(words: list[str], i: int, prompt: str) -> tuple[ObjectSpec, int]:
    if i < len(words) and words[i] in ARTICLES:
        i += 1
    colour = None
    if i < len(words) and _is_colour(words[i]):
        colour, i = _colour(words[i]), i + 1
    if i >= len(words) or words[i] not in CATEGORIES:
        got = repr(words[i]) if i < len(words) else "the end of the prompt"
        raise _fail(prompt, f"expected a category, got {got}")
    name, i = words[i], i + 1
    part_colour = None
    if i < len(words) and words[i] == "with":
        i += 1
        if i < len(words) and words[i] in ARTICLES:
            i += 1
        if i >= len(words) or not _is_colour(words[i]):
            raise _fail(prompt, "expected a colour after 'with'")
        part_colour, i = _colour(words[i]), i + 1
        part = get_category(name).part
        if i >= len(words) or words[i] not in PART_NOUNS:
            raise _fail(prompt, f"expected a part after 'with {part_colour}'")
        if words[i] != part:
            has = f"its coloured part is the {part}" if part else "it has one colour only"
            raise _fail(prompt, f"a {name} has no {words[i]} ({has})")
        i += 1
    return ObjectSpec(name, colour, part_colour), i


def parse(prompt: str) -> Spec:
    """Read a prompt into an :class:`ObjectSpec` or a :class:`SceneSpec`.

    Raises:
        PromptError: an unknown word (the message lists the vocabulary), or known words
            in an order the grammar does not allow.
    """
    words = _tokens(prompt)
    first, i = _parse_object(words, 0, prompt)
    if i == len(words):
        return first
    for relation in RELATIONS:
        rel = relation.split()
        if words[i:i + len(rel)] == rel:
            second, j = _parse_object(words, i + len(rel), prompt)
            if j != len(words):
                raise _fail(prompt, f"unexpected {' '.join(words[j:])!r} after the second object")
            return SceneSpec(first, relation, second)
    raise _fail(prompt, f"expected the end or a relation ({', '.join(RELATIONS)}), got {words[i]!r}")


def held_out_pairs() -> frozenset[tuple[str, str]]:
    """(colour, category) pairs that never occur in training splits, one per category.

    The colour for category number c is colour number (5c + 3) mod 11: each colour is held
    out for one or two categories, and every colour and every category still occurs in
    training with other partners — the set-up of §7's compositionality experiment.
    """
    n = len(COLOUR_NAMES)
    return frozenset((COLOUR_NAMES[(5 * c + 3) % n], name) for c, name in enumerate(CATEGORY_NAMES))
