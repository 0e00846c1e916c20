"""Distributed training (captioner.captioning.distribute): a mirrored run over two logical CPU
devices and a multiworker run of two processes on loopback give one device's weights for the
same global batch, resume after an interruption to the same weights, and only the chief
writes. TensorFlow's devices and collectives are fixed when it starts, so those runs are
subprocesses: this file is also their script (``python tests/test_distribute.py ROLE ...``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from captioner.errors import CaptionerError

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
TOLERANCE = 1e-5  # float32 sums taken in another order: a few 1e-7 seen
# Tiny runs whose every step splits unevenly: 36 training pairs in global batches of 7 (the
# last batch holds 1 pair, so one replica gets none); no dropout, since each replica draws
# its own masks and those cannot match one device's.
KNOBS = {"embed_dim": 16, "units": 32, "dropout": 0.0, "feature_dropout": 0.0, "learning_rate": 0.01,
         "batch_size": 7, "epochs": 3, "patience": 3, "monitor": "bleu4", "min_count": 1,
         "lr_decay": 0.5, "max_length": 8, "seed": 5}


def _run(args: list, env: dict | None = None) -> subprocess.Popen:
    # On the CPU only: a GPU would be the mirrored strategy's one device, and one GPU cannot
    # serve two workers' collectives.
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.Popen([sys.executable, str(HERE), *map(str, args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _finish(procs: list[subprocess.Popen], timeout: int = 240) -> list[tuple[int, str, str]]:
    """Wait for every process (killing all of them if one hangs); their codes and output."""
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[f"w{i}"] for i in range(len(saved.files))]


def _max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [w.shape for w in a] == [w.shape for w in b]
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


# --- TF_CONFIG ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    (None, "needs the TF_CONFIG environment variable"),
    ("{cluster", "TF_CONFIG is not JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', 'needs a "cluster" and a "task"'),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     "takes chief and worker tasks only"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', '"host:port"'),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "0 to 1"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "not in its cluster"),
])
def test_a_missing_or_malformed_tf_config_is_one_clear_error(text, message):
    from captioner.captioning.distribute import read_tf_config

    with pytest.raises(CaptionerError, match=message):
        read_tf_config(text)


def test_multiworker_without_tf_config_stops_before_any_work(tmp_path, monkeypatch):
    from captioner.captioning.captioner import Captioner

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(CaptionerError, match="TF_CONFIG"):
        Captioner.train(tmp_path / "none.txt", tmp_path, tmp_path / "out", strategy="multiworker")
    assert not (tmp_path / "out").exists()


def test_the_train_command_takes_a_strategy():
    from captioner.cli import build_parser

    args = ["train", "--data", "d", "--images", "i", "--out", "o"]
    assert build_parser().parse_args(args).strategy == "default"
    assert build_parser().parse_args([*args, "--strategy", "mirrored"]).strategy == "mirrored"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*args, "--strategy", "tpu"])


# --- mirrored: two logical CPU devices in one process ---------------------------------------


def _mirrored(folder: Path) -> None:
    """Default, mirrored, and mirrored interrupted after epoch 1 then resumed, mirrored or on
    one device; an attention decoder on one device and mirrored. Their weights and histories."""
    import shutil

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from test_decoder import synthetic

    from captioner.captioning.config import TrainConfig
    from captioner.captioning.distribute import make_strategy
    from captioner.captioning.train import Trainer
    from captioner.data.text import Vocabulary

    mirrored = make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2, mirrored.extended.worker_devices
    config = TrainConfig(**KNOBS)
    train, dev = synthetic(3, seed=3), synthetic(1, seed=4)
    vocab = Vocabulary.build([c for caps in train[1] for c in caps], min_count=1)
    runs = {}
    for name, strategy in (("default", None), ("mirrored", mirrored)):
        trainer = Trainer(folder / name, vocab, config, train, dev, progress=False, strategy=strategy)
        runs[name] = (trainer.run().get_weights(), trainer.state["history"])
    real = Trainer.end_epoch

    def end_then_stop(self, epoch, logs):
        stop = real(self, epoch, logs)  # the checkpoint of epoch 1 is written, then Ctrl-C
        if epoch == 0:
            raise KeyboardInterrupt
        return stop

    Trainer.end_epoch = end_then_stop
    try:
        Trainer(folder / "cut", vocab, config, train, dev, progress=False, strategy=mirrored).run()
    except KeyboardInterrupt:
        pass
    Trainer.end_epoch = real
    shutil.copytree(folder / "cut", folder / "switched")
    for name, strategy in (("cut", mirrored), ("switched", None)):
        trainer = Trainer(folder / name, vocab, config, train, dev, progress=False, strategy=strategy)
        runs[name] = (trainer.run(resume=True).get_weights(), trainer.state["history"])
    # The attention decoder adds its regulariser (a mean over a replica's rows) to the loss.
    attention = TrainConfig(**{**KNOBS, "decoder": "attention", "attention_dim": 8, "epochs": 2})
    regions = (train[0].reshape(-1, 4, 12), train[1]), (dev[0].reshape(-1, 4, 12), dev[1])
    for name, strategy in (("attention_default", None), ("attention_mirrored", mirrored)):
        trainer = Trainer(folder / name, vocab, attention, *regions, progress=False, strategy=strategy)
        decoder = trainer.run()
        # Not the score's bias: the softmax over regions ignores it, so its true gradient is 0
        # and it moves only by rounding noise (which Adam scales up to ~1e-4 steps).
        kept = [w.numpy() for w in decoder.weights if not w.path.endswith("score/bias")]
        runs[name] = (kept, trainer.state["history"])
    for name, (weights, history) in runs.items():
        np.savez(folder / f"{name}.npz", **{f"w{i}": w for i, w in enumerate(weights)})
        (folder / f"{name}.json").write_text(json.dumps(history))


def test_mirrored_training_gives_one_devices_weights_and_resumes(tmp_path):
    """Mirrored over two logical CPU devices ends where one device does; so does a mirrored run
    stopped after epoch 1 and resumed (cut), or resumed on one device (switched)."""
    [(code, _, err)] = _finish([_run(["mirrored", tmp_path])])
    assert code == 0, err[-3000:]
    names = ("default", "mirrored", "cut", "switched")
    weights = {n: _weights(tmp_path / f"{n}.npz") for n in (*names, "attention_default",
                                                            "attention_mirrored")}
    differences = {n: _max_difference(weights[n], weights["default"]) for n in names[1:]}
    differences["attention"] = _max_difference(weights["attention_mirrored"],
                                               weights["attention_default"])
    print("max |weight difference| from one device:", differences)
    assert max(differences.values()) < TOLERANCE, differences
    histories = {n: json.loads((tmp_path / f"{n}.json").read_text())
                 for n in (*names, "attention_default", "attention_mirrored")}
    assert len(histories["default"]) == KNOBS["epochs"]
    for name, reference in (*((n, "default") for n in names[1:]),
                            ("attention_mirrored", "attention_default")):
        assert len(histories[name]) == len(histories[reference])
        for ours, theirs in zip(histories[name], histories[reference]):
            assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-5)
            assert ours["dev_loss"] == pytest.approx(theirs["dev_loss"], abs=1e-5)
            assert ours["BLEU-4"] == theirs["BLEU-4"]
            assert ours["learning_rate"] == theirs["learning_rate"]


# --- multiworker: two processes on loopback, through the train command ----------------------


def _tiny_encoder(*_args, **_kwargs):
    """An encoder without weights (mean colours of 8x8 blocks): fast, the same in every process."""
    import keras

    from captioner.encoders.base import Encoder

    pixels = keras.Input((32, 32, 3))
    spatial = keras.layers.AveragePooling2D(8)(keras.layers.Rescaling(1 / 255)(pixels))
    pooled = keras.layers.GlobalAveragePooling2D()(spatial)
    model = keras.Model(pixels, {"spatial": spatial, "pooled": pooled})
    return Encoder("tiny_test", 32, model, "tiny:none")


def _train_args(data: Path, images: Path, out: Path) -> list[str]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in KNOBS.items()]
    return ["train", "--data", str(data), "--images", str(images), "--out", str(out), *flags]


def _worker(data: str, images: str, out: str, weights: str) -> int:
    """One worker of the multiworker test: the real train command (with a tiny encoder) stopped
    after epoch 1, then, as after a crash, run again with --resume once the chief's checkpoint
    is on disk; keeps the final weights in ``weights``."""
    import time

    import captioner.captioning.captioner as captioner_module
    from captioner.captioning.train import Trainer
    from captioner.cli import main

    captioner_module.get_encoder = _tiny_encoder
    trained = captioner_module.Captioner.train.__func__

    def train_and_keep_weights(cls, *args, **kwargs):
        captioner = trained(cls, *args, **kwargs)
        np.savez(weights, **{f"w{i}": w for i, w in enumerate(captioner.decoder.get_weights())})
        return captioner

    captioner_module.Captioner.train = classmethod(train_and_keep_weights)
    real = Trainer.end_epoch

    def end_then_stop(self, epoch, logs):
        stop = real(self, epoch, logs)  # the chief's checkpoint of this epoch is written...
        if epoch == 0:
            raise SystemExit("stopped after epoch 1")  # ...then every worker stops
        return stop

    command = [*_train_args(Path(data), Path(images), Path(out)), "--strategy", "multiworker"]
    Trainer.end_epoch = end_then_stop
    try:
        main(command)
        return 3  # it should have stopped
    except SystemExit as stopped:
        print(stopped, file=sys.stderr)
    Trainer.end_epoch = real
    progress = Path(out) / "checkpoints" / "progress.json"
    for _ in range(600):  # the harness of a real cluster restarts workers after the chief's save
        if progress.is_file():
            break
        time.sleep(0.1)
    code = main([*command, "--resume"])
    # The check that refuses workers starting from different epochs, on this real cluster.
    from captioner.captioning.distribute import make_strategy, same_on_every_worker

    strategy, index = make_strategy("multiworker"), json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    print(f"agree: {same_on_every_worker(strategy, 7)} {same_on_every_worker(strategy, index)}")
    return code


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_training_resumes_writes_one_bundle_and_gives_one_devices_weights(
        tmp_path, monkeypatch):
    import tensorflow as tf
    from test_caption_cli import _tiny_dataset

    import captioner.captioning.captioner as captioner_module
    from captioner.captioning.bundle import load_bundle
    from captioner.captioning.config import TrainConfig

    data, images = _tiny_dataset(tmp_path / "data")
    out = tmp_path / "bundle"
    hosts = [f"localhost:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        scratch = tmp_path / f"scratch{index}"
        scratch.mkdir()
        procs.append(_run(["worker", data, images, out, tmp_path / f"worker{index}.npz"],
                          env={"TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(scratch)}))
    (chief, chief_log, err0), (other, other_log, err1) = _finish(procs)
    assert chief == 0 and other == 0, (err0[-3000:], err1[-3000:])
    assert "stopped after epoch 1" in err0 and "stopped after epoch 1" in err1
    # Only the chief logs; it resumed from its checkpoint of epoch 1.
    assert "after epoch 1" in chief_log and "epoch 3: loss" in chief_log, chief_log
    assert "epoch" not in other_log, other_log
    assert "agree: True False" in chief_log and "agree: True False" in other_log
    # One bundle, the chief's; the other worker's temporary folders are gone.
    assert [p.name for p in tmp_path.glob("scratch*/*")] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bundle", "data", "scratch0", "scratch1", "worker0.npz", "worker1.npz"]
    card = json.loads((out / "card.json").read_text())
    assert card["strategy"] == {"name": "multiworker", "replicas": 2, "workers": 2}
    assert [row["epoch"] for row in card["history"]] == [1, 2, 3]
    # The workers hold the same weights, and they are one device's.
    workers = [_weights(tmp_path / f"worker{i}.npz") for i in range(2)]
    assert _max_difference(*workers) == 0.0
    monkeypatch.setattr(captioner_module, "get_encoder", _tiny_encoder)
    with tf.device("/CPU:0"):  # as the workers
        alone = captioner_module.Captioner.train(data, images, tmp_path / "alone",
                                                 config=TrainConfig(**KNOBS), progress=False)
    assert alone.card["strategy"] == {"name": "default", "replicas": 1, "workers": 1}
    difference = _max_difference(load_bundle(out).model.get_weights(), alone.decoder.get_weights())
    print(f"multiworker (interrupted, resumed) vs one device: {difference:.2e}")
    assert difference < TOLERANCE
    assert [r["BLEU-4"] for r in card["history"]] == [r["BLEU-4"] for r in alone.card["history"]]


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    role, *rest = sys.argv[1:]
    if role == "mirrored":
        _mirrored(Path(rest[0]))
    else:
        sys.exit(_worker(*rest))
