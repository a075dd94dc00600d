import numpy as np
import pytest

from kmlc.layers import FeatureActivation
from tests.layers.layer_test_case import run_layer_test


def _reference(features, kernel, bias, projection):
    """Eq. 2-3 literally: copy a D times, Hadamard with W_cls, project."""
    logits = features @ kernel + bias
    labels = kernel.shape[1]
    copied = np.repeat(features[:, None, :], labels, axis=1)  # [B, D, E]
    filtered = copied * kernel.T[None]  # a * W_cls[:, d]
    if projection is None:
        return logits, filtered
    return logits, np.einsum("bde,ke->bdk", filtered, projection)


@pytest.mark.parametrize("node_dim", [3, None])
def test_contract_and_equations(tmp_path, node_dim):
    features = np.random.default_rng(0).normal(size=(2, 6)).astype("float32")
    layer = run_layer_test(
        FeatureActivation,
        {"num_labels": 4, "node_dim": node_dim},
        (features,),
        [(2, 4), (2, 4, node_dim or 6)],
        tmp_path,
    )
    logits, activations = layer(features)
    projection = None if node_dim is None else layer.projection.numpy()
    expected_logits, expected = _reference(
        features, layer.kernel.numpy(), layer.bias.numpy(), projection
    )
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(activations, expected, rtol=1e-4, atol=1e-6)


def test_without_bias():
    layer = FeatureActivation(3, node_dim=2, use_bias=False)
    features = np.ones((1, 5), "float32")
    logits, _ = layer(features)
    np.testing.assert_allclose(logits, features @ layer.kernel.numpy(), rtol=1e-6)
    assert layer.bias is None
