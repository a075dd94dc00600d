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

TensorFlow, LiteRT and ONNX are imported inside the functions that use them.
"""

from kmlc.export import contract
from kmlc.export import lite
from kmlc.export import lite_metadata
from kmlc.export import lite_quantize
from kmlc.export import lite_runtime
from kmlc.export import lite_weights
from kmlc.export import onnx
from kmlc.export import saved_model
from kmlc.export import serving_config
from kmlc.export.contract import model_image_size
from kmlc.export.contract import model_label_names
from kmlc.export.onnx import export_onnx
from kmlc.export.saved_model import existing_versions
from kmlc.export.saved_model import export_saved_model
from kmlc.export.saved_model import write_saved_model
from kmlc.export.serving_config import write_models_config

__all__ = [
    "contract",
    "existing_versions",
    "export_onnx",
    "export_saved_model",
    "lite",
    "lite_metadata",
    "lite_quantize",
    "lite_runtime",
    "lite_weights",
    "model_image_size",
    "model_label_names",
    "onnx",
    "saved_model",
    "serving_config",
    "write_models_config",
    "write_saved_model",
]
