"""The backup of an unfinished run, from which a killed run resumes.

    backup/
        training_metadata.json      {"epoch": E, "batch": 0,
                                     "weights": "epoch-E.weights.h5",
                                     "stage": "main"}
        epoch-E.weights.h5          the model's and optimizer's state after
                                    E finished epochs
        training_metadata.json.bkp  the same one epoch earlier, and the
        epoch-<E-1>.weights.h5      weights it names

After each epoch `Backup` writes the new weights under a new name, keeps
the old metadata as `.bkp` and then replaces the metadata, each file
whole or not at all (`kmlc.io`): a run killed at any moment leaves
metadata that names complete weights. (Backups in the layout of
`keras.callbacks.BackupAndRestore`, `latest.weights.h5` without a
`"weights"` key, are read too.)

`"stage"` names the training stage whose model and optimizer wrote the
weights (`STAGES`): `"main"`, or `"fine_tune"` once a run with
`fine_tune_epochs` has unfrozen its backbone (`kmlc.training.fine_tuning`),
whose weights load only into the model readied for fine-tuning (another
optimizer, more trainable variables). Metadata without it is `"main"`'s. At
the end of a stage that another follows, the backup records the stage as
finished (`Backup(end_epoch=...)`), so that a run killed before the next
stage's first backup skips what is left of it (after early stopping).

Before training, `inspect` checks a backup without changing a file: the
metadata must parse and the weights must load into the model. A backup
that does not pass is an error naming the bad file; with
`resume: newest-intact` the `.bkp` checkpoint is used when the latest one
is broken.
"""

import dataclasses
import json
import os
import re

import keras

from kmlc import io as kmlc_io

METADATA = "training_metadata.json"
PREVIOUS = ".bkp"
LEGACY_WEIGHTS = "latest.weights.h5"
_WEIGHTS_NAME = re.compile(r"^(epoch-\d+|latest)\.weights\.h5(\.bkp)?$")
RESUME_POLICIES = ("backup", "newest-intact")
MAIN = "main"
FINE_TUNE = "fine_tune"
STAGES = (MAIN, FINE_TUNE)


class BackupError(ValueError):
    """A backup that cannot be resumed from (no file was changed)."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One resumable state: `epoch` finished epochs, weights in `weights`,
    written by the model and optimizer of `stage`."""

    epoch: int
    weights: str
    metadata: str
    stage: str = MAIN


class Backup(keras.callbacks.Callback):
    """Saves the run's state after every epoch; removes it at the end.

    Put it last: the epoch's CSV row and best checkpoint are written
    before it (see `kmlc.training.run_directory.prepare_resume`).

    Args:
        directory: str. The backup directory.
        stage: str. The stage being trained (`STAGES`). Defaults to `"main"`.
        end_epoch: int or None. None: the run ends with this training, and
            the backup is removed at its end. Otherwise another stage
            follows: the backup is kept, recording `end_epoch` epochs (this
            stage's last) as finished.
    """

    def __init__(self, directory, stage=MAIN, end_epoch=None):
        super().__init__()
        self.directory = os.fspath(directory)
        self.stage = stage
        self.end_epoch = end_epoch
        self._saved_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        save(self.model, self.directory, epoch + 1, self.stage)
        self._saved_epoch = epoch + 1

    def on_train_end(self, logs=None):
        if self.end_epoch is None:
            kmlc_io.remove_path(self.directory)
        elif self._saved_epoch != self.end_epoch:  # stopped early
            save(self.model, self.directory, self.end_epoch, self.stage)


def save(model, directory, epoch, stage=MAIN):
    """Writes `model`'s state as the backup of `epoch` finished epochs."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}. Received: {stage!r}")
    os.makedirs(directory, exist_ok=True)
    name = f"epoch-{int(epoch):04d}.weights.h5"
    kmlc_io.save_model(model, os.path.join(directory, name))
    metadata = os.path.join(directory, METADATA)
    if _read_metadata(metadata, directory, quiet=True) is not None:
        kmlc_io.copy_file(metadata, metadata + PREVIOUS)
    kmlc_io.write_text(
        metadata,
        json.dumps({"epoch": int(epoch), "batch": 0, "weights": name, "stage": stage}),
    )
    previous = _read_metadata(metadata + PREVIOUS, directory, quiet=True)
    keep = {name} | ({os.path.basename(previous.weights)} if previous else set())
    for other in os.listdir(directory):
        if _WEIGHTS_NAME.match(other) and other not in keep:
            kmlc_io.remove_path(os.path.join(directory, other))


def exists(directory):
    """Whether `directory` holds a backup: metadata or weights files."""
    if not os.path.isdir(directory):
        return False
    return any(
        name.startswith(METADATA) or _WEIGHTS_NAME.match(name)
        for name in os.listdir(directory)
    )


def inspect(model, directory, policy="backup"):
    """The checkpoint to resume from, loaded into `model`; changes no file.

    Args:
        model: the compiled model the backup was written from; or, for a
            run with stages, a dict `{stage: function}` whose function
            readies and returns the stage's model (the checkpoint's stage
            chooses).
        directory: str. The backup directory (`exists`).
        policy: `"backup"`: the latest checkpoint, which must be intact;
            `"newest-intact"`: the newest intact one (the `.bkp` one when
            the latest is broken).

    Returns:
        The `Checkpoint` loaded.

    Raises:
        BackupError: naming each bad file, when no allowed checkpoint loads.
    """
    if policy not in RESUME_POLICIES:
        raise ValueError(
            f"resume must be one of {RESUME_POLICIES}. Received: resume={policy!r}"
        )
    candidates = [os.path.join(directory, METADATA)]
    if policy == "newest-intact":
        candidates.append(candidates[0] + PREVIOUS)
    problems = []
    for metadata in candidates:
        try:
            checkpoint = _read_metadata(metadata, directory)
            _load(_stage_model(model, checkpoint), checkpoint.weights)
            return checkpoint
        except BackupError as error:
            problems.append(str(error))
    if policy == "newest-intact":
        hint = "No checkpoint in it is intact"
    else:
        hint = (
            "To resume from the checkpoint one epoch earlier if it is intact, "
            "run again with --set resume=newest-intact"
        )
    raise BackupError(
        f"The backup in {directory} cannot be resumed from: "
        + "; ".join(problems)
        + f". No file was changed. {hint}; to start the run over, move "
        f"{directory} away (history.csv and best.keras stay as they are)."
    )


def _stage_model(model, checkpoint):
    if not isinstance(model, dict):
        if checkpoint.stage != MAIN:
            raise BackupError(
                f"{checkpoint.metadata} was written while fine-tuning (stage "
                f"{checkpoint.stage!r}), which this run does not do: resume it "
                "with the config it was started with (fine_tune_epochs)"
            )
        return model
    if checkpoint.stage not in model:
        raise BackupError(
            f"{checkpoint.metadata} was written in stage {checkpoint.stage!r}, "
            f"which this run does not have (it has {sorted(model)}): resume it "
            "with the config it was started with (fine_tune_epochs)"
        )
    return model[checkpoint.stage]()


def _read_metadata(path, directory, quiet=False):
    """The `Checkpoint` a metadata file names (None if `quiet` and bad)."""
    # Keras' layout names no weights: latest.weights.h5 (.bkp beside .bkp).
    legacy = LEGACY_WEIGHTS + (PREVIOUS if path.endswith(PREVIOUS) else "")
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
        epoch = metadata["epoch"]
        name = metadata.get("weights", legacy)
        stage = metadata.get("stage", MAIN)
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r} is not a count of epochs")
        if not isinstance(name, str) or not _WEIGHTS_NAME.match(name):
            raise ValueError(f"weights {name!r} is not a backup's weights file")
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} is not one of {STAGES}")
    except FileNotFoundError:
        if quiet:
            return None
        raise BackupError(f"{path} is missing") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        if quiet:
            return None
        raise BackupError(f"{path} is unreadable ({error})") from None
    return Checkpoint(
        epoch=epoch,
        weights=os.path.join(directory, name),
        metadata=path,
        stage=stage,
    )


def _load(model, weights):
    """Loads a weights file into `model` (building its optimizer first)."""
    if not os.path.isfile(weights):
        raise BackupError(f"{weights} is missing")
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(weights)
    except Exception as error:  # h5py and Keras raise several kinds
        raise BackupError(f"{weights} does not load ({error})") from None
