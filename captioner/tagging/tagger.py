"""A photo's tags from every source the encoder feeds: ImageNet words, concepts, objects."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from captioner.encoders.basic_words import basic_tags, word_matrix
from captioner.tagging.concepts import ConceptTagger, shipped_tagger
from captioner.tagging.merge import FLOOR, Calibration, candidates, merge

CALIBRATION = Path(__file__).resolve().parent / "calibration.json"
IMAGENET_WORDS = 20  # basic words looked at per photo (the rest score below FLOOR anyway)


class PhotoTagger:
    """Merged, calibrated tags from class probabilities, spatial maps and detections."""

    def __init__(self, calibration: Calibration, concepts: ConceptTagger | None = None):
        self.calibration, self.concepts = calibration, concepts

    def candidates(self, probabilities: np.ndarray | None, maps: np.ndarray | None = None,
                   objects: list[list[dict]] | None = None) -> list[list[tuple]]:
        """Per photo, every source's raw (word, source, score, count) above the floor."""
        n = len(probabilities if probabilities is not None else maps if maps is not None else objects)
        imagenet = basic_tags(probabilities, IMAGENET_WORDS) if probabilities is not None else [None] * n
        concept = [None] * n
        if self.concepts is not None and maps is not None:
            probs = self.concepts.probabilities(maps)
            concept = [{self.concepts.words[j]: float(row[j]) for j in np.flatnonzero(row >= FLOOR)}
                       for row in probs]
        objects = objects or [None] * n
        return [candidates(i, c, o) for i, c, o in zip(imagenet, concept, objects)]

    def tags(self, probabilities: np.ndarray | None, maps: np.ndarray | None = None,
             objects: list[list[dict]] | None = None, k: int | None = None) -> list[list[dict]]:
        """Per photo, its merged tags ``{"tag", "score", "source"[, "count"]}``, best first."""
        return [merge(found, self.calibration, k) for found in self.candidates(probabilities, maps, objects)]

    def tables(self) -> dict:
        """Its ImageNet words and concepts as arrays over one sorted word list, for a graph that
        tags without Python (captioner.serving): ``words`` (T); ``imagenet`` (1000, T), the
        classes that list each word, and ``basic`` (T), which words those are; ``kernel``
        (C, T), ``bias`` (T) and ``concept`` (T) for the concept detectors (None without)."""
        basic_vocabulary, classes = word_matrix()
        concepts = self.concepts.words if self.concepts is not None else []
        words = sorted(set(basic_vocabulary) | set(concepts))
        at = {w: t for t, w in enumerate(words)}
        basic_columns = [at[w] for w in basic_vocabulary]
        imagenet = np.zeros((classes.shape[0], len(words)))
        imagenet[:, basic_columns] = classes
        basic = np.zeros(len(words), dtype=bool)
        basic[basic_columns] = True
        tables = {"words": words, "imagenet": imagenet, "basic": basic,
                  "kernel": None, "bias": None, "concept": None}
        if self.concepts is not None:
            columns = [at[w] for w in concepts]
            tables["kernel"] = np.zeros((self.concepts.kernel.shape[0], len(words)), np.float32)
            tables["kernel"][:, columns] = self.concepts.kernel
            tables["bias"] = np.zeros(len(words), np.float32)
            tables["bias"][columns] = self.concepts.bias
            tables["concept"] = np.zeros(len(words), dtype=bool)
            tables["concept"][columns] = True
        return tables


@lru_cache(maxsize=4)
def photo_tagger(encoder: str) -> PhotoTagger:
    """The shipped tagger for an encoder: concepts only where they were trained on its maps."""
    calibration = Calibration.load(CALIBRATION) if CALIBRATION.is_file() else Calibration({})
    concepts = shipped_tagger()
    return PhotoTagger(calibration, concepts if concepts.encoder == encoder else None)
