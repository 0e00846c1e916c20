"""Training under a tf.distribute strategy: one device, the devices of one machine, or several
machines (``TF_CONFIG``), all through one training step.

Keras 3's ``fit`` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585: the model is
handed PerReplica values). Under MirroredStrategy it runs, but each replica averages over its
own words and the optimizer clips each replica's part of the gradient before summing them, so
it does not match one device either. Every run, one device included, therefore goes through
the step here: a global batch is cut into consecutive per-replica slices; each replica's loss
is its words' loss summed and divided by the words of the WHOLE global batch (the replicas'
losses add up to one device's mean); the gradients are summed over the replicas, then
clipped, as one device clips them.

Only the chief writes (checkpoints, logs, the bundle); the other workers write into a
temporary folder that is removed at the end, as TensorFlow's multi-worker guide advises.
Every worker computes the same dev scores from the same weights and data, so early stopping
and learning-rate decay decide alike everywhere with nothing to broadcast.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import tensorflow as tf

from captioner.captioning.bundle import CHECKPOINTS, check_target
from captioner.captioning.config import STRATEGIES
from captioner.errors import CaptionerError

TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')
TASK_TYPES = ("chief", "worker")  # what MultiWorkerMirroredStrategy trains with


def read_tf_config(text: str | None) -> dict:
    """The cluster and this machine's task, from TF_CONFIG's text; CaptionerError if absent or
    malformed."""
    advice = f"set it on every machine, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}' (index 1 on the second)"
    if not text or not text.strip():
        raise CaptionerError("--strategy multiworker needs the TF_CONFIG environment variable; "
                             + advice)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaptionerError(f"TF_CONFIG is not JSON ({exc.msg} at character {exc.pos}); "
                             + advice) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise CaptionerError(f"TF_CONFIG needs a \"cluster\" and a \"task\" object; {advice}")
    for kind, hosts in cluster.items():
        if kind not in TASK_TYPES:
            raise CaptionerError(f"TF_CONFIG's cluster has {kind!r} tasks; multiworker training "
                                 f"takes {' and '.join(TASK_TYPES)} tasks only")
        if (not isinstance(hosts, list) or not hosts
                or not all(isinstance(h, str) and h.rpartition(":")[2].isdigit() for h in hosts)):
            raise CaptionerError(f"TF_CONFIG's cluster {kind!r} must be a list of \"host:port\" "
                                 f"strings, got {hosts!r}")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise CaptionerError(f"TF_CONFIG's task type {kind!r} is not in its cluster "
                             f"({', '.join(cluster)})")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise CaptionerError(f"TF_CONFIG's task index {index!r} is not one of the cluster's "
                             f"{len(cluster[kind])} {kind} tasks (0 to {len(cluster[kind]) - 1})")
    return config


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """The strategy called ``name``; make it before TensorFlow runs anything (multiworker
    must configure its collectives at start-up)."""
    if name not in STRATEGIES:
        raise CaptionerError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # Every GPU, or else every logical CPU device (one unless the process configured more).
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    text = os.environ.get("TF_CONFIG")
    read_tf_config(text)
    try:
        return _multiworker(text)
    except (RuntimeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise CaptionerError(f"cannot start multiworker training ({reason}); start it in a fresh "
                             "process, before TensorFlow runs anything") from None


@functools.cache
def _multiworker(tf_config: str) -> tf.distribute.MultiWorkerMirroredStrategy:
    """One strategy per process (and cluster): a second one would configure the process's
    collectives again under its peers' feet, and their next collective can fail (seen once
    in seven runs of a run resumed in the same process)."""
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this worker writes the run's files (one machine: always)."""
    return bool(strategy.extended.should_checkpoint)


def describe(strategy: tf.distribute.Strategy) -> dict:
    """The strategy's name, replicas and workers, for the card."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "multiworker"
        workers = sum(len(hosts) for hosts in strategy.cluster_resolver.cluster_spec().as_dict().values())
    else:
        name = "mirrored" if isinstance(strategy, tf.distribute.MirroredStrategy) else "default"
        workers = 1
    return {"name": name, "replicas": strategy.num_replicas_in_sync, "workers": workers}


def same_on_every_worker(strategy: tf.distribute.Strategy, value: int) -> bool:
    """Whether every worker holds this ``value`` (on one machine there is nothing to compare)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True

    @tf.function
    def gathered():
        def mine():
            context = tf.distribute.get_replica_context()
            return context.all_gather(tf.constant([value], tf.int64), axis=0)

        return strategy.experimental_local_results(strategy.run(mine))[0]

    return len(set(gathered().numpy().tolist())) == 1


@contextmanager
def worker_output(out: Path, strategy: tf.distribute.Strategy, fresh: bool = False) -> Iterator[Path]:
    """Where this worker writes the run: ``out`` on the chief; elsewhere a temporary folder,
    removed at the end, that starts with a copy of ``out``'s checkpoints (unless ``fresh``), so
    that every worker resumes, or refuses to, from what the chief sees."""
    check_target(out)  # on every worker: one that failed alone would leave the others waiting
    if is_chief(strategy):
        yield Path(out)
        return
    scratch = Path(tempfile.mkdtemp(prefix="captioner-worker-"))
    try:
        target = scratch / Path(out).name
        if not fresh and (Path(out) / CHECKPOINTS).is_dir():
            shutil.copytree(Path(out) / CHECKPOINTS, target / CHECKPOINTS)
        yield target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def distribute_batches(strategy: tf.distribute.Strategy,
                       make_batches: Callable[[], tf.data.Dataset]) -> tf.distribute.DistributedDataset:
    """Global batches (from ``make_batches``, the same on every worker) cut for the replicas:
    replica r gets the r-th of R consecutive, near-equal slices of each batch (maybe empty),
    so the replicas together see exactly the batch one device would."""
    replicas = strategy.num_replicas_in_sync

    def pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines  # the replicas this worker feeds, in turn
        first = context.input_pipeline_id * local

        def slices(*batch):
            rows = tf.shape(tf.nest.flatten(batch)[0])[0]
            bounds = rows * tf.range(replicas + 1) // replicas
            return tf.data.Dataset.range(first, first + local).map(
                lambda r: tf.nest.map_structure(lambda t: t[bounds[r]:bounds[r + 1]], batch))

        return make_batches().flat_map(slices)

    return strategy.distribute_datasets_from_function(pipeline)


class DistributedSteps:
    """The training and evaluation steps of one compiled caption decoder under one strategy.

    Batches are ((features, input tokens), target tokens); the loss is the mean over the target
    words (padding, id 0, is no word), as the decoders are compiled, plus any loss the model
    adds in training (the attention regulariser, a mean over the batch's rows).
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy):
        self.model, self.strategy = model, strategy
        with strategy.scope():  # the optimizer's slots are made here, not inside a replica
            model.optimizer.build(model.trainable_variables)
        self._train = tf.function(self._train_step)
        self._evaluate = tf.function(self._evaluate_step)

    def train(self, batches: Iterator, steps: int) -> float:
        """``steps`` steps on the distributed iterator ``batches``; their mean loss."""
        return self._mean(self._train, batches, steps)

    def evaluate(self, batches: tf.distribute.DistributedDataset, steps: int) -> float:
        """The mean loss of ``steps`` batches, weights unchanged."""
        return self._mean(self._evaluate, iter(batches), steps)

    def _mean(self, step, batches, steps: int) -> float:
        # Each batch weighted by its rows, as Keras logs a loss.
        total = rows = 0.0
        with self.strategy.scope():
            for _ in range(steps):
                loss, n = step(batches)
                total, rows = total + float(loss) * float(n), rows + float(n)
        return total / rows if rows else math.nan

    def _train_step(self, batches):
        loss, rows = self.strategy.run(self._replica_train, args=(next(batches),))
        return self._reduced(loss, rows)

    def _evaluate_step(self, batches):
        loss, rows = self.strategy.run(self._replica_loss, args=(next(batches), False))
        return self._reduced(loss, rows)

    def _reduced(self, loss, rows):
        # The replicas' shares add up to the global loss; ``rows`` is already the global count.
        return (self.strategy.reduce("sum", loss, axis=None),
                self.strategy.experimental_local_results(rows)[0])

    def _replica_loss(self, batch, training: bool):
        """This replica's share of the global batch's loss, and the global batch's rows."""
        (features, tokens), targets = batch
        context = tf.distribute.get_replica_context()
        words = tf.cast(tf.not_equal(targets, 0), "float32")
        rows = tf.cast(tf.shape(targets)[0], "float32")
        all_words, all_rows = context.all_reduce("sum", [tf.reduce_sum(words), rows])
        logits = self.model((features, tokens), training=training)
        per_word = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        loss = tf.math.divide_no_nan(tf.reduce_sum(per_word * words), all_words)
        if training and self.model.losses:  # each a mean over this replica's rows...
            added = tf.add_n(self.model.losses) * tf.math.divide_no_nan(rows, all_rows)
            loss += tf.where(rows > 0, added, 0.0)  # ...which, over no rows, is NaN
        return loss, all_rows

    def _replica_train(self, batch):
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            loss, rows = self._replica_loss(batch, training=True)
        variables = self.model.trainable_variables
        pairs = [(g, v) for g, v in zip(tape.gradient(loss, variables), variables) if g is not None]
        # The embedding's gradient stays IndexedSlices (one row per word of the batch; summing
        # replicas joins their rows): Keras clips those rows' norm, on one device as here.
        summed = context.all_reduce("sum", [g for g, _ in pairs])
        # The optimizer clips what each replica gives it, then sums over the replicas: clip the
        # sum here, as one device does, and give it to the optimizer on the first replica only
        # (zeros, or no rows, elsewhere), so that its own clip and sum leave it as it is. (A
        # 1/R share on each replica would not do: Adam squares the rows of IndexedSlices one
        # by one, so R copies of g/R are not g to it.)
        optimizer = self.model.optimizer
        clipped = optimizer._clip_gradients(summed)
        first = tf.equal(context.replica_id_in_sync_group, 0)
        optimizer.apply_gradients([(_kept_if(first, g), v) for g, (_, v) in zip(clipped, pairs)])
        return loss, rows


def _kept_if(keep, gradient):
    """``gradient`` where ``keep`` is true, else nothing: zeros, or no rows of IndexedSlices."""
    if isinstance(gradient, tf.IndexedSlices):
        rows = tf.where(keep, tf.shape(gradient.indices)[0], 0)
        return tf.IndexedSlices(gradient.values[:rows], gradient.indices[:rows], gradient.dense_shape)
    return gradient * tf.cast(keep, gradient.dtype)
