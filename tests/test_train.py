"""Training runs (captioner.captioning.train): resume exactly, and refuse to mix runs."""

import numpy as np
import pytest
from test_decoder import CONFIG, synthetic

from captioner.captioning.config import TrainConfig
from captioner.captioning.train import Trainer
from captioner.data.text import Vocabulary
from captioner.errors import CaptionerError

SMALL = TrainConfig(**{**CONFIG.__dict__, "epochs": 3, "dropout": 0.3, "feature_dropout": 0.2})


@pytest.fixture(scope="module")
def data():
    train, dev = synthetic(10, seed=3), synthetic(2, seed=4)
    return train, dev, Vocabulary.build([c for caps in train[1] for c in caps], min_count=1)


def _interrupted_after_first_epoch(folder, data, monkeypatch):
    train, dev, vocab = data
    real = Trainer.end_epoch

    def end_then_die(self, epoch, logs):
        stop = real(self, epoch, logs)  # the checkpoint of this epoch is written...
        if epoch == 0:
            raise KeyboardInterrupt  # ...then the user presses Ctrl-C
        return stop

    monkeypatch.setattr(Trainer, "end_epoch", end_then_die)
    with pytest.raises(KeyboardInterrupt):
        Trainer(folder, vocab, SMALL, train, dev, progress=False).run()
    monkeypatch.undo()


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, data, monkeypatch):
    train, dev, vocab = data
    alone = Trainer(tmp_path / "alone", vocab, SMALL, train, dev, progress=False)
    weights = alone.run().get_weights()
    _interrupted_after_first_epoch(tmp_path / "cut", data, monkeypatch)
    resumed = Trainer(tmp_path / "cut", vocab, SMALL, train, dev, progress=False)
    again = resumed.run(resume=True).get_weights()
    assert [r["loss"] for r in resumed.state["history"]] == [r["loss"] for r in alone.state["history"]]
    for a, b in zip(weights, again):
        np.testing.assert_array_equal(a, b)


def test_resume_refuses_other_settings_and_another_vocabulary(tmp_path, data, monkeypatch):
    train, dev, vocab = data
    _interrupted_after_first_epoch(tmp_path, data, monkeypatch)
    wider = TrainConfig(**{**SMALL.__dict__, "units": 32})
    with pytest.raises(CaptionerError, match="other settings.*units 64 -> 32"):
        Trainer(tmp_path, vocab, wider, train, dev, progress=False).run(resume=True)
    other = Vocabulary.build(["a completely different caption"], min_count=1)
    with pytest.raises(CaptionerError, match="another vocabulary"):
        Trainer(tmp_path, other, SMALL, train, dev, progress=False).run(resume=True)
    with pytest.raises(CaptionerError, match="--resume"):
        Trainer(tmp_path, vocab, SMALL, train, dev, progress=False).run()
