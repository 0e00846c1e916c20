import time

import numpy as np
import pytest

from captioner.data.images import load_image, resize
from captioner.encoders import lite0 as lite0_module
from captioner.encoders.imagenet import class_names, top_k
from captioner.encoders.registry import get_encoder, list_encoders
from captioner.errors import EncoderError

CAT_CLASSES = {"Egyptian cat", "tabby", "tiger cat"}


def _probe(encoder, photos, name):
    path = next(p for p in photos if p.name.startswith(name))
    image = resize(load_image(path), encoder.input_size)[None]
    return top_k(encoder.encode(image)["probabilities"], 3)[0]


def test_lite0_recognises_cat_and_espresso(lite0, sample_photos):
    assert _probe(lite0, sample_photos, "chelsea")[0][0] in CAT_CLASSES
    assert _probe(lite0, sample_photos, "coffee")[0][0] == "espresso"


def test_fast_runner_matches_keras_reference(lite0, sample_photos):
    images = np.stack([resize(load_image(p), 224) for p in sample_photos])
    fast = lite0.encode(images)
    ref = {k: np.asarray(v) for k, v in lite0.model.predict_on_batch(images.astype(np.float32)).items()}
    for kind in ("pooled", "spatial", "probabilities"):
        np.testing.assert_allclose(fast[kind], ref[kind], atol=1e-3, rtol=1e-3)
    assert (fast["probabilities"].argmax(1) == ref["probabilities"].argmax(1)).all()


def test_lite0_shapes(lite0):
    assert lite0.spatial_shape == (7, 7, 1280)
    assert lite0.feature_dim == 1280
    assert len(class_names()) == 1000 and class_names()[0] == "tench"


def test_conversion_happens_once_then_cache_is_reused(tmp_path, monkeypatch):
    calls = []
    real = lite0_module.read_state_dict
    monkeypatch.setattr(lite0_module, "read_state_dict", lambda p: calls.append(p) or real(p))
    monkeypatch.setenv("CAPTIONER_CACHE", str(tmp_path))
    first = get_encoder(fast=False)
    assert len(calls) == 1
    cached = list((tmp_path / "encoders").glob("*/*.weights.h5"))
    assert len(cached) == 1
    second = get_encoder(fast=False)
    assert len(calls) == 1, "the second load must read the cached .weights.h5, not the .pth"
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(first.encode(x)["pooled"], second.encode(x)["pooled"], atol=1e-6)


@pytest.mark.parametrize("name", list_encoders())
def test_every_encoder_shapes_with_random_weights(name):
    encoder = get_encoder(name, weights=None)
    x = np.random.default_rng(1).uniform(0, 255, (2, encoder.input_size, encoder.input_size, 3))
    out = encoder.encode(x)
    assert out["pooled"].shape == (2, encoder.feature_dim)
    assert out["spatial"].shape == (2, *encoder.spatial_shape)
    assert encoder.spatial_shape[-1] == encoder.feature_dim
    assert np.isfinite(out["pooled"]).all()


def test_unknown_encoder_lists_choices():
    with pytest.raises(EncoderError, match="efficientnet_lite0"):
        get_encoder("vgg99")


def test_keras_download_fails_fast_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    start = time.monotonic()
    try:
        get_encoder("mobilenet_v3_small", weights="imagenet")
    except EncoderError as exc:
        message = str(exc)
    else:
        pytest.skip("this machine is online: Keras downloaded the weights")
    assert time.monotonic() - start < 60
    assert ".h5" in message and str(tmp_path / "models") in message


# The keras.applications module whose preprocess_input each backbone was trained with.
FAMILIES = {"mobilenet_v3_small": "mobilenet_v3", "mobilenet_v3_large": "mobilenet_v3",
            "efficientnet_b0": "efficientnet", "inception_v3": "inception_v3", "resnet50": "resnet50"}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_keras_backbones_see_pixels_as_their_family_preprocesses_them(name):
    """What reaches the backbone equals that family's own preprocess_input on the same pixels."""
    import importlib

    import keras

    encoder = get_encoder(name, weights=None)
    names = {layer.name for layer in encoder.model.layers}
    fed = (keras.Model(encoder.model.input, encoder.model.get_layer("normalize").output)
           if "normalize" in names else (lambda x: x))  # Keras' own preprocessing is inside
    rng = np.random.default_rng(2)
    pixels = rng.uniform(0, 255, (2, encoder.input_size, encoder.input_size, 3)).astype(np.float32)
    pixels[0, :4, :4] = [255, 0, 0]  # a pure red corner: a channel-order slip cannot hide
    family = importlib.import_module(f"keras.applications.{FAMILIES[name]}")
    expected = np.asarray(family.preprocess_input(pixels.copy()))
    np.testing.assert_allclose(np.asarray(fed(pixels)), expected, rtol=1e-5, atol=1e-3)


def test_a_cold_start_converts_once_and_a_warm_one_needs_no_keras(tmp_path, monkeypatch, capfd):
    """The first load converts Lite0 to TFLite (about 30 s) and says so; the next one is quiet,
    runs the cached file without building the Keras model, and gives the same features. The
    cache folder is named by the conversion code's hash, so changed code converts anew."""
    from pathlib import Path

    from captioner.encoders import registry

    monkeypatch.setenv("CAPTIONER_CACHE", str(tmp_path))
    cold = get_encoder()
    assert capfd.readouterr().err.startswith("preparing the efficientnet_lite0 encoder for this machine")
    warm = get_encoder()
    assert capfd.readouterr().err == ""
    assert warm._model is None and warm.outputs == cold.outputs  # shapes read from the file
    assert warm.layers_digest == cold.layers_digest  # the feature cache's key, without Keras
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    np.testing.assert_array_equal(warm.encode(pixels)["pooled"], cold.encode(pixels)["pooled"])

    first = {p.parent.name for p in (tmp_path / "encoders").rglob("*.tflite")}
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes",
                        lambda p: real(p) + (b"# changed" if p.name == "tflite_runner.py" else b""))
    assert registry.code_digest(*registry.CONVERSION_CODE) not in first
