"""Tests for captioner.evaluation.captions: equal to pycocoevalcap's Bleu(4) and Cider to 1e-6."""

import math
import random
from pathlib import Path

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from captioner.data.caption_sets import group_by_image, read_flickr_tokens
from captioner.data.text import tokenize
from captioner.errors import CaptionerError
from captioner.evaluation.captions import bleu_scores, cider_d, evaluate_captions

TOKEN_FILE = (
    Path(__file__).parents[1] / ".." / "shared" / "data" / "flickr8k_mini" / "Flickr8k.token.txt"
).resolve()


def _coco(hyps, refs):
    """pycocoevalcap's corpus and per-image BLEU-1..4 and CIDEr, fed tokens joined by spaces."""
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(h)] for i, h in enumerate(hyps)}
    bleu, bleu_per_image = Bleu(4).compute_score(gts, res, verbose=0)
    cider, cider_per_image = Cider().compute_score(gts, res)
    return bleu, bleu_per_image, float(cider), [float(c) for c in cider_per_image]


def _assert_equal_to_coco(hyps, refs) -> None:
    bleu, bleu_per_image, cider, cider_per_image = _coco(hyps, refs)
    assert bleu_scores(hyps, refs) == pytest.approx(bleu, abs=1e-6, rel=0)
    ours_cider, ours_per_image = cider_d(hyps, refs)
    assert ours_cider == pytest.approx(cider, abs=1e-6, rel=0)
    assert ours_per_image == pytest.approx(cider_per_image, abs=1e-6, rel=0)
    for i in range(0, len(hyps), max(1, len(hyps) // 10)):  # sentence BLEU on a sample
        assert bleu_scores([hyps[i]], [refs[i]]) == pytest.approx(
            [bleu_per_image[k][i] for k in range(4)], abs=1e-6, rel=0
        )


def _random_corpus(seed: int, images: int, min_len: int = 5, max_len: int = 15):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(30)]

    def sentence():
        return [rng.choice(vocab) for _ in range(rng.randint(min_len, max_len))]

    return [sentence() for _ in range(images)], [
        [sentence() for _ in range(5)] for _ in range(images)
    ]


@pytest.mark.parametrize(("seed", "images"), [(0, 50), (1, 120), (2, 200), (3, 77)])
def test_equal_to_pycocoevalcap_on_random_corpora(seed: int, images: int) -> None:
    hyps, refs = _random_corpus(seed, images)
    bleu = bleu_scores(hyps, refs)
    assert 0 < bleu[3] < bleu[2] < bleu[1] < bleu[0] < 1  # a real, non-trivial corpus
    _assert_equal_to_coco(hyps, refs)


def test_equal_with_short_and_empty_captions() -> None:
    # hypotheses shorter than 4 words (NLTK would count max(1, 0) n-grams) and empty ones
    hyps, refs = _random_corpus(4, 60, min_len=0, max_len=6)
    hyps[0], refs[1][0] = [], []
    _assert_equal_to_coco(hyps, refs)


def test_equal_when_an_order_has_no_match() -> None:
    # Bigrams match, 3- and 4-grams never do: pycocoevalcap's 1e-15 gives a small, non-zero
    # BLEU-3/4, and so must we.
    hyps = [["a", "b", "x", "c", "d"], ["e", "f", "y", "g"]]
    refs = [[["a", "b", "z", "c", "d"]], [["e", "f", "w", "g", "h"], ["e"]]]
    bleu = bleu_scores(hyps, refs)
    assert 0 < bleu[3] < 1e-3
    _assert_equal_to_coco(hyps, refs)


def test_perfect_and_one_image_corpora() -> None:
    hyps = [["a", "dog", "runs", "on", "grass"]]
    refs = [[["a", "dog", "runs", "on", "grass"], ["a", "cat"]]]
    assert bleu_scores(hyps, refs) == pytest.approx([1.0] * 4, abs=1e-6)
    _assert_equal_to_coco(hyps, refs)
    # two images with identical captions: idf of every n-gram is log(2) - log(2) = 0
    _assert_equal_to_coco(hyps * 2, refs * 2)


def test_no_unigram_match_is_zero() -> None:
    # NLTK returns 0 before smoothing; pycocoevalcap's value is at most ~6e-9 (documented corner)
    hyps, refs = [["x"], ["y", "z"]], [[["a", "b"]], [["c"]]]
    assert bleu_scores(hyps, refs) == [0.0] * 4
    bleu, *_ = _coco(hyps, refs)
    assert max(bleu) < 1e-8


def test_cider_length_penalty_and_empty_captions() -> None:
    # pycocoevalcap measures length in bigrams, we in words: equal except for empty captions
    hyps = [[], ["dog"], ["a", "dog"], ["a", "dog", "runs"]]
    refs = [
        [["dog"], []],
        [["a", "dog", "runs", "fast"], ["dog"]],
        [["a", "dog"]],
        [["a", "dog", "runs", "a", "b", "c", "d", "e", "f"]],
    ]
    _assert_equal_to_coco(hyps, refs)
    # same matches, longer reference: only the gaussian length penalty lowers the score
    # (a third, unrelated image keeps the idf of "a dog" above 0)
    hyps = [["a", "dog"], ["a", "dog"], ["cat"]]
    refs = [[["a", "dog", "x"]], [["a", "dog", "x", "y", "z", "w", "v", "u"]], [["cat"]]]
    near, far, _ = cider_d(hyps, refs)[1]
    assert 0 < far < near


def _real_captions(images: int = 100) -> dict[str, list[str]]:
    if not TOKEN_FILE.is_file():
        pytest.skip(
            f"real Flickr8k captions not found at {TOKEN_FILE} (../shared/data from the repo root)"
        )
    captions = group_by_image(read_flickr_tokens(TOKEN_FILE))
    return dict(list(captions.items())[:images])


def test_equal_to_pycocoevalcap_on_real_captions() -> None:
    captions = _real_captions()
    hyps = [tokenize(c[0]) for c in captions.values()]
    refs = [[tokenize(r) for r in c[1:5]] for c in captions.values()]
    _assert_equal_to_coco(hyps, refs)
    # human captions against each other: a plausible corpus, not a degenerate one
    bleu, (cider, _) = bleu_scores(hyps, refs), cider_d(hyps, refs)
    assert 0.4 < bleu[0] < 0.9 and 0.05 < bleu[3] < 0.4 and 0.2 < cider < 1.5


def test_evaluate_captions_scales_and_per_image() -> None:
    captions = _real_captions(40)
    hyps = {k: c[0] for k, c in captions.items()}
    refs = {k: c[1:5] for k, c in captions.items()}
    result = evaluate_captions(hyps, refs, per_image=True)
    keys = list(captions)
    bleu, bleu_per_image, cider, cider_per_image = _coco(
        [tokenize(hyps[k]) for k in keys], [[tokenize(r) for r in refs[k]] for k in keys]
    )
    assert [result[f"BLEU-{n}"] for n in range(1, 5)] == pytest.approx(
        [100 * b for b in bleu], abs=1e-4
    )
    assert result["CIDEr-D"] == pytest.approx(100 * cider, abs=1e-4)
    assert list(result["per_image"]) == keys
    for i, key in enumerate(keys):
        assert result["per_image"][key]["BLEU-4"] == pytest.approx(
            100 * bleu_per_image[3][i], abs=1e-4
        )
        assert result["per_image"][key]["CIDEr-D"] == pytest.approx(
            100 * cider_per_image[i], abs=1e-4
        )
    assert "per_image" not in evaluate_captions(hyps, refs)


def test_evaluate_captions_tokenizes_like_text_module() -> None:
    refs = {"a": ["A dog, running on grass."], "b": ["Two cats sleep!"]}
    hyps = {"a": "a DOG running on grass", "b": "two cats sleep ."}
    result = evaluate_captions(hyps, refs)
    assert result["BLEU-4"] == pytest.approx(100.0, abs=1e-6)
    assert math.isfinite(result["CIDEr-D"])


def test_evaluate_captions_rejects_bad_input() -> None:
    with pytest.raises(CaptionerError, match="same images"):
        evaluate_captions({"a": "a dog"}, {"b": ["a dog"]})
    with pytest.raises(CaptionerError, match="nothing to evaluate"):
        evaluate_captions({}, {})
    with pytest.raises(CaptionerError, match="non-empty list"):
        evaluate_captions({"a": "a dog"}, {"a": []})
    with pytest.raises(CaptionerError, match="non-empty list"):
        evaluate_captions({"a": "a dog"}, {"a": "a dog"})
    with pytest.raises(ValueError):
        bleu_scores([["a"]], [])
