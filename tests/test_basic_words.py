"""The ImageNet-class to plain-word table and the word tags summed from class probabilities."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

from captioner.encoders import basic_words as bw
from captioner.encoders.basic_words import basic_tags, basic_words
from captioner.encoders.imagenet import class_names
from captioner.errors import EncoderError

# "orange" is left out on purpose: class 950 is the fruit, and that is the word for it.
COLOURS = {"red", "green", "blue", "yellow", "black", "white", "grey", "gray", "brown", "pink",
           "purple", "gold", "silver"}
STOP_WORDS = {"a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "with", "for", "is",
              "it", "can", "will", "be", "this", "that", "from", "by", "as", "its", "not"}

MAIN_WORD = {
    0: "fish", 1: "fish", 2: "shark", 7: "chicken", 8: "chicken", 22: "eagle", 99: "goose",
    145: "penguin", 291: "lion", 292: "tiger", 282: "cat", 294: "bear", 340: "zebra",
    383: "lemur", 386: "elephant", 381: "monkey", 404: "airplane", 444: "bicycle", 468: "taxi",
    487: "phone", 504: "mug", 511: "car", 620: "laptop", 654: "bus", 665: "motorcycle",
    670: "scooter", 671: "bicycle", 705: "train", 751: "car", 779: "bus", 817: "car",
    849: "teapot", 874: "bus", 934: "hotdog", 948: "apple", 954: "banana", 963: "pizza",
    967: "coffee", 968: "cup", 970: "mountain", 975: "lake", 978: "beach", 979: "valley",
    980: "volcano", 972: "cliff",
}


def table_rows() -> list[list[str]]:
    text = files("captioner.encoders").joinpath("basic_words.tsv").read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


def test_every_class_has_one_or_two_plain_words():
    table = basic_words()
    assert len(table) == 1000
    for i, words in enumerate(table):
        assert 1 <= len(words) <= 2 and len(set(words)) == len(words), (i, words)
        for word in words:
            assert word.isalpha() and word.islower(), (i, word)
            assert word not in COLOURS and word not in STOP_WORDS, (i, word)


def test_class_column_matches_the_imagenet_names():
    rows = table_rows()
    assert rows[0] == ["index", "class", "words"]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(1000)]
    assert tuple(r[1] for r in rows[1:]) == class_names()


def test_common_classes_get_the_word_a_caption_would_use():
    table = basic_words()
    assert {i: table[i][0] for i in MAIN_WORD} == MAIN_WORD
    assert all(table[i][0] == "dog" for i in range(151, 269))
    assert all(table[i][0] == "cat" for i in range(281, 286))
    assert table[620] == ("laptop", "computer") and table[968] == ("cup",)
    assert table[468] == ("taxi", "car")


def test_tags_sum_the_classes_that_share_a_word():
    probabilities = np.zeros((2, 1000))
    probabilities[0, [151, 207]] = 0.3  # two dog breeds
    probabilities[0, 281] = 0.35  # one cat
    probabilities[1, 967] = 1.0
    tags = basic_tags(probabilities, k=4)
    assert [len(row) for row in tags] == [4, 4]
    assert tags[0][:2] == [{"tag": "dog", "score": 0.6}, {"tag": "cat", "score": 0.35}]
    assert [t["tag"] for t in tags[0][2:]] == ["chihuahua", "retriever"]  # a tie goes by word
    assert tags[1][0] == {"tag": "coffee", "score": 1.0}
    assert basic_tags(probabilities[1], k=1) == [[{"tag": "coffee", "score": 1.0}]]


def test_a_malformed_table_names_the_file_and_line(monkeypatch, tmp_path):
    (tmp_path / "basic_words.tsv").write_text("index\tclass\twords\n0\ttench\tFish\n")
    monkeypatch.setattr(bw, "files", lambda package: tmp_path)
    bw.basic_words.cache_clear()
    try:
        with pytest.raises(EncoderError, match=r"basic_words\.tsv, line 2"):
            bw.basic_words()
    finally:
        bw.basic_words.cache_clear()
