"""Merged photo tags: one list, each word once, calibrated; the guidance that holds words back."""

import numpy as np
import pytest
from conftest import FLICKR, SHARED_DATA, need

from captioner.captioning.guided import held_back, penalty_rows
from captioner.captioning.search import beam_search, greedy
from captioner.data.text import Vocabulary
from captioner.tagging.merge import Calibration, candidates, merge


def test_each_word_once_with_its_best_source_and_count():
    calibration = Calibration({"imagenet": (1.0, 0.0), "concept": (1.0, 0.0), "object": (1.0, 1.0)})
    found = candidates([{"tag": "dog", "score": 0.6}, {"tag": "cat", "score": 0.01}],
                       {"dog": 0.3, "grass": 0.5},
                       [{"label": "dog", "score": 0.5}, {"label": "dog", "score": 0.4},
                        {"label": "dining table", "score": 0.45}])
    tags = merge(found, calibration)
    assert [t["tag"] for t in tags] == ["dog", "table", "grass"]  # "cat" is under the floor
    dog = tags[0]
    # The object source's offset of 1 lifts its 0.5 over the ImageNet 0.6: the detector wins.
    assert dog["source"] == "object" and dog["count"] == 2
    assert dog["score"] == pytest.approx(1 / (1 + np.exp(-1.0)), abs=1e-4)
    assert "count" not in tags[2]


def test_calibration_is_platt_scaling():
    calibration = Calibration({"concept": (2.0, -1.0)})
    raw = np.array([0.2, 0.5, 0.9])
    logit = np.log(raw / (1 - raw))
    assert np.allclose(calibration("concept", raw), 1 / (1 + np.exp(-(2 * logit - 1))))
    assert np.allclose(calibration("imagenet", raw), raw)  # an unfitted source keeps its scores


VOCAB = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "puppy", "cat", "man", "on",
                    "grass", "orange"])


def test_objects_without_evidence_are_held_back():
    held = {VOCAB.id_to_word[i] for i in held_back([{"tag": "cat", "score": 0.8},
                                                   {"tag": "man", "score": 0.1}], VOCAB, 0.3)}
    # dog words and the person are held back; the cat is shown; grass is no object; "orange"
    # is a colour as often as a fruit, so it is never held back.
    assert held == {"dog", "puppy", "man"}


class _FixedDecoder:
    """Every step prefers "dog", then "cat", then <end>: a decoder with a fixed taste."""

    vocab_size = len(VOCAB)

    def initial_state(self, features):
        return [np.zeros((len(features), 1))]

    def step(self, tokens, states):
        steps = states[0] + 1
        logp = np.full((len(tokens), self.vocab_size), -20.0)
        logp[:, VOCAB.word_to_id["dog"]] = np.where(steps[:, 0] < 3, -0.1, -5)
        logp[:, VOCAB.word_to_id["cat"]] = np.where(steps[:, 0] < 3, -2.5, -5)
        logp[:, Vocabulary.END_ID] = np.where(steps[:, 0] < 3, -6, -0.01)
        return logp, [steps]


def test_a_held_back_word_gives_way_in_both_searches():
    features = np.zeros((2, 3))
    held = [held_back([{"tag": "cat", "score": 0.9}], VOCAB, 0.5), np.zeros(0, dtype=int)]
    penalties = penalty_rows(held, len(VOCAB), penalty=3.0)
    for found in (greedy(_FixedDecoder(), VOCAB, features, 5, penalties),
                  beam_search(_FixedDecoder(), VOCAB, features, 3, 5, penalties=penalties)):
        assert "dog" not in found[0].text and "cat" in found[0].text
        assert found[1].text.split()[0] == "dog"  # nothing held back: the taste wins


def test_merged_tags_are_calibrated_on_flickr8k_dev_select(lite0):
    """Reliability of the shipped calibration where it was fitted (Flickr8k dev-select, without
    the opt-in detector): the tags said to be p true are true about p of the time."""
    from captioner.captioning.dataset import load_split, read_records
    from captioner.encoders.features import extract_features
    from captioner.tagging.calibration import reliability
    from captioner.tagging.tagger import photo_tagger

    need(FLICKR)
    records = read_records(FLICKR / "Flickr8k.token.txt")
    names = {r.image for r in records if r.split == "dev"}
    records = [r for r in records if r.image in sorted(names)[:300] or r.split != "dev"]
    split = load_split(records, FLICKR / "Images", lite0, ("dev-select",), progress=False, kind="spatial")[0]
    probs = extract_features(split.paths, lite0, ("probabilities",), progress=False)
    tags = photo_tagger(lite0.name).tags(probs.features["probabilities"], split.features)
    result = reliability(tags, split.captions)
    assert result["ece"] < 0.05, result
    for row in result["bins"]:
        if row["tags"] >= 100:
            assert abs(row["predicted"] - row["observed"]) < 0.12, row
    # People are named: a person word is among the five best tags of most photos of people.
    from captioner.data.objects import caption_objects, reference_objects

    people = [i for i, refs in enumerate(split.captions) if "person" in reference_objects(refs)]
    named = sum(any("person" in caption_objects(t["tag"]) for t in tags[i][:5]) for i in people)
    assert named >= 0.8 * len(people), (named, len(people))
    assert SHARED_DATA.is_dir()
