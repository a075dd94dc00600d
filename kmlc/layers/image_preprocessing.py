"""In-graph image preprocessing, so that models take images in [0, 255]."""

import keras
from keras import ops

# Per-channel statistics of keras.applications' `preprocess_input` modes.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)

MODES = ("caffe", "torch", "tf", "lite", "none")


@keras.saving.register_keras_serializable(package="kmlc")
class ImagePreprocessing(keras.layers.Layer):
    """A backbone's input preprocessing, written with `keras.ops`.

    The same arithmetic as `keras.applications.imagenet_utils.preprocess_input`,
    inside the model, so that the exported model takes RGB images in
    [0, 255] whatever the backbone.

    Args:
        mode: str. `"caffe"` (RGB to BGR, minus the ImageNet mean: ResNet,
            VGG), `"torch"` (scale to [0, 1], ImageNet mean and std:
            DenseNet), `"tf"` (scale to [-1, 1]: ResNetV2, MobileNet,
            Xception, Inception), `"lite"` (`(x - 127) / 128`, the official
            EfficientNet-Lite builder's mean and std: EfficientNet-Lite) or
            `"none"` (the backbone preprocesses itself: EfficientNet,
            ConvNeXt, MobileNetV3).

    Call:
        images: `[B, H, W, 3]` RGB in [0, 255]. Returns the same shape.
    """

    def __init__(self, mode="caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(
                f"Unknown preprocessing mode. Expected one of {MODES}. "
                f"Received: mode={mode!r}"
            )
        self.mode = mode

    def call(self, images):
        images = ops.cast(images, self.compute_dtype)
        if self.mode == "caffe":
            bgr = ops.flip(images, axis=-1)
            return bgr - ops.convert_to_tensor(_CAFFE_MEAN_BGR, self.compute_dtype)
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, self.compute_dtype)
            std = ops.convert_to_tensor(_TORCH_STD, self.compute_dtype)
            return (images / 255.0 - mean) / std
        if self.mode == "tf":
            return images / 127.5 - 1.0
        if self.mode == "lite":
            return (images - 127.0) / 128.0
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config
