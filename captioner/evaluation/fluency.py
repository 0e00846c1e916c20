"""How often captions leave the language they were learned from: the share of captions holding
a word trigram that no training caption holds (the caption's start and end count as words, so
"a black and white is" ending a clause is caught as well as "white is jumping").

Guidance pushes the decoder off its course: a held-back noun leaves its sentence without a
subject ("a black and white is jumping on a bed"), a penalty loops it ("a group of a group of
..."). BLEU, CIDEr-D and CHAIR barely see such captions; a trigram no person wrote in the
training text flags most of them (and some odd but grammatical ones: "two pizzas are playing
in the grass"). On a 0-100 scale, like the other caption scores.
"""

from __future__ import annotations

from collections.abc import Iterable

from captioner.data.text import tokenize

START, END = "<s>", "</s>"


def trigrams(caption: str) -> set[tuple[str, str, str]]:
    """The caption's word trigrams, its start and end included ("a dog" holds (<s>, a, dog) and
    (a, dog, </s>))."""
    words = [START, *tokenize(caption), END]
    return set(zip(words, words[1:], words[2:]))


class TrainingText:
    """The trigrams of a model's training captions, to ask which captions step outside them."""

    def __init__(self, captions: Iterable[str]):
        self.known: set[tuple[str, str, str]] = set()
        for caption in captions:
            self.known |= trigrams(caption)

    def unseen(self, caption: str) -> set[tuple[str, str, str]]:
        """The caption's trigrams that no training caption holds."""
        return trigrams(caption) - self.known

    def unseen_share(self, captions: Iterable[str]) -> float:
        """The share (0-100) of ``captions`` holding at least one unseen trigram; 0 for none."""
        flags = [bool(self.unseen(caption)) for caption in captions]
        return 100.0 * sum(flags) / len(flags) if flags else 0.0
