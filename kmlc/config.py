"""Training configuration: typed dataclasses, loaded from YAML.

`TrainConfig` holds everything `kmlc.train` needs. `load_config(path,
overrides)` reads a YAML file and applies `key=value` overrides with dotted
keys (`model.backbone=efficientnetb0`). An unknown key is an error that
names the key, the file and the keys that are valid there; a value of the
wrong type is an error that names the field.

`training/configs/*.yaml` are complete, commented examples.
"""

import dataclasses
import os
import typing

import yaml

from kmlc.config_loading import apply_overrides
from kmlc.config_loading import check_choice
from kmlc.config_loading import from_dict
from kmlc.config_loading import merge
from kmlc.config_loading import read_config_file
from kmlc.config_loading import resolve_paths


@dataclasses.dataclass
class DataConfig:
    """Where the images and labels are, and how the pipeline treats them.

    Attributes:
        format: a registered data format (`kmlc.data.sources.SOURCES`:
            `manifest`, `csv`, `tfds`, `tfrecords`).
        manifest, images, vocabulary: a Corel-5k-style JSON manifest, its
            image directory and its vocabulary file (`format: manifest`).
        csv, separator: a `path,labels` CSV and its label separator;
            `images` is the directory paths are relative to (`format: csv`).
        tfds_name, tfds_split, tfds_validation_split, tfds_data_dir: a
            TensorFlow Datasets builder, e.g. `voc/2007` with splits
            `trainval` and `test` (`format: tfds`).
        tfrecords: a directory written by `kmlc data pack`.
        validation_fraction, split_seed: the deterministic hash split into
            training and validation (when no separate validation split).
        max_images: use only the first N images (quick runs).
        augment, randaugment, cache, shuffle_buffer: pipeline options
            (see `kmlc.data.make_dataset`).
        max_pixels: images whose header declares more pixels are skipped
            and named, never decoded (null: no limit). Defaults to 40 M.
        allow_outside_images_dir: accept manifest/CSV image names that
            lead outside `images` (absolute paths, `..`, symbolic links);
            refused by default.
    """

    format: str = "manifest"
    manifest: typing.Optional[str] = None
    images: typing.Optional[str] = None
    vocabulary: typing.Optional[str] = None
    csv: typing.Optional[str] = None
    separator: str = " "
    tfds_name: typing.Optional[str] = None
    tfds_split: str = "train"
    tfds_validation_split: typing.Optional[str] = None
    tfds_data_dir: typing.Optional[str] = None
    tfrecords: typing.Optional[str] = None
    validation_fraction: float = 0.1
    split_seed: int = 0
    max_images: typing.Optional[int] = None
    augment: bool = True
    randaugment: bool = False
    cache: bool = False
    shuffle_buffer: typing.Optional[int] = None
    max_pixels: typing.Optional[int] = 40_000_000
    allow_outside_images_dir: bool = False

    def validate(self):
        from kmlc.data.sources import SOURCES
        from kmlc.data.sources import missing_fields

        SOURCES.check("data.format", self.format)
        missing = missing_fields(self.format, dataclasses.asdict(self), training=True)
        if missing:
            raise ValueError(
                f"data.format={self.format!r} needs "
                + ", ".join(f"data.{name}" for name in missing)
                + "."
            )
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "data.validation_fraction must be between 0 and 1. "
                f"Received: {self.validation_fraction}"
            )
        if self.max_pixels is not None and self.max_pixels <= 0:
            raise ValueError(
                "data.max_pixels must be a positive number of pixels, or null "
                f"for no limit. Received: {self.max_pixels}"
            )


@dataclasses.dataclass
class ModelConfig:
    """The model and its label graph (see `kmlc.build_model`, `LabelGraph`).

    Attributes:
        preset: `"baseline"`, `"gcn"` or `"full"`.
        heads: a list of heads that overrides the preset.
        backbone, image_size, weights: the feature extractor; `weights` is
            null, `imagenet` or a weights file path.
        freeze_backbone: train the heads only (the backbone's batch norms
            stay in inference mode).
        cache_features: with `freeze_backbone`, compute the backbone's
            feature maps of the training and validation images once, into
            `output_dir/feature_cache/` (float16, `kmlc.feature_cache`),
            and train the heads on them: no augmentation beyond
            `cache_views`. The saved model still takes images.
        cache_views: 1 (the images) or 2 (also mirrored left-right).
        cache_dir: where the cache goes (null: `output_dir/feature_cache`);
            runs with the same backbone and data can share one.
        gcn_layers, node_dim, top_k: head sizes.
        graph_strategy, graph_tau, graph_k, graph_reweight_p,
            graph_normalization: how the label graph is binarised and
            normalised.
        graph_control: null, or an ablation control with the same
            parameters: `identity` (no edges) or `shuffled` (the graph on
            permuted labels); see `LabelGraph`.
        gcn_propagation: `auto`, `dense` or `sparse`: how the GCN
            multiplies with X' (`kmlc.layers.LabelGCN`); `auto` propagates
            over the edge list for large graphs with few edges.
        backbone_lr_multiplier: the backbone's learning rate relative to the
            heads' during fine-tuning (`fine_tune_epochs`); ML-GCN's 0.1.
        rescoring_gamma: re-score the final logits with the label graph's
            co-occurrence statistics at this strength
            (`kmlc.layers.CooccurrenceRescoring`; 0: off), or `auto`: with
            `cache_features`, chosen at the end of training from
            `kmlc.rescoring.GAMMAS` by the mAP of out-of-fold logits of
            linear probes on the cached *training* features
            (`kmlc.training.rescoring`), recorded in metrics.json; the
            probes match the `baseline` preset (other heads: a warning).
    """

    preset: str = "full"
    heads: typing.Optional[list] = None
    backbone: str = "resnet101"
    image_size: int = 448
    weights: typing.Optional[str] = None
    freeze_backbone: bool = False
    cache_features: bool = False
    cache_views: int = 1
    cache_dir: typing.Optional[str] = None
    gcn_layers: int = 4
    node_dim: int = 20
    top_k: int = 10
    graph_strategy: str = "threshold"
    graph_tau: float = 0.4
    graph_k: int = 5
    graph_reweight_p: typing.Optional[float] = None
    graph_normalization: str = "symmetric"
    graph_control: typing.Optional[str] = None
    gcn_propagation: str = "auto"
    backbone_lr_multiplier: float = 0.1
    rescoring_gamma: typing.Union[float, str] = 0.0

    def validate(self):
        from kmlc.graph import CONTROLS
        from kmlc.graph import STRATEGIES as GRAPH_STRATEGIES
        from kmlc.head_training import PRESETS
        from kmlc.head_training import resolve_heads
        from kmlc.layers.label_gcn import PROPAGATIONS

        check_choice("model.preset", self.preset, tuple(PRESETS))
        if self.heads:
            try:
                resolve_heads(self.heads)
            except ValueError as error:
                raise ValueError(f"model.heads: {error}") from None
        check_choice("model.graph_strategy", self.graph_strategy, GRAPH_STRATEGIES)
        if self.graph_control is not None:
            check_choice("model.graph_control", self.graph_control, CONTROLS)
        check_choice("model.gcn_propagation", self.gcn_propagation, PROPAGATIONS)
        if self.cache_features and not self.freeze_backbone:
            raise ValueError(
                "model.cache_features computes the backbone's features once, "
                "so the backbone must not train: set model.freeze_backbone: "
                "true as well."
            )
        check_choice("model.cache_views", self.cache_views, (1, 2))
        if not self.backbone_lr_multiplier > 0:
            raise ValueError(
                "model.backbone_lr_multiplier must be positive. Received: "
                f"model.backbone_lr_multiplier={self.backbone_lr_multiplier}"
            )
        self._check_rescoring()

    def _check_rescoring(self):
        from kmlc import rescoring

        if self.rescoring_gamma == "auto":
            if not self.cache_features:
                raise ValueError(
                    "model.rescoring_gamma: auto chooses gamma on the cached "
                    "training features: set model.cache_features: true (and "
                    "model.freeze_backbone: true), or give a number. Received: "
                    "model.cache_features=False"
                )
        else:
            field, allowed = "model.rescoring_gamma", "a number >= 0 (0: off) or 'auto'"
            rescoring.checked_gamma(self.rescoring_gamma, field, allowed)


@dataclasses.dataclass
class OptimizerConfig:
    """Optimizer and learning-rate schedule (linear warm-up, then cosine).

    Attributes:
        name: `"sgd"` (with momentum), `"adamw"` or `"adam"`.
        learning_rate: the peak rate, reached after the warm-up.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay (AdamW, and SGD).
        schedule: `"cosine"` (decay to `min_learning_rate` at the end) or
            `"constant"`.
        warmup_epochs: linear warm-up from zero, in epochs (fractions ok).
        min_learning_rate: the rate at the end of the cosine.
        clipnorm: clip each gradient to this norm (null: no clipping).
    """

    name: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    min_learning_rate: float = 0.0
    clipnorm: typing.Optional[float] = None

    def validate(self):
        from kmlc.training.optimizers import OPTIMIZERS
        from kmlc.training.optimizers import SCHEDULES

        OPTIMIZERS.check("optimizer.name", self.name)
        SCHEDULES.check("optimizer.schedule", self.schedule)
        if self.learning_rate <= 0:
            raise ValueError(
                f"optimizer.learning_rate must be positive. Received: "
                f"{self.learning_rate}"
            )


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs.

    Attributes:
        data, model, optimizer: the sections above.
        loss: `"bce"` or `"asl"` (on the final logits; the same loss on the
            fusion head's logits is added with weight `aux_loss_weight`).
        epochs, batch_size: `batch_size` is the global batch, whatever the
            number of devices.
        fine_tune_epochs: after `epochs` with `model.freeze_backbone`,
            this many more on the images with the backbone unfrozen but its
            batch norms (`kmlc.training.fine_tuning`): a fresh optimizer and
            schedule, the backbone at `model.backbone_lr_multiplier` times.
        fine_tune_learning_rate: the heads' peak learning rate while
            fine-tuning (null: `optimizer.learning_rate`).
        steps_per_epoch: cap the steps of an epoch (null: the whole set).
        mixed_precision: train with the `mixed_float16` policy.
        jit_compile: compile the training step with XLA.
        strategy: `"default"`, `"mirrored"` (all visible devices of this
            machine) or `"multiworker"` (from `TF_CONFIG`).
        output_dir: where checkpoints, logs, plots and metrics go.
        early_stopping_patience: epochs without a better validation mAP
            before stopping (null: never).
        tensorboard: write TensorBoard logs.
        seed: seeds weights, shuffling and augmentation.
        deterministic: the same batches and augmentations for the same seed.
        threshold: the score threshold of the final report.
        per_label_thresholds: at the end, choose each label's threshold on
            the validation split (the best F1, `kmlc.thresholds`), save them
            with the model and report the metrics at them too.
        threshold_min_positives, threshold_prior_positives: labels with
            fewer validation positives keep 0.5; the others' thresholds are
            shrunk towards 0.5 as if it had been measured on this many
            positives (`kmlc.thresholds.choose_thresholds`).
        verbose: Keras progress output: null (auto: a bar), 1 (a bar), 2
            (one line an epoch, for logs) or 0 (none: kmlc logs one line an
            epoch).
        overwrite: replace a finished run's results in `output_dir` (without
            it, such a run is an error; an interrupted run always resumes).
        resume: how an interrupted run resumes from its backup: `backup`
            (its latest checkpoint, which must be intact: a broken one is an
            error that changes no file) or `newest-intact` (the checkpoint
            one epoch earlier when the latest is broken).
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    loss: str = "bce"
    aux_loss_weight: float = 1.0
    epochs: int = 20
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: typing.Optional[float] = None
    batch_size: int = 32
    steps_per_epoch: typing.Optional[int] = None
    mixed_precision: bool = False
    jit_compile: bool = False
    strategy: str = "default"
    output_dir: str = "runs/kmlc"
    early_stopping_patience: typing.Optional[int] = None
    tensorboard: bool = True
    seed: int = 0
    deterministic: bool = False
    threshold: float = 0.5
    per_label_thresholds: bool = True
    threshold_min_positives: int = 1
    threshold_prior_positives: float = 10.0
    verbose: typing.Optional[int] = None
    overwrite: bool = False
    resume: str = "backup"

    def validate(self):
        from kmlc.losses import LOSSES
        from kmlc.training.backup import RESUME_POLICIES
        from kmlc.training.strategies import STRATEGIES

        self.data.validate()
        self.model.validate()
        self.optimizer.validate()
        LOSSES.check("loss", self.loss)
        STRATEGIES.check("strategy", self.strategy)
        check_choice("resume", self.resume, RESUME_POLICIES)
        if self.model.cache_features and self.strategy == "multiworker":
            raise ValueError(
                "model.cache_features is not supported with strategy: "
                "multiworker (each worker would need the whole cache)."
            )
        for name, least in (
            ("epochs", 1),
            ("batch_size", 1),
            ("threshold_min_positives", 1),
            ("threshold_prior_positives", 0),
            ("fine_tune_epochs", 0),
        ):
            if getattr(self, name) < least:
                raise ValueError(
                    f"{name} must be at least {least}. Received: {getattr(self, name)}"
                )
        if self.fine_tune_epochs:
            from kmlc.training.fine_tuning import check_config

            check_config(self)
        return self

    def to_dict(self):
        return dataclasses.asdict(self)


def load_config(path=None, overrides=()):
    """Reads a YAML config file (or none) and applies overrides.

    Data paths may use environment variables (`$HOME`,
    `${KMLC_COREL5K:-../data/corel5k}` with a default). Relative ones are
    resolved against the file's directory when they come from the file (a
    config can sit beside its data), against the current directory when
    they come from an override (`--set data.manifest=train.json`); the
    resolved, absolute paths are what `save_config` writes.

    Args:
        path: str or None. A YAML file.
        overrides: iterable of `key=value` strings.

    Returns:
        A validated `TrainConfig`.
    """
    data, where = {}, "--set"
    if path is not None:
        data, where = read_config_file(path), os.fspath(path)
    # Check the overrides on their own first, so that their errors name
    # --set rather than the file.
    overridden = resolve_paths(apply_overrides({}, overrides), os.getcwd())
    from_dict(overridden, TrainConfig, where="--set")
    return from_dict(merge(data, overridden), TrainConfig, where=where).validate()


def save_config(config, path):
    """Writes a config as YAML (the run's own record of what it did)."""
    from kmlc import io as kmlc_io

    kmlc_io.write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
