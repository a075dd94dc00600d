"""A run's output directory: what is written before training, and resuming.

    config.yaml          the run's configuration
    labels.txt           the vocabulary, one label a line
    label_graph.npz      the label graph (`LabelGraph.load`) + label_graph.png
    history.csv          one row an epoch (`append_history`)
    best.keras           the best model by validation mAP
    backup/              an unfinished run's state (`kmlc.training.backup`)

Every file here is written whole or not at all (`kmlc.io`). Only the chief
process of a run writes. `plan_resume` tells a new run from a resumed one
without changing a file; `apply_resume` then readies the history of a
resumed run (or removes a replaced run's results).
"""

import csv
import dataclasses
import logging
import math
import os

from kmlc import io as kmlc_io
from kmlc import plots
from kmlc.config import save_config
from kmlc.data import LabelVocabulary
from kmlc.training import backup as backup_lib

logger = logging.getLogger("kmlc.train")

HISTORY = "history.csv"
BEST = "best.keras"
FINAL = "model.keras"
BACKUP = "backup"


def write_config(config, output_dir):
    """Creates the output directory and writes `config.yaml` in it."""
    os.makedirs(output_dir, exist_ok=True)
    save_config(config, os.path.join(output_dir, "config.yaml"))


def remove_stale_temps(output_dir):
    """Removes what a killed run's writers left half-written (`.tmp-*`)."""
    for directory in (output_dir, os.path.join(output_dir, BACKUP)):
        for path in kmlc_io.remove_stale_temps(directory):
            logger.info("removed %s, left by a killed run", path)


def write_graph(graph, output_dir):
    """Writes the label graph (`.npz` and `.png`) and `labels.txt`."""
    graph.save(os.path.join(output_dir, "label_graph.npz"))
    LabelVocabulary(graph.label_names).save(os.path.join(output_dir, "labels.txt"))
    try:
        plots.label_graph(graph, os.path.join(output_dir, "label_graph.png"))
    except Exception as error:  # a plot must never fail a run
        logger.warning("could not draw the label graph: %s", error)


# The history.


def _monitored_rows(csv_path, monitor):
    """`(epochs, values)` of `monitor` in a CSV log; empty if unreadable."""
    if not os.path.exists(csv_path):
        return [], []
    try:
        history = plots.read_history(csv_path)
    except OSError:
        return [], []
    values = history.get(monitor, [])
    return history.get("epoch") or list(range(len(values))), values


def best_so_far(csv_path, monitor="val_mAP"):
    """The best monitored value of an earlier, interrupted run (or None)."""
    _, values = _monitored_rows(csv_path, monitor)
    values = [v for v in values if not math.isnan(v)]
    return max(values) if values else None


def monitored_per_epoch(csv_path, num_epochs, monitor="val_mAP"):
    """`monitor` of epochs `0 .. num_epochs - 1` in a CSV log (NaN if missing)."""
    values = [math.nan] * num_epochs
    epochs, column = _monitored_rows(csv_path, monitor)
    for epoch, value in zip(epochs, column, strict=False):
        if not math.isnan(epoch) and 0 <= int(epoch) < num_epochs:
            values[int(epoch)] = value
    return values


def append_history(csv_path, epoch, logs):
    """Adds the row of `epoch` to a history CSV, rewriting it atomically.

    The columns are `epoch` then the logs' keys, sorted (as Keras'
    `CSVLogger`); a key the file lacks becomes a new column (earlier rows
    get an empty value) and a column the logs lack gets an empty value, so
    a resumed run's rows always line up with the header.
    """
    rows, header = [], ["epoch"]
    if os.path.exists(csv_path):
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or header)
            rows = list(reader)
    header += sorted(key for key in logs if key not in header)
    rows.append({"epoch": epoch, **{key: _csv_value(v) for key, v in logs.items()}})
    with kmlc_io.atomic_path(csv_path) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(
                f, fieldnames=header, restval="", extrasaction="ignore"
            )
            writer.writeheader()
            writer.writerows(rows)


def _csv_value(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def keep_epochs_before(csv_path, epoch):
    """Drops the rows of `epoch` and later from a history CSV."""
    if not os.path.exists(csv_path):
        return
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]]
    for row in rows[1:]:
        try:
            if row and int(float(row[0])) < epoch:
                kept.append(row)
        except ValueError:
            continue
    if len(kept) == len(rows):
        return
    with kmlc_io.atomic_path(csv_path) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(kept)


# Resuming.


@dataclasses.dataclass
class Resume:
    """How a run starts, decided by `plan_resume` before any file changes.

    Attributes:
        checkpoint: the backup's `Checkpoint` loaded into the model (None:
            a new run).
        best_so_far: the best `val_mAP` of the run so far (None: none).
        previous_val_map: the `val_mAP` of each epoch the backup holds.
        stale: a finished run's files a new run removes (`overwrite`).
    """

    checkpoint: object = None
    best_so_far: object = None
    previous_val_map: tuple = ()
    stale: tuple = ()

    @property
    def initial_epoch(self):
        return self.checkpoint.epoch if self.checkpoint else 0


def plan_resume(output_dir, model, chief, overwrite=False, policy="backup"):
    """Decides how a run starts in `output_dir`, changing no file.

    A run resumes when `backup/` holds an interrupted run's state: the
    backup is checked whole and loaded into `model` (`backup.inspect`; a
    broken one is an error naming the bad file). At each epoch's end the
    callbacks write the CSV row, then `best.keras`, then the backup, so a
    run killed between them leaves rows of epochs that the backup does not
    hold: `apply_resume` drops those rows, as the epochs run again. The
    best `val_mAP` of all rows, the dropped ones included (`best.keras` may
    hold one of those epochs), is the best checkpoint's threshold, so
    `best.keras` is never replaced by a worse model.

    Without a backup the run is new. An earlier, finished run's results in
    the same directory are never lost silently: with `overwrite` its
    `history.csv`, `best.keras` and `model.keras` are to be removed (so
    that the new run neither appends to the old history nor takes the old
    model as its best); without it the run stops with an error naming them.

    Args:
        output_dir: str.
        model: the compiled model to train (what the backup holds), or a
            dict of a function per stage (`backup.inspect`).
        chief: bool. Whether this process writes (others change nothing).
        overwrite: bool. Replace a finished run's results.
        policy: the config's `resume` (`backup.RESUME_POLICIES`).

    Returns:
        A `Resume`.
    """
    directory = os.path.join(output_dir, BACKUP)
    history = os.path.join(output_dir, HISTORY)
    if backup_lib.exists(directory):
        checkpoint = backup_lib.inspect(model, directory, policy)
        if not chief:
            return Resume(checkpoint=checkpoint)
        return Resume(
            checkpoint=checkpoint,
            best_so_far=best_so_far(history),
            previous_val_map=tuple(monitored_per_epoch(history, checkpoint.epoch)),
        )
    if not chief:
        return Resume()
    stale = tuple(
        name
        for name in (HISTORY, BEST, FINAL)
        if os.path.exists(os.path.join(output_dir, name))
    )
    if stale and not overwrite:
        raise FileExistsError(
            f"{output_dir} holds a finished run ({', '.join(stale)}) and no "
            "backup to resume from: choose another output_dir, or set "
            "overwrite: true (--set overwrite=true) to replace it."
        )
    return Resume(stale=stale)


def apply_resume(output_dir, resume):
    """Readies the directory as `resume` says (the chief, after `plan_resume`)."""
    if resume.checkpoint is not None:
        keep_epochs_before(os.path.join(output_dir, HISTORY), resume.checkpoint.epoch)
        return
    if resume.stale:
        logger.warning(
            "overwrite: removing the earlier run's %s from %s",
            ", ".join(resume.stale),
            output_dir,
        )
        for name in resume.stale:
            os.remove(os.path.join(output_dir, name))
