"""Guided captions: what the ImageNet classifier is sure of becomes a constraint of the search.

A photo's tags (basic-level words with summed class probabilities, see
captioner.encoders.basic_words) that reach ``threshold`` ask beam search for a caption holding
the word (Anderson et al. 2017); the word or its plural will do, since "two dogs" names dogs
as well as "a dog". Two confident words that one ImageNet class lists together (a moped is
"motorcycle" and "scooter") are one constraint that either satisfies, not two. At most two
constraints: each doubles the beams the search keeps. A tag the vocabulary lacks cannot be
asked for and is left out.
"""

from __future__ import annotations

from captioner.data.text import Vocabulary
from captioner.encoders.basic_words import basic_words

DEFAULT_THRESHOLD = 0.7  # summed probability a tag needs to guide the caption
# A model's card turns guidance on when measured to help it (the bundled one's does, see the
# README); a model without that measurement captions freely unless asked.
GUIDED_BY_DEFAULT = False
MAX_CONSTRAINTS = 2


def word_forms(word: str, vocab: Vocabulary) -> frozenset[int]:
    """Ids of the word and its plural, those the vocabulary knows."""
    forms = (word, word + "s", word + "es", word[:-1] + "ies" if word.endswith("y") else word)
    known = vocab.word_to_id
    return frozenset(known[f] for f in forms if f in known)


def constraints_for(tags: list[dict], vocab: Vocabulary, threshold: float = DEFAULT_THRESHOLD,
                    most: int = MAX_CONSTRAINTS) -> tuple[frozenset[int], ...]:
    """The word sets one photo's caption must hold, from its tags, the surest first."""
    chosen: list[tuple[set[str], frozenset[int]]] = []
    for tag in sorted(tags, key=lambda t: -t["score"]):
        if tag["score"] < threshold:
            break
        word, ids = tag["tag"], word_forms(tag["tag"], vocab)
        if not ids:
            continue
        partner = next((i for i, (words, _) in enumerate(chosen) if _listed_together(word, words)), None)
        if partner is not None:  # a synonym of a chosen word: either one will do
            words, known = chosen[partner]
            chosen[partner] = (words | {word}, known | ids)
        elif len(chosen) < most:
            chosen.append(({word}, ids))
    return tuple(ids for _, ids in chosen)


def _listed_together(word: str, others: set[str]) -> bool:
    return any(word in words and others & set(words) for words in basic_words())
