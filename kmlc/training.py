"""`kmlc.train(config)`: a whole training run, the way users run one.

The run reads the data, splits it deterministically, counts the label
graph on the training split only, builds and compiles the model under the
chosen `tf.distribute` strategy, and calls `model.fit` with callbacks for
exact validation mAP, the best checkpoint, backup-and-restore (a killed run
started again with the same command resumes), early stopping, TensorBoard,
a CSV log and PNG training curves. At the end it evaluates the best model
on the validation split and writes the metrics and plots.

Output directory layout:

    config.yaml          the run's configuration
    labels.txt           the vocabulary, one label a line
    label_graph.npz      the label graph (`LabelGraph.load`) + label_graph.png
    feature_cache/       with `model.cache_features`: the backbone's feature
                         maps (`kmlc.feature_cache`)
    best.keras           the best model by validation mAP
    model.keras          the final model (the best one, when there is one)
    history.csv          one row an epoch; training_curves.png
    metrics.json         the final validation report; per_label_ap.png
    backup/              the backup of an unfinished run (removed at the end)
    tensorboard/         TensorBoard logs
"""

import csv
import dataclasses
import json
import logging
import math
import os
import warnings

import keras
import numpy as np

from kmlc import callbacks as callbacks_lib
from kmlc import data as data_lib
from kmlc import io as kmlc_io
from kmlc import plots
from kmlc.config import save_config
from kmlc.evaluation import evaluate
from kmlc.evaluation import summary
from kmlc.evaluation import write_report
from kmlc.graph import LabelGraph
from kmlc.losses import get as get_loss
from kmlc.model import build_model
from kmlc.precision import dtype_policy
from kmlc.precision import training_policy

logger = logging.getLogger("kmlc.train")


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        output_dir: str.
        model_path: the final model (`.keras`).
        metrics: the validation report (`metrics.json`'s content).
        history: dict of per-epoch logs of this process (a resumed run has
            the earlier epochs in `history.csv`).
        skipped_images: names of the images skipped as unreadable.
    """

    output_dir: str
    model_path: str
    metrics: dict
    history: dict
    skipped_images: list


# Data.


def read_image_set(data_config):
    """The configured data as `(train, validation)` `ImageSet`s."""
    fmt = data_config.format
    validation = None
    if fmt == "manifest":
        image_set = data_lib.read_manifest(
            data_config.manifest, data_config.images, data_config.vocabulary
        )
    elif fmt == "csv":
        image_set = data_lib.read_csv(
            data_config.csv,
            images_dir=data_config.images,
            vocabulary=data_config.vocabulary,
            separator=data_config.separator,
        )
    elif fmt == "tfds":
        image_set = data_lib.read_tfds(
            data_config.tfds_name, data_config.tfds_split, data_config.tfds_data_dir
        )
        if data_config.tfds_validation_split:
            validation = data_lib.read_tfds(
                data_config.tfds_name,
                data_config.tfds_validation_split,
                data_config.tfds_data_dir,
            )
    else:
        image_set = data_lib.read_tfrecords(data_config.tfrecords)
    if data_config.max_images is not None:
        image_set = image_set.subset(
            np.arange(min(len(image_set), data_config.max_images))
        )
    if validation is None:
        train, validation = data_lib.split(
            image_set, data_config.validation_fraction, seed=data_config.split_seed
        )
    else:
        train = image_set
    if len(train) == 0 or len(validation) == 0:
        raise ValueError(
            f"The split left {len(train)} training and {len(validation)} "
            "validation images: use more data or another "
            "data.validation_fraction."
        )
    return train, validation


def count_graph(model_config, train_set):
    """The label graph of the training split (never the validation split)."""
    return LabelGraph.from_labels(
        train_set.labels,
        strategy=model_config.graph_strategy,
        tau=model_config.graph_tau,
        k=model_config.graph_k,
        reweight_p=model_config.graph_reweight_p,
        label_names=list(train_set.vocabulary),
        control=model_config.graph_control,
    )


# Optimisation.


def make_optimizer(optimizer_config, steps_per_epoch, epochs):
    """The optimizer with a linear warm-up then cosine learning rate."""
    peak = optimizer_config.learning_rate
    total = max(1, steps_per_epoch * epochs)
    warmup = min(
        int(round(optimizer_config.warmup_epochs * steps_per_epoch)), total - 1
    )
    if optimizer_config.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else peak,
            decay_steps=max(1, total - warmup),
            alpha=optimizer_config.min_learning_rate / peak,
            warmup_target=peak if warmup else None,
            warmup_steps=warmup,
        )
    else:
        learning_rate = peak
    kwargs = {"learning_rate": learning_rate}
    if optimizer_config.clipnorm:
        kwargs["clipnorm"] = optimizer_config.clipnorm
    if optimizer_config.name == "sgd":
        return keras.optimizers.SGD(
            momentum=optimizer_config.momentum,
            nesterov=False,
            weight_decay=optimizer_config.weight_decay or None,
            **kwargs,
        )
    if optimizer_config.name == "adamw":
        return keras.optimizers.AdamW(
            weight_decay=optimizer_config.weight_decay, **kwargs
        )
    return keras.optimizers.Adam(**kwargs)


def make_strategy(name):
    """The `tf.distribute` strategy of a name (`STRATEGIES`)."""
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this process writes files (always, except a non-chief worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker"
        and task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def build_compiled_model(config, graph, steps_per_epoch):
    """The model of `config.model`, compiled with the configured training."""
    model_config = config.model
    with dtype_policy(training_policy(config.mixed_precision)):
        model = build_model(
            graph.num_labels,
            graph,
            backbone=model_config.backbone,
            image_size=model_config.image_size,
            weights=model_config.weights,
            heads=model_config.heads or model_config.preset,
            gcn_layers=model_config.gcn_layers,
            node_dim=model_config.node_dim,
            top_k=model_config.top_k,
            normalization=model_config.graph_normalization,
        )
    if model_config.freeze_backbone:
        model.backbone.trainable = False
    compile_model(model, config, steps_per_epoch)
    return model


def compile_model(model, config, steps_per_epoch):
    """Compiles a `MultiLabelClassifier` (or its `HeadsModel`) for `config`."""
    model.compile(
        optimizer=make_optimizer(config.optimizer, steps_per_epoch, config.epochs),
        loss=get_loss(config.loss),
        metrics=[],
        aux_loss_weight=config.aux_loss_weight,
        jit_compile=config.jit_compile,
    )
    return model


# The run.


def _prepare_output(config, output_dir, chief):
    if chief:
        os.makedirs(output_dir, exist_ok=True)
        save_config(config, os.path.join(output_dir, "config.yaml"))
    return output_dir


def _backup_epoch(output_dir):
    """The epoch an interrupted run's backup resumes at; None without one."""
    backup = os.path.join(output_dir, "backup")
    if not os.path.isdir(backup):
        return None
    # BackupAndRestore keeps the previous state as `.bkp` (double_checkpoint).
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        try:
            with open(os.path.join(backup, name), encoding="utf-8") as f:
                return int(json.load(f).get("epoch", 0))
        except (OSError, ValueError, AttributeError):
            continue
    return 0


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


def _best_so_far(csv_path, monitor="val_mAP"):
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


def _keep_epochs_before(csv_path, epoch):
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
    resumed = _backup_epoch(output_dir)
    history = os.path.join(output_dir, "history.csv")
    if not chief:
        return resumed, None
    if resumed is None:
        stale = [
            name
            for name in ("history.csv", "best.keras", "model.keras")
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
    best = _best_so_far(history)
    _keep_epochs_before(history, resumed)
    return resumed, best


def make_callbacks(
    config,
    output_dir,
    validation,
    skipped,
    chief,
    loss,
    predict_fn=None,
    best_so_far=None,
    previous_val_map=(),
    saved_model=None,
):
    """The run's callbacks, in the order their logs and files need.

    `ValidationMetrics` comes first (the others read its `val_mAP`); the
    backup comes last, after the CSV row and the best checkpoint of the
    epoch are written (see `prepare_resume`). `best_so_far` is the best
    checkpoint's threshold (a resumed run's best `val_mAP`);
    `previous_val_map` the `val_mAP` of each epoch a resumed run has done,
    from which early stopping continues its count. `saved_model` is the
    model `best.keras` holds when another one is fitted (the whole model
    while its `heads_model()` trains on cached features).
    """
    path = lambda name: os.path.join(output_dir, name)  # noqa: E731
    callbacks = [
        callbacks_lib.ValidationMetrics(validation, loss=loss, predict_fn=predict_fn),
        callbacks_lib.SkippedImagesReport(skipped),
    ]
    if config.early_stopping_patience:
        callbacks.append(
            callbacks_lib.ResumedEarlyStopping(
                previous=previous_val_map,
                monitor="val_mAP",
                mode="max",
                patience=config.early_stopping_patience,
            )
        )
    if chief:
        callbacks.append(keras.callbacks.CSVLogger(path("history.csv"), append=True))
        callbacks.append(
            callbacks_lib.TrainingCurves(
                path("history.csv"), path("training_curves.png")
            )
        )
        callbacks.append(
            callbacks_lib.BestModelCheckpoint(
                path("best.keras"),
                saved_model=saved_model,
                monitor="val_mAP",
                mode="max",
                save_best_only=True,
                initial_value_threshold=best_so_far,
            )
        )
        if config.tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(path("tensorboard")))
        callbacks.append(
            keras.callbacks.BackupAndRestore(path("backup"), double_checkpoint=True)
        )
    return callbacks


def datasets(config, train_set, validation_set):
    """The training and validation `tf.data` pipelines of a config."""
    data_config = config.data
    train = data_lib.make_dataset(
        train_set,
        config.model.image_size,
        config.batch_size,
        training=True,
        augment=data_config.augment,
        randaugment=data_config.randaugment,
        shuffle_buffer=data_config.shuffle_buffer,
        cache=data_config.cache,
        deterministic=config.deterministic,
        seed=config.seed,
    )
    validation = data_lib.make_dataset(
        validation_set,
        config.model.image_size,
        config.batch_size,
        training=False,
        cache=data_config.cache,
        deterministic=True,
        seed=config.seed,
    )
    return train, validation


def steps_in_epoch(config, num_train):
    steps = math.ceil(num_train / config.batch_size)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    return steps


def train(config):
    """Trains a model as the config says; returns a `TrainResult`.

    Args:
        config: `kmlc.config.TrainConfig` (validated).
    """
    config.validate()
    if config.strategy == "multiworker":
        from kmlc.multiworker import train_multiworker

        return train_multiworker(config)
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    output_dir = _prepare_output(config, os.path.abspath(config.output_dir), chief)

    train_set, validation_set = read_image_set(config.data)
    graph = count_graph(config.model, train_set)
    logger.info(
        "%d training and %d validation images, %d labels; label graph: %s",
        len(train_set),
        len(validation_set),
        graph.num_labels,
        graph.summary(),
    )
    if chief:
        write_graph(graph, output_dir)
    train_ds, validation_ds = datasets(config, train_set, validation_set)
    views = config.model.cache_views if config.model.cache_features else 1
    steps = steps_in_epoch(config, len(train_set) * views)
    with strategy.scope():
        model = build_compiled_model(config, graph, steps)
    fit_model, fit_train, fit_validation = model, train_ds, validation_ds
    if config.model.cache_features:
        with strategy.scope():
            fit_model = compile_model(model.heads_model(), config, steps)
        fit_train, fit_validation, train_ds = cached_datasets(
            config, model, train_set, validation_set, validation_ds, output_dir
        )
    resumed, best_so_far = prepare_resume(output_dir, chief, config.overwrite)
    previous_val_map = ()
    if resumed is not None:
        logger.info(
            "resuming from the backup in %s at epoch %d", output_dir, resumed + 1
        )
        previous_val_map = monitored_per_epoch(
            os.path.join(output_dir, "history.csv"), resumed
        )
    loss = get_loss(config.loss)
    callbacks = make_callbacks(
        config,
        output_dir,
        fit_validation,
        train_ds.skipped,
        chief,
        loss,
        best_so_far=best_so_far,
        previous_val_map=previous_val_map,
        saved_model=model,
    )
    logger.info(
        "training %s (%s, %s px, heads %s) for %d epochs of %d steps on %d replica(s)",
        model.name,
        config.model.backbone,
        config.model.image_size,
        ",".join(model.heads),
        config.epochs,
        steps,
        strategy.num_replicas_in_sync,
    )
    with warnings.catch_warnings():
        # The pipeline skips unreadable images, so its length is unknown
        # until the first epoch ends, which Keras reports as running out of
        # data: expected here, not a problem.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = fit_model.fit(
            fit_train.repeat() if config.steps_per_epoch else fit_train,
            epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles
            verbose="auto" if config.verbose is None else config.verbose,
        )
    return finish(
        model, validation_ds, output_dir, chief, config, history.history, train_ds
    )


def cached_datasets(
    config, model, train_set, validation_set, validation_ds, output_dir
):
    """Training on cached feature maps (`model.cache_features`).

    Computes (or reopens) the backbone's feature maps of both splits in
    `model.cache_dir` (default `output_dir/feature_cache`), without
    augmentation except `model.cache_views`.

    Returns:
        `(train, validation, images)`: feature-map datasets for the heads,
        and the training images' dataset that filled the cache (its
        `skipped` names the unreadable images).
    """
    from kmlc import feature_cache

    directory = config.model.cache_dir or os.path.join(output_dir, "feature_cache")
    images = keras.Input(shape=(*model.image_size, 3))
    extractor = keras.Model(images, model.backbone(model.preprocessing(images)))
    train_images = data_lib.make_dataset(
        train_set,
        config.model.image_size,
        config.batch_size,
        training=False,
        deterministic=True,
    )
    common = {
        "backbone": str(config.model.backbone),
        "weights": None if config.model.weights is None else str(config.model.weights),
        "image_size": list(model.image_size),
        "mixed_precision": bool(config.mixed_precision),
    }
    caches = []
    for split, image_set, dataset, views in (
        ("train", train_set, train_images, config.model.cache_views),
        ("validation", validation_set, validation_ds, 1),
    ):
        meta = dict(
            common,
            split=split,
            views=views,
            images=feature_cache.fingerprint(image_set),
        )
        path = os.path.join(directory, split)
        cache = feature_cache.FeatureCache.open(path, meta)
        if cache is None:
            cache = feature_cache.FeatureCache.build(
                path, extractor, dataset, len(image_set), meta, views=views
            )
        else:
            logger.info("reusing the cached feature maps in %s", path)
        caches.append(cache)
    return (
        caches[0].dataset(config.batch_size, training=True, seed=config.seed),
        caches[1].dataset(config.batch_size),
        train_images,
    )


def write_graph(graph, output_dir):
    graph.save(os.path.join(output_dir, "label_graph.npz"))
    with open(os.path.join(output_dir, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(graph.label_names) + "\n")
    try:
        plots.label_graph(graph, os.path.join(output_dir, "label_graph.png"))
    except Exception as error:  # a plot must never fail a run
        logger.warning("could not draw the label graph: %s", error)


def finish(model, validation_ds, output_dir, chief, config, history, train_ds):
    """Evaluates the best model, writes the final model and metrics."""
    best_path = os.path.join(output_dir, "best.keras")
    if os.path.exists(best_path):
        model = keras.saving.load_model(best_path)  # outside any strategy
    report = evaluate(model, validation_ds, threshold=config.threshold)
    model_path = os.path.join(output_dir, "model.keras")
    if chief:
        kmlc_io.save_model(model, model_path)
        write_report(report, model.label_names, output_dir)
    skipped = train_ds.skipped.names
    if skipped:
        logger.warning(
            "%d unreadable image(s) were skipped: %s", len(skipped), ", ".join(skipped)
        )
    return TrainResult(
        output_dir=output_dir,
        model_path=model_path,
        metrics=summary(report),
        history={k: [float(v) for v in vs] for k, vs in history.items()},
        skipped_images=skipped,
    )
