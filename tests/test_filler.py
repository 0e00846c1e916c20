"""Words that are no tags (captioner.data.filler): the shipped lexicon's WordNet rule."""

import pytest

from captioner.data.filler import CATEGORIES, LEXICON, is_filler, word_category
from captioner.encoders.basic_words import basic_words
from captioner.tagging.concepts import shipped_tagger
from captioner.tagging.merge import OBJECT_WORDS
from captioner.tagging.objects import COCO_LABELS

FILLER = {
    "clothing": ["shirt", "jacket", "hat", "jeans", "dress", "coat", "pant", "short"],
    "descriptive": ["red", "white", "black", "blue", "large", "little", "small", "big"],
    "posture": ["standing", "sitting", "lying", "kneeling", "squatting"],
    "place-holder": ["air", "area", "group", "front", "top", "side", "edge", "background", "distance"],
}
CONTENT = ["man", "woman", "child", "people", "dog", "cat", "horse", "piano", "water", "grass", "snow",
           "beach", "street", "mountain", "running", "jumping", "climbing", "riding", "swimming",
           "dancing", "playing", "bicycle", "car", "pizza", "giraffe", "turtle", "snake", "helmet"]


@pytest.mark.parametrize("category", sorted(FILLER))
def test_sizes_colours_postures_clothing_and_place_holders_are_filler(category):
    assert {w: word_category(w) for w in FILLER[category]} == dict.fromkeys(FILLER[category], category)
    assert all(is_filler(w) for w in FILLER[category])


def test_people_animals_things_places_and_actions_are_content():
    assert [w for w in CONTENT if is_filler(w)] == []


def test_the_lexicon_holds_every_word_a_tagger_can_name():
    table = dict(line.split("\t") for line in LEXICON.read_text(encoding="utf-8").splitlines()[1:])
    words = set(shipped_tagger().words) | {w for pair in basic_words() for w in pair}
    words |= {OBJECT_WORDS.get(label, label) for label in COCO_LABELS}
    assert sorted(words - set(table)) == []
    assert set(table.values()) == set(CATEGORIES)


def test_a_word_outside_the_lexicon_is_read_by_its_part_of_speech():
    assert word_category("zzyzzogeton") == "content"
    assert word_category("gorgeous") == "descriptive"  # LemmInflect knows it as an adjective only
