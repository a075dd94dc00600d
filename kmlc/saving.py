"""Loading kmlc models with errors that name the file."""

import importlib
import os
import warnings

# The modules that register kmlc's serialisable classes: the model and its
# layers, and the loss, metric and optimizer that a compiled model restores.
REGISTERING_MODULES = (
    "kmlc.layers",
    "kmlc.losses",
    "kmlc.metrics",
    "kmlc.model",
    "kmlc.backbone_rate",
)

# Keras' warning when a saved optimizer holds its step counter alone: it
# never took a step (a run that trained the heads model on cached
# features), so there is no state to restore and nothing is lost.
_UNBUILT_OPTIMIZER = (
    r"Skipping variable loading for optimizer .* whereas the saved optimizer "
    r"has 1 variables"
)


def register_serializables():
    """Registers kmlc's layers, model, losses and metrics with Keras.

    Keras finds a saved custom class only once the module that declares it
    has been imported; `import kmlc` alone imports nothing (its names load
    on first use). Call this before `keras.saving.load_model` on a kmlc
    model, or use `load_model` below, which calls it.
    """
    for module in REGISTERING_MODULES:
        importlib.import_module(module)


def load_model(path, compile=True):
    """Loads a `.keras` model written by kmlc; clear errors for bad files.

    Args:
        path: the `.keras` file.
        compile: bool. Restore the training configuration too (optimizer,
            loss); not needed to predict or export. Defaults to True.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    if not path.endswith(".keras"):
        raise ValueError(f"Expected a .keras model file. Received: {path}")
    import keras

    register_serializables()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_UNBUILT_OPTIMIZER)
            model = keras.saving.load_model(path, compile=compile)
    except Exception as error:
        raise ValueError(f"Could not load a model from {path}: {error}") from error
    if not hasattr(model, "label_names"):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a kmlc MultiLabelClassifier."
        )
    return model
