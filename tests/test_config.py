"""Tests for kmlc.config: YAML loading, --set overrides and their errors, and
`kmlc train` on a bad config (exit 2, the message, no traceback)."""

import os
import pathlib
import textwrap

import numpy as np
import pytest

import kmlc.cli
from kmlc import config as config_lib
from kmlc.config import load_config

VALID = """\
data:
  format: manifest
  manifest: data/train.json
  images: data/images
  vocabulary: data/vocabulary.txt
  validation_fraction: 0.2
  max_images: 100
model:
  preset: gcn
  backbone: smallcnn
  image_size: 64
  node_dim: 16
optimizer:
  name: adamw
  learning_rate: 1e-3
  warmup_epochs: 0.5
epochs: 3
batch_size: 8
tensorboard: false
"""


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path, overrides=()):
    with pytest.raises(ValueError) as info:
        load_config(path, overrides)
    return str(info.value)


# Loading.


def test_nested_sections_are_read_with_their_types(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.data.format == "manifest"
    assert config.data.validation_fraction == 0.2
    assert config.data.max_images == 100
    assert config.model.preset == "gcn"
    assert config.model.backbone == "smallcnn"
    assert config.model.image_size == 64 and isinstance(config.model.image_size, int)
    assert config.model.node_dim == 16
    assert config.optimizer.name == "adamw"
    # PyYAML reads `1e-3` as a string; it is a number here.
    assert config.optimizer.learning_rate == pytest.approx(0.001)
    assert isinstance(config.optimizer.learning_rate, float)
    assert config.optimizer.warmup_epochs == 0.5
    assert (config.epochs, config.batch_size, config.tensorboard) == (3, 8, False)
    # Untouched fields keep the dataclass defaults.
    assert config.model.gcn_layers == config_lib.ModelConfig().gcn_layers
    assert config.loss == "bce" and config.strategy == "default"


def test_an_empty_file_gives_the_defaults_with_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "")
    config = load_config(
        path,
        [
            "data.manifest=m.json",
            "data.images=imgs",
            "data.vocabulary=v.txt",
        ],
    )
    assert config.epochs == config_lib.TrainConfig().epochs
    assert config.data.manifest == str(tmp_path / "m.json")


def test_overrides_take_dotted_keys_and_yaml_values(tmp_path):
    config = load_config(
        write(tmp_path, VALID),
        [
            "model.image_size=96",
            "optimizer.learning_rate=0.05",
            "optimizer.name=sgd",
            "model.heads=[cls, gcn, fusion]",
            "model.weights=null",
            "tensorboard=true",
            "steps_per_epoch=7",
            "data.augment=false",
            "epochs=5",
        ],
    )
    assert config.model.image_size == 96
    assert config.optimizer.learning_rate == 0.05
    assert config.optimizer.name == "sgd"
    assert config.model.heads == ["cls", "gcn", "fusion"]
    assert config.model.weights is None
    assert config.tensorboard is True
    assert config.steps_per_epoch == 7
    assert config.data.augment is False
    assert config.epochs == 5
    # The rest of the file stays.
    assert config.model.backbone == "smallcnn" and config.batch_size == 8


def test_overrides_work_without_a_file_and_a_later_one_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(
        None,
        [
            "data.manifest=m.json",
            "data.images=imgs",
            "data.vocabulary=v.txt",
            "epochs=2",
            "epochs=4",
        ],
    )
    assert config.epochs == 4
    # Without a file, paths are the working directory's.
    assert config.data.images == str(tmp_path / "imgs")


def test_relative_data_paths_resolve_against_the_config_directory(tmp_path):
    path = write(tmp_path, VALID, name="configs/sub/run.yaml")
    config = load_config(path)
    base = tmp_path / "configs" / "sub"
    assert config.data.manifest == str(base / "data" / "train.json")
    assert config.data.images == str(base / "data" / "images")
    assert config.data.vocabulary == str(base / "data" / "vocabulary.txt")


def test_absolute_and_environment_paths_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("KMLC_TEST_DATA", str(tmp_path / "elsewhere"))
    text = VALID.replace("manifest: data/train.json", "manifest: /abs/train.json")
    text = text.replace("images: data/images", "images: $KMLC_TEST_DATA/images")
    config = load_config(write(tmp_path, text, name="c/run.yaml"))
    assert config.data.manifest == os.path.normpath("/abs/train.json")
    assert config.data.images == str(tmp_path / "elsewhere" / "images")


def test_variables_with_defaults(tmp_path, monkeypatch):
    text = VALID.replace(
        "images: data/images", "images: ${KMLC_TEST_IMAGES:-fallback}/images"
    )
    path = write(tmp_path, text, name="c/run.yaml")
    monkeypatch.delenv("KMLC_TEST_IMAGES", raising=False)
    assert load_config(path).data.images == str(tmp_path / "c" / "fallback" / "images")
    monkeypatch.setenv("KMLC_TEST_IMAGES", str(tmp_path / "set"))
    assert load_config(path).data.images == str(tmp_path / "set" / "images")


def test_the_shipped_configs_load(monkeypatch):
    monkeypatch.setenv("KMLC_COREL5K", "/data/corel5k")
    root = pathlib.Path(__file__).resolve().parents[1] / "training" / "configs"
    configs = {path.stem: load_config(path) for path in sorted(root.glob("*.yaml"))}
    assert set(configs) == {"corel5k", "corel5k-cpu", "voc2007", "coco2014"}
    assert configs["corel5k"].data.manifest == "/data/corel5k/train.json"
    cpu = configs["corel5k-cpu"]
    assert cpu.data.images == "/data/corel5k/images"
    assert (cpu.model.backbone, cpu.model.weights) == ("efficientnet_lite0", "imagenet")
    assert cpu.model.freeze_backbone and cpu.model.cache_features
    # The research's choice for the paper's heads (quality_research.md).
    assert cpu.optimizer.learning_rate == 3e-3
    assert (cpu.epochs, cpu.model.node_dim) == (6, 20)
    assert configs["voc2007"].data.tfds_validation_split == "test"
    # The ResNet-101 configs replicate the paper: its node width (Fig. 6),
    # not kmlc's default.
    for name in ("corel5k", "voc2007", "coco2014"):
        assert configs[name].model.node_dim == 70, name


def test_override_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    # --set values come from the command line: relative to the working
    # directory, as any command-line path, and made absolute, so that the
    # run's saved config.yaml reads the same files from its own folder.
    path = write(tmp_path, VALID, name="c/run.yaml")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    config = load_config(
        path, ["data.images=other/images", "data.manifest=~/m.json", "epochs=2"]
    )
    assert config.data.images == str(tmp_path / "work" / "other" / "images")
    assert config.data.manifest == os.path.expanduser("~/m.json")
    # The file's other paths stay the file's.
    assert config.data.vocabulary == str(tmp_path / "c" / "data" / "vocabulary.txt")
    saved = tmp_path / "run" / "config.yaml"
    saved.parent.mkdir()
    config_lib.save_config(config, saved)
    assert load_config(saved) == config


def test_save_config_round_trips(tmp_path):
    config = load_config(write(tmp_path, VALID), ["model.heads=[cls, gcn]"])
    config_lib.save_config(config, tmp_path / "saved.yaml")
    again = load_config(tmp_path / "saved.yaml")
    assert again == config


# Errors.


@pytest.mark.parametrize(
    "text, key, section_keys",
    [
        ("epoch: 3\n", "'epoch'", ("batch_size", "epochs", "optimizer")),
        ("data:\n  manifestt: x\n", "'data.manifestt'", ("manifest", "images")),
        ("model:\n  backbon: x\n", "'model.backbon'", ("backbone", "preset")),
        ("optimizer:\n  lr: 0.1\n", "'optimizer.lr'", ("learning_rate",)),
    ],
)
def test_unknown_keys_name_the_key_the_file_and_the_valid_keys(
    tmp_path, text, key, section_keys
):
    path = write(tmp_path, VALID + text if text.startswith("epoch") else text)
    message = error_of(path)
    assert key in message
    assert str(path) in message
    assert "Valid keys" in message
    for valid in section_keys:
        assert valid in message


def test_an_unknown_override_names_set_not_the_file(tmp_path):
    path = write(tmp_path, VALID)
    message = error_of(path, ["model.backbon=resnet50"])
    assert "--set" in message and "'model.backbon'" in message
    assert str(path) not in message
    assert "backbone" in message


def test_an_override_without_equals_sign_is_an_error(tmp_path):
    message = error_of(write(tmp_path, VALID), ["epochs"])
    assert "key=value" in message and "'epochs'" in message


@pytest.mark.parametrize(
    "override, field, received",
    [
        ("epochs=three", "epochs must be an integer", "'three'"),
        ("model.image_size=64.5", "model.image_size must be an integer", "64.5"),
        ("tensorboard=maybe", "tensorboard must be true or false", "'maybe'"),
        ("data.augment=1", "data.augment must be true or false", "1"),
        ("optimizer.learning_rate=fast", "optimizer.learning_rate must be a", "'fast'"),
        ("model.heads=3", "model.heads must be a list", "3"),
        ("model.backbone=[a, b]", "model.backbone must be a string", "['a', 'b']"),
        ("data=5", "data must be a mapping", "5"),
    ],
)
def test_wrong_types_name_the_field(tmp_path, override, field, received):
    message = error_of(write(tmp_path, VALID), [override])
    assert field in message
    assert f"Received: {received}" in message


def test_a_wrong_type_in_the_file_names_the_file_and_field(tmp_path):
    path = write(tmp_path, VALID.replace("batch_size: 8", "batch_size: eight"))
    message = error_of(path)
    assert str(path) in message and "batch_size must be an integer" in message


@pytest.mark.parametrize(
    "override, field, received",
    [
        ("data.format=xml", "data.format", "'xml'"),
        ("optimizer.name=rmsprop", "optimizer.name", "'rmsprop'"),
        ("optimizer.schedule=step", "optimizer.schedule", "'step'"),
        ("strategy=tpu", "strategy", "'tpu'"),
        ("loss=focal", "loss", "'focal'"),
        ("model.preset=huge", "model.preset", "'huge'"),
        ("model.graph_strategy=magic", "model.graph_strategy", "'magic'"),
        ("model.gcn_propagation=fast", "model.gcn_propagation", "'fast'"),
    ],
)
def test_bad_choices_name_the_field_and_the_value(tmp_path, override, field, received):
    message = error_of(write(tmp_path, VALID), [override])
    assert message.startswith(f"{field} must be one of")
    assert f"Received: {field}={received}" in message


@pytest.mark.parametrize(
    "heads, expected",
    [
        ("[cls, gnc]", "Unknown or no heads"),
        ("[fusion, cls]", "needs 'gcn' too"),
        ("[cls, cls]", "listed twice"),
    ],
)
def test_bad_heads_name_the_field_and_the_heads(tmp_path, heads, expected):
    message = error_of(write(tmp_path, VALID), [f"model.heads={heads}"])
    assert message.startswith("model.heads:")
    assert expected in message and "Received: heads=" in message


@pytest.mark.parametrize(
    "override, expected",
    [
        ("epochs=0", "epochs must be at least 1. Received: 0"),
        ("batch_size=-2", "batch_size must be at least 1. Received: -2"),
        ("data.validation_fraction=1.5", "data.validation_fraction must be between"),
        ("optimizer.learning_rate=0", "optimizer.learning_rate must be positive"),
    ],
)
def test_out_of_range_values_are_named(tmp_path, override, expected):
    assert expected in error_of(write(tmp_path, VALID), [override])


def test_a_missing_required_data_field_is_named(tmp_path):
    text = VALID.replace("  images: data/images\n", "")
    message = error_of(write(tmp_path, text))
    assert "data.format='manifest' needs data.images" in message
    message = error_of(write(tmp_path, VALID), ["data.format=csv"])
    assert "data.format='csv' needs data.csv" in message
    message = error_of(write(tmp_path, VALID), ["data.format=tfds"])
    assert "needs data.tfds_name" in message


def test_a_missing_config_file_is_named(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_config(path)


def test_invalid_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "data: [unclosed\n")
    message = error_of(path)
    assert str(path) in message and "not valid YAML" in message


def test_a_top_level_list_is_an_error(tmp_path):
    message = error_of(write(tmp_path, "- a\n- b\n"))
    assert "the top level must be a mapping" in message


# The command line.


def test_kmlc_train_on_a_bad_config_exits_2_without_a_traceback(tmp_path, capsys):
    path = write(tmp_path, VALID + "epoch: 3\n")
    code = kmlc.cli.main(["train", "--config", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert "kmlc train: error:" in captured.err
    assert "'epoch'" in captured.err and str(path) in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_kmlc_train_names_a_missing_config_file(tmp_path, capsys):
    path = tmp_path / "missing.yaml"
    code = kmlc.cli.main(["train", "--config", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert f"--config: no such file or directory: {path}" in captured.err
    assert "Traceback" not in captured.err


def test_kmlc_train_names_a_bad_set_value(tmp_path, capsys):
    path = write(tmp_path, VALID)
    code = kmlc.cli.main(
        ["train", "--config", str(path), "--set", "optimizer.name=rmsprop"]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "optimizer.name must be one of" in captured.err
    assert "Received: optimizer.name='rmsprop'" in captured.err


@pytest.mark.parametrize("propagation", ["dense", "sparse"])
def test_gcn_propagation_reaches_the_built_model(tmp_path, propagation):
    from kmlc.graph import LabelGraph
    from kmlc.training.builders import build_compiled_model

    config = load_config(
        write(tmp_path, VALID), [f"model.gcn_propagation={propagation}"]
    )
    assert config.model.gcn_propagation == propagation
    assert load_config(write(tmp_path, VALID)).model.gcn_propagation == "auto"
    # Five labels: "auto" would choose the dense form.
    labels = (np.random.default_rng(0).random((40, 5)) < 0.4).astype(np.uint8)
    graph = LabelGraph.from_labels(labels, tau=0.3)
    model = build_compiled_model(config, graph, steps_per_epoch=2)
    assert model.label_gcn.propagation == propagation


@pytest.mark.parametrize(
    "value, expected", [("2", 2.0), ("1e-3", 1e-3), ("0", 0.0), ("auto", "auto")]
)
def test_rescoring_gamma_is_a_number_or_auto(tmp_path, value, expected):
    cached = ["model.cache_features=true", "model.freeze_backbone=true"]
    config = load_config(
        write(tmp_path, VALID), [f"model.rescoring_gamma={value}", *cached]
    )
    assert config.model.rescoring_gamma == expected
    assert load_config(write(tmp_path, VALID)).model.rescoring_gamma == 0.0


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            "often",
            r"must be a number >= 0 \(0: off\) or 'auto'. Received: "
            "model.rescoring_gamma='often'",
        ),
        ("-1", "Received: model.rescoring_gamma=-1.0"),
        (".nan", "Received: model.rescoring_gamma=nan"),
        ("true", "model.rescoring_gamma must be a number. Received: True"),
        (
            "auto",
            "set model.cache_features: true .* Received: model.cache_features=False",
        ),
    ],
)
def test_bad_rescoring_gamma_is_named(tmp_path, value, expected):
    with pytest.raises(ValueError, match=expected):
        load_config(write(tmp_path, VALID), [f"model.rescoring_gamma={value}"])


def test_rescoring_gamma_reaches_the_built_model(tmp_path):
    from kmlc.graph import LabelGraph
    from kmlc.training.builders import build_compiled_model

    labels = (np.random.default_rng(0).random((40, 5)) < 0.4).astype(np.uint8)
    graph = LabelGraph.from_labels(labels, tau=0.3)
    config = load_config(write(tmp_path, VALID), ["model.rescoring_gamma=1.5"])
    assert build_compiled_model(config, graph, 2).rescoring.gamma == 1.5
    # "auto" is added at the end of training, "0" never.
    for overrides in (
        [],
        [
            "model.rescoring_gamma=auto",
            "model.cache_features=true",
            "model.freeze_backbone=true",
        ],
    ):
        config = load_config(write(tmp_path, VALID), overrides)
        assert build_compiled_model(config, graph, 2).rescoring is None
