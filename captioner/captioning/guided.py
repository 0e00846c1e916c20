"""Guided captions, both ways: what the tags are sure of must be named, and the objects they
give no evidence for are held back.

A photo's tags (merged and calibrated, see captioner.tagging) that reach ``threshold`` ask beam
search for a caption holding
the word (Anderson et al. 2017); the word or its plural will do, since "two dogs" names dogs
as well as "a dog". Two confident words that one ImageNet class lists together (a moped is
"motorcycle" and "scooter") are one constraint that either satisfies, not two. At most two
constraints: each doubles the beams the search keeps. A tag the vocabulary lacks cannot be
asked for and is left out.

Held back: every word that names a COCO object or a person (captioner.data.objects) whose best
tag evidence stays below ``hold_threshold`` loses ``HOLD_PENALTY`` from its log-probability at
every step, so the caption stops inventing dogs and people the photo does not show; a word
the image and the text both push hard for can still come through.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from captioner.data.objects import caption_objects
from captioner.data.text import Vocabulary
from captioner.data.words import caption_nouns
from captioner.encoders.basic_words import basic_words

DEFAULT_THRESHOLD = 0.7  # summed probability a tag needs to guide the caption
# A model's card turns guidance on when measured to help it (the bundled one's does, see the
# README); a model without that measurement captions freely unless asked.
GUIDED_BY_DEFAULT = False
MAX_CONSTRAINTS = 2
HOLD_PENALTY = 3.0  # log-probability taken from a held-back word at every step


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
    """Whether one ImageNet class lists ``word`` beside one of ``others`` (synonyms)."""
    classes = _classes_of()
    mine = classes.get(word, frozenset())
    return any(mine & classes.get(other, frozenset()) for other in others)


@lru_cache(maxsize=1)
def _classes_of() -> dict[str, frozenset[int]]:
    """Per basic word, the ImageNet classes that list it (looked up per tag of every photo)."""
    found: dict[str, set[int]] = {}
    for index, words in enumerate(basic_words()):
        for word in words:
            found.setdefault(word, set()).add(index)
    return {word: frozenset(indices) for word, indices in found.items()}


@lru_cache(maxsize=8)
def _object_words(vocab: Vocabulary) -> dict[str, np.ndarray]:
    """Per object, the ids of the vocabulary's words that name it on their own (and only as a
    noun: "orange" is a colour as often as a fruit)."""
    ids: dict[str, list[int]] = {}
    for i, word in enumerate(vocab.id_to_word):
        for obj in caption_objects([word]) if caption_nouns(word) else ():
            ids.setdefault(obj, []).append(i)
    return {obj: np.array(found) for obj, found in ids.items()}


def held_back(tags: list[dict], vocab: Vocabulary, threshold: float) -> np.ndarray:
    """Ids of the words naming objects whose best tag score is below ``threshold``."""
    evidence: dict[str, float] = {}
    for tag in tags:
        for obj in caption_objects(tag["tag"]):
            evidence[obj] = max(evidence.get(obj, 0.0), tag["score"])
    held = [ids for obj, ids in _object_words(vocab).items() if evidence.get(obj, 0.0) < threshold]
    return np.concatenate(held) if held else np.zeros(0, dtype=int)


def penalty_rows(held: list[np.ndarray], size: int, penalty: float = HOLD_PENALTY) -> np.ndarray:
    """(images, vocabulary) log-probability penalties from each image's held-back ids."""
    rows = np.zeros((len(held), size), dtype=np.float32)
    for row, ids in zip(rows, held):
        row[ids] = -penalty
    return rows


def guidance_tables(words: Sequence[str], vocab: Vocabulary) -> dict[str, np.ndarray]:
    """The lookups ``constraints_for`` and ``held_back`` make, as 0/1 arrays over the tag
    ``words``, for a graph that guides without Python (captioner.serving): ``forms`` (T, V) the
    ids each tag may be written as; ``together`` (T, T) the tags one ImageNet class lists
    together; ``evidence`` (T, O) the objects a tag is evidence of; ``naming`` (O, V) the ids
    naming each object on its own."""
    size = len(vocab)
    forms = np.zeros((len(words), size), dtype=np.float32)
    classes = np.zeros((len(words), len(basic_words())), dtype=np.float32)
    for t, word in enumerate(words):
        forms[t, sorted(word_forms(word, vocab))] = 1.0
        classes[t, sorted(_classes_of().get(word, ()))] = 1.0
    named = _object_words(vocab)
    objects = sorted(named)
    evidence = np.zeros((len(words), len(objects)), dtype=np.float32)
    for t, word in enumerate(words):
        for obj in caption_objects(word):
            if obj in named:
                evidence[t, objects.index(obj)] = 1.0
    naming = np.zeros((len(objects), size), dtype=np.float32)
    for o, obj in enumerate(objects):
        naming[o, named[obj]] = 1.0
    return {"forms": forms, "together": (classes @ classes.T > 0).astype(np.float32),
            "evidence": evidence, "naming": naming}
