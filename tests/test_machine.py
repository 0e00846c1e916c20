"""captioner.machine: the cores a process may use, and work split over them."""

import threading

import numpy as np
import pytest

from captioner import machine


def test_work_split_over_every_core_comes_back_whole_and_in_order(monkeypatch):
    from threadpoolctl import threadpool_info

    monkeypatch.setattr(machine, "cores", lambda: 3)
    calls = []

    def run(rows: slice) -> list:
        blas = {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
        calls.append((rows, threading.current_thread().name, blas))
        return list(range(rows.start, rows.stop))

    assert machine.on_every_core(run, 100) == list(range(100))
    assert sorted((c[0].start, c[0].stop) for c in calls) == [(0, 33), (33, 66), (66, 100)]
    assert all(name.startswith("captioner-core") and blas <= {1} for _, name, blas in calls)
    calls.clear()
    assert machine.on_every_core(run, 20) == list(range(20))  # too few rows to split
    assert [c[0] for c in calls] == [slice(0, 20)]


@pytest.mark.parametrize("members", [1, 2])
@pytest.mark.parametrize("beam", [1, 3])
def test_a_search_split_over_cores_writes_the_captions_of_one_call(beam, members, monkeypatch):
    """Also for an ensemble, whose searches keep their layout on it: each piece has its own."""
    from test_numpy_step import VOCAB, _decoder

    from captioner.captioning.captioner import Captioner
    from captioner.captioning.ensemble import Ensemble

    decoders = [_decoder("attention", seed=13 + i)[0] for i in range(members)]
    shape = _decoder("attention", seed=13)[1]
    decoder = decoders[0] if members == 1 else Ensemble(decoders)
    captioner = Captioner(decoder, VOCAB, {"encoder": "efficientnet_lite0", "decoding": {"beam": beam}})
    features = np.random.default_rng(14).random((40, *shape), dtype="float32")
    constraints = [[{10 + i % 7}] if i % 3 else [] for i in range(40)]
    monkeypatch.setattr(machine, "cores", lambda: 1)
    one = captioner.caption_features(features, constraints=constraints)
    monkeypatch.setattr(machine, "cores", lambda: 2)
    split = captioner.caption_features(features, constraints=constraints)
    assert [c.text for c in split] == [c.text for c in one]
    assert [c.score for c in split] == pytest.approx([c.score for c in one], abs=1e-6)


@pytest.mark.parametrize("shortlist", [None, 20])
def test_at_beam_1_a_photo_without_constraints_gets_its_caption_whatever_its_batch(shortlist):
    """Greedy for a photo nothing constrains, beside photos that search with constraints:
    its caption and score are those it gets alone. Without a shortlist this failed before the
    fix (such photos went through a beam of 1, which goes on past a finished caption); with one,
    it fails if the greedy photos read a shortlist holding their neighbours' constraint words."""
    from test_numpy_step import VOCAB, _decoder

    from captioner.captioning.captioner import Captioner

    decoder, shape = _decoder("attention", seed=13)
    decoding = {"beam": 1, "length_penalty": 1.0, **({"shortlist": shortlist} if shortlist else {})}
    captioner = Captioner(decoder, VOCAB, {"encoder": "efficientnet_lite0", "decoding": decoding})
    features = np.random.default_rng(15).random((30, *shape), dtype="float32")
    constraints = [[] if i % 2 else [set(range(20, len(VOCAB)))] for i in range(30)]
    mixed = captioner.caption_features(features, constraints=constraints)
    free = [i for i in range(30) if i % 2]
    alone = captioner.caption_features(features[free], constraints=[[] for _ in free])
    assert [mixed[i].text for i in free] == [c.text for c in alone]
    assert [mixed[i].score for i in free] == pytest.approx([c.score for c in alone], abs=1e-6)
