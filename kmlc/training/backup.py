"""The backup of an unfinished run, from which a killed run resumes.

    backup/
        latest.weights.h5           the model's and optimizer's state after
                                    the last finished epoch
        training_metadata.json      {"epoch": E, "batch": 0}: E epochs done
        latest.weights.h5.bkp       the same pair one epoch earlier
        training_metadata.json.bkp

The layout is `keras.callbacks.BackupAndRestore(double_checkpoint=True)`'s;
kmlc writes it itself so that every file is written whole or not at all
(`kmlc.io`), and restores it before training starts, so that the first
epoch is an ordinary argument of the loop (`fit(initial_epoch=...)`).
`Backup` writes it after every epoch and removes it when training ends.
"""

import json
import os

import keras

from kmlc import io as kmlc_io

WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
PREVIOUS = ".bkp"


class Backup(keras.callbacks.Callback):
    """Saves the run's state after every epoch; removes it at the end.

    Put it last: the epoch's CSV row and best checkpoint are written
    before it (see `kmlc.training.run_directory.prepare_resume`).

    Args:
        directory: str. The backup directory.
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = os.fspath(directory)

    def on_epoch_end(self, epoch, logs=None):
        save(self.model, self.directory, epoch + 1)

    def on_train_end(self, logs=None):
        kmlc_io.remove_path(self.directory)


def save(model, directory, epoch):
    """Writes `model`'s state as the backup of `epoch` finished epochs.

    The previous state is kept first as `.bkp`; each file is replaced
    atomically.
    """
    os.makedirs(directory, exist_ok=True)
    weights = os.path.join(directory, WEIGHTS)
    metadata = os.path.join(directory, METADATA)
    for path in (weights, metadata):
        if os.path.exists(path):
            kmlc_io.copy_file(path, path + PREVIOUS)
    kmlc_io.save_model(model, weights)
    kmlc_io.write_text(metadata, json.dumps({"epoch": int(epoch), "batch": 0}))


def backup_epoch(directory):
    """The epoch an interrupted run's backup resumes at; None without one."""
    if not os.path.isdir(directory):
        return None
    for name in (METADATA, METADATA + PREVIOUS):
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                return int(json.load(f).get("epoch", 0))
        except (OSError, ValueError, AttributeError):
            continue
    return 0


def restore(model, directory):
    """Loads a backup into a compiled `model`; returns the epoch to run next.

    When the latest weights cannot be read, the previous (`.bkp`) pair
    replaces the latest one and is loaded instead.
    """
    weights = os.path.join(directory, WEIGHTS)
    metadata = os.path.join(directory, METADATA)
    if not os.path.isdir(directory):
        return 0
    if os.path.exists(weights):
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(weights)
        except OSError:
            if not os.path.exists(weights + PREVIOUS):
                raise
            kmlc_io.copy_file(weights + PREVIOUS, weights)
            if os.path.exists(metadata + PREVIOUS):
                kmlc_io.copy_file(metadata + PREVIOUS, metadata)
            else:
                kmlc_io.remove_path(metadata)
            model.load_weights(weights)
    if not os.path.exists(metadata):
        return 0
    with open(metadata, encoding="utf-8") as f:
        return int(json.load(f)["epoch"])
