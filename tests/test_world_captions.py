"""Captions ↔ specs: exact round trips, the vocabulary in every error, held-out combinations."""

import pytest

from gsbook.world import (CATEGORIES, CATEGORY_NAMES, COLOUR_NAMES, RELATIONS, ObjectSpec, PromptError,
                          SceneSpec, caption, held_out_pairs, make_asset, parse, vocabulary)


def all_object_specs():
    for name in CATEGORY_NAMES:
        for colour in COLOUR_NAMES:
            yield ObjectSpec(name, colour)
            if CATEGORIES[name].part:
                for part in COLOUR_NAMES:
                    yield ObjectSpec(name, colour, part)
        yield ObjectSpec(name)


def test_caption_parse_round_trip_for_every_category_colour_and_part_colour():
    count = 0
    for spec in all_object_specs():
        text = caption(spec)
        assert parse(text) == spec, text
        assert caption(parse(text)) == text
        count += 1
    assert count > 16 * 11


def test_captions_read_like_english():
    assert caption(ObjectSpec("mushroom", "red", "white")) == "a red mushroom with a white stem"
    assert caption(ObjectSpec("ball", "orange")) == "an orange ball"
    assert caption(ObjectSpec("table", "brown", "black")) == "a brown table with black legs"
    assert caption(ObjectSpec("house", "white", "orange")) == "a white house with an orange roof"
    assert caption(ObjectSpec("ring")) == "a ring"


def test_asset_caption_round_trips_through_make_asset():
    for i, name in enumerate(CATEGORY_NAMES):
        spec = ObjectSpec(name, COLOUR_NAMES[i % len(COLOUR_NAMES)])
        asset = make_asset(spec, seed=i)
        assert parse(asset.caption) == asset.spec
        assert asset.spec.colour == spec.colour


@pytest.mark.parametrize("relation", RELATIONS)
def test_two_object_prompts_round_trip(relation):
    spec = SceneSpec(ObjectSpec("ball", "red"), relation, ObjectSpec("mushroom", "blue", "yellow"))
    text = caption(spec)
    assert text == f"a red ball {relation} a blue mushroom with a yellow stem"
    assert parse(text) == spec


def test_parser_is_forgiving_about_case_punctuation_and_synonyms():
    assert parse("A Gray Box.") == ObjectSpec("box", "grey")
    assert parse("the red ball, on an orange can!") == SceneSpec(ObjectSpec("ball", "red"), "on",
                                                                ObjectSpec("can", "orange"))


def test_unknown_words_fail_with_the_vocabulary_in_the_message():
    with pytest.raises(PromptError) as error:
        parse("a red giraffe")
    message = str(error.value)
    assert "'giraffe'" in message
    for words in vocabulary().values():
        for word in words:
            assert word in message
    with pytest.raises(ValueError, match="unknown words 'shiny', 'teapot'"):
        parse("a shiny teapot")


@pytest.mark.parametrize("prompt, why", [
    ("red", "expected a category"),
    ("a red ball with a white stem", "a ball has no stem"),
    ("a red mushroom with white legs", "its coloured part is the stem"),
    ("a red ball blue", "expected the end or a relation"),
    ("a ball on", "expected a category"),
    ("", "empty"),
])
def test_known_words_in_a_wrong_order_fail_clearly(prompt, why):
    with pytest.raises(PromptError, match=why):
        parse(prompt)


def test_held_out_pairs_leave_every_colour_and_category_in_training():
    held = held_out_pairs()
    assert len(held) == len(CATEGORY_NAMES)
    assert {category for _, category in held} == set(CATEGORY_NAMES)
    for colour in COLOUR_NAMES:
        assert any((colour, c) not in held for c in CATEGORY_NAMES)
    assert held == held_out_pairs()
