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


def test_the_gradient_is_of_the_distribution_the_samples_came_from():
    """Samples never hold <pad>, <start> or <unk> (the search renormalises without them): the
    loss is -log p(word) under that same distribution, whatever logits those three have."""
    import keras

    from captioner.captioning.search import NEVER_WRITTEN
    from captioner.captioning.self_critical import sampled_crossentropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype("float32")
    logits[..., list(NEVER_WRITTEN)] += 5.0  # the model likes them: the unrestricted loss differs
    targets = np.array([[4, 5, 2], [6, 2, 0]])  # real words, <end> (2), then padding
    allowed = np.delete(np.arange(7), list(NEVER_WRITTEN))
    kept = logits[..., allowed]
    logp = kept - np.log(np.exp(kept).sum(-1, keepdims=True))
    expected = -np.take_along_axis(logp, np.searchsorted(allowed, targets)[..., None], -1)[..., 0]
    expected[targets == 0] = 0.0
    got = keras.ops.convert_to_numpy(sampled_crossentropy(targets, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    unrestricted = keras.ops.convert_to_numpy(
        keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True, ignore_class=0))
    assert not np.allclose(unrestricted, expected)
