"""Plain caption words for the 1,000 ImageNet classes, and word tags from class probabilities."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np

from captioner.errors import EncoderError

TABLE = "basic_words.tsv"
N_CLASSES = 1000


@lru_cache(maxsize=1)
def basic_words() -> tuple[tuple[str, ...], ...]:
    """Per ImageNet class index, its one or two plain words (the first is the main one)."""
    lines = files("captioner.encoders").joinpath(TABLE).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["index", "class", "words"]:
        raise EncoderError(f"{TABLE}, line 1: expected the header index<TAB>class<TAB>words")
    table = []
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        words = tuple(parts[2].split("|")) if len(parts) == 3 else ()
        if (
            parts[0] != str(len(table))
            or not 1 <= len(words) <= 2
            or not all(w.isalpha() and w.islower() for w in words)
        ):
            raise EncoderError(f"{TABLE}, line {number}: expected '{len(table)}<TAB>class<TAB>"
                               f"word[|word]' with lower-case words, got {line!r}")
        table.append(words)
    if len(table) != N_CLASSES:
        raise EncoderError(f"{TABLE}: {len(table)} classes, expected {N_CLASSES}")
    return tuple(table)


@lru_cache(maxsize=1)
def word_matrix() -> tuple[tuple[str, ...], np.ndarray]:
    """The vocabulary in sorted order and the (1000, W) 0/1 matrix of which class lists which word."""
    table = basic_words()
    vocabulary = tuple(sorted({w for words in table for w in words}))
    column = {w: j for j, w in enumerate(vocabulary)}
    matrix = np.zeros((N_CLASSES, len(vocabulary)), dtype=np.float64)
    for i, words in enumerate(table):
        matrix[i, [column[w] for w in words]] = 1.0
    return vocabulary, matrix


def basic_tags(probabilities: np.ndarray, k: int = 5) -> list[list[dict]]:
    """For each row of (N, 1000) class probabilities, its k best words as {"tag", "score"}.

    A word scores the sum over every class that lists it, so the 118 dog breeds pool into "dog"
    even when no single breed is sure; best score first, ties by word.
    """
    probabilities = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    if probabilities.shape[1] != N_CLASSES:
        raise ValueError(f"expected (N, {N_CLASSES}) class probabilities, got {probabilities.shape}")
    vocabulary, matrix = word_matrix()
    scores = np.round(probabilities @ matrix, 4)
    # Ranking the rounded scores with a stable sort over the alphabetical columns makes ties go
    # to the earlier word, so equal-looking scores always come out in the same order.
    order = np.argsort(-scores, axis=1, kind="stable")[:, :max(0, k)]
    return [
        [{"tag": vocabulary[j], "score": float(row[j])} for j in best]
        for row, best in zip(scores, order)
    ]
