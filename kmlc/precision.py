"""Mixed precision: the policy layers are built under, and float32 copies.

Training may run under `mixed_float16`; the exporters (TFLite, ONNX) need
float32 models, so `to_float32` rebuilds one with the same weights.
"""

import contextlib
import logging

import keras

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def dtype_policy(name):
    """Builds layers under the dtype policy `name` inside, then restores it.

    `name` is a Keras policy name: "float32", "mixed_float16",
    "mixed_bfloat16".
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def training_policy(mixed_precision):
    """The policy of a run: "mixed_float16" if `mixed_precision`, else float32."""
    return "mixed_float16" if mixed_precision else "float32"


def is_mixed_precision(model):
    """Whether any layer of `model` computes in float16 or bfloat16."""
    return any(
        layer.compute_dtype in ("float16", "bfloat16") for layer in all_layers(model)
    )


def all_layers(model):
    """`model` and every layer nested in it, depth first."""
    layers = [model]
    for layer in getattr(model, "layers", []):
        layers.extend(all_layers(layer))
    return layers


def _strip_dtype_policies(config):
    """The config with every mixed dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and str(
            config.get("config", {}).get("name", "")
        ).startswith("mixed_"):
            return "float32"
        return {key: _strip_dtype_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_strip_dtype_policies(value) for value in config]
    return config


def to_float32(model):
    """A float32 copy of a mixed-precision model (the same weights).

    TFLite cannot convert float16 Conv2D compute ("Could not translate MLIR
    to FlatBuffer") and Keras' ONNX exporter needs float32, so the model is
    rebuilt from its config under the float32 policy and the weights are
    copied over. Float32 models are returned unchanged.
    """
    if not is_mixed_precision(model):
        return model
    config = _strip_dtype_policies(model.get_config())
    with dtype_policy("float32"):
        rebuilt = model.__class__.from_config(config)
    weights = model.get_weights()
    if len(weights) != len(rebuilt.weights):
        raise ValueError(
            "Could not rebuild the mixed-precision model in float32: the "
            f"rebuilt model has {len(rebuilt.weights)} weights, the model "
            f"{len(weights)}. Received: model={model.name!r}"
        )
    rebuilt.set_weights(weights)
    logger.info("Rebuilt mixed-precision model %r in float32", model.name)
    return rebuilt
