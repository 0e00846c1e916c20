"""Which words of a caption name things: nouns that are not stop words, as their lemma.

Part-of-speech knowledge comes from LemmInflect's English lexicon (it ships with the package,
nothing is downloaded): a word counts as a noun when the lexicon lists it as one and never as
an adjective, which drops what says nothing about the content ("little", "large", "young",
colours) along with verb forms ("standing", "wearing"). A word that can be a verb is read as
one right after a noun or a form of "be" ("a man rides", "people stand", "is swimming"), the
one place a caption's grammar tells the two apart. The stop words are scikit-learn's
English list (the Glasgow Information Retrieval Group's), which also takes out nouns of
place such as "front", "top" and "side".
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from captioner.data.text import tokenize
from captioner.errors import CaptionerError


@lru_cache(maxsize=1)
def _lexicon():
    try:
        from lemminflect import getAllLemmas

        stop_words = _stop_words()
    except (ImportError, OSError, KeyError) as exc:
        raise CaptionerError(f"caption nouns need lemminflect and scikit-learn ({exc}); "
                             "pip install lemminflect scikit-learn") from None
    return getAllLemmas, stop_words


def _stop_words() -> frozenset[str]:
    """scikit-learn's English stop words, read from the one file that holds them: importing
    scikit-learn itself takes most of a second, twice what captioning a photo does."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'sklearn'")
    path = Path(spec.submodule_search_locations[0]) / "feature_extraction" / "_stop_words.py"
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("_stop_words", path))
    module.__loader__.exec_module(module)  # a frozenset literal, nothing imported
    return module.ENGLISH_STOP_WORDS


BE = frozenset({"is", "are", "was", "were", "be", "being", "been"})
# "-ing" forms that say nothing a photo shows.
STOP_VERBS = frozenset({"being", "having", "getting", "going", "doing", "making", "taking",
                        "trying", "waiting", "wearing", "looking", "watching", "posing"})


@lru_cache(maxsize=20_000)
def _parts(word: str) -> tuple[str | None, bool]:
    """(noun lemma or None, whether the word can be a verb)."""
    lemmas, stop_words = _lexicon()
    forms = lemmas(word)
    noun = forms["NOUN"][0] if "NOUN" in forms and "ADJ" not in forms else None
    if word in stop_words or len(word) < 3:
        noun = None
    return noun, "VERB" in forms


def _read(caption: str):
    """Each word of a caption as (word, noun lemma or None, whether read as a verb)."""
    after_subject = False  # the previous word was a noun or a form of "be"
    for word in tokenize(caption):
        noun, verb = _parts(word)
        if noun and not (verb and after_subject):
            yield word, noun, False
            after_subject = True
        else:
            yield word, None, verb
            after_subject = word in BE


def caption_nouns(caption: str) -> list[str]:
    """The things a caption names, as noun lemmas, in order, without repeats."""
    return list(dict.fromkeys(noun for _, noun, _ in _read(caption) if noun))


def caption_concepts(caption: str) -> list[str]:
    """What a caption names and what is done in it: its nouns (as lemmas) and its verbs in
    "-ing" form as written ("running", "climbing"), in order, without repeats."""
    found = (noun or word for word, noun, verb in _read(caption)
             if noun or (verb and word.endswith("ing") and word not in STOP_VERBS))
    return list(dict.fromkeys(found))
