"""Fitting the tag calibration: which raw scores mean which chance of being named.

A tag is true of a photo when its human captions name it: the word itself (as a noun lemma or
an "-ing" action), or the same COCO object by another name ("jet" is true where a caption says
"airplane", "dog" where one says "puppy").
"""

from __future__ import annotations

import numpy as np

from captioner.data.objects import caption_objects, reference_objects
from captioner.data.words import caption_concepts
from captioner.tagging.merge import SOURCES, Calibration, _logit, merge


def truths(found: list[tuple], references: list[str]) -> list[bool]:
    """Whether each candidate's word is named by the photo's references."""
    words = {w for r in references for w in caption_concepts(r)}
    objects = reference_objects(references)
    result = []
    for word, *_ in found:
        named = caption_objects(word)
        result.append(word in words or bool(named) and named <= objects)
    return result


def fit(found: list[list[tuple]], references: list[list[str]]) -> Calibration:
    """Platt scaling per source from photos' candidates and their captions, then the merge's
    monotone curve (isotonic regression, kept as at most ``CURVE_POINTS`` points)."""
    params = {}
    for source in SOURCES:
        raw, truth = _pairs(found, references, source)
        if len(set(truth)) >= 2:  # a source that never fired (or never missed) keeps its scores
            params[source] = _platt(raw, truth)
    calibration = Calibration(params)
    merged = [merge(cands, calibration) for cands in found]
    scores = np.array([t["score"] for row in merged for t in row])
    truth = np.array([hit for row, refs in zip(merged, references)
                      for hit in truths([(t["tag"],) for t in row], refs)])
    if len(set(truth)) < 2:
        return calibration
    from sklearn.isotonic import IsotonicRegression

    grid = np.linspace(0.0, 1.0, CURVE_POINTS)
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, truth)
    return Calibration(params, ([round(float(x), 4) for x in grid],
                                [round(float(y), 4) for y in fitted.predict(grid)]))


CURVE_POINTS = 51


def _platt(raw: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4).fit(_logit(raw)[:, None], truth)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def _pairs(found, references, source):
    raw, truth = [], []
    for cands, refs in zip(found, references):
        for cand, true in zip(cands, truths(cands, refs)):
            if cand[1] == source:
                raw.append(cand[2])
                truth.append(true)
    return np.array(raw), np.array(truth)


def reliability(tags: list[list[dict]], references: list[list[str]], bins: int = 10) -> dict:
    """How often tags scored p are true, per score bin, and the expected calibration error
    (the bins' gaps weighted by their tags), over every tag listed."""
    scores, hits = [], []
    for row, refs in zip(tags, references):
        scores += [t["score"] for t in row]
        hits += truths([(t["tag"],) for t in row], refs)
    scores, hits = np.array(scores), np.array(hits, dtype=float)
    edges = np.minimum((scores * bins).astype(int), bins - 1)
    table, gap = [], 0.0
    for b in range(bins):
        inside = edges == b
        if inside.any():
            predicted, observed = scores[inside].mean(), hits[inside].mean()
            table.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "tags": int(inside.sum()),
                          "predicted": round(float(predicted), 3), "observed": round(float(observed), 3)})
            gap += inside.sum() * abs(predicted - observed)
    return {"ece": round(float(gap / max(len(scores), 1)), 4), "tags": len(scores), "bins": table}
