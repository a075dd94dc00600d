"""Real backups of a scenes run, written as an interrupted run leaves them."""

import os

from kmlc.data.sources import read_image_set
from kmlc.training import backup
from kmlc.training.builders import build_compiled_model
from kmlc.training.builders import count_graph
from kmlc.training.builders import steps_in_epoch


def compiled_model(config):
    """The model a run of `config` trains, compiled, its optimizer built."""
    train_set, _ = read_image_set(config.data)
    graph = count_graph(config.model, train_set)
    model = build_compiled_model(config, graph, steps_in_epoch(config, len(train_set)))
    model.optimizer.build(model.trainable_variables)
    return model


def write_backup(config, *epochs):
    """Saves a backup after each of `epochs` into `config.output_dir`.

    Returns:
        The model saved (the last epoch's state).
    """
    model = compiled_model(config)
    for epoch in epochs:
        backup.save(model, os.path.join(config.output_dir, "backup"), epoch)
    return model
