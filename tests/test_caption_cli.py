"""`captioner caption`, `train` and `evaluate` end to end, as a user runs them."""

import json
import shutil

import pytest
from conftest import write_photo
from test_cli import run_cli

from captioner.captioning.captioner import Captioner
from captioner.results.writers import read_rows


@pytest.fixture()
def photo_folder(tmp_path, sample_photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sample_photos[:3]:
        shutil.copy(p, folder / p.name)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (folder / "notes.txt").write_text("a text file among the photos")
    (folder / "readme.jpg").write_text("text pretending to be a photo")
    return folder


def test_caption_folder_with_bad_files(photo_folder, tmp_path):
    out = tmp_path / "captions.jsonl"
    proc = run_cli("caption", photo_folder, "-o", out, "--beam", "2")
    assert "Traceback" not in proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_name = {r["image"].rsplit("/", 1)[-1]: r for r in rows}
    assert set(by_name) == {"astronaut.png", "chelsea.png", "coffee.png", "empty.jpg", "corrupt.png",
                            "readme.jpg"}
    for bad in ("empty.jpg", "corrupt.png", "readme.jpg"):
        assert "error" in by_name[bad] and "caption" not in by_name[bad]
    for good in ("astronaut.png", "chelsea.png", "coffee.png"):
        assert len(by_name[good]["caption"].split()) >= 3
    vocab = set(Captioner.from_pretrained().vocab.id_to_word)
    assert all(w in vocab for r in by_name.values() if "caption" in r for w in r["caption"].split())


def test_resumed_caption_run_writes_each_image_once(photo_folder, tmp_path):
    out = tmp_path / "captions.csv"
    first = sorted(photo_folder.iterdir())[:2]
    run_cli("caption", *first, "-o", out)
    assert len(read_rows(out)) == 2
    proc = run_cli("caption", photo_folder, "-o", out)
    rows = read_rows(out)
    names = [r["image"] for r in rows]
    assert len(names) == len(set(names)) == 6
    assert "6 images" in proc.stdout
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == [".captions.csv.settings.json"], "no journal or temp left, only the settings"


def test_coco_results_output(photo_folder, tmp_path):
    out = tmp_path / "results.json"
    run_cli("caption", photo_folder, "-o", out, "--beam", "1")
    results = json.loads(out.read_text())
    assert len(results) == 3 and all(set(r) == {"image_id", "caption"} for r in results)


def test_bundled_captioner_next_words(sample_photos):
    captioner = Captioner.from_pretrained()
    chelsea = next(p for p in sample_photos if p.name.startswith("chelsea"))
    words = captioner.next_words(chelsea, "a", k=5)
    assert len(words) == 5 and words[0][1] >= words[-1][1]
    assert captioner.card["encoder"] == "efficientnet_lite0"
    assert captioner.card["dev_scores"]["beam3"]["BLEU-4"] > 0


def test_bundled_captions_depend_on_the_photo():
    """On real dev photos, captions score far better against their own photo's references
    than against another photo's: the decoder reads the image, not just the language."""
    from conftest import FLICKR, need

    from captioner.captioning.dataset import load_split, read_records
    from captioner.evaluation.captions import evaluate_captions

    need(FLICKR)
    captioner = Captioner.from_pretrained()
    dev, _ = load_split(read_records(FLICKR / "Flickr8k.token.txt"), FLICKR / "Images",
                        captioner.encoder, ("dev",), progress=False)
    caps = [c.text for c in captioner.caption_features(dev.features, beam=3)]
    own = evaluate_captions(dict(enumerate(caps)), dict(enumerate(dev.captions)))
    shifted = evaluate_captions(dict(enumerate(caps)), dict(enumerate(dev.captions[1:] + dev.captions[:1])))
    assert own["CIDEr-D"] > 2 * shifted["CIDEr-D"] and own["CIDEr-D"] > 25
    assert own["BLEU-4"] > 10
    assert len(set(caps)) > len(caps) // 2, "captions should not collapse to a few generic ones"


def _tiny_dataset(root):
    """Three kinds of synthetic photo, a Flickr-style token file and split lists."""
    images = root / "Images"
    kinds = {0: "a red picture with stripes", 1: "a green picture of noise", 2: "a blue smooth picture"}
    lines, train, dev = [], [], []
    for i in range(24):
        kind = i % 3
        name = f"img{i:02d}.png"
        write_photo(images / name, seed=i, size=(96, 96))
        import numpy as np
        from PIL import Image

        rgb = np.zeros((96, 96, 3), np.uint8)
        rgb[..., kind] = 200
        if kind == 0:
            rgb[::8] = 255
        if kind == 1:
            rgb = np.clip(rgb + np.random.default_rng(i).integers(0, 80, rgb.shape), 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(images / name)
        for k in range(2):
            lines.append(f"{name}#{k}\t{kinds[kind]}")
        (dev if i >= 18 else train).append(name)
    (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\nbroken line without a tab\n")
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(train))
    (root / "Flickr_8k.devImages.txt").write_text("\n".join(dev))
    return root / "Flickr8k.token.txt", images


def test_train_then_evaluate_cli(tmp_path):
    data, images = _tiny_dataset(tmp_path / "data")
    out = tmp_path / "bundle"
    proc = run_cli("train", "--data", data, "--images", images, "--out", out, "--epochs", "15", "--batch-size", "6",
                   "--units", "32", "--embed-dim", "16", "--min-count", "1", "--monitor", "bleu4",
                   "--learning-rate", "0.01", "--dropout", "0.0", "--feature-dropout", "0.0")
    assert "dev greedy" in proc.stdout
    card = json.loads((out / "card.json").read_text())
    assert card["encoder"] == "efficientnet_lite0" and card["data"]["train_images"] == 18
    assert card["command"].startswith("captioner train")
    proc = run_cli("evaluate", "--data", data, "--images", images, "--split", "dev", "--model", out,
                   "--per-image", tmp_path / "per_image.jsonl")
    assert "6 images" in proc.stdout and "CIDEr-D" in proc.stdout
    per_image = [json.loads(x) for x in (tmp_path / "per_image.jsonl").read_text().splitlines()]
    assert len(per_image) == 6
    assert sum(r["caption"] in {"a red picture with stripes", "a green picture of noise",
                                "a blue smooth picture"} for r in per_image) >= 4
