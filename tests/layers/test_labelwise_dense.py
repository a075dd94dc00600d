import numpy as np

from kmlc.layers import LabelwiseDense
from tests.layers.layer_test_case import run_layer_test


def test_contract_and_scores(tmp_path):
    nodes = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    layer = run_layer_test(LabelwiseDense, {}, (nodes,), [(2, 5)], tmp_path)
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    expected = np.array(
        [[nodes[b, d] @ kernel[d] + bias[d] for d in range(5)] for b in range(2)]
    )
    np.testing.assert_allclose(layer(nodes), expected, rtol=1e-5, atol=1e-6)
