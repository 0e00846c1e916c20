"""Tests for captioner.data.text: the punctuation rule, tokens and the vocabulary."""

import json

import numpy as np
import pytest

from captioner.data.text import SPECIALS, Vocabulary, normalize, tokenize
from captioner.errors import FormatError


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        (
            "A child in a pink dress is climbing up a set of stairs .",
            "a child in a pink dress is climbing up a set of stairs",
        ),
        ("  Two   DOGS,\tplaying!\n", "two dogs playing"),
        ("The dog's ball", "the dog's ball"),
        ("don't stop rock'n'roll", "don't stop rock'n'roll"),
        ("'quoted' dogs' toys", "quoted dogs toys"),
        ("a man in a t-shirt", "a man in a t shirt"),
        ("snake_case and 3 dogs", "snake case and 3 dogs"),
        ("the dog\u2019s ball", "the dog's ball"),
        ("Café NAÏVE", "café naïve"),
        ("\uff21\uff22\uff23 wide", "abc wide"),
        ("?!...", ""),
        ("", ""),
    ],
)
def test_normalize_applies_the_punctuation_rule(caption: str, expected: str) -> None:
    assert normalize(caption) == expected


def test_tokenize_splits_the_normalized_caption() -> None:
    assert tokenize("A dog, a cat; and the dog's toy.") == [
        "a",
        "dog",
        "a",
        "cat",
        "and",
        "the",
        "dog's",
        "toy",
    ]
    assert tokenize("  ") == []


def _vocab() -> Vocabulary:
    captions = ["a dog runs", "a dog sits", "a cat runs", ["a", "bird"], "zebra"]
    return Vocabulary.build(captions, min_count=1)


def test_build_orders_by_count_then_word() -> None:
    vocab = _vocab()
    # a:4, dog:2, runs:2, then the words seen once in alphabetical order.
    assert vocab.id_to_word == (*SPECIALS, "a", "dog", "runs", "bird", "cat", "sits", "zebra")
    assert vocab.word_to_id["<pad>"] == 0 and vocab.word_to_id["<unk>"] == 3
    assert len(vocab) == 11


def test_build_is_independent_of_caption_order() -> None:
    captions = ["b a", "c b a", "d c", "a"]
    assert Vocabulary.build(captions, min_count=1) == Vocabulary.build(captions[::-1], min_count=1)


def test_build_min_count_and_max_size() -> None:
    captions = ["a dog runs", "a dog sits", "a cat runs"]
    assert Vocabulary.build(captions, min_count=2).id_to_word[4:] == ("a", "dog", "runs")
    assert Vocabulary.build(captions, min_count=1, max_size=6).id_to_word[4:] == ("a", "dog")
    with pytest.raises(ValueError):
        Vocabulary.build(captions, max_size=3)
    with pytest.raises(ValueError):
        Vocabulary.build(captions, min_count=0)


def test_build_does_not_count_special_tokens() -> None:
    vocab = Vocabulary.build([["<unk>", "dog", "<pad>"]], min_count=1)
    assert vocab.id_to_word == (*SPECIALS, "dog")


def test_encode_and_decode() -> None:
    vocab = _vocab()
    ids = vocab.encode("A dog runs wildly!")
    assert ids == [1, 4, 5, 6, 3, 2]
    assert vocab.encode(["a", "cat"], add_start_end=False) == [4, 8]
    assert vocab.decode(ids) == "a dog runs <unk>"
    # stops at <end>, skips <pad>/<start>, takes numpy integers.
    assert vocab.decode(np.array([1, 4, 0, 8, 2, 5, 5])) == "a cat"
    assert vocab.decode([]) == ""
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([1, 99])


def test_save_load_round_trip(tmp_path) -> None:
    vocab = Vocabulary.build(["a dog", "a cat", "a dog"], min_count=2, max_size=10)
    path = vocab.save(tmp_path / "sub" / "vocab.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {"words": [*SPECIALS, "a", "dog"], "min_count": 2, "max_size": 10}
    loaded = Vocabulary.load(path)
    assert loaded == vocab and loaded.min_count == 2 and loaded.max_size == 10
    assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]  # no temp file left


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2]",
        '{"min_count": 1}',
        '{"words": ["<pad>", "<start>", "<end>", "<unk>", 5]}',
        '{"words": ["a", "<start>", "<end>", "<unk>"]}',
        '{"words": ["<pad>", "<start>", "<end>", "<unk>", "a", "a"]}',
        '{"words": ["<pad>", "<start>", "<end>", "<unk>"], "min_count": "two"}',
    ],
)
def test_load_malformed_file_raises_format_error_naming_it(tmp_path, content: str) -> None:
    path = tmp_path / "bad_vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FormatError, match="bad_vocab.json"):
        Vocabulary.load(path)


def test_load_missing_file(tmp_path) -> None:
    with pytest.raises(FormatError, match="not found"):
        Vocabulary.load(tmp_path / "absent.json")
