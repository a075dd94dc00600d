"""Training: `kmlc.train(config)` and the pieces a run is made of.

    trainer.py        `train`: builds the run, then trains it with
                      `model.fit` (or the multi-worker loop)
    builders.py       config -> `Run`: strategy, data, graph, datasets,
                      compiled model, restored backup
    optimizers.py     the optimizer and schedule registries
    fine_tuning.py    the fine-tuning stage after the frozen one
                      (`fine_tune_epochs`; the backbone's own learning
                      rate: `kmlc.backbone_rate`)
    strategies.py     the `tf.distribute` strategy registry; the chief
    run_directory.py  the output directory: config, graph, history, resume
    backup.py         the backup a killed run resumes from, checked whole
    callbacks.py      validation mAP, best checkpoint, history, curves,
                      early stopping; the run's list of callbacks
    progress.py       one line an epoch, skipped images, CPU epoch time
    multiworker.py    the loop for `MultiWorkerMirroredStrategy`
    rescoring.py      `model.rescoring_gamma: auto`: gamma chosen at the
                      end on out-of-fold probes of the training split
    results.py        the final model and report; `TrainResult`

A run's output directory:

    config.yaml          the run's configuration
    labels.txt           the vocabulary, one label a line
    label_graph.npz      the label graph (`LabelGraph.load`) + label_graph.png
    feature_cache/       with `model.cache_features`: the backbone's feature
                         maps (`kmlc.feature_cache`)
    best.keras           the best model by validation mAP
    model.keras          the final model (the best one, when there is one)
    history.csv          one row an epoch; training_curves.png
    metrics.json         the final validation report (at 0.5 and at the
                         per-label thresholds); per_label_ap.png
    backup/              the backup of an unfinished run (removed at the end)
    tensorboard/         TensorBoard logs
"""

from kmlc import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    attributes={
        "Run": "builders",
        "build_run": "builders",
        "TrainResult": "results",
        "train": "trainer",
    },
)
