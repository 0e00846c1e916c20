"""How videos are cut, tagged and trained on, in a module light enough for ``captioner --help``."""

from __future__ import annotations

from dataclasses import dataclass

from captioner.checks import check_fields, number_in
from captioner.errors import CaptionerError

MAX_CLIP_SECONDS = 24 * 3600.0  # one clip a day at most: longer is surely a typo
MIN_CLIP_SECONDS = 0.5  # shorter clips hold at most a frame or two at the usual rates
MAX_FPS = 60.0  # sampling faster than common videos decode gains nothing
MIN_FPS = 0.01  # one frame every 100 s
MIN_STRIDE = 0.25  # seconds between clip starts: closer ones flood a timeline with clips
# How the image captioner captions a clip: from all its frames at once (word distributions
# averaged over the frames at every step), or from its most representative frame alone.
CLIP_CAPTIONS = ("frames", "representative")
CLIP_TRAIN_BOUNDS = {"units": (1, 8192), "dropout": (0, 0.95), "learning_rate": (1e-7, 1.0),
                     "batch_size": (1, 65536), "epochs": (0, 100_000), "patience": (1, 100_000),
                     "max_frames": (1, 10_000), "caption_units": (1, 8192),
                     "caption_embed_dim": (1, 8192), "max_length": (1, 200),
                     "min_count": (1, 1_000_000), "seed": (0, 2**31 - 1)}


@dataclass
class TagOptions:
    """How a video is cut and tagged; one place for the defaults and the bounds the CLI shows."""

    clip_seconds: float = 5.0
    overlap: float = 0.0
    fps: float | None = None  # frames sampled per second; None: the bundle's training rate, else 1
    top_k: int = 5
    shots: bool = False
    # One of CLIP_CAPTIONS. On the six MSVD clips the representative frame's caption scored
    # CIDEr-D 46.3 against 37.1 for all frames averaged (benchmarks/video_real.py, README).
    clip_caption: str = "representative"

    def __post_init__(self) -> None:
        self.clip_seconds = number_in("clip seconds", self.clip_seconds, MIN_CLIP_SECONDS,
                                      MAX_CLIP_SECONDS)
        self.overlap = number_in("overlap", self.overlap, 0.0, MAX_CLIP_SECONDS)
        if self.clip_seconds - self.overlap < MIN_STRIDE:
            raise CaptionerError(
                f"overlap ({self.overlap:g} s) must be shorter than a clip ({self.clip_seconds:g} s) "
                f"by at least {MIN_STRIDE:g} s, or clips would start almost on top of each other")
        if self.fps is not None:
            self.fps = number_in("fps", self.fps, MIN_FPS, MAX_FPS)
        self.top_k = number_in("top k", self.top_k, 1, 1000, integer=True)
        if self.clip_caption not in CLIP_CAPTIONS:
            raise CaptionerError(f"unknown clip caption {self.clip_caption!r}; choose from "
                                 f"{', '.join(CLIP_CAPTIONS)}")


@dataclass
class ClipTrainConfig:
    """Every knob of a clip-model run; saved in the bundle's card."""

    units: int = 128
    dropout: float = 0.3
    pooling: str = "lstm"
    learning_rate: float = 3e-3
    batch_size: int = 16
    epochs: int = 40
    patience: int = 8
    max_frames: int = 32
    caption_units: int = 256
    caption_embed_dim: int = 128
    max_length: int = 20
    min_count: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, CLIP_TRAIN_BOUNDS)
        if self.pooling not in ("lstm", "mean"):
            raise CaptionerError(f"unknown pooling {self.pooling!r}; choose lstm or mean")
