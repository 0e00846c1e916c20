"""Tests for the tag metrics of captioner.evaluation.tags: AP, mAP, YouTube-8M's GAP@k, hit@1, P/R@k.

References are written here with other algorithms than the module's (counting instead of
sorting; YouTube-8M's regroup-by-tag pipeline for GAP); scikit-learn is compared too when it
happens to be installed.
"""

import numpy as np
import pytest

from captioner.errors import CaptionerError
from captioner.evaluation.tags import (
    average_precision,
    evaluate_tags,
    gap_at_k,
    hit_at_one,
    mean_average_precision,
    precision_recall_at_k,
)


def _brute_ap(scores, labels) -> float:
    """AP by counting: an item's rank is 1 + the items before it (higher score, or tie and lower
    index); precision at a positive is the positives at or before it over its rank."""
    n = len(scores)

    def before(j, i):
        return scores[j] > scores[i] or (scores[j] == scores[i] and j < i)

    positives = [i for i in range(n) if labels[i]]
    total = 0.0
    for i in positives:
        rank = 1 + sum(before(j, i) for j in range(n))
        hits = 1 + sum(before(j, i) for j in positives)
        total += hits / rank
    return total / len(positives)


def _youtube8m_gap(scores, labels, k=20) -> float:
    """GAP the way YouTube-8M's eval_util does it: top k per clip, regroup the pairs by tag,
    flatten, rank by score, and divide by the number of positives in all of the labels."""
    n_clips, n_tags = scores.shape
    k = min(k, n_tags)
    by_tag = {t: [] for t in range(n_tags)}
    for c in range(n_clips):
        order = sorted(range(n_tags), key=lambda t: scores[c, t], reverse=True)[:k]
        for t in order:
            by_tag[t].append((scores[c, t], labels[c, t]))
    pooled = [pair for t in range(n_tags) for pair in by_tag[t]]
    pooled.sort(key=lambda pair: pair[0], reverse=True)
    total_positives = int(labels.sum())
    ap, seen = 0.0, 0
    for rank, (_, label) in enumerate(pooled, start=1):
        if label > 0:
            seen += 1
            ap += seen / rank / total_positives
    return ap


def _random(seed, n=40, c=12, p=0.25):
    """Tie-free random scores and 0/1 labels in which every tag has a positive."""
    rng = np.random.default_rng(seed)
    scores = rng.random((n, c))
    labels = (rng.random((n, c)) < p).astype(int)
    labels[rng.integers(0, n, size=c), np.arange(c)] = 1
    return scores, labels


# --- average precision and mAP ---------------------------------------------------------------


def test_ap_hand_example():
    # Ranked: 0.9 (+), 0.8 (-), 0.7 (+), 0.1 (-) -> (1/1 + 2/3) / 2.
    assert average_precision(np.array([0.1, 0.9, 0.7, 0.8]), np.array([0, 1, 1, 0])) == (
        pytest.approx((1 + 2 / 3) / 2)
    )


@pytest.mark.parametrize("seed", range(5))
def test_ap_and_map_equal_brute_force(seed):
    scores, labels = _random(seed)
    for c in range(scores.shape[1]):
        assert average_precision(scores[:, c], labels[:, c]) == pytest.approx(
            _brute_ap(scores[:, c], labels[:, c]), abs=1e-12
        )
    expected = np.mean([_brute_ap(scores[:, c], labels[:, c]) for c in range(scores.shape[1])])
    assert mean_average_precision(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_ap_and_map_equal_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    for seed in range(5):
        scores, labels = _random(seed)
        for c in range(scores.shape[1]):
            expected = metrics.average_precision_score(labels[:, c], scores[:, c])
            assert average_precision(scores[:, c], labels[:, c]) == pytest.approx(expected)
        expected = metrics.average_precision_score(labels, scores, average="macro")
        assert mean_average_precision(scores, labels) == pytest.approx(expected)


def test_ties_rank_the_lower_index_first():
    tied = np.array([0.5, 0.5, 0.5])
    assert average_precision(tied, np.array([1, 0, 0])) == pytest.approx(1.0)
    assert average_precision(tied, np.array([0, 1, 0])) == pytest.approx(1 / 2)
    assert average_precision(tied, np.array([0, 0, 1])) == pytest.approx(1 / 3)
    # Ties mixed with distinct scores, against the counting reference.
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=30) / 4
    labels = rng.integers(0, 2, size=30)
    assert average_precision(scores, labels) == pytest.approx(_brute_ap(scores, labels))


def test_map_leaves_out_tags_without_positives():
    scores, labels = _random(3, c=5)
    labels[:, 2] = 0
    kept = [0, 1, 3, 4]
    expected = np.mean([_brute_ap(scores[:, c], labels[:, c]) for c in kept])
    assert mean_average_precision(scores, labels) == pytest.approx(expected)
    assert mean_average_precision(scores, labels) == pytest.approx(
        mean_average_precision(scores[:, kept], labels[:, kept])
    )


# --- GAP ---------------------------------------------------------------------------------------


def test_gap_hand_example():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3]])
    labels = np.array([[1, 1, 0], [0, 1, 1]])
    # Top 2 per clip, pooled and ranked: 0.9 (+), 0.8 (+), 0.5 (-), 0.3 (+). Clip 0's true tag 1
    # (score 0.1) fell out of its top 2 but still counts: 4 positives in all.
    expected = (1 / 1 + 2 / 2 + 3 / 4) / 4
    assert gap_at_k(scores, labels, k=2) == pytest.approx(expected)
    assert _youtube8m_gap(scores, labels, k=2) == pytest.approx(expected)
    # k past the number of tags is capped, as in YouTube-8M: every pair takes part.
    assert gap_at_k(scores, labels, k=20) == pytest.approx(gap_at_k(scores, labels, k=3))


@pytest.mark.parametrize("k", [1, 3, 20])
def test_gap_equals_youtube8m_on_random_data(k):
    scores, labels = _random(11, n=60, c=30, p=0.1)
    assert gap_at_k(scores, labels, k=k) == pytest.approx(
        _youtube8m_gap(scores, labels, k=k), abs=1e-12
    )


def test_gap_ties_go_to_the_lower_clip():
    scores = np.array([[0.5, 0.1], [0.5, 0.1]])
    # Pooled top 1: clip 0 (0.5, -) ranks before clip 1 (0.5, +): (1/2) / 2 positives.
    assert gap_at_k(scores, np.array([[0, 1], [1, 0]]), k=1) == pytest.approx(0.25)
    assert gap_at_k(scores, np.array([[1, 0], [0, 1]]), k=1) == pytest.approx(0.5)


# --- hit@1, P@k, R@k ---------------------------------------------------------------------------


def test_hit_at_one():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.1, 0.7], [0.4, 0.6, 0.5], [0.3, 0.3, 0.1]])
    labels = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 0]])
    # Hits: clip 0 yes, clip 1 no, clip 2 yes; clip 3's tie goes to tag 0, which is false.
    assert hit_at_one(scores, labels) == pytest.approx(2 / 4)


def test_precision_recall_at_k():
    scores = np.array([[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.3, 0.4], [0.5, 0.4, 0.3, 0.2]])
    labels = np.array([[1, 0, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]])
    # Top 2: clip 0 -> tags 0, 1 (1 true of 3); clip 1 -> tags 3, 2 (0 of 1); clip 2 -> no tags.
    precision, recall = precision_recall_at_k(scores, labels, k=2)
    assert precision == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert recall == pytest.approx((1 / 3 + 0) / 2)  # clip 2 is skipped for recall
    precision, recall = precision_recall_at_k(scores, labels, k=4)
    assert (precision, recall) == (pytest.approx((3 / 4 + 1 / 4 + 0) / 3), pytest.approx(1.0))


# --- the whole report --------------------------------------------------------------------------


def _three_tags_each(n=30, c=10):
    """Labels with exactly 3 true tags per clip (i, i+1, i+2 mod c): every tag is present."""
    labels = np.zeros((n, c), dtype=int)
    for shift in range(3):
        labels[np.arange(n), (np.arange(n) + shift) % c] = 1
    return labels


def test_perfect_predictions_score_100():
    labels = _three_tags_each()
    scores = labels + 0.01 * np.random.default_rng(1).random(labels.shape)
    result = evaluate_tags(scores, labels, k=3)
    assert set(result) == {"mAP", "GAP@20", "hit@1", "P@3", "R@3"}
    for name, value in result.items():
        assert value == pytest.approx(100.0), name


def test_reversed_predictions_score_low():
    labels = _three_tags_each()
    scores = 1.0 - labels + 0.01 * np.random.default_rng(1).random(labels.shape)
    result = evaluate_tags(scores, labels, k=3)
    assert result["hit@1"] == 0.0 and result["P@3"] == 0.0 and result["R@3"] == 0.0
    assert result["mAP"] < 40.0
    # With k=20 > 10 tags every pair is pooled and the positives come last.
    assert result["GAP@20"] < 40.0
    assert gap_at_k(scores, labels, k=3) == 0.0


def test_evaluate_tags_default_keys_and_scale():
    scores, labels = _random(5)
    result = evaluate_tags(scores, labels)
    assert list(result) == ["mAP", "GAP@20", "hit@1", "P@5", "R@5"]
    assert result["mAP"] == pytest.approx(100 * mean_average_precision(scores, labels))
    assert result["GAP@20"] == pytest.approx(100 * gap_at_k(scores, labels, 20))
    assert all(0.0 <= v <= 100.0 for v in result.values())


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (np.zeros(4), np.zeros(4), "2-D"),
        (np.zeros((2, 3)), np.zeros((3, 2)), "same shape"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "nothing to score"),
        (np.array([[0.1, np.nan]]), np.array([[1, 0]]), "NaN"),
        (np.array([[0.1, 0.2]]), np.array([[2, 0]]), "0/1"),
        (np.zeros((2, 3)), np.zeros((2, 3)), "no clip carries any tag"),
    ],
)
def test_bad_inputs_raise_captioner_error(scores, labels, message):
    with pytest.raises(CaptionerError, match=message):
        evaluate_tags(scores, labels, k=1)


def test_bad_k_and_undefined_ap_raise():
    scores, labels = _random(0, c=4)
    with pytest.raises(CaptionerError, match="positive integer"):
        gap_at_k(scores, labels, k=0)
    with pytest.raises(CaptionerError, match="k <= 4"):
        precision_recall_at_k(scores, labels, k=5)
    with pytest.raises(CaptionerError, match="no positive"):
        average_precision(np.array([0.3, 0.2]), np.array([0, 0]))
    with pytest.raises(CaptionerError, match="1-D"):
        average_precision(scores, labels)
