"""A run's output directory: what is written before training, and resuming.

    config.yaml          the run's configuration
    labels.txt           the vocabulary, one label a line
    label_graph.npz      the label graph (`LabelGraph.load`) + label_graph.png
    history.csv          one row an epoch (`keras.callbacks.CSVLogger`)
    best.keras           the best model by validation mAP
    backup/              an unfinished run's state (`kmlc.training.backup`)

Every file here is written whole or not at all (`kmlc.io`). Only the chief
process of a run writes; `prepare_resume` tells a new run from a resumed
one and readies the history of a resumed one.
"""

import csv
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


def keep_epochs_before(csv_path, epoch):
    """Drops the rows of `epoch` and later from a CSVLogger file."""
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


def prepare_resume(output_dir, chief, overwrite=False):
    """Readies the output directory for a new or a resumed run.

    A run resumes when `backup/` holds an interrupted run's state. At each
    epoch's end the callbacks write the CSV row, then `best.keras`, then
    the backup, so a run killed between them leaves rows of epochs that
    the backup does not hold: those rows are dropped, as the epochs run
    again. The best `val_mAP` of all rows, the dropped ones included
    (`best.keras` may hold one of those epochs), is the best checkpoint's
    threshold, so `best.keras` is never replaced by a worse model.

    Without a backup the run is new. An earlier, finished run's results in
    the same directory are never lost silently: with `overwrite` its
    `history.csv`, `best.keras` and `model.keras` are removed (so that the
    new run neither appends to the old history nor takes the old model as
    its best); without it the run stops with an error naming them.

    Args:
        output_dir: str.
        chief: bool. Whether this process writes (others change nothing).
        overwrite: bool. Replace a finished run's results.

    Returns:
        `(resumed, best)`: the epoch the backup resumes at (None: a new
        run) and the best `val_mAP` so far (None: no threshold).
    """
    resumed = backup_lib.backup_epoch(os.path.join(output_dir, BACKUP))
    history = os.path.join(output_dir, HISTORY)
    if not chief:
        return resumed, None
    if resumed is None:
        stale = [
            name
            for name in (HISTORY, BEST, FINAL)
            if os.path.exists(os.path.join(output_dir, name))
        ]
        if stale and not overwrite:
            raise FileExistsError(
                f"{output_dir} holds a finished run ({', '.join(stale)}) and no "
                "backup to resume from: choose another output_dir, or set "
                "overwrite: true (--set overwrite=true) to replace it."
            )
        if stale:
            logger.warning(
                "overwrite: removing the earlier run's %s from %s",
                ", ".join(stale),
                output_dir,
            )
            for name in stale:
                os.remove(os.path.join(output_dir, name))
        return None, None
    best = best_so_far(history)
    keep_epochs_before(history, resumed)
    return resumed, best
