"""From a config to a `Run`: everything a training loop needs, built once.

`build_run(config)` sets the seed, makes the strategy, reads and splits
the data, counts the label graph on the training split, builds the
datasets and the compiled model (and, with `model.cache_features`, the
heads model and the cached feature maps it trains on) and loads an
interrupted run's backup, all before it writes anything; then it readies
the output directory. The loops (`kmlc.training.trainer`,
`kmlc.training.multiworker`) take the `Run`.
"""

import dataclasses
import logging
import math
import os

import keras
import tensorflow as tf

from kmlc import data as data_lib
from kmlc.data.sources import SOURCES
from kmlc.data.sources import read_image_set
from kmlc.graph import LabelGraph
from kmlc.losses import get as get_loss
from kmlc.model import build_model
from kmlc.precision import dtype_policy
from kmlc.precision import is_mixed_precision
from kmlc.precision import training_policy
from kmlc.training import run_directory
from kmlc.training.backup import MAIN
from kmlc.training.optimizers import make_optimizer
from kmlc.training.strategies import is_chief
from kmlc.training.strategies import make_strategy

logger = logging.getLogger("kmlc.train")


@dataclasses.dataclass
class Run:
    """What a training loop needs, built by `build_run`.

    Attributes:
        config: the validated `TrainConfig`.
        output_dir: str. Absolute.
        strategy: the `tf.distribute` strategy; `chief`: whether this
            process writes files.
        train_set, validation_set: the split `ImageSet`s; `graph`: the
            label graph of `train_set`.
        steps: int. Optimizer steps an epoch.
        model: the compiled `MultiLabelClassifier` (what is saved).
        fit_model: the model trained: `model`, or its heads model on
            cached feature maps.
        train_ds, validation_ds: the image pipelines (`train_ds.skipped`
            names the unreadable images); `validation_ds` scores the final
            model.
        fit_train, fit_validation: what `fit_model` trains and is scored
            on each epoch.
        initial_epoch: int. The first epoch to run (a resumed run's backup).
        stage: the stage of the backup resumed from (`backup.STAGES`):
            `"fine_tune"` when `model` is readied for fine-tuning already.
        fine_tune_steps: int. Optimizer steps a fine-tuning epoch (0:
            no fine-tuning).
        fine_tune_train: the training images' pipeline (augmented,
            shuffled) the fine-tuning stage trains on (None: none).
        best_so_far: the best `val_mAP` of the run so far (None: none).
        previous_val_map: the `val_mAP` of each epoch already done.
        loss: the training loss (its main term scores `val_loss`).
    """

    config: object
    output_dir: str
    strategy: object
    chief: bool
    train_set: object
    validation_set: object
    graph: object
    steps: int
    model: object
    fit_model: object
    train_ds: object
    validation_ds: object
    fit_train: object
    fit_validation: object
    initial_epoch: int = 0
    stage: str = MAIN
    fine_tune_steps: int = 0
    fine_tune_train: object = None
    best_so_far: object = None
    previous_val_map: tuple = ()
    loss: object = None


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


def uses_mixed_precision(config):
    """Whether a run computes in float16: asked for, and a GPU is visible.

    On a CPU `mixed_float16` only costs time (a ResNet-101 step took 5-6x
    as long as in float32 on 2 cores), so there the run trains in float32.
    """
    if not config.mixed_precision:
        return False
    if tf.config.list_logical_devices("GPU"):
        return True
    logger.warning(
        "mixed_precision: true, but no GPU is visible: training in float32 "
        "(float16 on a CPU is several times slower)"
    )
    return False


def build_compiled_model(config, graph, steps_per_epoch, mixed_precision=None):
    """The model of `config.model`, compiled with the configured training.

    `mixed_precision` defaults to `config.mixed_precision`.
    """
    model_config = config.model
    if mixed_precision is None:
        mixed_precision = config.mixed_precision
    with dtype_policy(training_policy(mixed_precision)):
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
            gcn_propagation=model_config.gcn_propagation,
            # "auto" is chosen and added at the end (kmlc.training.rescoring).
            rescoring_gamma=0.0
            if model_config.rescoring_gamma == "auto"
            else model_config.rescoring_gamma,
        )
    if model_config.freeze_backbone:
        model.backbone.trainable = False
    compile_model(model, config, steps_per_epoch)
    return model


def compile_model(model, config, steps_per_epoch, optimizer=None):
    """Compiles a `MultiLabelClassifier` (or its `HeadsModel`) for `config`.

    `optimizer` defaults to the configured one, scheduled over `epochs`.
    """
    if optimizer is None:
        optimizer = make_optimizer(config.optimizer, steps_per_epoch, config.epochs)
    model.compile(
        optimizer=optimizer,
        loss=get_loss(config.loss),
        metrics=[],
        aux_loss_weight=config.aux_loss_weight,
        jit_compile=config.jit_compile,
    )
    return model


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
        max_pixels=data_config.max_pixels,
    )
    validation = data_lib.make_dataset(
        validation_set,
        config.model.image_size,
        config.batch_size,
        training=False,
        cache=data_config.cache,
        deterministic=True,
        seed=config.seed,
        max_pixels=data_config.max_pixels,
    )
    return train, validation


def steps_in_epoch(config, num_train):
    """Optimizer steps in an epoch of `num_train` examples."""
    steps = math.ceil(num_train / config.batch_size)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    return steps


def cache_directory(config, output_dir):
    """The feature cache's folder: `model.cache_dir` or `output_dir/feature_cache`."""
    return config.model.cache_dir or os.path.join(output_dir, "feature_cache")


def cached_datasets(config, model, image_sets, validation_ds, output_dir):
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

    train_set, validation_set = image_sets
    directory = cache_directory(config, output_dir)
    images = keras.Input(shape=(*model.image_size, 3))
    extractor = keras.Model(images, model.backbone(model.preprocessing(images)))
    train_images = data_lib.make_dataset(
        train_set,
        config.model.image_size,
        config.batch_size,
        training=False,
        deterministic=True,
        max_pixels=config.data.max_pixels,
    )
    common = {
        "backbone": str(config.model.backbone),
        "weights": None if config.model.weights is None else str(config.model.weights),
        "image_size": list(model.image_size),
        "mixed_precision": is_mixed_precision(model),
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


def build_run(config):
    """Everything a training loop needs for `config` (validated), as a `Run`.

    Everything that can fail on the config or the data is checked before
    the output directory is touched: the data files, the data, the model
    (an image size too small for the backbone), a finished run in the way,
    and a resumed run's backup (loaded into the fitted model). Only then
    are `config.yaml`, the label graph, `labels.txt` and (with
    `model.cache_features`) the feature cache written.
    """
    keras.utils.set_random_seed(config.seed)
    check_inputs(config.data)
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    output_dir = os.path.abspath(config.output_dir)

    train_set, validation_set = read_image_set(config.data)
    graph = count_graph(config.model, train_set)
    logger.info(
        "%d training and %d validation images, %d labels; label graph: %s",
        len(train_set),
        len(validation_set),
        graph.num_labels,
        graph.summary(),
    )
    train_ds, validation_ds = datasets(config, train_set, validation_set)
    views = config.model.cache_views if config.model.cache_features else 1
    steps = steps_in_epoch(config, len(train_set) * views)
    mixed_precision = uses_mixed_precision(config)
    with strategy.scope():
        model = build_compiled_model(config, graph, steps, mixed_precision)
        fit_model = model
        if config.model.cache_features:
            fit_model = compile_model(model.heads_model(), config, steps)
        fine_tune_steps = 0
        stages = fit_model
        if config.fine_tune_epochs:
            from kmlc.training import fine_tuning

            fine_tune_steps = fine_tuning.stage_steps(config, train_set)
            stages = fine_tuning.stage_models(
                config, model, fit_model, steps, fine_tune_steps
            )
        resume = run_directory.plan_resume(
            output_dir, stages, chief, config.overwrite, config.resume
        )
    if resume.checkpoint is not None:
        logger.info(
            "resuming from the backup in %s at epoch %d",
            output_dir,
            resume.initial_epoch + 1,
        )

    # Nothing was written before this line.
    if chief:
        run_directory.remove_stale_temps(output_dir)
        run_directory.write_config(config, output_dir)
        run_directory.write_graph(graph, output_dir)
        run_directory.apply_resume(output_dir, resume)
    fit_train, fit_validation = train_ds, validation_ds
    fine_tune_train = train_ds if config.fine_tune_epochs else None
    if config.model.cache_features:
        fit_train, fit_validation, train_ds = cached_datasets(
            config, model, (train_set, validation_set), validation_ds, output_dir
        )
    return Run(
        config=config,
        output_dir=output_dir,
        strategy=strategy,
        chief=chief,
        train_set=train_set,
        validation_set=validation_set,
        graph=graph,
        steps=steps,
        model=model,
        fit_model=fit_model,
        train_ds=train_ds,
        validation_ds=validation_ds,
        fit_train=fit_train,
        fit_validation=fit_validation,
        initial_epoch=resume.initial_epoch,
        stage=resume.checkpoint.stage if resume.checkpoint else MAIN,
        fine_tune_steps=fine_tune_steps,
        fine_tune_train=fine_tune_train,
        best_so_far=resume.best_so_far,
        previous_val_map=resume.previous_val_map,
        loss=get_loss(config.loss),
    )


def check_inputs(data_config):
    """Raises `FileNotFoundError` naming the config field of a missing path."""
    source = SOURCES.get(data_config.format, "data.format")
    for field in source.inputs:
        path = getattr(data_config, field)
        if path and not os.path.exists(path):
            raise FileNotFoundError(
                f"data.{field} not found: {path}. A relative path in a config "
                "file is read from the config file's folder; --set "
                f"data.{field}=PATH reads it from elsewhere. Received: "
                f"data.{field}={path!r}"
            )
