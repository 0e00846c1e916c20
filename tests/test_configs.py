"""The knobs of runs (captioning/config, video/config) are checked where they are made, so the
API refuses what the CLI refuses."""

import math

import pytest

from captioner.captioning.config import TrainConfig
from captioner.errors import CaptionerError
from captioner.video.config import ClipTrainConfig, TagOptions


@pytest.mark.parametrize("options", [
    {"fps": math.inf}, {"fps": math.nan}, {"fps": -1}, {"clip_seconds": math.inf},
    {"clip_seconds": 1e-4}, {"overlap": -0.5}, {"overlap": math.nan}, {"top_k": -3},
    {"top_k": 2.5}, {"clip_seconds": 2, "overlap": 3}, {"clip_seconds": 0.5, "overlap": 0.49999999},
    {"clip_seconds": 1, "overlap": 0.999}, {"clip_caption": "middle frame"},
])
def test_tag_options_refuse_numbers_that_would_hang_or_flood(options):
    with pytest.raises(CaptionerError):
        TagOptions(**options)


def test_tag_options_keep_sane_numbers():
    options = TagOptions(clip_seconds=2, overlap=0.5, fps=5, top_k=3)
    assert (options.clip_seconds, options.overlap, options.fps, options.top_k) == (2, 0.5, 5, 3)


@pytest.mark.parametrize("config, field", [
    (TrainConfig, {"learning_rate": math.nan}), (TrainConfig, {"epochs": -2}),
    (TrainConfig, {"dropout": 1.0}), (TrainConfig, {"monitor": "accuracy"}),
    (ClipTrainConfig, {"max_frames": 0}), (ClipTrainConfig, {"pooling": "max"}),
])
def test_training_configs_refuse_bad_knobs(config, field):
    with pytest.raises(CaptionerError):
        config(**field)
