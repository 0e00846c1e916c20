"""Attention maps a person can look at (captioner.results.figures and Captioner(attention=...))."""

import numpy as np
import pytest
from PIL import Image

from captioner.captioning.bundle import Bundle, save_bundle
from captioner.captioning.captioner import Captioner
from captioner.captioning.config import TrainConfig
from captioner.captioning.train import build_decoder
from captioner.data.text import Vocabulary
from captioner.errors import CaptionerError
from captioner.results.figures import PANEL, attention_figure


def test_a_figure_has_the_photo_and_one_lit_panel_per_word():
    photo = np.full((60, 80, 3), 200, np.uint8)
    weights = np.zeros((3, 7, 7))
    weights[0, 0, 0] = weights[1, 6, 6] = weights[2, 3, 3] = 1.0
    figure = attention_figure(photo, ["a", "dog", "runs"], weights)
    assert figure.size == (4 * PANEL, PANEL + 22)
    pixels = np.asarray(figure)
    first_word = pixels[:PANEL, PANEL : 2 * PANEL]
    assert first_word[5, 5].mean() > 150 > first_word[-5, -5].mean()  # lit where it looked


@pytest.fixture(scope="module")
def attention_bundle(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(5)  # an untrained model: fixed, so its captions are too
    vocab = Vocabulary.build(["a dog runs on the grass", "a cat sits"], min_count=1)
    config = TrainConfig(decoder="attention", units=16, embed_dim=8, attention_dim=8, min_count=1)
    decoder = build_decoder(vocab, (49, 1280), config)
    folder = tmp_path_factory.mktemp("bundles") / "attention"
    return save_bundle(folder, Bundle(decoder, {"encoder": "efficientnet_lite0",
                                                "decoding": {"beam": 1}}, vocab=vocab))


def test_caption_with_attention_gives_weights_and_pngs(attention_bundle, sample_photos, tmp_path):
    captioner = Captioner.load(attention_bundle)
    rows = captioner.caption(sample_photos[:2], attention=tmp_path / "maps", progress=False)
    for row in rows:
        weights = np.asarray(row["attention"]).reshape(-1, 49)  # an empty caption has none
        assert weights.shape == (len(row["caption"].split()), 49)
        np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-3)
    pngs = sorted((tmp_path / "maps").glob("*.png"))
    assert len(pngs) == 2
    with Image.open(pngs[0]) as figure:
        figure.load()
        assert figure.format == "PNG" and figure.width >= 2 * PANEL


def test_a_show_and_tell_model_says_it_has_no_attention(sample_photos):
    bundled = Captioner.from_pretrained()
    show_tell = build_decoder(bundled.vocab, 1280, TrainConfig(embed_dim=8, units=8))
    with pytest.raises(CaptionerError, match="need an attention decoder"):
        Captioner(show_tell, bundled.vocab, bundled.card).caption(sample_photos[:1], attention=True,
                                                                  progress=False)
