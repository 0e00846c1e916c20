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
    # every caption comes with the basic-level words of what the classifier sees
    assert by_name["chelsea.png"]["tags"][0]["tag"] == "cat"
    assert by_name["coffee.png"]["tags"][0]["tag"] == "coffee"
    assert all(len(by_name[good]["tags"]) == 5 for good in ("astronaut.png", "chelsea.png"))
    printed = run_cli("caption", photo_folder / "chelsea.png").stdout
    assert printed.strip().endswith(", ".join(f"{t['tag']} ({t['score']:.2f})" for t in by_name["chelsea.png"]["tags"]))


def test_resumed_caption_run_writes_each_image_once(photo_folder, tmp_path):
    out = tmp_path / "captions.csv"
    first = sorted(photo_folder.iterdir())[:2]
    run_cli("caption", *first, "-o", out)
    assert len(read_rows(out)) == 2
    proc = run_cli("caption", photo_folder, "-o", out)
    rows = read_rows(out)
    names = [r["image"] for r in rows]
    assert len(names) == len(set(names)) == 6
    cat = next(r for r in rows if r["image"].endswith("chelsea.png"))
    assert cat["tags"][0]["tag"] == "cat"  # tags survive the CSV round trip of a resume
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
    assert captioner.card["scores"]["dev-report"]["chosen"]["BLEU-4"] > 0


def test_bundled_captions_depend_on_the_photo():
    """On real dev photos, captions score far better against their own photo's references
    than against another photo's: the decoder reads the image, not just the language."""
    from conftest import FLICKR, need

    from captioner.captioning.dataset import load_split, read_records
    from captioner.evaluation.captions import evaluate_captions

    need(FLICKR)
    captioner = Captioner.from_pretrained()
    dev, _ = load_split(read_records(FLICKR / "Flickr8k.token.txt"), FLICKR / "Images",
                        captioner.encoder, ("dev",), progress=False, kind=captioner.feature_kind)
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
    assert "decoding chosen on dev-select" in proc.stdout and "dev-report greedy" in proc.stdout
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["dev_select_images"] + card["data"]["dev_report_images"] == 6
    assert card["decoding"]["beam"] in (1, 3, 5) and "dev-report" in card["scores"]
    card = json.loads((out / "card.json").read_text())
    assert card["encoder"] == "efficientnet_lite0" and card["data"]["train_images"] == 18
    assert card["command"].startswith("captioner train")
    assert card["training_seconds"] > 0 and all(row["seconds"] > 0 for row in card["history"])
    assert card["decoding"]["seconds"] > 0
    proc = run_cli("evaluate", "--data", data, "--images", images, "--split", "dev", "--model", out,
                   "--per-image", tmp_path / "per_image.jsonl")
    assert "6 images" in proc.stdout and "CIDEr-D" in proc.stdout
    # either half of dev, decoded as caption decodes (here told to guide)
    half = run_cli("evaluate", "--data", data, "--images", images, "--split", "dev-report",
                   "--model", out, "--guided", "--guide-threshold", "0.9")
    assert f"{card['data']['dev_report_images']} images" in half.stdout and "guided at 0.9" in half.stdout
    per_image = [json.loads(x) for x in (tmp_path / "per_image.jsonl").read_text().splitlines()]
    assert len(per_image) == 6
    assert sum(r["caption"] in {"a red picture with stripes", "a green picture of noise",
                                "a blue smooth picture"} for r in per_image) >= 4
    # An ensemble of a model with itself captions as the model does, on the fly or as a bundle.
    photos = sorted(images.glob("*.png"))[:3]
    alone = run_cli("caption", *photos, "--model", out, "--beam", "3").stdout
    assert run_cli("caption", *photos, "--model", out, "--model", out, "--beam", "3").stdout == alone
    proc = run_cli("ensemble", out, out, "--data", data, "--images", images, "--out", tmp_path / "pair")
    assert "2 members" in proc.stdout and (tmp_path / "pair" / "members" / "1.keras").is_file()
    card = json.loads((tmp_path / "pair" / "card.json").read_text())
    assert len(card["members"]) == 2 and "dev-report" in card["scores"]
    assert run_cli("caption", *photos, "--model", tmp_path / "pair", "--beam", "3").stdout == alone


def test_evaluate_names_the_splits_a_data_set_has(tmp_path):
    data, images = _tiny_dataset(tmp_path / "data")
    proc = run_cli("evaluate", "--data", data, "--images", images, check=False)  # default: test
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "has no 'test' split; it has dev, train" in proc.stderr


def test_train_refuses_a_folder_it_did_not_write_before_any_work(tmp_path):
    data, images = _tiny_dataset(tmp_path / "data")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    proc = run_cli("train", "--data", data, "--images", images, "--out", out, check=False)
    assert proc.returncode == 2 and "not a captioner bundle" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["holiday.jpg"]


def test_rerun_with_other_settings_needs_overwrite(photo_folder, tmp_path):
    out = tmp_path / "new" / "folder" / "captions.jsonl"  # created at start
    run_cli("caption", photo_folder / "chelsea.png", "-o", out, "--beam", "1")
    proc = run_cli("caption", photo_folder, "-o", out, "--beam", "2", check=False)
    assert proc.returncode == 2 and "other settings (beam 1 -> 2)" in proc.stderr
    assert len(read_rows(out)) == 1
    run_cli("caption", photo_folder, "-o", out, "--beam", "2", "--overwrite")
    assert len(read_rows(out)) == 6


def test_non_utf8_file_names_are_kept_and_written(tmp_path, sample_photos):
    import os

    folder = tmp_path / "old disk"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name on a UTF-8 system
    shutil.copy(sample_photos[0], folder / name)
    out = tmp_path / "out.csv"
    proc = run_cli("caption", folder, "-o", out)
    assert "Traceback" not in proc.stderr
    rows = read_rows(out)
    assert rows[0]["image"].endswith("caf\\xe9.png") and rows[0]["caption"]
    printed = run_cli("caption", folder / name)
    assert "caf\\xe9.png: " in printed.stdout


def test_the_api_takes_what_people_pass(sample_photos):
    import numpy as np
    from PIL import Image

    captioner = Captioner.from_pretrained()
    one = captioner.caption(str(sample_photos[1]), progress=False)  # a str is one path
    assert len(one) == 1 and one[0]["caption"]
    pixels = np.asarray(Image.open(sample_photos[1]).convert("RGB"))
    rows = captioner.caption([Image.open(sample_photos[1]), pixels, sample_photos[1]], progress=False)
    assert [r["image"] for r in rows] == ["<image 0>", "<image 1>", str(sample_photos[1])]
    assert len({r["caption"] for r in rows}) == 1  # the same photo, however it was passed
    batch = captioner.caption(np.stack([pixels[:200, :200]] * 2), progress=False)
    assert [r["image"] for r in batch] == ["<image 0>", "<image 1>"]
    chosen = captioner.card["decoding"]  # the card's choice is every run's default
    assert captioner.decoding() == {"beam": chosen["beam"], "length_penalty": chosen["length_penalty"]}


def _start_caption(*args, **env):
    import os
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "captioner", "caption", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def _wait_for(proc, text: str, timeout: float = 120) -> bool:
    """Read the process's stderr until ``text`` shows (True) or it ends (False)."""
    import os
    import select
    import time

    seen, end = "", time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stderr], [], [], 0.1)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
            if not chunk:
                return False
            seen += chunk
            if text in seen:
                return True
    return False


@pytest.fixture()
def many_photos(tmp_path):
    for i in range(150):
        write_photo(tmp_path / "many" / f"p{i:03d}.jpg", seed=1000 + i, size=(320, 240))
    return tmp_path / "many"


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_a_run_stopped_mid_way_leaves_no_partial_output_and_resumes(many_photos, tmp_path,
                                                                    signal_name):
    import signal

    out = tmp_path / "out.jsonl"
    proc = _start_caption(many_photos, "-o", out, "--beam", "1")
    if not _wait_for(proc, "encoding"):
        pytest.skip("the run ended before it could be interrupted")
    proc.send_signal(getattr(signal, signal_name))
    _, err = proc.communicate(timeout=120)
    if signal_name == "SIGINT":
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not out.exists()  # never a half-written output
    run_cli("caption", many_photos, "-o", out, "--beam", "1")
    names = [row["image"] for row in read_rows(out)]
    assert len(names) == len(set(names)) == 150


def test_a_ctrl_c_put_off_inside_tensorflow_never_fires_after_main_returns(monkeypatch):
    """Ctrl-C inside TensorFlow is retried a moment later (see ``cli.main``); when TensorFlow
    turns the interrupt into an error of its own first, main answers 130 at once, and the
    retry still pending must not raise KeyboardInterrupt past it (the process would die of
    SIGINT instead of exiting 130). Then the caller's own Ctrl-C handler is back."""
    import argparse
    import os
    import signal
    import time

    from captioner import cli

    source = ("def convert(args):\n    os.kill(os.getpid(), signal.SIGINT)\n"
              "    raise RuntimeError('the library made the interrupt its own error')\n")
    space = {"os": os, "signal": signal}  # a function whose code says it is TensorFlow's
    exec(compile(source, "/site-packages/tensorflow/converter.py", "exec"), space)  # noqa: S102
    parser = argparse.ArgumentParser()
    parser.set_defaults(func=space["convert"])
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGALRM)
    try:
        assert cli.main([]) == 130
        time.sleep(0.2)  # ten times the retry's delay
        assert signal.getsignal(signal.SIGINT) is handlers[0]  # a notebook's Ctrl-C works again
    except KeyboardInterrupt:
        pytest.fail("the put-off Ctrl-C was raised after main returned")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGALRM, handlers[1])


def test_ctrl_c_during_start_up_is_one_line(tmp_path, sample_photos):
    """An empty cache makes the start-up long (the encoder is converted, TensorFlow loads):
    Ctrl-C in the middle of it is one line. A warm start-up is too short to hit reliably."""
    import signal
    import time

    proc = _start_caption(sample_photos[0], CAPTIONER_CACHE=str(tmp_path / "cache"))
    maps = f"/proc/{proc.pid}/maps"
    end = time.monotonic() + 120
    while time.monotonic() < end and proc.poll() is None:
        with open(maps) as f:  # the first TensorFlow library is loaded: start-up is under way
            if "tensorflow" in f.read():
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "captioner: interrupted" in err and "Traceback" not in err


@pytest.mark.parametrize("flags", [[], ["--attention-maps"]])
def test_captioning_a_photo_imports_neither_tensorflow_nor_keras(lite0, sample_photos, flags):
    """Once the encoder's TFLite file is cached, ``caption`` runs on LiteRT and numpy alone:
    the decoder steps (and gives its attention maps) from the bundle's plain weights."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "captioner", "caption",
                           str(sample_photos[0]), *flags], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.count("|") == 1, proc.stderr[-500:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "ai_edge_litert" in imported and "captioner.captioning.numpy_step" in imported
    assert not {name for name in imported if name.split(".")[0] in ("tensorflow", "keras")}
    said = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert not [line for line in said if "deprecat" in line.lower()]


def test_per_image_scores_never_overwrite_a_foreign_file(tmp_path):
    data, images = _tiny_dataset(tmp_path / "data")
    before = data.read_bytes()
    proc = run_cli("evaluate", "--data", data, "--images", images, "--split", "dev",
                   "--per-image", data, check=False)
    assert proc.returncode == 2 and "name a .jsonl file" in proc.stderr
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"todo": "buy milk"}\n')
    proc = run_cli("evaluate", "--data", data, "--images", images, "--split", "dev",
                   "--per-image", notes, check=False)
    assert proc.returncode == 2 and "Choose another output path" in proc.stderr
    assert data.read_bytes() == before and notes.read_text() == '{"todo": "buy milk"}\n'


def test_train_an_attention_captioner_then_draw_where_it_looked(tmp_path):
    data, images = _tiny_dataset(tmp_path / "data")
    out = tmp_path / "attention"
    run_cli("train", "--data", data, "--images", images, "--out", out, "--decoder", "attention",
            "--epochs", "4", "--batch-size", "6", "--units", "32", "--embed-dim", "16",
            "--attention-dim", "16", "--min-count", "1", "--learning-rate", "0.01")
    card = json.loads((out / "card.json").read_text())
    assert card["config"]["decoder"] == "attention"
    maps = tmp_path / "maps"
    proc = run_cli("caption", images / "img00.png", images / "img01.png", "--model", out,
                   "--attention", maps)
    assert "img00.png: " in proc.stdout
    assert len(list(maps.glob("img0*.png"))) == 2
    tuned = tmp_path / "tuned"  # self-critical fine-tuning of the attention model, end to end
    proc = run_cli("finetune", "--model", out, "--data", data, "--images", images, "--out", tuned,
                   "--epochs", "1", "--batch-size", "6", "--scst-samples", "2")
    assert "dev-report greedy" in proc.stdout
    card = json.loads((tuned / "card.json").read_text())
    assert card["config"]["decoder"] == "attention" and card["decoding"]["beam"] in (1, 3, 5)
    finetune = card["finetune"]
    assert finetune["command"].startswith("captioner finetune") and finetune["train_images"] == 18
    assert [row["epoch"] for row in finetune["history"]] == [0, 1]
    assert "greedy_reward" in finetune["history"][1] and finetune["seconds"] > 0
    assert "img00.png: " in run_cli("caption", images / "img00.png", "--model", tuned).stdout


def test_guided_captions_name_what_the_classifier_is_sure_of(sample_photos, tmp_path):
    out = tmp_path / "guided.jsonl"
    run_cli("caption", *sample_photos, "--guided", "-o", out)
    by_name = {r["image"].rsplit("/", 1)[-1]: r for r in read_rows(out)}
    for photo, word in [("chelsea.png", "cat"), ("coffee.png", "coffee"), ("motorcycle_left.png", "motorcycle")]:
        assert by_name[photo]["tags"][0]["tag"] == word
        assert word in by_name[photo]["caption"].split(), by_name[photo]
    # the bundled card turns guidance on, as measured (README): the default run names them too
    assert Captioner.from_pretrained().guidance()["guided"] is True
    # guided rows and free rows never mix in one output
    proc = run_cli("caption", *sample_photos, "--no-guided", "-o", out, check=False)
    assert proc.returncode == 2 and "other settings (guided True -> False)" in proc.stderr


def test_link_images_needs_an_html_output(tmp_path):
    for extra in ([], ["-o", tmp_path / "rows.jsonl"]):
        proc = run_cli("caption", "--samples", "--link-images", *extra, check=False)
        assert proc.returncode == 2
        assert proc.stderr.strip() == ("captioner: error: --link-images is for an .html gallery: "
                                       "add -o NAME.html")
