"""Self-critical sequence training (Rennie et al. 2017): fine-tune a trained decoder on CIDEr-D.

Cross-entropy teaches the next word of a human caption; the captions are then judged by
CIDEr-D on whole sentences the model wrote itself. Here, for each batch of training images,
the decoder samples ``scst_samples`` captions per image and writes its greedy caption; each
sample's reward is its CIDEr-D against the image's references minus a baseline: the greedy
caption's (the "self-critical" baseline) or, with ``scst_baseline="samples"``, the mean of the
image's other samples (Luo 2020). The step raises the log-probability of the samples that beat
the baseline and lowers the others'. The references' document frequencies come from
the training captions; an attention decoder keeps its regulariser. Checkpoints, early
stopping on the dev-select half and resume are the cross-entropy ``Trainer``'s; each epoch's
order and samples depend on (seed, epoch) alone.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, fields
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from captioner.captioning.bundle import CHECKPOINTS, check_target
from captioner.captioning.config import FINETUNE_DEFAULTS, MONITORS, TrainConfig
from captioner.captioning.numpy_step import numpy_decoder
from captioner.captioning.search import NEVER_WRITTEN, greedy_ids, sample
from captioner.captioning.train import Trainer, load_splits
from captioner.data.text import Vocabulary, tokenize
from captioner.encoders.base import Encoder
from captioner.evaluation.captions import CiderD
from captioner.files import atomic_path


class SelfCriticalTrainer(Trainer):
    """A ``Trainer`` that starts from a trained decoder and maximises CIDEr-D."""

    def __init__(self, folder: Path, vocab: Vocabulary, config: TrainConfig, train, dev,
                 start: keras.Model, progress: bool = True):
        super().__init__(folder, vocab, config, train, dev, progress=progress)
        self.start = start
        self.reward = CiderD([[tokenize(c) for c in caps] for caps in train[1]])

    def start_model(self):
        """The trained decoder, recompiled for fine-tuning; it is the best so far (epoch 0)."""
        self.decoder = self.start
        self.decoder.compile(
            optimizer=keras.optimizers.Adam(self.config.learning_rate, clipnorm=5.0),
            loss=sampled_crossentropy)
        row = {"epoch": 0, **self.dev_scores(self.decoder)}
        self.state.update(history=[row], best=row[MONITORS[self.config.monitor]], best_epoch=0)
        with atomic_path(self.best_path, suffix=".weights.h5") as tmp:
            self.decoder.save_weights(tmp)
        return self.decoder

    def fit(self, start: int) -> None:
        config = self.config
        # The gradient must be of the distribution the samples came from: no dropout.
        for layer in self.decoder._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        features, _ = self.train_data
        for epoch in range(start, config.epochs):
            rng = np.random.default_rng([config.seed, epoch])
            order = rng.permutation(len(features))
            totals = []
            label = f"self-critical epoch {epoch + 1}"
            for first in tqdm(range(0, len(order), config.batch_size), desc=label, unit="batch",
                              disable=not self.verbose):
                index = np.sort(order[first:first + config.batch_size])
                totals.append(self.step(np.asarray(features[index], dtype="float32"), index, rng))
            loss, sampled, greedy_reward = np.mean(totals, axis=0)
            # The rewards of this epoch's samples and greedy captions on the training images
            # (CIDEr-D, 0-10): the first is what the policy gradient raises.
            logs = {"loss": loss, "sample_reward": sampled, "greedy_reward": greedy_reward}
            if self.end_epoch(epoch, logs):
                break

    def step(self, features: np.ndarray, index: np.ndarray, rng: np.random.Generator):
        """One policy-gradient step on a batch of images; returns the loss and the mean
        rewards of the sampled and of the greedy captions."""
        k, max_length = self.config.scst_samples, self.config.max_length
        now = numpy_decoder(self.decoder)  # this step's weights, for the searches
        greedy_rewards = self._rewards(greedy_ids(now, features, max_length), index)
        drawn = sample(now, np.repeat(features, k, axis=0), rng, max_length)
        rewards = self._rewards(drawn, np.repeat(index, k))
        if self.config.scst_baseline == "samples":
            # Each sample against the mean of its image's k - 1 others: unbiased, and zero-mean
            # per image, so as many captions are pushed up as down.
            per_image = rewards.reshape(-1, k)
            baseline = (per_image.sum(1, keepdims=True) - per_image) / (k - 1)
            advantage = (per_image - baseline).ravel()
        else:
            advantage = rewards - np.repeat(greedy_rewards, k)
        inputs = np.concatenate([np.full((len(drawn), 1), Vocabulary.START_ID), drawn[:, :-1]], 1)
        # Cross-entropy on the model's own samples, weighted by their advantage, is the
        # REINFORCE gradient: -advantage * log p(sample).
        weights = advantage[:, None] * (drawn != Vocabulary.PAD_ID)
        loss = self.decoder.train_on_batch(
            (np.repeat(features, k, axis=0), inputs.astype("int32")), drawn.astype("int32"),
            sample_weight=weights.astype("float32"))
        return float(np.ravel(loss)[0]), float(rewards.mean()), float(greedy_rewards.mean())

    def _rewards(self, ids: np.ndarray, owners: np.ndarray) -> np.ndarray:
        return np.array([self.reward.score(tokenize(self.vocab.decode(row)), int(i))
                         for row, i in zip(ids, owners)])


@keras.saving.register_keras_serializable(package="captioner")  # checkpoints keep the loss
def sampled_crossentropy(targets, logits):
    """-log p(word) under the distribution the samples were drawn from: the decoder's, with the
    words never written (search.NEVER_WRITTEN) taken out and the rest renormalised; padding
    positions count 0."""
    banned = np.zeros(logits.shape[-1], "float32")
    banned[list(NEVER_WRITTEN)] = -1e9
    return keras.losses.sparse_categorical_crossentropy(targets, logits + banned, from_logits=True,
                                                        ignore_class=Vocabulary.PAD_ID)


def finetune_config(trained: dict, **changes) -> TrainConfig:
    """The fine-tuning run's config: the trained model's, then FINETUNE_DEFAULTS, then ``changes``."""
    known = {f.name for f in fields(TrainConfig)}
    base = {k: v for k, v in trained.items() if k in known}
    return TrainConfig(**{**base, **FINETUNE_DEFAULTS,
                          **{k: v for k, v in changes.items() if v is not None}})


def finetune_captioner(decoder: keras.Model, vocab: Vocabulary, card: dict, data: Path,
                       images: Path, out: Path, encoder: Encoder, config: TrainConfig,
                       resume: bool = False, overwrite: bool = False, command: str | None = None,
                       progress: bool = True):
    """Fine-tune a trained decoder on CIDEr-D with the train split of ``data``; returns the
    decoder, the card (the trained one plus a ``finetune`` entry) and the dev halves."""
    check_target(out)
    _, (train, select, report), problems = load_splits(data, images, encoder,
                                                       decoder.feature_kind, progress)
    folder = Path(out) / CHECKPOINTS
    if overwrite:
        shutil.rmtree(folder, ignore_errors=True)
    trainer = SelfCriticalTrainer(folder, vocab, config, (train.features, train.captions),
                                  (select.features, select.captions), decoder, progress=progress)
    tuned = trainer.run(resume=resume)
    card = {k: v for k, v in card.items() if k not in ("decoding", "scores", "dev_scores")}
    card["finetune"] = {"method": "self-critical sequence training, CIDEr-D reward",
                        "command": command, "captions": str(data), "train_images": len(train.names),
                        "config": asdict(config), "seconds": trainer.seconds(),
                        "best_epoch": trainer.state["best_epoch"],
                        "history": trainer.state["history"], "problems": problems[:50]}
    return tuned, card, select, report
