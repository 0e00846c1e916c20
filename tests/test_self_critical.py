"""Self-critical fine-tuning (captioner.captioning.self_critical) on the synthetic scenes."""

import numpy as np
import pytest
from test_decoder import CONFIG, synthetic

from captioner.captioning.config import TrainConfig
from captioner.captioning.search import greedy
from captioner.captioning.self_critical import SelfCriticalTrainer
from captioner.captioning.train import Trainer
from captioner.data.text import Vocabulary
from captioner.evaluation.captions import evaluate_captions

# A short cross-entropy run leaves room to improve; fine-tuning then works on CIDEr-D alone.
START = TrainConfig(**{**CONFIG.__dict__, "epochs": 5})
TUNE = TrainConfig(**{**START.__dict__, "epochs": 3, "learning_rate": 1e-4, "monitor": "cider",
                      "batch_size": 8, "scst_samples": 5, "max_length": 10, "patience": 100})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    train, dev = synthetic(8, seed=5), synthetic(3, seed=6)
    vocab = Vocabulary.build([c for caps in train[1] for c in caps], min_count=1)
    folder = tmp_path_factory.mktemp("xe")
    Trainer(folder, vocab, START, train, dev, progress=False).run()
    return train, dev, vocab, folder


def _start(data):
    """A fresh copy of the cross-entropy model (fine-tuning changes the one it is given)."""
    train, dev, vocab, folder = data
    return Trainer(folder, vocab, START, train, dev, progress=False).run(resume=True)


def _cider(decoder, vocab, split):
    caps = greedy(decoder, vocab, split[0], max_length=TUNE.max_length)
    return evaluate_captions({i: c.text for i, c in enumerate(caps)}, dict(enumerate(split[1])))["CIDEr-D"]


@pytest.mark.parametrize("baseline", ["greedy", "samples"])
def test_fine_tuning_raises_the_cider_of_greedy_captions(tmp_path, data, baseline):
    train, dev, vocab, _ = data
    before = _cider(_start(data), vocab, dev)
    config = TrainConfig(**{**TUNE.__dict__, "scst_baseline": baseline})
    tuner = SelfCriticalTrainer(tmp_path, vocab, config, train, dev, _start(data), progress=False)
    tuned = tuner.run()
    history = tuner.state["history"]
    assert history[0]["epoch"] == 0 and history[0]["CIDEr-D"] == pytest.approx(before)
    # On the training images the greedy captions' reward rises, epoch after epoch...
    rewards = [row["greedy_reward"] for row in history[1:]]
    assert rewards[-1] > rewards[0] + 0.05, history
    # ...and the kept model writes better dev captions than the one it started from.
    assert tuner.state["best_epoch"] >= 1 and _cider(tuned, vocab, dev) > before + 5, history


def test_an_interrupted_fine_tuning_resumes_to_the_same_weights(tmp_path, data, monkeypatch):
    train, dev, vocab, _ = data
    two = TrainConfig(**{**TUNE.__dict__, "epochs": 2})
    alone = SelfCriticalTrainer(tmp_path / "alone", vocab, two, train, dev, _start(data),
                                progress=False).run().get_weights()
    real = SelfCriticalTrainer.end_epoch

    def end_then_die(self, epoch, logs):
        stop = real(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt
        return stop

    monkeypatch.setattr(SelfCriticalTrainer, "end_epoch", end_then_die)
    with pytest.raises(KeyboardInterrupt):
        SelfCriticalTrainer(tmp_path / "cut", vocab, two, train, dev, _start(data), progress=False).run()
    monkeypatch.undo()
    resumed = SelfCriticalTrainer(tmp_path / "cut", vocab, two, train, dev, _start(data),
                                  progress=False).run(resume=True).get_weights()
    for a, b in zip(alone, resumed):
        np.testing.assert_array_equal(a, b)
