"""Caption text: normalisation, tokens and the word vocabulary.

The punctuation rule of `normalize`, the single place where caption text is cleaned:

1. Unicode NFKC folding (full-width letters become plain ones), then lower case.
2. A curly apostrophe (U+2019) counts as a straight one.
3. Letters and digits (any script) are kept. An apostrophe is kept only inside a word,
   with a letter or digit on both sides ("dog's", "don't", "rock'n'roll").
4. Every other character (punctuation, hyphens, underscores, quotes, symbols) becomes a
   space, so "t-shirt" gives "t shirt" and "'hello'" gives "hello".
5. Runs of whitespace collapse to one space; the ends are stripped.

Tokens are the words of the normalised text split on spaces: no NLTK data is needed.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from captioner.errors import FormatError
from captioner.files import atomic_write_text, read_json

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)

# [^\W_] is "a letter or a digit" in any script (\w minus the underscore).
_NOT_WORD_CHAR = re.compile(r"[^\w']|_")
_LONE_APOSTROPHE = re.compile(r"(?<![^\W_])'|'(?![^\W_])")
_SPACES = re.compile(r"\s+")


def normalize(caption: str) -> str:
    """Return the caption lower-cased, with the punctuation rule of this module applied."""
    text = unicodedata.normalize("NFKC", caption).lower().replace("\u2019", "'")
    text = _NOT_WORD_CHAR.sub(" ", text)
    text = _LONE_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def tokenize(caption: str) -> list[str]:
    """Split a caption into normalised word tokens."""
    return normalize(caption).split()


class Vocabulary:
    """Word <-> id mapping with the special tokens <pad>=0, <start>=1, <end>=2, <unk>=3."""

    PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3

    def __init__(self, words: Sequence[str], min_count: int = 1, max_size: int | None = None):
        """Wrap a word list whose first four entries are the special tokens."""
        words = list(words)
        if tuple(words[:4]) != SPECIALS:
            raise ValueError(f"the first four words must be {list(SPECIALS)}, got {words[:4]}")
        if len(set(words)) != len(words):
            raise ValueError("the word list has duplicates")
        self._words = tuple(words)
        self._ids = MappingProxyType({word: i for i, word in enumerate(words)})
        self.min_count = min_count
        self.max_size = max_size

    @classmethod
    def build(
        cls,
        captions: Iterable[str | Sequence[str]],
        min_count: int = 5,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Count words over captions (strings are tokenized, lists are taken as tokens)."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size counts the 4 special tokens, so must be >= 4: {max_size}")
        counts: Counter[str] = Counter()
        for caption in captions:
            counts.update(tokenize(caption) if isinstance(caption, str) else caption)
        for special in SPECIALS:  # a caption cannot add a second copy of a special token
            counts.pop(special, None)
        # Count descending, then the word itself: the same captions always give the same ids.
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *ranked], min_count=min_count, max_size=max_size)

    @property
    def word_to_id(self) -> Mapping[str, int]:
        """Read-only mapping from word to id (unknown words are not in it)."""
        return self._ids

    @property
    def id_to_word(self) -> tuple[str, ...]:
        """All words, indexed by id."""
        return self._words

    def __len__(self) -> int:
        """Number of ids, special tokens included."""
        return len(self._words)

    def __eq__(self, other: object) -> bool:
        """Two vocabularies are equal when they map the same words to the same ids."""
        return isinstance(other, Vocabulary) and self._words == other._words

    def __hash__(self) -> int:
        return hash(self._words)

    def __repr__(self) -> str:
        return (
            f"Vocabulary({len(self)} words, min_count={self.min_count}, max_size={self.max_size})"
        )

    def encode(self, caption: str | Sequence[str], add_start_end: bool = True) -> list[int]:
        """Map a caption (a string is tokenized first) to ids; unknown words get <unk>."""
        tokens = tokenize(caption) if isinstance(caption, str) else caption
        ids = [self._ids.get(token, self.UNK_ID) for token in tokens]
        return [self.START_ID, *ids, self.END_ID] if add_start_end else ids

    def decode(self, ids: Iterable[int]) -> str:
        """Turn ids back into text: stop at <end>, skip <pad> and <start>."""
        words = []
        for raw in ids:
            i = int(raw)  # numpy and tensor scalars index like ints after this
            if i == self.END_ID:
                break
            if i in (self.PAD_ID, self.START_ID):
                continue
            if not 0 <= i < len(self._words):
                raise ValueError(f"id {i} is outside this vocabulary of {len(self)} words")
            words.append(self._words[i])
        return " ".join(words)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the vocabulary as JSON (atomically: temp file, then rename)."""
        path = Path(path)
        data = {"words": list(self._words), "min_count": self.min_count, "max_size": self.max_size}
        atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by `save`; a bad file raises FormatError."""
        path = Path(path)
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("words"), list):
            raise FormatError(f'{path}: expected a JSON object with a "words" list')
        words, min_count, max_size = data["words"], data.get("min_count", 1), data.get("max_size")
        if not all(isinstance(w, str) for w in words):
            raise FormatError(f'{path}: every entry of "words" must be a string')
        if not isinstance(min_count, int) or not (max_size is None or isinstance(max_size, int)):
            raise FormatError(f'{path}: "min_count" must be an integer, "max_size" one or null')
        try:
            return cls(words, min_count=min_count, max_size=max_size)
        except ValueError as err:
            raise FormatError(f"{path}: {err}") from None
