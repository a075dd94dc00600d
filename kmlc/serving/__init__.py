"""Serving: a TF Serving client and a development server speaking its protocol.

- `Client`: gRPC (PredictionService, ModelService) with deadlines and
  retries on UNAVAILABLE; `RestClient`: the same over TF Serving's REST API,
  standard library only.
- `DevServer` (and `kmlc serve`): serves a SavedModel base path exported by
  `kmlc.export`, picking up new versions, for development and tests. In
  production, run TF Serving on the same export.
"""

from kmlc.serving.client import Client
from kmlc.serving.errors import RequestError
from kmlc.serving.errors import ServingError
from kmlc.serving.model_store import ModelStore
from kmlc.serving.model_store import VersionStatus
from kmlc.serving.predictions import rank_labels
from kmlc.serving.rest_client import RestClient
from kmlc.serving.servable import Servable
from kmlc.serving.server import DevServer

__all__ = [
    "Client",
    "DevServer",
    "ModelStore",
    "RequestError",
    "RestClient",
    "Servable",
    "ServingError",
    "VersionStatus",
    "rank_labels",
]
