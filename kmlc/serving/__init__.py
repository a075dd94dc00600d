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

from kmlc import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    attributes={
        "Client": "client.grpc_client",
        "DevServer": "server.dev_server",
        "ModelStore": "server.model_store",
        "RequestError": "errors",
        "RestClient": "client.rest_client",
        "Servable": "server.servable",
        "ServingError": "errors",
        "VersionStatus": "server.model_store",
        "rank_labels": "client.predictions",
    },
)
