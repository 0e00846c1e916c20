"""Training runs (captioner.captioning.train): resume exactly, and refuse to mix runs."""

import numpy as np
import pytest
from test_decoder import CONFIG, SCENES, synthetic

from captioner.captioning.config import TrainConfig
from captioner.captioning.search import next_words
from captioner.captioning.train import Trainer
from captioner.data.text import Vocabulary
from captioner.errors import CaptionerError

SMALL = TrainConfig(**{**CONFIG.__dict__, "epochs": 3, "dropout": 0.3, "feature_dropout": 0.2,
                       "lr_decay": 0.5})


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
    # The learning rate, decayed after the epochs that were not the best, resumes as it was.
    assert [r["learning_rate"] for r in resumed.state["history"]] == \
        [r["learning_rate"] for r in alone.state["history"]]


def test_the_learning_rate_shrinks_after_each_epoch_that_is_not_the_best(tmp_path, data):
    train, dev, vocab = data
    # Dev references that share no word with the training captions: CIDEr-D stays 0, so only
    # the first epoch is the best and each later one halves the next one's rate.
    unrelated = (dev[0], [["zebras graze on the savanna"] for _ in dev[1]])
    config = TrainConfig(**{**SMALL.__dict__, "monitor": "cider"})
    trainer = Trainer(tmp_path, vocab, config, train, unrelated, progress=False)
    trainer.run()
    assert [r["CIDEr-D"] for r in trainer.state["history"]] == [0.0, 0.0, 0.0]
    assert trainer.state["best_epoch"] == 1
    rates = [r["learning_rate"] for r in trainer.state["history"]]
    assert rates == pytest.approx([SMALL.learning_rate, SMALL.learning_rate, SMALL.learning_rate / 2])


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


def test_language_model_pretraining_gives_a_word_no_photo_showed_a_usable_place(tmp_path, data):
    """'puppies' is only in the caption text, used where the photos' captions say 'dogs': after
    pre-training the decoder carries on after it as after 'dogs', and ranks it far higher."""
    train, dev, _ = data
    seen = [c for caps in train[1] for c in caps]
    text = [c.replace("dogs", "puppies") for caps in SCENES for c in caps] * 20 + seen
    vocab = Vocabulary.build(seen + text, min_count=1)
    dogs = train[0][SCENES.index(["two green dogs run on grass", "two green dogs are running"])]
    found = {}
    for lm_epochs in (0, 5):
        config = TrainConfig(**{**CONFIG.__dict__, "epochs": 8, "lm_epochs": lm_epochs})
        decoder = Trainer(tmp_path / str(lm_epochs), vocab, config, train, dev, lm_captions=text,
                          progress=False).run()
        after = dict(next_words(decoder, vocab, dogs, "two green puppies", k=len(vocab)))
        before = dict(next_words(decoder, vocab, dogs, "two green", k=len(vocab)))
        found[lm_epochs] = (after["run"] + after["are"], before["puppies"], max(after, key=after.get))
    assert found[5][2] in ("run", "are"), found
    assert found[5][0] > found[0][0] + 0.2, found
    assert found[5][1] > 3 * found[0][1], found
