"""The knobs of a captioner training run, in a module light enough for ``captioner --help``."""

from __future__ import annotations

from dataclasses import dataclass

from captioner.checks import check_fields
from captioner.errors import CaptionerError

MONITORS = {"loss": "dev_loss", "bleu4": "BLEU-4", "cider": "CIDEr-D"}
DECODERS = ("show_tell", "attention")
# How a run spreads over devices: one device; every GPU (or logical CPU device) of one
# machine; several machines, as TF_CONFIG names them. Not a TrainConfig knob: it changes
# where the same computation runs, not its result, so a run may resume under another.
STRATEGIES = ("default", "mirrored", "multiworker")
# What a self-critical sample's reward is measured against: the greedy caption's (Rennie et
# al. 2017) or the mean of the image's other samples (Luo 2020), which is zero-mean per image.
SCST_BASELINES = ("greedy", "samples")
# Sane ranges of the numeric knobs: a flag outside them is a typo, told at once.
BOUNDS = {"embed_dim": (1, 8192), "units": (1, 8192), "num_layers": (1, 8), "dropout": (0, 0.95),
          "feature_dropout": (0, 0.95), "learning_rate": (1e-7, 1.0), "batch_size": (1, 65536),
          "epochs": (0, 100_000), "patience": (1, 100_000), "min_count": (1, 1_000_000),
          "max_length": (1, 200), "seed": (0, 2**31 - 1), "lm_epochs": (0, 100_000),
          "attention_dim": (1, 8192), "attention_penalty": (0, 100), "scst_samples": (1, 100),
          "lr_decay": (0.01, 1.0)}
# What self-critical fine-tuning changes in the trained model's config unless told otherwise:
# a small step (the model is already good) and few epochs (each is costly: sampling + scoring).
# The batch counts images (each gives scst_samples captions).
FINETUNE_DEFAULTS = {"epochs": 3, "learning_rate": 5e-5, "batch_size": 32, "patience": 2,
                     "monitor": "cider"}
FINETUNE_FLAGS = ("epochs", "learning_rate", "batch_size", "scst_samples", "scst_baseline",
                  "patience", "lr_decay", "seed")


@dataclass
class TrainConfig:
    """Every knob of a training run; saved in the bundle's card."""

    embed_dim: int = 256
    units: int = 512
    num_layers: int = 1
    dropout: float = 0.5
    feature_dropout: float = 0.5
    learning_rate: float = 1e-3
    lr_decay: float = 1.0  # learning rate times this after an epoch that is not the best (1: constant)
    batch_size: int = 64
    epochs: int = 30
    patience: int = 5
    monitor: str = "cider"
    min_count: int = 3
    max_length: int = 20
    seed: int = 0
    lm_epochs: int = 0  # language-model pre-training epochs on caption text alone
    decoder: str = "show_tell"  # or "attention": soft attention over the spatial map
    attention_dim: int = 256
    attention_penalty: float = 1.0  # weight of the doubly stochastic attention regulariser
    scst_samples: int = 5  # self-critical fine-tuning: captions sampled per image and step
    scst_baseline: str = "greedy"  # or "samples": the mean reward of the image's other samples

    def __post_init__(self) -> None:
        check_fields(self, BOUNDS)
        if self.monitor not in MONITORS:
            raise CaptionerError(f"unknown monitor {self.monitor!r}; choose from {', '.join(MONITORS)}")
        if self.decoder not in DECODERS:
            raise CaptionerError(f"unknown decoder {self.decoder!r}; choose from {', '.join(DECODERS)}")
        if self.scst_baseline not in SCST_BASELINES:
            raise CaptionerError(f"unknown self-critical baseline {self.scst_baseline!r}; choose "
                                 f"from {', '.join(SCST_BASELINES)}")
        if self.scst_baseline == "samples" and self.scst_samples < 2:
            raise CaptionerError("the 'samples' baseline needs --scst-samples 2 or more")
