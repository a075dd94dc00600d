"""Fine-tuning after the frozen stage: the backbone's own learning rate, the
frozen batch norms, a whole run, resuming across and inside the stage."""

import dataclasses
import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

import kmlc
from kmlc import data as data_lib
from kmlc.backbone_rate import BackboneRateOptimizer
from kmlc.backbone_rate import backbone_trainability
from kmlc.backbone_rate import set_backbone_trainability
from kmlc.backbone_rate import unfreeze_backbone
from kmlc.config import DataConfig
from kmlc.config import ModelConfig
from kmlc.config import OptimizerConfig
from kmlc.config import TrainConfig
from kmlc.config import load_config
from kmlc.data.sources import read_image_set
from kmlc.feature_cache import FeatureCache
from kmlc.plots import read_history
from kmlc.training import backup
from kmlc.training.builders import build_run
from kmlc.training.fine_tuning import ready_for_fine_tuning
from tests import model_fixtures as fx


def fine_tune_config(name, multiplier, learning_rate, fine_tune_learning_rate=None):
    """A config whose fine-tuning optimizer has a constant learning rate."""
    return TrainConfig(
        data=DataConfig(manifest="m", images="i", vocabulary="v"),
        model=ModelConfig(freeze_backbone=True, backbone_lr_multiplier=multiplier),
        optimizer=OptimizerConfig(
            name=name,
            learning_rate=learning_rate,
            schedule="constant",
            warmup_epochs=0,
            weight_decay=1e-2,
        ),
        fine_tune_epochs=1,
        fine_tune_learning_rate=fine_tune_learning_rate,
    )


def one_step(multiplier, name, learning_rate, fine_tune_learning_rate=None):
    """Backbone and head weights before and after one fine-tuning step."""
    model = fx.tiny_model("full", seed=0)
    model.backbone.trainable = False
    config = fine_tune_config(name, multiplier, learning_rate, fine_tune_learning_rate)
    ready_for_fine_tuning(model, config, steps_per_epoch=1)
    assert isinstance(model.optimizer, BackboneRateOptimizer)
    backbone = list(model.backbone.trainable_variables)
    ids = {id(v) for v in backbone}
    heads = [v for v in model.trainable_variables if id(v) not in ids]
    before = [np.array(v) for v in backbone], [np.array(v) for v in heads]
    model.train_on_batch(fx.images(8, seed=1), fx.label_matrix(8))
    after = [np.array(v) for v in backbone], [np.array(v) for v in heads]
    return before, after


@pytest.mark.parametrize(
    "name, learning_rate", [("sgd", 0.5), ("adamw", 1e-2)], ids=["sgd", "adamw"]
)
def test_the_backbone_moves_by_the_multiplier(name, learning_rate):
    """One step from the same weights on the same batch: the backbone's
    change is 0.1 times that at multiplier 1, the heads' the same. For
    AdamW too (scaling the gradients would change nothing there: Adam's
    first step is about lr * sign(gradient))."""
    (b0, h0), (b1, h1) = one_step(1.0, name, learning_rate)
    (c0, g0), (c1, g1) = one_step(0.1, name, learning_rate)
    assert len(b0) == 4  # the two convolutions' kernels and biases
    for start, full, start_slow, slow in zip(b0, b1, c0, c1, strict=True):
        np.testing.assert_array_equal(start, start_slow)
        moved = full - start
        assert np.abs(moved).max() > 1e-4
        np.testing.assert_allclose(slow - start, 0.1 * moved, rtol=2e-3, atol=1e-7)
    for start, start_slow, full, slow in zip(h0, g0, h1, g1, strict=True):
        np.testing.assert_array_equal(start, start_slow)
        np.testing.assert_allclose(slow, full, rtol=1e-5, atol=1e-7)


def test_batch_norm_stays_frozen_and_in_inference_mode():
    model = fx.tiny_model("baseline", seed=0)
    model.backbone.trainable = False
    ready_for_fine_tuning(model, fine_tune_config("sgd", 0.1, 0.5), 1)
    norm = next(
        layer
        for layer in model.backbone.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    conv = model.backbone.layers[1]
    assert not norm.trainable and conv.trainable
    statistics = [np.array(v) for v in norm.weights]
    kernel = np.array(conv.kernel)
    for seed in range(3):
        model.train_on_batch(fx.images(8, seed=seed), fx.label_matrix(8))
    assert np.abs(np.array(conv.kernel) - kernel).max() > 1e-4
    for old, new in zip(statistics, norm.weights, strict=True):
        np.testing.assert_array_equal(old, np.array(new))  # gamma, beta, mean, var
    # Inference mode in training: the same outputs with training=True.
    x = fx.images(4, seed=9)
    np.testing.assert_allclose(
        model.backbone(x, training=True), model.backbone(x, training=False), atol=1e-6
    )


def test_unfreeze_backbone_leaves_only_batch_norms_frozen():
    model = fx.tiny_model("baseline")
    model.backbone.trainable = False
    unfreeze_backbone(model)
    kinds = {type(layer).__name__: layer.trainable for layer in model.backbone.layers}
    assert kinds == {
        "Rescaling": True,
        "Conv2D": True,
        "BatchNormalization": False,
    }


def test_optimizer_misuse_is_named():
    heads, slow = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.01)
    optimizer = BackboneRateOptimizer(heads, slow)
    variable = keras.Variable(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="compile a kmlc model with it.*1 variables"):
        optimizer.build([variable])
    with pytest.raises(ValueError, match=r"Received: \['learning_rate'\]"):
        BackboneRateOptimizer(heads, slow, learning_rate=0.1)
    model = fx.tiny_model("baseline")
    model.compile(optimizer=optimizer)
    optimizer.build(model.trainable_variables)
    with pytest.raises(ValueError, match="built already.*model='kmlc'"):
        optimizer.bind(model)


def test_the_first_stages_backup_records_the_stage_as_finished(tmp_path):
    """Stopped early (here after epoch 1 of 3), the first stage's backup is
    kept and says 3 epochs are done, so a resumed run goes on to fine-tune;
    stopped at its end it is not saved again. A stage it does not know is
    named."""
    model = fx.tiny_model("baseline")
    model.compile(optimizer="sgd")
    model.optimizer.build(model.trainable_variables)
    directory = tmp_path / "backup"
    callback = backup.Backup(directory, backup.MAIN, end_epoch=3)
    callback.set_model(model)
    callback.on_epoch_end(0)
    callback.on_train_end()
    checkpoint = backup.inspect(model, directory)
    assert (checkpoint.epoch, checkpoint.stage) == (3, "main")
    finished = backup.Backup(tmp_path / "other", backup.MAIN, end_epoch=1)
    finished.set_model(model)
    finished.on_epoch_end(0)
    finished.on_train_end()
    assert not (tmp_path / "other" / "training_metadata.json.bkp").exists()
    metadata = directory / "training_metadata.json"
    metadata.write_text(
        json.dumps({"epoch": 3, "weights": "epoch-0003.weights.h5", "stage": "x"})
    )
    with pytest.raises(backup.BackupError, match="stage 'x' is not one of"):
        backup.inspect(model, directory)
    with pytest.raises(ValueError, match="stage must be one of.*Received: 'x'"):
        backup.save(model, directory, 4, stage="x")


# Whole runs.


def run_config(scenes_dir, output_dir, **kwargs):
    return fx.scenes_config(
        scenes_dir,
        output_dir,
        model={
            "preset": "gcn",
            "freeze_backbone": True,
            "cache_features": True,
            "backbone_lr_multiplier": 0.1,
        },
        epochs=2,
        fine_tune_epochs=2,
        **kwargs,
    )


def test_a_run_fine_tunes_after_its_frozen_stage(scenes_dir, tmp_path):
    config = run_config(scenes_dir, tmp_path / "run")
    result = kmlc.train(config)
    run_dir = tmp_path / "run"
    history = read_history(run_dir / "history.csv")
    assert history["epoch"] == [0, 1, 2, 3]
    assert len(result.history["val_mAP"]) == 4
    assert not (run_dir / "backup").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["mAP"] == pytest.approx(max(history["val_mAP"]), abs=2e-3)
    # model.keras is the best epoch's: fine-tuned, its backbone no longer
    # gives the cached (frozen) features; from the frozen stage, it does.
    model = kmlc.load_model(result.model_path)
    cache = FeatureCache(run_dir / "feature_cache" / "validation")
    _, validation_set = read_image_set(config.data)
    images = np.concatenate(
        [x for x, _ in data_lib.make_dataset(validation_set, 32, 64)]
    )
    features = model.backbone(model.preprocessing(images), training=False)
    changed = np.abs(np.asarray(features) - cache.features.astype(np.float32)).max()
    best_epoch = int(np.argmax(history["val_mAP"]))
    if best_epoch >= 2:
        assert changed > 1e-2, (best_epoch, changed)
    else:
        assert changed < 1e-2, (best_epoch, changed)
    # A fresh process loads the fine-tuned model with its optimizer.
    code = (
        "import kmlc; m = kmlc.load_model(%r); "
        "print(type(m.optimizer).__name__, len(m.label_names))" % result.model_path
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=True,
    ).stdout
    assert out.split() == ["BackboneRateOptimizer", str(model.num_labels)]


def test_a_cached_run_fine_tunes_on_the_shuffled_training_images(scenes_dir, tmp_path):
    """Not on the pipeline that filled the cache (fixed order, no augmentation)."""
    run = build_run(run_config(scenes_dir, tmp_path / "run"))

    def first_labels(dataset):
        return [next(iter(dataset))[1].numpy() for _ in range(2)]

    filled = first_labels(run.train_ds)
    np.testing.assert_array_equal(filled[0], filled[1])
    passes = first_labels(run.fine_tune_train)
    assert not np.array_equal(passes[0], passes[1])
    assert passes[0].shape == filled[0].shape
    assert run.fine_tune_steps == np.ceil(len(run.train_set) / 16)


class Killed(Exception):
    pass


def kill_after(monkeypatch, epoch):
    """Makes the run stop (as if killed) once its backup holds `epoch`."""
    save = backup.save

    def save_then_die(model, directory, done, stage=backup.MAIN):
        save(model, directory, done, stage)
        if done == epoch:
            raise Killed(f"killed after epoch {done} ({stage})")

    monkeypatch.setattr(backup, "save", save_then_die)


def test_a_killed_run_resumes_across_and_inside_fine_tuning(
    scenes_dir, tmp_path, monkeypatch
):
    """Killed after the frozen stage's last epoch (2), resumed and killed
    again inside fine-tuning (3), then resumed to the end: each backup names
    its stage, the fine-tuning one restores the fine-tuning model and
    optimizer, and refuses a config without fine-tuning epochs; every epoch
    runs once."""
    config = run_config(scenes_dir, tmp_path / "run")
    backup_dir = tmp_path / "run" / "backup"
    for killed_at, stage in ((2, "main"), (3, "fine_tune")):
        kill_after(monkeypatch, killed_at)
        with pytest.raises(Killed):
            kmlc.train(config)
        monkeypatch.undo()
        metadata = json.loads((backup_dir / "training_metadata.json").read_text())
        assert metadata["epoch"] == killed_at and metadata["stage"] == stage
        run = build_run(config)
        assert run.initial_epoch == killed_at and run.stage == stage

    # The fine-tuning model and optimizer, as the backup holds them.
    assert isinstance(run.model.optimizer, BackboneRateOptimizer)
    assert int(run.model.optimizer.iterations) == run.fine_tune_steps
    reloaded = ready_for_fine_tuning(
        kmlc.build_model(
            run.graph.num_labels,
            run.graph,
            backbone="smallcnn",
            image_size=32,
            heads="gcn",
        ),
        config,
        run.fine_tune_steps,
    )
    reloaded.optimizer.build(reloaded.trainable_variables)
    reloaded.load_weights(backup_dir / metadata["weights"])
    for a, b in zip(reloaded.weights, run.model.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    without_fine_tuning = dataclasses.replace(config, fine_tune_epochs=0)
    with pytest.raises(backup.BackupError, match="written while fine-tuning"):
        kmlc.train(without_fine_tuning)

    result = kmlc.train(config)
    history = read_history(tmp_path / "run" / "history.csv")
    assert history["epoch"] == [0, 1, 2, 3]
    assert len(result.history["loss"]) == 1
    assert not backup_dir.exists()


def test_fine_tune_learning_rate_sets_the_heads_and_the_backbone_alike():
    """SGD, one step: with fine_tune_learning_rate 0.05 instead of the first
    stage's 0.5, every weight, head or backbone, moves 0.1 times as far
    (those with a gradient: a zero-initialised block stops some at step 1)."""
    (b0, h0), (b1, h1) = one_step(0.1, "sgd", 0.5)
    (c0, g0), (c1, g1) = one_step(0.1, "sgd", 0.5, fine_tune_learning_rate=0.05)
    pairs = list(zip(b0 + h0, b1 + h1, c0 + g0, c1 + g1, strict=True))
    moving = [np.abs(fast - start).max() > 1e-5 for start, fast, _, _ in pairs]
    assert all(moving[: len(b0)]) and sum(moving) > len(b0) + 4
    for start, fast, start_slow, slow in pairs:
        np.testing.assert_array_equal(start, start_slow)
        moved = fast - start
        np.testing.assert_allclose(slow - start, 0.1 * moved, rtol=2e-3, atol=1e-7)


def test_config_errors(tmp_path):
    data = [
        f"data.manifest={tmp_path}/m.json",
        f"data.images={tmp_path}",
        f"data.vocabulary={tmp_path}/v.txt",
    ]
    with pytest.raises(ValueError, match="set model.freeze_backbone: true"):
        load_config(None, data + ["fine_tune_epochs=2"])
    frozen = data + ["model.freeze_backbone=true"]
    with pytest.raises(ValueError, match="multiworker. Received: fine_tune_epochs=2"):
        load_config(None, frozen + ["fine_tune_epochs=2", "strategy=multiworker"])
    with pytest.raises(ValueError, match="fine_tune_epochs must be at least 0"):
        load_config(None, frozen + ["fine_tune_epochs=-1"])
    with pytest.raises(ValueError, match="backbone_lr_multiplier=0.0"):
        load_config(None, frozen + ["model.backbone_lr_multiplier=0"])
    with pytest.raises(ValueError, match="fine_tune_learning_rate=0.0"):
        load_config(None, frozen + ["fine_tune_epochs=2", "fine_tune_learning_rate=0"])
    with pytest.raises(ValueError, match="threshold_min_positives must be at least 1"):
        load_config(None, data + ["threshold_min_positives=0"])
    assert load_config(None, frozen + ["fine_tune_epochs=2"]).fine_tune_epochs == 2


@pytest.mark.parametrize("state", [False, "except_batch_norms", True])
def test_a_reloaded_named_backbone_trains_what_the_saved_one_did(state, tmp_path):
    """A named backbone is rebuilt from its name on load: before, a frozen or
    fine-tuning backbone came back all trainable, batch norms included."""
    model = kmlc.build_model(4, fx.tiny_graph(4), backbone="smallcnn", image_size=32)
    set_backbone_trainability(model.backbone, state)
    names = sorted(v.path for v in model.trainable_variables)
    assert len(names) < len(model.variables)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = kmlc.load_model(path, compile=False)
    assert backbone_trainability(loaded.backbone) == state
    assert sorted(v.path for v in loaded.trainable_variables) == names


def test_a_fine_tuned_model_reloads_with_its_optimizer_state(tmp_path):
    model = kmlc.build_model(4, fx.tiny_graph(4), backbone="smallcnn", image_size=32)
    model.backbone.trainable = False
    ready_for_fine_tuning(model, fine_tune_config("adamw", 0.1, 1e-3), 1)
    model.train_on_batch(fx.images(4, size=32), fx.label_matrix(4, num_labels=4))
    path = str(tmp_path / "model.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Skipping variable loading ..."
        loaded = kmlc.load_model(path)
    saved = [np.asarray(v) for v in model.optimizer.variables]
    restored = [np.asarray(v) for v in loaded.optimizer.variables]
    assert len(saved) == len(restored) > 20
    for before, after in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(before, after)


def test_an_unknown_backbone_trainability_is_named():
    model = kmlc.build_model(4, fx.tiny_graph(4), backbone="smallcnn", image_size=32)
    with pytest.raises(ValueError, match="Received: backbone_trainable='partly'"):
        set_backbone_trainability(model.backbone, "partly")
    assert backbone_trainability(model.backbone) is True
