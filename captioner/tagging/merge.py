"""One tag list per photo: ImageNet basic words, concepts and objects, each word once.

Each source's raw score means something else (a sum of class probabilities, a noisy-OR, a
detector's confidence), so each is mapped to the chance that a person describing the photo
names the word: Platt scaling, p = sigmoid(slope * logit(raw) + offset), one pair per source,
fitted on captioned photos that no other choice is made on (``tagging.calibration``). A word
two sources name keeps the higher chance and names that source; as the higher of two guesses
is an optimistic one, a last monotone map (isotonic regression, ``curve``) corrects the kept
chance once more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioner.errors import CaptionerError

SOURCES = ("imagenet", "concept", "object")
FLOOR = 0.02  # raw scores below this are not candidates: nothing is learnt from them
# Detector labels as a caption says them.
OBJECT_WORDS = {"dining table": "table", "cell phone": "phone", "sports ball": "ball",
                "potted plant": "plant", "hair drier": "hair dryer", "tv": "television",
                "skis": "skis", "wine glass": "glass"}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


@dataclass
class Calibration:
    """Per source, the (slope, offset) of its Platt scaling; then the merge's curve (x, y)."""

    params: dict[str, tuple[float, float]]
    curve: tuple[list[float], list[float]] | None = None

    def final(self, scores: np.ndarray) -> np.ndarray:
        """The merged chances through the last monotone map (unchanged without one)."""
        return np.asarray(scores) if self.curve is None else np.interp(scores, *self.curve)

    def __call__(self, source: str, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of a source's raw scores."""
        slope, offset = self.params.get(source, (1.0, 0.0))
        return 1.0 / (1.0 + np.exp(-(slope * _logit(raw) + offset)))

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read ``{"params": {source: [slope, offset]}, "curve": [[x...], [y...]], ...}``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            curve = data.get("curve")
            return cls({s: (float(a), float(b)) for s, (a, b) in data["params"].items()},
                       None if curve is None else ([float(x) for x in curve[0]], [float(y) for y in curve[1]]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CaptionerError(f"{path}: not a tag calibration ({exc}); reinstall captioner") from None


def candidates(imagenet: list[dict] | None = None, concepts: dict[str, float] | None = None,
               objects: list[dict] | None = None) -> list[tuple[str, str, float, int]]:
    """(word, source, raw score, count) of one photo's sources; a detector's word counts its
    boxes and scores its best one."""
    found = [(t["tag"], "imagenet", float(t["score"]), 0) for t in imagenet or []]
    found += [(w, "concept", float(s), 0) for w, s in (concepts or {}).items()]
    best: dict[str, list] = {}
    for box in objects or []:
        word = OBJECT_WORDS.get(box["label"], box["label"])
        entry = best.setdefault(word, [0.0, 0])
        entry[0], entry[1] = max(entry[0], float(box["score"])), entry[1] + 1
    found += [(w, "object", s, n) for w, (s, n) in best.items()]
    return [c for c in found if c[2] >= FLOOR]


def merge(found: list[tuple[str, str, float, int]], calibration: Calibration,
          k: int | None = None) -> list[dict]:
    """The merged list, best first: ``{"tag", "score", "source"}`` (+ ``"count"`` for objects)."""
    merged: dict[str, dict] = {}
    for word, source, raw, count in found:
        score = float(calibration(source, np.array([raw]))[0])
        if word not in merged or score > merged[word]["score"]:
            merged[word] = {"tag": word, "score": score, "source": source}
            if count:
                merged[word]["count"] = count
    if merged:
        final = calibration.final(np.array([t["score"] for t in merged.values()]))
        for tag, score in zip(merged.values(), final):
            tag["score"] = round(float(score), 4)
    ranked = sorted(merged.values(), key=lambda t: (-t["score"], t["tag"]))
    return ranked[:k] if k is not None else ranked
