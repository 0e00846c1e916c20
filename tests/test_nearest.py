"""Tests for captioner.captioning.nearest: the nearest-photo and consensus caption baselines."""

import numpy as np
import pytest

from captioner.captioning.nearest import NearestCaptioner
from captioner.data.text import tokenize
from captioner.errors import CaptionerError
from captioner.evaluation.captions import bleu_scores, cider_d

TOPICS = {
    "dog": ["a brown dog runs on the grass", "a dog plays with a ball", "the dog jumps"],
    "boat": ["a red boat on the lake", "a small boat sails on calm water", "people in a boat"],
    "mountain": ["a man climbs a snowy mountain", "hikers on a mountain trail", "a mountain"],
}


def _clusters(per_topic: int = 4, dim: int = 16, seed: int = 0):
    """Photos around one centre per topic, each with captions that use the topic's words."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(TOPICS), dim)) * 5
    features, captions, topics = [], [], []
    for centre, (topic, sentences) in zip(centres, TOPICS.items()):
        for i in range(per_topic):
            features.append(centre + rng.standard_normal(dim) * 0.1)
            captions.append(sentences[i % 3 :] + sentences[: i % 3])  # rotate: first differs
            topics.append(topic)
    return np.stack(features), captions, topics, centres


def test_nearest_returns_a_caption_of_the_right_cluster():
    features, captions, _, centres = _clusters()
    model = NearestCaptioner(features, captions, k=3)
    queries = centres + np.random.default_rng(1).standard_normal(centres.shape) * 0.1
    for pick in ("central", "first"):
        for topic, caption in zip(TOPICS, model.nearest(queries, pick=pick)):
            assert caption in TOPICS[topic]


def test_nearest_first_and_central_pick_among_the_nearest_photos_captions():
    centre = "a black dog runs across the green grass"
    captions = [
        ["a cat sleeps", "a black dog runs on grass", centre, "a dog runs across the grass"],
        ["a red boat on a lake"],
    ]
    features = np.array([[1.0, 0.0], [0.0, 1.0]])
    model = NearestCaptioner(features, captions, k=1)
    query = np.array([[0.9, 0.1]])
    assert model.nearest(query, pick="first") == ["a cat sleeps"]
    assert model.nearest(query) == [centre]
    assert model.nearest(query) == model.consensus(query, k=1)


def test_consensus_picks_the_caption_most_like_the_others():
    centre = "a brown dog runs on the green grass"
    captions = [
        ["a brown dog runs on the grass", "a cat on a sofa"],
        ["a dog runs on the green grass", "a dog in a park"],
        [centre, "brown dog"],
        ["a brown dog on the green grass", "the dog runs"],
        ["an old man reads a newspaper on a bench"],  # far off: not among the neighbours
    ]
    features = np.array([[1.0, 0.1], [1.0, 0.2], [1.0, 0.15], [1.0, 0.05], [-1.0, 0.0]])
    model = NearestCaptioner(features, captions, k=4)
    query = np.array([[1.0, 0.0]])
    assert model.consensus(query, similarity="cider") == [centre]
    assert model.consensus(query, similarity="bleu") == [centre]
    # With k=1 only the closest photo (index 3) is pooled.
    assert model.consensus(query, k=1)[0] in captions[3]


def test_consensus_with_k_1_is_a_caption_of_the_nearest_photo():
    features, captions, _, _ = _clusters(seed=2)
    model = NearestCaptioner(features, captions, k=5)
    queries = features + 0.01
    index, _ = model.neighbours(queries, k=1)
    for similarity in ("cider", "bleu"):
        chosen = model.consensus(queries, k=1, similarity=similarity)
        assert all(c in captions[i] for c, i in zip(chosen, index[:, 0]))


def test_neighbours_are_ordered_by_cosine_with_ties_to_the_lower_index():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 1.0]])
    model = NearestCaptioner(features, [["a"], ["b"], ["c"], ["d"]], k=3)
    index, cosine = model.neighbours(np.array([[3.0, 0.0]]))
    # Photos 0 and 2 point the same way (cosine 1): the lower index comes first.
    assert index.tolist() == [[0, 2, 3]]
    np.testing.assert_allclose(cosine, [[1.0, 1.0, np.sqrt(0.5)]], rtol=1e-6)
    assert model.nearest(np.array([[3.0, 0.0]])) == ["a"]


def test_consensus_breaks_a_tie_towards_the_closer_photo():
    # Two captions, each the other's only reference: equal scores, so the closer photo wins.
    features = np.array([[1.0, 0.0], [1.0, 0.5]])
    model = NearestCaptioner(features, [["a dog runs"], ["a dog runs"]], k=2)
    model_swapped = NearestCaptioner(features[::-1], [["a dog runs"], ["a dog runs"]], k=2)
    assert model.consensus(np.array([[1.0, 0.4]])) == ["a dog runs"]
    assert model_swapped.consensus(np.array([[1.0, 0.4]])) == ["a dog runs"]
    twins = NearestCaptioner(features, [["one two"], ["three four"]], k=2)
    assert twins.consensus(np.array([[1.0, 0.4]])) == ["three four"]  # photo 1 is closer
    assert twins.consensus(np.array([[1.0, 0.1]])) == ["one two"]


def test_pairwise_similarities_equal_the_metrics_module():
    _, captions, _, _ = _clusters()
    model = NearestCaptioner(np.eye(len(captions)), captions, k=2)
    rows = np.arange(len(model._captions))
    tokens = [tokenize(c) for c in model._captions]
    # CIDEr-D with the whole training set's document frequency: cider_d counts one document
    # per reference set, so score each caption against every photo's captions at once.
    cider = model._pairwise(rows, "cider")
    photo_refs = [[tokenize(c) for c in caps] for caps in captions]
    for i in (0, 4, 17, len(rows) - 1):
        _, per_photo = cider_d([tokens[i]] * len(captions), photo_refs)
        ours = [cider[i, model._photo_rows[p]].mean() for p in range(len(captions))]
        np.testing.assert_allclose(ours, per_photo, atol=1e-9, rtol=0)
    bleu = model._pairwise(rows, "bleu")
    for i in range(0, len(rows), 5):
        for j in range(0, len(rows), 3):
            assert bleu[i, j] == pytest.approx(
                bleu_scores([tokens[i]], [[tokens[j]]])[3], abs=1e-12
            )


def test_captions_without_words_are_never_candidates():
    features = np.array([[1.0, 0.0], [0.0, 1.0]])
    model = NearestCaptioner(features, [["...", "a dog"], ["a cat", "!!"]], k=2)
    assert model.nearest(np.array([[1.0, 0.0]]), pick="first") == ["a dog"]
    with pytest.raises(CaptionerError, match="photo 1 has no caption with a word"):
        NearestCaptioner(features, [["a dog"], ["?!"]], k=1)


def test_an_empty_query_batch_gives_no_captions():
    model = NearestCaptioner(np.eye(2), [["a"], ["b"]], k=1)
    assert model.consensus(np.zeros((0, 2))) == []
    assert model.nearest(np.zeros((0, 2))) == []


@pytest.mark.parametrize(
    "features, captions, kwargs, message",
    [
        (np.ones((3, 4)), [["a"], ["b"]], {}, "3 rows but train_captions has 2"),
        (np.ones(4), [["a"]], {}, "must be 2-D"),
        (np.ones((2, 4)), ["a dog", "a cat"], {"k": 1}, r"train_captions\[0\] must be a list"),
        (np.array([[1.0, np.nan]]), [["a"]], {"k": 1}, "NaN or infinite"),
        (np.ones((2, 4)), [["a"], ["b"]], {"k": 3}, "only 2 training photos"),
        (np.ones((2, 4)), [["a"], ["b"]], {"k": 0}, "k must be a positive integer"),
        (np.ones((2, 4)), [["a"], ["b"]], {"k": 1, "metric": "l2"}, "unknown metric"),
        (np.zeros((0, 4)), [], {}, "train_features is empty"),
    ],
)
def test_bad_training_input_raises_a_clear_error(features, captions, kwargs, message):
    with pytest.raises(CaptionerError, match=message):
        NearestCaptioner(features, captions, **kwargs)


def test_bad_queries_raise_a_clear_error():
    model = NearestCaptioner(np.eye(4), [["a"], ["b"], ["c"], ["d"]], k=2)
    with pytest.raises(CaptionerError, match="have 3 dimensions but the training features have 4"):
        model.nearest(np.ones((2, 3)))
    with pytest.raises(CaptionerError, match=r"features\[None\]"):
        model.consensus(np.ones(4))
    with pytest.raises(CaptionerError, match="unknown similarity"):
        model.consensus(np.ones((1, 4)), similarity="meteor")
    with pytest.raises(CaptionerError, match="unknown pick"):
        model.nearest(np.ones((1, 4)), pick="random")
    with pytest.raises(CaptionerError, match="only 4 training photos"):
        model.consensus(np.ones((1, 4)), k=5)
