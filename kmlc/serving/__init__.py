"""Serving: TF Serving clients, and a development server speaking its protocol.

- `kmlc.serving.client`: `RestClient` (TF Serving's REST API) and the
  ranking helpers, standard library and NumPy only; `Client` (gRPC:
  PredictionService, ModelService), which needs the
  `tensorflow-serving-api` protos and so imports TensorFlow. Both retry
  UNAVAILABLE with backoff and raise `ServingError`.
- `kmlc.serving.server`: `DevServer` (and `kmlc serve`) serves a
  SavedModel base path exported by `kmlc.export`, picking up new versions,
  for development and tests. In production, run TF Serving on the same
  export.

The names below are imported on first use, so that `from kmlc.serving
import RestClient` does not load TensorFlow.
"""

import importlib

# Public names -> the module that defines them.
_ATTRIBUTES = {
    "Client": "kmlc.serving.client.grpc_client",
    "DevServer": "kmlc.serving.server.dev_server",
    "ModelStore": "kmlc.serving.server.model_store",
    "RequestError": "kmlc.serving.errors",
    "RestClient": "kmlc.serving.client.rest_client",
    "Servable": "kmlc.serving.server.servable",
    "ServingError": "kmlc.serving.errors",
    "VersionStatus": "kmlc.serving.server.model_store",
    "rank_labels": "kmlc.serving.client.predictions",
}

__all__ = sorted(_ATTRIBUTES)


def __getattr__(name):
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'kmlc.serving' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
