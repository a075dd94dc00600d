import keras
import numpy as np
import pytest
import tensorflow as tf

import kmlc
from tests import model_fixtures as fx

ALL_HEADS = [
    "baseline",
    "gcn",
    "full",
    ("cls", "attention"),
    ("gcn", "fusion"),
    ("gcn", "attention"),
]


def _bce(y, logits):
    p = 1 / (1 + np.exp(-logits.astype("float64")))
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


@pytest.mark.parametrize("heads", ALL_HEADS)
def test_shapes_training_outputs_and_saving(heads, tmp_path):
    model = fx.tiny_model(heads)
    x = fx.images()
    logits = model(x)
    assert logits.shape == (4, fx.NUM_LABELS) and logits.dtype == "float32"
    expected = set(kmlc.head_training.resolve_heads(heads)) | {"logits"}
    heads_out = model.head_logits(x)
    summed = sum(np.asarray(heads_out[h]) for h in expected - {"logits"})
    np.testing.assert_allclose(np.asarray(logits), summed, rtol=1e-5, atol=1e-5)
    assert set(model(x, training=True)) == expected

    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded, kmlc.MultiLabelClassifier)
    assert reloaded.heads == model.heads
    np.testing.assert_array_equal(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )


@pytest.mark.parametrize("heads", ["baseline", "gcn", "full"])
def test_gradients_reach_every_trainable_weight(heads):
    # Unseeded: eq. 18's position weights start alive for every pair
    # (tests/layers/test_relation_attention.py checks 30 draws).
    model = fx.tiny_model(heads)
    x, y = fx.images(), fx.label_matrix(4)
    model.compile(optimizer=keras.optimizers.SGD(0.01))

    def gradients():
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x, y, model(x, training=True))
        return tape.gradient(loss, [w.value for w in model.trainable_weights])

    for weight, grad in zip(model.trainable_weights, gradients(), strict=True):
        assert grad is not None, f"no gradient reaches {weight.path}"
    # The fusion block starts as the identity (its 1x1 conv is zero), so its
    # projection only gets a gradient once that conv has moved: one step.
    model.train_on_batch(x, y)
    for weight, grad in zip(model.trainable_weights, gradients(), strict=True):
        grad = tf.convert_to_tensor(grad)
        assert np.any(grad.numpy() != 0), f"zero gradient for {weight.path}"


def test_loss_is_bce_plus_weighted_auxiliary_bce():
    model = fx.tiny_model("full")
    model.compile(optimizer="sgd", aux_loss_weight=0.3)
    x, y = fx.images(), fx.label_matrix(4)
    outputs = model(x, training=True)
    got = float(model.compute_loss(x, y, outputs))
    logits = np.asarray(outputs["logits"])
    fusion = np.asarray(outputs["fusion"])
    np.testing.assert_allclose(got, _bce(y, logits) + 0.3 * _bce(y, fusion), rtol=1e-4)
    # Without a fusion head there is no auxiliary term.
    baseline = fx.tiny_model("baseline")
    baseline.compile(optimizer="sgd", aux_loss_weight=0.3)
    out = baseline(x, training=True)
    np.testing.assert_allclose(
        float(baseline.compute_loss(x, y, out)),
        _bce(y, np.asarray(out["logits"])),
        rtol=1e-4,
    )


def test_fit_learns_a_learnable_task():
    # Label d is on when the image's channel d % 3 is bright in a region.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = (rng.random((64, fx.NUM_LABELS)) < 0.4).astype("float32")
    x = rng.uniform(0, 60, (64, 32, 32, 3)).astype("float32")
    for d in range(fx.NUM_LABELS):
        rows = y[:, d] > 0
        half = slice(0, 16) if d < 3 else slice(16, 32)
        x[rows, half, :, d % 3] += 150
    model = fx.tiny_model("full")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, batch_size=16, epochs=25, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    scores = model.predict(x, verbose=0)
    assert kmlc.metrics.mean_average_precision(y, scores) > 0.8


def test_compile_config_survives_saving(tmp_path):
    model = fx.tiny_model("full")
    model.compile(optimizer="adam", loss="asl", aux_loss_weight=0.5)
    model.train_on_batch(fx.images(), fx.label_matrix(4))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.aux_loss_weight == 0.5
    assert isinstance(reloaded.loss, kmlc.losses.AsymmetricLoss)
    reloaded.train_on_batch(fx.images(), fx.label_matrix(4))


def test_attention_maps_and_set_graph():
    model = fx.tiny_model("full")
    maps, labels = model.attention_maps(fx.images(2))
    assert maps.shape == (2, 4, 4, 3) and labels.shape == (2, 3)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    graph = fx.tiny_graph().with_strategy("topk", k=2)
    model.set_graph(graph)
    np.testing.assert_array_equal(model.label_gcn.adjacency.numpy(), graph.normalized())
    with pytest.raises(ValueError, match="has no 'attention' head"):
        fx.tiny_model("gcn").attention_maps(fx.images(1))


def test_label_names_come_from_the_graph():
    y = fx.label_matrix()
    names = [f"name{i}" for i in range(fx.NUM_LABELS)]
    graph = kmlc.LabelGraph.from_labels(y, label_names=names)
    model = kmlc.build_model(
        fx.NUM_LABELS, graph, backbone=fx.tiny_backbone(), image_size=32, heads="gcn"
    )
    assert model.label_names == names
    assert fx.tiny_model("baseline").label_names[0] == "label_0"


def test_named_backbone_with_its_own_preprocessing():
    model = kmlc.build_model(
        fx.NUM_LABELS,
        fx.tiny_graph(),
        backbone="MobileNetV3Small",
        image_size=64,
        heads="full",
    )
    assert model.preprocessing.mode == "none"
    assert model.backbone.name.startswith("MobileNetV3Small")
    assert model(fx.images(2, size=64)).shape == (2, fx.NUM_LABELS)


def test_backbone_weights_from_a_file(tmp_path):
    source, _ = kmlc.backbones.build_backbone("mobilenetv3small", 32)
    rng = np.random.default_rng(0)
    for weight in source.weights:
        weight.assign(rng.normal(size=weight.shape).astype(weight.dtype) * 0.01)
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)
    model = kmlc.build_model(
        fx.NUM_LABELS,
        fx.tiny_graph(),
        backbone="mobilenetv3small",
        image_size=32,
        heads="baseline",
        weights=path,
    )
    for ours, theirs in zip(model.backbone.weights, source.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.large
def test_resnet101_full_model_at_448_for_80_labels():
    y = (np.random.default_rng(0).random((200, 80)) < 0.05).astype("float32")
    model = kmlc.build_model(80, kmlc.LabelGraph.from_labels(y), image_size=448)
    assert model.backbone.name == "resnet101"
    assert model.input_shape == (None, 448, 448, 3)
    assert model.backbone.output.shape == (None, 14, 14, 2048)
    outputs = model(np.zeros((1, 448, 448, 3), "float32"), training=True)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        h: (1, 80) for h in ("cls", "gcn", "fusion", "attention", "logits")
    }


# Bad input: a clear error that names what is wrong.


def test_too_few_labels():
    with pytest.raises(ValueError, match="at least 2 labels. Received: num_labels=1"):
        kmlc.build_model(
            1, None, backbone=fx.tiny_backbone(), image_size=32, heads="baseline"
        )


def test_graph_with_another_label_count():
    with pytest.raises(ValueError, match="graph has 6 labels but num_labels=5"):
        kmlc.build_model(5, fx.tiny_graph(), backbone=fx.tiny_backbone(), image_size=32)
    with pytest.raises(ValueError, match="graph has 3 labels but num_labels=6"):
        kmlc.build_model(6, np.eye(3), backbone=fx.tiny_backbone(), image_size=32)


def test_gcn_heads_need_a_graph():
    with pytest.raises(ValueError, match="needs the label graph"):
        kmlc.build_model(
            6, None, backbone=fx.tiny_backbone(), image_size=32, heads="gcn"
        )


def test_image_size_too_small_for_the_backbone():
    with pytest.raises(ValueError, match="too small for backbone 'InceptionV3'.*75 px"):
        kmlc.build_model(6, fx.tiny_graph(), backbone="inceptionv3", image_size=64)
    with pytest.raises(ValueError, match="too small for backbone 'ResNet101'"):
        kmlc.build_model(6, fx.tiny_graph(), image_size=16)


def test_unknown_backbone_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match="Unknown backbone 'resnet99'.*MobileNetV3Small.*ResNet101"
    ):
        kmlc.build_model(6, fx.tiny_graph(), backbone="resnet99", image_size=64)


@pytest.mark.parametrize(
    "heads, message",
    [
        ("fulll", "Unknown preset.*Received: heads='fulll'"),
        (("cls", "gnc"), r"Received: heads=\('cls', 'gnc'\)"),
        ((), "Unknown or no heads"),
        (("cls", "fusion"), "needs 'gcn' too"),
        (("attention",), "needs at least one of"),
        (("cls", "cls"), "listed twice"),
    ],
)
def test_unknown_or_inconsistent_heads(heads, message):
    with pytest.raises(ValueError, match=message):
        fx.tiny_model(heads)


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file not found.*nope.h5"):
        kmlc.build_model(
            6,
            fx.tiny_graph(),
            backbone="mobilenetv3small",
            image_size=32,
            weights=tmp_path / "nope.h5",
        )


def test_label_names_of_the_wrong_length():
    with pytest.raises(ValueError, match="Got 2 label names for num_labels=6"):
        fx.tiny_model("baseline", label_names=["a", "b"])


@pytest.mark.parametrize("heads", ["gcn", "full"])
def test_mixed_precision_builds_and_trains(heads):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = fx.tiny_model(heads)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.label_gcn.compute_dtype == "float16"
    model.compile(optimizer="sgd", metrics=[])
    loss = model.train_on_batch(fx.images(), fx.label_matrix(4))
    assert np.all(np.isfinite(loss))
    logits = model.predict(fx.images(), verbose=0)
    assert logits.dtype == "float32" and np.all(np.isfinite(logits))


def test_set_graph_needs_a_gcn_head_and_the_right_size():
    with pytest.raises(ValueError, match="has no 'gcn' head"):
        fx.tiny_model("baseline").set_graph(fx.tiny_graph())
    with pytest.raises(ValueError, match="graph has 3 labels but num_labels=6"):
        fx.tiny_model("gcn").set_graph(np.eye(3))


def test_small_cnn_has_no_imagenet_weights():
    with pytest.raises(ValueError, match="SmallCNN has no ImageNet weights"):
        kmlc.build_model(
            6, fx.tiny_graph(), backbone="smallcnn", image_size=32, weights="imagenet"
        )
