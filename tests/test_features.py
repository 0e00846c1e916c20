import numpy as np
import pytest
from conftest import write_photo

from captioner.encoders.features import FeatureCache, extract_features, feature_matrix
from captioner.files import file_digest


def _count_calls(encoder, monkeypatch):
    calls = []
    real = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda batch, kinds=None: calls.append(len(batch)) or real(batch, kinds))
    return calls


def test_features_skip_bad_files_and_keep_order(tmp_path, lite0, sample_photos, monkeypatch):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not a picture")
    paths = [sample_photos[0], tmp_path / "empty.jpg", sample_photos[1], tmp_path / "text.png",
             tmp_path / "missing.jpg", sample_photos[2]]
    cache = FeatureCache(lite0, tmp_path / "cache")
    result = extract_features(paths, lite0, kinds=("pooled", "spatial"), batch_size=2,
                              cache=cache, progress=False)
    assert result.paths == [sample_photos[0], sample_photos[1], sample_photos[2]]
    assert result.features["pooled"].shape == (3, 1280)
    assert result.features["spatial"].shape == (3, 7, 7, 1280)
    reasons = dict(result.errors)
    assert set(reasons) == {tmp_path / "empty.jpg", tmp_path / "text.png", tmp_path / "missing.jpg"}
    assert "empty" in reasons[tmp_path / "empty.jpg"]
    assert "not an image" in reasons[tmp_path / "text.png"]
    # pooled is the mean of the spatial map (kept as float16: a few 1e-4 apart)
    np.testing.assert_allclose(result.features["spatial"].astype(np.float32).mean((1, 2)),
                               result.features["pooled"], atol=2e-3)


def test_second_run_is_served_from_cache(tmp_path, lite0, sample_photos, monkeypatch):
    cache = FeatureCache(lite0, tmp_path / "cache")
    calls = _count_calls(lite0, monkeypatch)
    first = extract_features(sample_photos, lite0, cache=cache, progress=False)
    assert sum(calls) == len(sample_photos)
    calls.clear()
    # a renamed copy of a photo is the same content: also a cache hit
    copy = tmp_path / "renamed.png"
    copy.write_bytes(sample_photos[1].read_bytes())
    second = extract_features([*sample_photos, copy], lite0, cache=cache, progress=False)
    assert calls == []
    np.testing.assert_array_equal(first.features["pooled"], second.features["pooled"][:-1])
    np.testing.assert_array_equal(second.features["pooled"][1], second.features["pooled"][-1])


def test_cache_key_includes_kind_and_weights(tmp_path, lite0, monkeypatch):
    path = write_photo(tmp_path / "p.jpg")
    cache = FeatureCache(lite0, tmp_path / "cache")
    extract_features([path], lite0, kinds=("pooled",), cache=cache, progress=False)
    calls = _count_calls(lite0, monkeypatch)
    extract_features([path], lite0, kinds=("pooled", "spatial"), cache=cache, progress=False)
    assert calls == [1], "a kind not cached yet must be computed"


def test_cache_key_changes_with_the_code_and_the_layers(lite0, monkeypatch):
    """Features made by other preprocessing or another network are never served from the cache."""
    from pathlib import Path

    from captioner.encoders import features

    before = FeatureCache(lite0).root
    assert FeatureCache(lite0).root == before  # the same encoder, the same place
    real = Path.read_bytes

    def edited(path):
        data = real(path)
        return data + b"\n# a changed resize" if path.name == "images.py" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert FeatureCache(lite0).root != before
    monkeypatch.undo()
    other = features.Encoder(lite0.name, lite0.input_size, lite0.model, lite0.weights_id)
    monkeypatch.setattr(other.model, "get_config", lambda: {"layers": "another network"})
    assert FeatureCache(other).root != before


def test_features_of_random_weights_are_never_cached(tmp_path, monkeypatch):
    import pytest

    from captioner.encoders.registry import get_encoder
    from captioner.errors import CaptionerError

    random = get_encoder("mobilenet_v3_small", weights=None)
    path = write_photo(tmp_path / "p.jpg")
    calls = _count_calls(random, monkeypatch)
    first = extract_features([path], random, progress=False)
    second = extract_features([path], random, progress=False)
    assert calls == [1, 1], "random weights: every run encodes again"
    np.testing.assert_array_equal(first.features["pooled"], second.features["pooled"])
    with pytest.raises(CaptionerError, match="random"):
        FeatureCache(random)


def test_no_cache_and_all_bad(tmp_path, lite0):
    (tmp_path / "x.jpg").write_bytes(b"")
    result = extract_features([tmp_path / "x.jpg"], lite0, cache=False, progress=False)
    assert result.paths == [] and result.features["pooled"].shape == (0, 1280)
    assert len(result.errors) == 1


def test_spatial_maps_go_to_a_float16_memory_map_reused_on_the_next_call(tmp_path, lite0,
                                                                          sample_photos, monkeypatch):
    from captioner.encoders.features import feature_matrix

    (tmp_path / "bad.jpg").write_bytes(b"not a photo")
    paths = [sample_photos[0], tmp_path / "bad.jpg", *sample_photos[1:3]]
    result = feature_matrix(paths, lite0, "spatial", progress=False)
    maps = result.features["spatial"]
    assert isinstance(maps, np.memmap) and maps.dtype == np.float16 and maps.shape == (3, 7, 7, 1280)
    assert result.paths == [sample_photos[0], *sample_photos[1:3]]
    assert [p for p, _ in result.errors] == [tmp_path / "bad.jpg"]
    exact = extract_features(result.paths, lite0, kinds=("spatial",), cache=False, progress=False)
    np.testing.assert_allclose(maps, exact.features["spatial"], atol=2e-2, rtol=1e-2)
    calls = _count_calls(lite0, monkeypatch)
    again = feature_matrix(paths, lite0, "spatial", progress=False)
    assert calls == [] and again.paths == result.paths
    np.testing.assert_array_equal(again.features["spatial"], maps)


def test_each_file_is_read_once_and_decoded_from_those_bytes(tmp_path, lite0, sample_photos, monkeypatch):
    """The cache's hash and the decoder share one read; a cache hit is never decoded."""
    import io
    from pathlib import Path

    from PIL import Image

    from captioner.encoders import features

    reads, opened = [], []
    read_bytes, image_open = Path.read_bytes, Image.open
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or read_bytes(self))
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: opened.append(fp) or image_open(fp, *a, **k))
    monkeypatch.setattr(features, "file_digest", lambda path: (_ for _ in ()).throw(AssertionError(path)))
    cache = FeatureCache(lite0, tmp_path / "cache")
    first = extract_features(sample_photos, lite0, cache=cache, progress=False)
    photos = set(sample_photos)
    assert sorted(r for r in reads if r in photos) == sorted(sample_photos)  # each one once
    assert len(opened) == len(sample_photos) and all(isinstance(f, io.BytesIO) for f in opened)
    reads.clear(), opened.clear()
    again = extract_features(sample_photos, lite0, cache=cache, progress=False)
    assert sorted(r for r in reads if r in photos) == sorted(sample_photos) and opened == []
    np.testing.assert_array_equal(first.features["pooled"], again.features["pooled"])
    # A caller that hashed the files already (a split's matrix) spares the read of every hit.
    monkeypatch.setattr(features, "file_digest", file_digest)
    monkeypatch.setenv("CAPTIONER_CACHE", str(tmp_path / "fresh"))  # no matrix made before
    extract_features(sample_photos, lite0, progress=False)  # the default cache, warm
    reads.clear(), opened.clear()
    matrix = feature_matrix(sample_photos, lite0, "pooled", progress=False)
    assert [r for r in reads if r in photos] == [] and opened == []
    assert matrix.features["pooled"].shape == (len(sample_photos), 1280)


def test_a_file_too_big_for_a_photo_is_refused_before_it_is_read(tmp_path, lite0, monkeypatch):
    """Its size is checked first: the bytes of an oversized file never reach memory."""
    from pathlib import Path

    from captioner.data import images

    photo = write_photo(tmp_path / "photo.png", size=(64, 64))
    big = write_photo(tmp_path / "big.png", seed=1, size=(200, 200))
    monkeypatch.setattr(images, "MAX_FILE_BYTES", (photo.stat().st_size + big.stat().st_size) // 2)
    reads = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or read_bytes(self))
    result = extract_features([photo, big], lite0, cache=False, progress=False)
    assert result.paths == [photo] and big not in reads
    assert [(p, e.split(" (")[0]) for p, e in result.errors] == [(big, "file too large")]
    assert images.load_image(photo).shape == (64, 64, 3)
    with pytest.raises(images.ImageError, match="file too large"):
        images.load_image(big)


def test_a_fresh_run_uses_the_very_numbers_a_cached_run_reads(tmp_path, lite0, sample_photos):
    """Spatial maps are cached as float16; a run without the cache rounds them the same way, so
    the same photo gives the same caption and score whether its features were cached or not."""
    from captioner import Captioner

    kinds = ("spatial", "pooled")
    fresh = extract_features(sample_photos, lite0, kinds, cache=False, progress=False)
    cache = FeatureCache(lite0, tmp_path / "cache")
    extract_features(sample_photos, lite0, kinds, cache=cache, progress=False)
    cached = extract_features(sample_photos, lite0, kinds, cache=cache, progress=False)
    for kind in kinds:
        np.testing.assert_array_equal(fresh.features[kind], cached.features[kind])
    captioner = Captioner.from_pretrained()
    rows = [captioner.caption(sample_photos, progress=False) for _ in range(2)]  # cold, then warm
    assert rows[0] == rows[1]
