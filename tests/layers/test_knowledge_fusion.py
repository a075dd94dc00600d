import keras
import numpy as np
import pytest

from kmlc.layers import KnowledgeFusion
from tests.layers.layer_test_case import run_layer_test


def _reference(feature_map, nodes, layer):
    """Eq. 10-11 with P' = tanh(P) W_p formed explicitly ([B, D, E])."""
    batch, height, width, channels = feature_map.shape
    projected = np.tanh(nodes) @ layer.projection.numpy()  # P': [B, D, E]
    flat = feature_map.reshape(batch, height * width, channels)
    relations = flat @ projected.transpose(0, 2, 1)  # [B, S, D]
    conv = relations @ layer.fusion_kernel.numpy() + layer.fusion_bias.numpy()
    fused = conv.reshape(feature_map.shape) + feature_map
    pooled = fused.mean(axis=(1, 2))
    logits = pooled @ layer.classifier_kernel.numpy() + layer.classifier_bias.numpy()
    return fused, logits


def _inputs():
    rng = np.random.default_rng(0)
    feature_map = rng.normal(size=(2, 3, 4, 8)).astype("float32")
    nodes = rng.normal(size=(2, 5, 6)).astype("float32")
    return feature_map, nodes


def test_contract_and_equations(tmp_path):
    feature_map, nodes = _inputs()
    layer = run_layer_test(
        KnowledgeFusion,
        {"num_labels": 5, "fusion_initializer": "glorot_uniform"},
        (feature_map, nodes),
        [(2, 3, 4, 8), (2, 5)],
        tmp_path,
    )
    fused, logits = layer(feature_map, nodes)
    expected_fused, expected_logits = _reference(feature_map, nodes, layer)
    np.testing.assert_allclose(fused, expected_fused, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-4)


def test_starts_as_identity_on_the_feature_map(tmp_path):
    feature_map, nodes = _inputs()
    # With g at zero the projection's gradient is zero until g moves.
    layer = run_layer_test(
        KnowledgeFusion,
        {"num_labels": 5},
        (feature_map, nodes),
        [(2, 3, 4, 8), (2, 5)],
        tmp_path,
        zero_gradient_weights=("projection",),
    )
    fused, _ = layer(feature_map, nodes)
    np.testing.assert_allclose(fused, feature_map, atol=1e-6)


@pytest.mark.parametrize("node_dim", [6, 12, 16])
def test_both_associations_match_the_reference(node_dim):
    # 12 positions: K = 6 takes keys (values g), K = 12 and 16 (keys values) g.
    rng = np.random.default_rng(node_dim)
    feature_map = rng.normal(size=(2, 3, 4, 8)).astype("float32")
    nodes = rng.normal(size=(2, 5, node_dim)).astype("float32")
    layer = KnowledgeFusion(5, fusion_initializer="glorot_uniform")
    fused, logits = layer(feature_map, nodes)
    expected_fused, expected_logits = _reference(feature_map, nodes, layer)
    np.testing.assert_allclose(fused, expected_fused, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-4)


def test_feature_map_of_unknown_size():
    feature_map, nodes = _inputs()
    inputs = [keras.Input((None, None, 8)), keras.Input((5, 6))]
    layer = KnowledgeFusion(5, fusion_initializer="glorot_uniform")
    model = keras.Model(inputs, layer(*inputs))
    fused, logits = model.predict([feature_map, nodes], verbose=0)
    expected_fused, expected_logits = _reference(feature_map, nodes, layer)
    np.testing.assert_allclose(fused, expected_fused, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-4)
