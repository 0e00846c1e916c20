"""The hallucination rates (CHAIR) on a hand-made corpus whose answers are counted by hand."""

import pytest

from captioner.data.objects import caption_objects
from captioner.evaluation.hallucination import hallucination


def test_synonyms_plurals_and_phrases():
    assert caption_objects("two puppies and a kitten on a sofa") == {"dog", "cat", "couch"}
    assert caption_objects("men riding motorbikes past a bus") == {"person", "motorcycle", "bus"}
    # A longer name wins: neither a dog nor a bear is named here.
    assert caption_objects("a hot dog next to a teddy bear") == {"hot dog", "teddy bear"}
    assert caption_objects("a green field under a blue sky") == set()


def test_rates_on_a_hand_made_corpus():
    refs = {
        "plane": ["an airplane parked on the runway", "a jet at the airport"],
        "kitchen": ["a stove and a microwave in a kitchen", "a small kitchen with an oven"],
        "boys": ["two boys playing soccer", "children kick a ball on grass"],
        "sky": ["clouds over the hills", "a cloudy sky"],
    }
    hyps = {
        "plane": "a black dog is jumping in the air",           # invents dog; names no reference object
        "kitchen": "a white dog is standing next to a stove",   # invents dog; names the oven
        "boys": "a boy kicks a ball",                           # all true
        "sky": "a man stands on a hill",                        # invents a person
    }
    scores = hallucination(hyps, refs)
    assert scores["CHAIR-s"] == pytest.approx(100 * 3 / 4)
    # Mentions: {dog}, {dog, oven}, {person, sports ball}, {person}: 6, of which 3 invented.
    assert scores["CHAIR-i"] == pytest.approx(100 * 3 / 6)
    assert scores["invented dog"] == pytest.approx(100 * 2 / 4)
    # Three images have objects in their references; the kitchen and the boys are named.
    assert scores["named"] == pytest.approx(100 * 2 / 3)


def test_a_true_dog_is_not_invented():
    scores = hallucination({"a": "a puppy runs"}, {"a": ["a dog running on grass"]})
    assert scores == {"CHAIR-s": 0.0, "CHAIR-i": 0.0, "invented dog": 0.0, "named": 100.0}
