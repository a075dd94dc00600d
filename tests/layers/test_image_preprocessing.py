import keras
import numpy as np
import pytest

from kmlc.layers import ImagePreprocessing
from kmlc.layers.image_preprocessing import MODES
from tests.layers.layer_test_case import _flat
from tests.layers.layer_test_case import run_layer_test


@pytest.mark.parametrize("mode", MODES)
def test_contract(mode, tmp_path):
    images = np.random.default_rng(2).uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    layer = run_layer_test(
        ImagePreprocessing,
        {"mode": mode},
        (images,),
        [(2, 5, 4, 3)],
        tmp_path,
        has_weights=False,
    )
    assert layer.get_config()["mode"] == mode


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_matches_keras_applications_preprocess_input(mode):
    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    expected = keras.applications.imagenet_utils.preprocess_input(
        images.copy(), mode=mode
    )
    got = keras.ops.convert_to_numpy(ImagePreprocessing(mode)(images))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_lite_is_the_efficientnet_lite_normalisation():
    images = np.array([[[[0.0, 127.0, 255.0]]]], "float32")
    got = keras.ops.convert_to_numpy(ImagePreprocessing("lite")(images))
    np.testing.assert_allclose(got, [[[[-127 / 128, 0.0, 1.0]]]], rtol=1e-6)


def test_none_is_identity_and_config_round_trip():
    images = np.random.default_rng(1).uniform(0, 255, (1, 3, 3, 3)).astype("float32")
    layer = ImagePreprocessing("none")
    np.testing.assert_array_equal(_flat(layer(images))[0], images)
    assert ImagePreprocessing.from_config(layer.get_config()).mode == "none"


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="Received: mode='bgr'"):
        ImagePreprocessing("bgr")
