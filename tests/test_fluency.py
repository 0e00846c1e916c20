"""The unseen-trigram share on a hand-made training text whose answers are counted by hand."""

import pytest

from captioner.evaluation.fluency import TrainingText, trigrams

TEXT = TrainingText(["A black and white dog is jumping on a bed.",
                     "A group of people are standing in front of a store",
                     "two dogs play in the snow"])


def test_trigrams_count_the_start_and_the_end():
    assert trigrams("A dog.") == {("<s>", "a", "dog"), ("a", "dog", "</s>")}


def test_what_people_wrote_is_seen_whatever_its_case_and_punctuation():
    assert TEXT.unseen("a black and white dog is jumping on a bed") == set()
    assert TEXT.unseen("A GROUP of people are standing in front of a store!") == set()


def test_a_caption_that_lost_its_noun_or_loops_is_caught():
    assert TEXT.unseen("a black and white is jumping on a bed") == {("and", "white", "is"),
                                                                   ("white", "is", "jumping")}
    assert ("of", "a", "group") in TEXT.unseen("a group of a group of people")
    # Each trigram was written, but not to end a caption.
    assert TEXT.unseen("two dogs play in the") == {("in", "the", "</s>")}


def test_the_share_counts_captions_not_trigrams():
    captions = ["two dogs play in the snow",                      # seen
                "a black and white is jumping on a bed",          # two unseen trigrams
                "a group of a group of people",                   # several
                "a black and white dog is jumping on a bed"]      # seen
    assert TEXT.unseen_share(captions) == pytest.approx(100 * 2 / 4)
    assert TEXT.unseen_share([]) == 0.0
