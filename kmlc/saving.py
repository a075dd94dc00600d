"""Loading kmlc models with errors that name the file."""

import os


def load_model(path, compile=True):
    """Loads a `.keras` model written by kmlc; clear errors for bad files.

    Args:
        path: the `.keras` file.
        compile: bool. Restore the training configuration too (optimizer,
            loss); not needed to predict or export. Defaults to True.
    """
    import keras

    import kmlc  # noqa: F401  (registers kmlc's layers for deserialisation)

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    if not path.endswith(".keras"):
        raise ValueError(f"Expected a .keras model file. Received: {path}")
    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as error:
        raise ValueError(f"Could not load a model from {path}: {error}") from error
    if not hasattr(model, "label_names"):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a kmlc MultiLabelClassifier."
        )
    return model
