"""Exporting a trained model: one module a format, one for what they share.

- `saved_model`: TF Serving's versioned SavedModel (`export_saved_model`);
- `serving_config`: TF Serving's `models.config` for an export;
- `lite`: TFLite / LiteRT conversion (`lite.convert`); `lite_quantize`:
  the quantize modes, calibration and what stays float; `lite_weights`:
  float weights stored as int8; `lite_metadata`: the labels and contract
  in the `.tflite` file; `lite_runtime`: `Predictor`, `evaluate`;
- `onnx`: ONNX through Keras' exporter (`onnx.export_onnx`);
- `contract`: the file names, metadata keys, labels file and model
  description that every format shares.

TensorFlow, LiteRT and ONNX are imported inside the functions that use them,
and the modules and names below on first use, so that the command line
can list the quantize modes without loading Keras.
"""

from kmlc import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submodules=(
        "contract",
        "lite",
        "lite_metadata",
        "lite_quantize",
        "lite_runtime",
        "lite_weights",
        "onnx",
        "saved_model",
        "serving_config",
    ),
    attributes={
        "model_image_size": "contract",
        "model_label_names": "contract",
        "export_onnx": "onnx",
        "existing_versions": "saved_model",
        "export_saved_model": "saved_model",
        "write_saved_model": "saved_model",
        "write_models_config": "serving_config",
    },
)
