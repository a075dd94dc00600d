"""Distributed training: MirroredStrategy over two logical CPU devices gives
one device's weights; two MultiWorkerMirroredStrategy workers on localhost
agree, only the chief writes, and killed together they resume from the
chief's backup."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from kmlc import synthetic
from kmlc.plots import read_history

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# Runs in a fresh process: logical devices must be set before TensorFlow
# initialises. Writes the weights of four runs to an .npz file.
MIRRORED_SCRIPT = r"""
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras
import numpy as np

import kmlc

STEPS, BATCH, SIZE, LABELS = 5, 8, 32, 6
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (STEPS * BATCH, SIZE, SIZE, 3)).astype("float32")
y = (rng.random((STEPS * BATCH, LABELS)) < 0.35).astype("float32")
y[:, 1] = np.maximum(y[:, 1], y[:, 0])
graph = kmlc.LabelGraph.from_labels(y, strategy="threshold", tau=0.3)


def plain_backbone():
    # No batch norm: its statistics would differ per replica by design.
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        ],
        name="plain_backbone",
    )


def build(initial=None, aux_loss_weight=1.0):
    keras.utils.set_random_seed(0)
    model = kmlc.build_model(
        LABELS, graph, backbone=plain_backbone(), image_size=SIZE,
        heads="full", node_dim=8, top_k=3,
    )
    if initial is not None:
        model.set_weights(initial)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.5),
        loss="bce",
        metrics=[],
        aux_loss_weight=aux_loss_weight,
    )
    return model


def fit(model):
    history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return [np.asarray(w) for w in model.trainable_weights], history.history["loss"]


single = build()
initial = single.get_weights()
start = [np.asarray(w) for w in single.trainable_weights]
one_device, one_loss = fit(single)

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2, mirrored.num_replicas_in_sync
with mirrored.scope():
    distributed = build(initial)
two_devices, two_loss = fit(distributed)

# What two replicas would give if the auxiliary loss were not scaled by
# 1 / num_replicas: the same as a doubled auxiliary weight on one device.
unscaled, _ = fit(build(initial, aux_loss_weight=2.0))

arrays = {"loss_one": np.array(one_loss), "loss_two": np.array(two_loss)}
for name, weights in [
    ("start", start), ("one", one_device), ("two", two_devices),
    ("unscaled", unscaled),
]:
    for i, w in enumerate(weights):
        arrays[f"{name}_{i}"] = w
np.savez(sys.argv[1], **arrays)
"""

# Tolerance of the comparison: the replicas compute their halves of each
# batch and the gradients are summed across devices, a different order of
# float32 additions from one device's; over 5 SGD steps that moves weights
# by ~1e-6 relative. A real difference (a loss scaled twice, or not at all)
# moves them by 1e-2 or more (checked below against a doubled auxiliary
# loss).
RTOL, ATOL = 1e-4, 1e-5


def test_mirrored_on_two_devices_gives_one_devices_weights(tmp_path):
    out = tmp_path / "weights.npz"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    process = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    arrays = np.load(out)
    count = len([name for name in arrays.files if name.startswith("one_")])
    assert count > 10  # backbone, classifier, GCN, fusion and attention weights
    moved = 0.0
    for i in range(count):
        one, two = arrays[f"one_{i}"], arrays[f"two_{i}"]
        np.testing.assert_allclose(two, one, rtol=RTOL, atol=ATOL, err_msg=f"{i}")
        moved = max(moved, float(np.abs(one - arrays[f"start_{i}"]).max()))
    # The steps changed the weights far beyond the tolerance.
    assert moved > 1000 * ATOL
    # And the tolerance tells a mis-scaled auxiliary loss apart.
    differs = [
        not np.allclose(arrays[f"unscaled_{i}"], arrays[f"two_{i}"], RTOL, ATOL)
        for i in range(count)
    ]
    assert any(differs)
    np.testing.assert_allclose(arrays["loss_two"], arrays["loss_one"], rtol=1e-4)


# Multi-worker.


def free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


FINGERPRINT = re.compile(
    r"worker worker:(\d) finished; trainable weights fingerprint (\w+), "
    r"non-trainable (\w+)"
)
VAL_MAP = re.compile(
    r"epoch (\d+)/\d+: loss [\d.]+, val_loss ([\d.]+), val_mAP ([\d.]+)"
)


def write_multiworker_config(tmp_path, epochs):
    """A small synthetic data set and a training config for it."""
    data_dir = tmp_path / "data"
    synthetic.write_dataset(data_dir, 64, size=32, seed=1)
    config = {
        "data": {
            "format": "manifest",
            "manifest": "data/manifest.json",
            "images": "data/images",
            "vocabulary": "data/vocabulary.txt",
            "validation_fraction": 0.25,
            "augment": False,
        },
        # SmallCNN has batch norm: the workers' statistics are averaged.
        "model": {
            "preset": "full",
            "backbone": "smallcnn",
            "image_size": 32,
            "node_dim": 8,
            "top_k": 3,
        },
        "optimizer": {"name": "adamw", "learning_rate": 3e-3, "warmup_epochs": 0},
        "epochs": epochs,
        "batch_size": 16,
        "steps_per_epoch": 2,
        "tensorboard": False,
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return config_path


def start_workers(config_path, output_dirs, log_paths):
    """`kmlc train --strategy multiworker` in one process per output dir."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(len(output_dirs))]
    processes = []
    for index, (output_dir, log_path) in enumerate(
        zip(output_dirs, log_paths, strict=True)
    ):
        tf_config = {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index},
        }
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(tf_config),
            TF_CPP_MIN_LOG_LEVEL="3",
            CUDA_VISIBLE_DEVICES="",
            PYTHONUNBUFFERED="1",
        )
        log = open(log_path, "w")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kmlc.cli",
                "train",
                "--config",
                str(config_path),
                "--strategy",
                "multiworker",
                "--output-dir",
                str(output_dir),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log = log
        processes.append(process)
    return processes


def stop_workers(processes, timeout=400, kill=False):
    """Waits for (or SIGKILLs) the workers; returns their logs' texts."""
    try:
        for process in processes:
            if kill:
                process.kill()
            process.wait(timeout=timeout)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.log.close()
    return [pathlib.Path(process.log.name).read_text() for process in processes]


def test_two_workers_write_only_the_chiefs_files_and_resume_when_killed(tmp_path):
    """Two workers, the chief writing to `run/` and the other given its own,
    empty `other/`: the other writes nothing. Both are SIGKILLed once the
    chief's backup holds epoch 2, then started again with the chief's
    directory for both, as on a cluster's shared file system: they resume at
    the backup's epoch, agree on every weight and validation score, and the
    run ends with every epoch in its history once, the backup gone."""
    epochs = 4
    config_path = write_multiworker_config(tmp_path, epochs)
    run, other = tmp_path / "run", tmp_path / "other"
    metadata = run / "backup" / "training_metadata.json"

    def backup_epoch():
        try:
            return json.loads(metadata.read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            return None

    logs = [tmp_path / "first0.log", tmp_path / "first1.log"]
    first = start_workers(config_path, [run, other], logs)
    deadline = time.monotonic() + 300
    try:
        while (backup_epoch() or 0) < 2:
            assert all(p.poll() is None for p in first), logs[0].read_text()[-4000:]
            assert time.monotonic() < deadline, "no backup of epoch 2 in time"
            time.sleep(0.02)
    finally:
        stop_workers(first, timeout=30, kill=True)
    killed_at = backup_epoch()
    assert killed_at in (2, 3)
    assert not (run / "metrics.json").exists()
    assert not other.exists() or not any(other.rglob("*"))

    logs = [tmp_path / "second0.log", tmp_path / "second1.log"]
    processes = start_workers(config_path, [run, run], logs)
    texts = stop_workers(processes)
    for process, text in zip(processes, texts, strict=True):
        assert process.returncode == 0, text[-4000:]
        assert f"resuming from the backup in {run} at epoch {killed_at + 1}" in text
        ran = [int(epoch) for epoch in re.findall(r"epoch (\d+)/4: ", text)]
        assert ran == list(range(killed_at + 1, epochs + 1)), text  # none twice

    fingerprints = [FINGERPRINT.findall(text) for text in texts]
    assert [found[0][0] for found in fingerprints] == ["0", "1"]
    # The same trainable and non-trainable (batch norm) weights.
    assert fingerprints[0][0][1:] == fingerprints[1][0][1:]
    scores = [VAL_MAP.findall(text) for text in texts]
    assert len(scores[0]) == epochs - killed_at
    assert scores[0] == scores[1]

    names = {path.name for path in run.iterdir()}
    assert {"model.keras", "best.keras", "metrics.json", "history.csv"} <= names
    assert "backup" not in names
    assert not other.exists() or not any(other.rglob("*"))
    history = read_history(run / "history.csv")
    assert history["epoch"] == list(range(epochs))
    logged = [float(value) for _, _, value in scores[0]]
    np.testing.assert_allclose(history["val_mAP"][killed_at:], logged, atol=5e-5)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["mAP"] == pytest.approx(max(history["val_mAP"]), abs=1e-5)
