"""The clip model earns its LSTM: tags that depend on frame order, learnt from real video files."""

import pytest

from captioner.data.synthetic import MOTIONS, TAGS, shape_clips
from captioner.data.video import sample_frames, write_video
from captioner.encoders.features import encode_images
from captioner.evaluation.tags import evaluate_tags, mean_average_precision
from captioner.video.config import ClipTrainConfig
from captioner.video.train import fit_clip_model, predict_tags, tag_matrix

FPS = 8.0


def _encoded_clips(folder, pairs, seed, encoder):
    """Write each synthetic clip as a video file, read it back at 8 fps, encode its frames.

    MJPG, not mp4v: mp4v codes most frames as changes from the one before, so the first
    frame comes back sharper than the rest and its content gives the ORDER away to a model
    that should not see it (mean pooling then scored 100 on the motion tags).
    """
    clips, tags = [], []
    for i, (frames, clip_tags) in enumerate(shape_clips(pairs, frames=8, size=96, seed=seed)):
        path = folder / f"clip{seed}_{i:03d}.avi"
        write_video(path, frames, fps=FPS)
        sampled = list(sample_frames(path, fps=FPS, size=encoder.input_size))
        assert len(sampled) == 8, f"{path}: read back {len(sampled)} frames"
        clips.append(encode_images([f.image for f in sampled], encoder)["pooled"])
        tags.append(clip_tags)
    return clips, tag_matrix(tags, TAGS)


@pytest.fixture(scope="module")
def data(tmp_path_factory, lite0):
    folder = tmp_path_factory.mktemp("clips")
    train = _encoded_clips(folder, 48, seed=1, encoder=lite0)
    dev = _encoded_clips(folder, 12, seed=2, encoder=lite0)
    test = _encoded_clips(folder, 18, seed=3, encoder=lite0)
    return train, dev, test


def _fit_and_score(data, pooling):
    (train_x, train_y), dev, (test_x, test_y) = data
    config = ClipTrainConfig(units=64, dropout=0.2, pooling=pooling, epochs=80, patience=15,
                             learning_rate=3e-3, batch_size=16, seed=0)
    model = fit_clip_model(train_x, train_y, None, config, validation=(*dev, None))
    scores = predict_tags(model, test_x, config.max_frames)
    motion = [TAGS.index(m) for m in MOTIONS]
    return evaluate_tags(scores, test_y), 100 * mean_average_precision(scores[:, motion], test_y[:, motion])


def test_lstm_learns_order_tags_mean_pooling_cannot(data):
    lstm, lstm_motion = _fit_and_score(data, "lstm")
    _, mean_motion = _fit_and_score(data, "mean")
    assert lstm["mAP"] > 90, lstm
    assert lstm_motion > 90
    # A clip and its reverse have the same frames, so a mean of frames cannot tell them apart:
    # on the order-only tags it stays near chance (each motion shares its frames with its pair).
    assert mean_motion < 70, mean_motion
    assert lstm_motion - mean_motion > 25
