import keras
import numpy as np
import pytest

from kmlc.layers import ImagePreprocessing
from tests.layers.layer_test_case import _flat


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_matches_keras_applications_preprocess_input(mode):
    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    expected = keras.applications.imagenet_utils.preprocess_input(
        images.copy(), mode=mode
    )
    got = keras.ops.convert_to_numpy(ImagePreprocessing(mode)(images))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_none_is_identity_and_config_round_trip():
    images = np.random.default_rng(1).uniform(0, 255, (1, 3, 3, 3)).astype("float32")
    layer = ImagePreprocessing("none")
    np.testing.assert_array_equal(_flat(layer(images))[0], images)
    assert ImagePreprocessing.from_config(layer.get_config()).mode == "none"


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="Received: mode='bgr'"):
        ImagePreprocessing("bgr")
