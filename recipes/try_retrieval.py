"""What a retrieval fallback would do to the everyday-photos scores: measured, not shipped.

    python recipes/try_retrieval.py [BUNDLE] [--data-root DATA]

Where the default caption names an object (captioner.data.objects) whose best tag evidence is
under GATE, the tags say it invents something; the fallback then takes a sentence a person
wrote in the training text (the Flickr8k captions of every photo but the dev ones, and the COCO
caption text). The calibrated tags are the chances that a reference names each word, so a
sentence's log-likelihood under them grows by logit(p) for every taggable word it names
(words never tagged count as FLOOR). The POOL likeliest sentences are reranked by LAMBDA x
that + the decoder's mean log-probability of the sentence for the photo (a human sentence
that the tags and the captioner both accept). Prints each setting's dev-select scores, then
the dev-report scores of the one inventing least on coco_dev dev-select (CHAIR-s; a tie to the
best mean CIDEr-D of the two data sets). Writes nothing.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from scipy import sparse

from card_choice import ROOT, SETS

from captioner.captioning.captioner import PRETRAINED, Captioner
from captioner.captioning.dataset import load_split, read_records
from captioner.data.caption_sets import dev_when_unsplit, in_splits
from captioner.data.objects import OBJECT_SYNONYMS, caption_objects
from captioner.data.text import Vocabulary, tokenize
from captioner.encoders.features import extract_features
from captioner.evaluation.captions import evaluate_captions
from captioner.evaluation.hallucination import hallucination

GATES = (0.3, 0.5)
LAMBDAS = (0.3, 1.0, 3.0)
POOL = 30
FLOOR = 0.02  # the tagger's own floor: a word it did not list scores this
KEYS = ("BLEU-4", "CIDEr-D", "CHAIR-s", "invented dog")


class Photos:
    """One half of a data set as `caption` sees it: features, tags and default captions."""

    def __init__(self, captioner: Captioner, data_root: Path, name: str, split: str):
        data, images = (data_root / part for part in SETS[name])
        records = dev_when_unsplit(read_records(data))
        found, _ = load_split(
            records, images, captioner.encoder, (split,), False, captioner.feature_kind
        )
        tagged = extract_features(
            found.paths, captioner.encoder, captioner.tag_kinds(), progress=False
        )
        tagged.features["spatial"] = np.asarray(found.features)
        self.names, self.features, self.references = (
            found.names,
            np.asarray(found.features),
            found.captions,
        )
        self.tags = captioner.tags_of(tagged.features)
        guide = captioner.guidance(None, None, None)
        self.captions = [
            c.text for c in captioner.caption_tagged(found.features, self.tags, None, **guide)
        ]


class Sentences:
    """The training text's sentences the vocabulary can write, and the taggable words each names."""

    def __init__(self, captioner: Captioner, data_root: Path):
        flickr = read_records(data_root / SETS["flickr"][0])
        coco = read_records(data_root / "coco_captions" / "captions_text.json")
        text = [r.caption for r in flickr if in_splits(r, ("train", None))] + [
            r.caption for r in coco
        ]
        known = captioner.vocab.word_to_id
        self.words = sorted(
            {
                tuple(t)
                for t in map(tokenize, text)
                if 4 <= len(t) <= 18 and all(w in known for w in t)
            }
        )
        objects = {n for names in OBJECT_SYNONYMS.values() for n in names if " " not in n}
        self.taggable = sorted(set(captioner.tagger.tables()["words"]) | objects)
        self.at = {w: i for i, w in enumerate(self.taggable)}
        rows, columns = [], []
        for row, sentence in enumerate(self.words):
            for column in sorted({self.named(w) for w in sentence} - {None}):
                rows.append(row)
                columns.append(column)
        self.naming = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, columns)), shape=(len(self.words), len(self.taggable))
        )

    def named(self, word: str) -> int | None:
        """The taggable word (its column) that ``word`` or its singular is."""
        for form in (
            word,
            word[:-1] if word.endswith("s") else "",
            word[:-2] if word.endswith("es") else "",
        ):
            if form in self.at:
                return self.at[form]
        return None

    def likeliest(self, tags: list[dict], count: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``count`` sentences likeliest under one photo's tags, and their log-likelihoods."""
        p = np.full(len(self.taggable), FLOOR)
        for tag in tags:
            if tag["tag"] in self.at:
                p[self.at[tag["tag"]]] = max(p[self.at[tag["tag"]]], tag["score"])
        likelihood = self.naming @ np.log(p / (1 - p))
        top = np.argpartition(-likelihood, count)[:count]
        return top, likelihood[top]


def mean_log_probability(captioner: Captioner, features: np.ndarray, sentences: list) -> np.ndarray:
    """The decoder's mean log-probability per word (``<end>`` included) of each sentence, for
    one photo's ``features`` (teacher forcing on the numpy step)."""
    step = captioner.step()
    ids = [captioner.vocab.encode(list(s)) for s in sentences]  # <start> ... <end>
    length = max(map(len, ids))
    tokens = np.zeros((len(ids), length), dtype=int)
    for row, sentence in enumerate(ids):
        tokens[row, : len(sentence)] = sentence
    states = step.initial_state(np.repeat(features[None], len(ids), axis=0))
    total = np.zeros(len(ids))
    for t in range(length - 1):
        logp, states = step.step(tokens[:, t], states)
        total += np.where(
            tokens[:, t + 1] != Vocabulary.PAD_ID, logp[np.arange(len(ids)), tokens[:, t + 1]], 0.0
        )
    return total / np.array([len(s) - 1 for s in ids])


def fallback(
    captioner: Captioner, photos: Photos, sentences: Sentences, gate: float, weight: float
) -> list[str]:
    """Each photo's caption: the default one, or where it names an object the tags put under
    ``gate``, the retrieved sentence that scores best."""
    captions = []
    for features, tags, caption in zip(photos.features, photos.tags, photos.captions):
        evidence: dict[str, float] = {}
        for tag in tags:
            for obj in caption_objects(tag["tag"]):
                evidence[obj] = max(evidence.get(obj, 0.0), tag["score"])
        if all(evidence.get(obj, 0.0) >= gate for obj in caption_objects(caption)):
            captions.append(caption)
            continue
        top, likelihood = sentences.likeliest(tags, POOL)
        pool = [sentences.words[i] for i in top]
        total = weight * likelihood + mean_log_probability(captioner, features, pool)
        captions.append(" ".join(pool[int(np.argmax(total))]))
    return captions


def scores(photos: Photos, captions: list[str]) -> dict:
    hypotheses, references = (
        dict(zip(photos.names, captions)),
        dict(zip(photos.names, photos.references)),
    )
    found = evaluate_captions(hypotheses, references) | hallucination(hypotheses, references)
    changed = sum(a != b for a, b in zip(captions, photos.captions))
    return {k: round(found[k], 2) for k in KEYS} | {"changed": changed, "images": len(captions)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "bundle", type=Path, nargs="?", default=PRETRAINED, help="the captioner bundle"
    )
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    captioner = Captioner.load(args.bundle)
    sentences = Sentences(captioner, args.data_root)
    print(f"{len(sentences.words)} training sentences the vocabulary can write", flush=True)
    halves = {
        (name, split): Photos(captioner, args.data_root, name, split)
        for name, split in itertools.product(SETS, ("dev-select", "dev-report"))
    }
    for name in SETS:
        print(
            "default",
            name,
            "dev-select",
            scores(halves[name, "dev-select"], halves[name, "dev-select"].captions),
        )
    rank = {}
    for gate, weight in itertools.product(GATES, LAMBDAS):
        found = {
            name: scores(
                halves[name, "dev-select"],
                fallback(captioner, halves[name, "dev-select"], sentences, gate, weight),
            )
            for name in SETS
        }
        rank[gate, weight] = (
            found["coco"]["CHAIR-s"],
            -np.mean([found[n]["CIDEr-D"] for n in SETS]),
        )
        print(f"gate {gate}, lambda {weight}, dev-select:", found, flush=True)
    gate, weight = min(rank, key=rank.get)
    for name in SETS:
        photos = halves[name, "dev-report"]
        print("default", name, "dev-report", scores(photos, photos.captions))
        print(
            f"gate {gate}, lambda {weight}",
            name,
            "dev-report",
            scores(photos, fallback(captioner, photos, sentences, gate, weight)),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
