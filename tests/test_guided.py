"""Guided captions (captioner.captioning.guided): from confident tags to search constraints."""

from captioner.captioning.guided import constraints_for, word_forms
from captioner.data.text import Vocabulary

VOCAB = Vocabulary.build(["a dog and two dogs", "a cat", "the puppies play", "a puppy",
                          "a motorcycle and a scooter"], min_count=1)


def ids(*words):
    return frozenset(VOCAB.word_to_id[w] for w in words)


def test_a_word_and_its_plural_both_name_the_thing():
    assert word_forms("dog", VOCAB) == ids("dog", "dogs")
    assert word_forms("puppy", VOCAB) == ids("puppy", "puppies")
    assert word_forms("zebra", VOCAB) == frozenset()


def test_only_confident_known_tags_become_constraints_the_surest_first():
    tags = [{"tag": "cat", "score": 0.55}, {"tag": "zebra", "score": 0.9}, {"tag": "dog", "score": 0.7},
            {"tag": "puppy", "score": 0.6}]
    # zebra is unknown to the vocabulary; at most two constraints, by score
    assert constraints_for(tags, VOCAB, threshold=0.5) == (ids("dog", "dogs"), ids("puppy", "puppies"))
    assert constraints_for(tags, VOCAB, threshold=0.65) == (ids("dog", "dogs"),)
    assert constraints_for(tags, VOCAB, threshold=0.95) == ()
    assert constraints_for(tags, VOCAB, threshold=0.5, most=1) == (ids("dog", "dogs"),)


def test_words_one_class_lists_together_are_one_constraint():
    # the moped class lists both words: a caption with either names it
    tags = [{"tag": "motorcycle", "score": 0.8}, {"tag": "scooter", "score": 0.8},
            {"tag": "cat", "score": 0.6}, {"tag": "dog", "score": 0.55}]
    assert constraints_for(tags, VOCAB, threshold=0.5) == (ids("motorcycle", "scooter"), ids("cat"))


def test_a_card_threshold_of_zero_is_kept_not_replaced_by_the_default():
    from captioner.captioning.captioner import Captioner

    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "cat"])
    card = {"decoding": {"guided": True, "guide_threshold": 0.0, "hold_threshold": 0.0}}
    guide = Captioner(None, vocab, card).guidance()
    assert guide == {"guided": True, "guide_threshold": 0.0, "hold_threshold": 0.0}
    assert Captioner(None, vocab, {}).guidance()["hold_threshold"] is None  # nothing held back
