"""Tag metrics for multi-label clip tagging: AP, mAP, YouTube-8M's GAP@k, hit@1, P/R@k.

Multi-label clip tagging: `scores` (N clips, C tags) of predicted probabilities (any real
numbers work: only their order matters) and `labels` (N, C) of 0/1 ground truth.

Tie rule, used by every function here: items are ranked by a stable sort on descending score,
so of two equal scores the lower index comes first (the lower tag index within a clip; for
GAP's pooled pairs the lower clip index, then the lower tag index). This makes every number
deterministic. Without ties, `average_precision` equals scikit-learn's average_precision_score.
With ties they can differ: scikit-learn treats a block of tied scores as one threshold (all
of it counted at once), while we rank within the block; YouTube-8M's calculator instead
shuffles with a fixed seed before sorting. No two of the three agree on ties.

GAP normalisation: YouTube-8M's `calculate_gap` (eval_util.py) pools each clip's top k
(score, label) pairs, sorts them, and calls `AveragePrecisionCalculator.ap_at_n` with n=None
and `total_num_positives` = the sum of ALL ground-truth labels, not just those that reached
a top k. We divide by that same number, so GAP is the Kaggle / starter-code number and a
true tag that fell out of a clip's top k counts as missed (lowers GAP) instead of vanishing.
"""

from __future__ import annotations

import numpy as np

from captioner.errors import CaptionerError

GAP_TOP_K = 20


def _check_ranking_inputs(scores: np.ndarray, labels: np.ndarray, ndim: int) -> tuple:
    """Scores as float64 and labels as bool, after checking shapes and values."""
    what = "1-D (items,)" if ndim == 1 else "2-D (clips, tags)"
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != ndim or labels.ndim != ndim:
        raise CaptionerError(
            f"scores and labels must be {what} arrays; got shapes {scores.shape} and {labels.shape}"
        )
    if scores.shape != labels.shape:
        raise CaptionerError(
            f"scores and labels must have the same shape; got {scores.shape} and {labels.shape}"
        )
    if scores.size == 0:
        raise CaptionerError(f"nothing to score: scores and labels have shape {scores.shape}")
    if not (np.issubdtype(scores.dtype, np.number) or scores.dtype == bool):
        raise CaptionerError(f"scores must be numbers; got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if np.isnan(scores).any():
        raise CaptionerError("scores contain NaN: check the model output before evaluating")
    if not np.isin(labels, (0, 1)).all():
        raise CaptionerError("labels must be 0/1 (or True/False) ground truth")
    return scores, labels.astype(bool)


def _check_k(k: int) -> int:
    """A positive integer k, as a Python int."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CaptionerError(f"k must be a positive integer; got {k!r}")
    return int(k)


def _ranked(scores: np.ndarray) -> np.ndarray:
    """Indices that sort the last axis by descending score, ties to the lower index."""
    return np.argsort(-scores, axis=-1, kind="stable")


def _ap_of_ranked(relevant: np.ndarray, num_positives: int) -> float:
    """Sum of precision at each relevant rank of a ranked 0/1 list, over num_positives."""
    hits = np.cumsum(relevant)
    precision = hits / np.arange(1, len(relevant) + 1)
    return float(precision[relevant].sum() / num_positives)


def average_precision(scores_1d: np.ndarray, labels_1d: np.ndarray) -> float:
    """Non-interpolated AP (0-1) of one tag over items; an error when it has no positive."""
    scores, labels = _check_ranking_inputs(scores_1d, labels_1d, ndim=1)
    num_positives = int(labels.sum())
    if num_positives == 0:
        raise CaptionerError("average precision is undefined for a tag with no positive item")
    return _ap_of_ranked(labels[_ranked(scores)], num_positives)


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean per-tag AP (0-1) over the tags with at least one positive clip.

    Tags that no clip carries have no AP and are left out of the mean (neither 0 nor 1), as in
    scikit-learn's macro average once such columns are dropped; the mean is over the rest.
    """
    scores, labels = _check_ranking_inputs(scores, labels, ndim=2)
    present = np.flatnonzero(labels.any(axis=0))
    if present.size == 0:
        raise CaptionerError("mAP is undefined: no clip carries any tag in the ground truth")
    scores, labels = scores[:, present], labels[:, present]
    # All tags at once: rank each column, then precision at every rank where a positive sits.
    relevant = np.take_along_axis(labels, _ranked(scores.T).T, axis=0)
    precision = np.cumsum(relevant, axis=0) / np.arange(1, len(labels) + 1)[:, None]
    aps = (precision * relevant).sum(axis=0) / relevant.sum(axis=0)
    return float(aps.mean())


def gap_at_k(scores: np.ndarray, labels: np.ndarray, k: int = GAP_TOP_K) -> float:
    """YouTube-8M's Global Average Precision (0-1) of each clip's top k tags, pooled.

    The top k (score, is-true) pairs of every clip (k is capped at the number of tags, as the
    starter code does) are pooled and ranked by score; GAP = sum over ranks i of precision(i) *
    rel(i), divided by the number of positives in the whole ground truth (see the section
    comment for why, and for the tie rule).
    """
    scores, labels = _check_ranking_inputs(scores, labels, ndim=2)
    k = min(_check_k(k), scores.shape[1])
    num_positives = int(labels.sum())
    if num_positives == 0:
        raise CaptionerError("GAP is undefined: no clip carries any tag in the ground truth")
    top = _ranked(scores)[:, :k]
    # Row-major flattening keeps (clip, rank) order, so the stable sort breaks pooled ties by
    # the lower clip, then the lower tag (within a clip, equal scores are already by tag).
    pooled_scores = np.take_along_axis(scores, top, axis=1).ravel()
    pooled_labels = np.take_along_axis(labels, top, axis=1).ravel()
    return _ap_of_ranked(pooled_labels[_ranked(pooled_scores)], num_positives)


def hit_at_one(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction (0-1) of clips whose top-scored tag is true; a clip with no true tag misses."""
    scores, labels = _check_ranking_inputs(scores, labels, ndim=2)
    top = _ranked(scores)[:, 0]
    return float(labels[np.arange(len(labels)), top].mean())


def precision_recall_at_k(scores: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, float]:
    """Mean over clips (0-1) of true tags in the top k over k, and over the clip's true tags.

    Every clip counts for precision; clips without a true tag are skipped for recall (an error
    if no clip has one). k may not exceed the number of tags.
    """
    scores, labels = _check_ranking_inputs(scores, labels, ndim=2)
    k = _check_k(k)
    if k > scores.shape[1]:
        raise CaptionerError(
            f"k={k} is more than the {scores.shape[1]} tags there are; pass k <= {scores.shape[1]}"
        )
    hits = np.take_along_axis(labels, _ranked(scores)[:, :k], axis=1).sum(axis=1)
    true_per_clip = labels.sum(axis=1)
    has_true = true_per_clip > 0
    if not has_true.any():
        raise CaptionerError("recall is undefined: no clip carries any tag in the ground truth")
    precision = float((hits / k).mean())
    recall = float((hits[has_true] / true_per_clip[has_true]).mean())
    return precision, recall


def evaluate_tags(scores: np.ndarray, labels: np.ndarray, k: int = 5) -> dict:
    """mAP, GAP@20, hit@1, P@k and R@k of tag predictions on a 0-100 scale."""
    precision, recall = precision_recall_at_k(scores, labels, k)
    return {
        "mAP": 100.0 * mean_average_precision(scores, labels),
        f"GAP@{GAP_TOP_K}": 100.0 * gap_at_k(scores, labels, GAP_TOP_K),
        "hit@1": 100.0 * hit_at_one(scores, labels),
        f"P@{k}": 100.0 * precision,
        f"R@{k}": 100.0 * recall,
    }
