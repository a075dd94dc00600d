"""`kmlc demo`: the whole job on a fresh machine, offline, in a few minutes.

Generates synthetic multi-label scenes (`kmlc.synthetic`), trains the
baseline (the plain classifier, the paper's row 3) and the full model
(label graph, fusion and attention, row 5) with the same backbone, data and
schedule through `kmlc.train`, evaluates both on the same validation
images, and writes the models, metrics and plots. Both runs start from the
same seed, so the comparison isolates the heads.
"""

import dataclasses
import json
import logging
import os

import keras
import numpy as np

from kmlc import data as data_lib
from kmlc import io as kmlc_io
from kmlc import plots
from kmlc import synthetic
from kmlc.config import DataConfig
from kmlc.config import ModelConfig
from kmlc.config import OptimizerConfig
from kmlc.config import TrainConfig
from kmlc.metrics import sigmoid
from kmlc.training import train

logger = logging.getLogger("kmlc.demo")


@dataclasses.dataclass
class DemoOptions:
    """What the demo trains.

    Attributes:
        num_images: synthetic images (a tenth go to validation).
        image_size: their side, in pixels.
        epochs, batch_size, learning_rate: the schedule of both runs.
        backbone: a backbone name, trained from scratch (no download).
            Defaults to kmlc's `SmallCNN`, which learns in minutes on a CPU.
        presets: the presets compared side by side.
        seed: data and weights seed.
    """

    num_images: int = 2000
    image_size: int = 64
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 2e-3
    backbone: str = "smallcnn"
    presets: tuple = ("baseline", "full")
    seed: int = 0


def demo_config(options, data_dir, preset, output_dir):
    """The `TrainConfig` of one demo run."""
    manifest, images, vocabulary = (
        os.path.join(data_dir, "manifest.json"),
        os.path.join(data_dir, "images"),
        os.path.join(data_dir, "vocabulary.txt"),
    )
    return TrainConfig(
        data=DataConfig(
            format="manifest",
            manifest=manifest,
            images=images,
            vocabulary=vocabulary,
            validation_fraction=0.15,
            cache=True,
        ),
        model=ModelConfig(
            preset=preset,
            backbone=options.backbone,
            image_size=options.image_size,
            node_dim=32,
            graph_strategy="threshold",
            graph_tau=0.4,
        ),
        optimizer=OptimizerConfig(
            name="adamw",
            learning_rate=options.learning_rate,
            weight_decay=1e-4,
            warmup_epochs=1.0,
        ),
        epochs=options.epochs,
        batch_size=options.batch_size,
        output_dir=output_dir,
        tensorboard=False,
        seed=options.seed,
        deterministic=True,  # the same seed prints the same comparison
        verbose=2,
        overwrite=True,  # a demo run again is run again
    ).validate()


def run_demo(out_dir, options=None):
    """Runs the demo; returns `{preset: metrics}` and writes into `out_dir`.

    Writes `out_dir/model.keras` (the full model), `out_dir/metrics.json`
    (`{"baseline": {"mAP": ...}, "full": {"mAP": ...}}` plus details),
    `out_dir/ap_comparison.png`, `out_dir/attention_maps.png`,
    `out_dir/label_graph.png`, the synthetic data in `out_dir/data/` and each
    run's outputs in `out_dir/runs/<preset>/`.
    """
    options = options or DemoOptions()
    out_dir = os.path.abspath(out_dir)
    data_dir = os.path.join(out_dir, "data")
    if not os.path.exists(os.path.join(data_dir, "manifest.json")):
        logger.info("writing %d synthetic images to %s", options.num_images, data_dir)
        synthetic.write_dataset(
            data_dir, options.num_images, size=options.image_size, seed=options.seed
        )
    results, reports = {}, {}
    for preset in options.presets:
        run_dir = os.path.join(out_dir, "runs", preset)
        logger.info("training the %s model into %s", preset, run_dir)
        result = train(demo_config(options, data_dir, preset, run_dir))
        results[preset] = result.metrics
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            reports[preset] = json.load(f)
    last = options.presets[-1]
    last_dir = os.path.join(out_dir, "runs", last)
    kmlc_io.copy_file(
        os.path.join(last_dir, "model.keras"), os.path.join(out_dir, "model.keras")
    )
    kmlc_io.copy_file(
        os.path.join(last_dir, "label_graph.png"),
        os.path.join(out_dir, "label_graph.png"),
    )
    kmlc_io.write_json(os.path.join(out_dir, "metrics.json"), results)
    _comparison_plot(reports, os.path.join(out_dir, "ap_comparison.png"))
    _attention_plot(out_dir, options, demo_config(options, data_dir, last, last_dir))
    return results


def _comparison_plot(reports, path):
    """Per-label AP of each preset, side by side."""
    labels = list(next(iter(reports.values()))["per_label"])
    ap = {
        preset: [
            np.nan
            if report["per_label"][label]["AP"] is None
            else report["per_label"][label]["AP"]
            for label in labels
        ]
        for preset, report in reports.items()
    }
    plots.ap_comparison(ap, labels, path)


def _attention_plot(out_dir, options, config):
    """Attention maps of the full model on one validation image."""
    model = keras.saving.load_model(os.path.join(out_dir, "model.keras"))
    if "attention" not in model.heads:
        return
    from kmlc.data.sources import read_image_set

    _, validation = read_image_set(config.data)
    dataset = data_lib.make_dataset(validation.subset([0]), options.image_size, 1)
    images, _ = next(iter(dataset))
    maps, labels = model.attention_maps(images)
    scores = sigmoid(model.predict_on_batch(images))
    plots.attention_maps(
        np.asarray(images[0]),
        maps[0],
        labels[0],
        model.label_names,
        os.path.join(out_dir, "attention_maps.png"),
        scores=scores[0],
        image_name=str(validation.keys[0]),
    )
