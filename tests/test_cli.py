"""The real ``captioner`` command, run as a user runs it."""

import json
import os
import subprocess
import sys


def run_cli(*args, check=True):
    """Run ``python -m captioner ARGS`` with the test session's cache; returns the process."""
    proc = subprocess.run(
        [sys.executable, "-m", "captioner", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=600,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def test_classify_prints_right_labels(sample_photos, tmp_path):
    chelsea = next(p for p in sample_photos if p.name.startswith("chelsea"))
    coffee = next(p for p in sample_photos if p.name.startswith("coffee"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    proc = run_cli("classify", chelsea, bad, coffee, "--top-k", "2", "--json")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["image"] for r in rows] == [str(chelsea), str(bad), str(coffee)]
    assert rows[0]["labels"][0]["label"] in {"Egyptian cat", "tabby", "tiger cat"}
    assert rows[2]["labels"][0]["label"] == "espresso"
    assert len(rows[0]["labels"]) == 2
    assert "broken.jpg" not in rows[1]["error"] and rows[1]["error"]


def test_a_missing_path_is_a_row_and_the_batch_goes_on(sample_photos, tmp_path):
    proc = run_cli("classify", tmp_path / "missing", sample_photos[0], "--json")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows[0] == {"image": str(tmp_path / "missing"), "error": "no such file or folder"}
    assert rows[1]["labels"] and "Traceback" not in proc.stderr
    (tmp_path / "x.jpg").mkdir()  # a folder named like a photo, holding none
    proc = run_cli("classify", tmp_path / "x.jpg", check=False)
    assert proc.returncode == 1 and "holds no image files" in proc.stdout


def test_errors_are_messages_not_tracebacks(tmp_path):
    proc = run_cli("clasify", "x", check=False)
    assert proc.returncode == 2 and "did you mean classify" in proc.stderr
    proc = run_cli("classify", "x", "--top_k", "3", check=False)
    assert proc.returncode == 2 and "--top-k" in proc.stderr


def test_help_and_argument_errors_answer_without_tensorflow():
    code = ("import sys\nfrom captioner.cli import main\n"
            "for argv in (['--help'], ['tag', 'v.mp4', '--fps', 'inf'], ['caption', '--beam', '0']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOADED []" in proc.stdout, proc.stdout[-500:] + proc.stderr[-500:]


BAD_FLAGS = [
    (["tag", "v.mp4", "--fps", "inf"], "fps must be a number in"),
    (["tag", "v.mp4", "--fps", "nan"], "fps must be a number in"),
    (["tag", "v.mp4", "--clip-seconds", "inf"], "clip seconds must be a number in"),
    (["tag", "v.mp4", "--clip-seconds", "1e-4"], "clip seconds must be a number in"),
    (["tag", "v.mp4", "--overlap", "-1"], "overlap must be a number in"),
    (["tag", "v.mp4", "--overlap", "nan"], "overlap must be a number in"),
    (["tag", "v.mp4", "--top-k", "0"], "top k must be a whole number in"),
    (["classify", "x.jpg", "--top-k", "-3"], "top k must be a whole number in"),
    (["caption", "x.jpg", "--beam", "1.5"], "beam must be a whole number in"),
    (["train", "--data", "d", "--images", "i", "--out", "o", "--learning-rate", "nan"],
     "learning rate must be a number in"),
    (["train", "--data", "d", "--images", "i", "--out", "o", "--epochs", "-2"],
     "epochs must be a whole number in"),
]


def test_every_numeric_flag_is_finite_and_bounded():
    """Each bad number is one usage line (exit 2), before any model or video is opened."""
    for argv, message in BAD_FLAGS:
        proc = subprocess.run([sys.executable, "-m", "captioner", *argv], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, (argv, proc.stderr[-300:])
        assert "Traceback" not in proc.stderr


def test_argument_mistakes_answer_before_any_model_loads(tmp_path):
    """A mistake the arguments alone show is one line (exit 2) with no TensorFlow imported."""
    from conftest import write_photo

    photo = str(write_photo(tmp_path / "photo.jpg"))
    cases = [
        (["caption"], "no images given: name files or folders, or use --samples"),
        (["caption", "-o", "out.txt", photo], "out.txt: cannot write images results to .txt files"),
        (["caption", photo, "--model", "nowhere"], "nowhere: no such bundle folder"),
        (["classify"], "no images given"),
        (["tag", "v.mp4", "-o", "out.json"], "out.json: cannot write videos results to .json files"),
        (["tag", "v.mp4", "--model", "nowhere"], "nowhere: no such bundle folder"),
        (["evaluate", "--data", photo, "--images", ".", "--per-image", "s.csv"],
         "s.csv: per-image scores are JSON Lines"),
        (["evaluate", "--data", "none.txt", "--images", "."], "none.txt: caption file not found"),
        (["finetune", "--data", photo, "--images", "none", "--out", "o"], "none: no such image folder"),
    ]
    code = ("import contextlib, io, json, sys\nfrom captioner.cli import main\nanswers = []\n"
            f"for argv in {[argv for argv, _ in cases]!r}:\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        try:\n            status = main(argv)\n"
            "        except SystemExit as exc:\n            status = exc.code\n"
            "    answers.append([status, err.getvalue()])\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
            "print(json.dumps({'answers': answers, 'loaded': loaded}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    result = json.loads(proc.stdout.splitlines()[-1])
    for (argv, message), (status, err) in zip(cases, result["answers"]):
        assert status == 2 and len(err.splitlines()) == 1, (argv, err)
        assert err.startswith(f"captioner: error: {message}"), (argv, err)
    assert result["loaded"] == []
