"""Words that are not tags: sizes, colours, postures, clothing and place-holders.

A tag says what a photo or clip shows: people, animals, things, places, actions. The
shipped lexicon (``tag_lexicon.tsv``) puts each word the taggers can name in one category
by a WordNet rule (``recipes/tag_lexicon.py`` derives it and says the rule): content,
clothing, descriptive (sizes, colours), posture (standing, sitting) or place-holder (air,
area, group, front). A word the lexicon does not hold is read by its part of speech alone:
one that can be an adjective is descriptive.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from captioner.errors import CaptionerError

LEXICON = Path(__file__).resolve().parent / "tag_lexicon.tsv"
CATEGORIES = ("content", "clothing", "descriptive", "posture", "place-holder")


@lru_cache(maxsize=1)
def _lexicon() -> dict[str, str]:
    try:
        lines = LEXICON.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CaptionerError(f"{LEXICON}: cannot read the tag lexicon ({exc}); reinstall captioner") from None
    table = dict(line.split("\t") for line in lines[1:] if line)
    if lines[:1] != ["word\tcategory"] or not set(table.values()) <= set(CATEGORIES):
        raise CaptionerError(f"{LEXICON}: not a tag lexicon; reinstall captioner")
    return table


def word_category(word: str) -> str:
    """The word's category (one of CATEGORIES)."""
    found = _lexicon().get(word)
    if found:
        return found
    from lemminflect import getAllLemmas  # a dependency of captioner.data.words too

    return "descriptive" if "ADJ" in getAllLemmas(word) else "content"


def is_filler(word: str) -> bool:
    """Whether a word is no tag: anything but content."""
    return word_category(word) != "content"
