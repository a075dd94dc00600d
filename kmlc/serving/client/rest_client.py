"""`RestClient`: the same predictions over TF Serving's REST API (urllib)."""

import base64
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from kmlc.serving.client.predictions import check_ranking
from kmlc.serving.client.predictions import float_batch
from kmlc.serving.client.predictions import rank_labels
from kmlc.serving.client.predictions import read_images
from kmlc.serving.errors import CODE_OF_HTTP_STATUS
from kmlc.serving.errors import ServingError
from kmlc.serving.errors import check_retry_settings
from kmlc.serving.errors import wait_before_retry

logger = logging.getLogger(__name__)


class RestClient:
    """A REST client for a multi-label model served by TF Serving.

    Uses `POST /v1/models/<name>:predict` (row format, images as
    `{"b64": ...}`), `GET /v1/models/<name>` and
    `GET /v1/models/<name>/metadata`, with the standard library only.
    Refused connections and HTTP 503 are retried like `Client` retries
    UNAVAILABLE; other errors raise `ServingError` at once.

    Args:
        base_url: str. E.g. `"http://localhost:8501"`.
        model_name: str. The served model's name.
        signature: str. Defaults to `"serving_default"`.
        timeout: float. Seconds per attempt. Defaults to 10.
        retries: int. Extra attempts when the server is unavailable.
            Defaults to 3.
        backoff: float. Seconds before the first retry, doubled for each
            next one (at most 8 s). Defaults to 0.2.
        version: int or None. Ask for this version. Defaults to the latest.

    Example:
    >>> client = kmlc.serving.RestClient("http://localhost:8501", "corel5k")
    >>> client.predict(["beach.jpg"], top_k=3)
    """

    def __init__(
        self,
        base_url,
        model_name,
        signature="serving_default",
        timeout=10.0,
        retries=3,
        backoff=0.2,
        version=None,
    ):
        parsed = urllib.parse.urlparse(str(base_url))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                "base_url must be an http(s) URL such as http://localhost:8501. "
                f"Received: {base_url!r}"
            )
        check_retry_settings(timeout, retries, backoff)
        self.base_url = str(base_url).rstrip("/")
        self.model_name = str(model_name)
        self.signature = str(signature)
        self.timeout = timeout
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.version = None if version is None else int(version)

    @property
    def model_url(self):
        url = f"{self.base_url}/v1/models/{urllib.parse.quote(self.model_name)}"
        if self.version is not None:
            url += f"/versions/{self.version}"
        return url

    def predict(self, images, top_k=None, threshold=None):
        """Ranked labels per image; see `kmlc.serving.Client.predict`."""
        check_ranking(top_k, threshold)
        outputs = self.predict_raw(images)
        for key in ("scores", "label_names"):
            if key not in outputs:
                raise ServingError(
                    "predict",
                    "OK",
                    f"the answer lacks the output {key!r} of signature "
                    f"{self.signature!r}; it has {sorted(outputs)}",
                    self.model_name,
                    self.base_url,
                )
        return [
            rank_labels(scores, names, top_k, threshold)
            for scores, names in zip(
                outputs["scores"], outputs["label_names"], strict=True
            )
        ]

    def predict_raw(self, images):
        """The signature's outputs: `{name: np.ndarray}`.

        Numbers come back as float64 or int64 (JSON has no float32) and
        strings as `str`. TF Serving drops the output name when a
        signature has one output; its array is then under `"outputs"`.
        """
        if isinstance(images, np.ndarray) and images.dtype.kind in "fiu":
            instances = float_batch(images).tolist()
        else:
            instances = [
                {"b64": base64.b64encode(image).decode("ascii")}
                for image in read_images(images)
            ]
        body = {"signature_name": self.signature, "instances": instances}
        answer = self._request("predict", f"{self.model_url}:predict", body)
        predictions = answer.get("predictions")
        if not isinstance(predictions, list) or not predictions:
            raise ServingError(
                "predict",
                "OK",
                f"the answer has no 'predictions' list; keys {sorted(answer)}",
                self.model_name,
                self.base_url,
            )
        if not isinstance(predictions[0], dict):  # a single output
            return {"outputs": _to_array(predictions)}
        return {
            key: _to_array([row[key] for row in predictions]) for key in predictions[0]
        }

    def metadata(self):
        """The signatures, in the form `kmlc.serving.Client.metadata` gives."""
        answer = self._request("metadata", f"{self.model_url}/metadata")
        spec = answer.get("model_spec", {})
        signature_defs = (
            answer.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
        )
        return {
            "name": spec.get("name", ""),
            "version": int(spec.get("version", 0)),
            "signatures": {
                name: {
                    "inputs": {
                        key: _tensor_info(info)
                        for key, info in sorted(signature.get("inputs", {}).items())
                    },
                    "outputs": {
                        key: _tensor_info(info)
                        for key, info in sorted(signature.get("outputs", {}).items())
                    },
                    "method_name": signature.get("method_name", ""),
                }
                for name, signature in sorted(signature_defs.items())
                if not name.startswith("__")
            },
        }

    def status(self):
        """The versions, in the form `kmlc.serving.Client.status` gives."""
        answer = self._request("status", self.model_url)
        return [
            {
                "version": int(entry["version"]),
                "state": entry.get("state", "UNKNOWN"),
                "error_code": entry.get("status", {}).get("error_code", "OK"),
                "error_message": entry.get("status", {}).get("error_message", ""),
            }
            for entry in answer.get("model_version_status", [])
        ]

    def _request(self, method, url, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        attempt = 0
        while True:
            attempt += 1
            request = urllib.request.Request(
                url,
                data=data,
                method="GET" if data is None else "POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    return json.loads(answer.read())
            except urllib.error.HTTPError as error:
                details = _error_text(error)
                status = error.code
                retry = status == 503
                code = CODE_OF_HTTP_STATUS.get(status, "UNKNOWN")
            except (urllib.error.URLError, ConnectionError, socket.timeout) as error:
                reason = getattr(error, "reason", error)
                details = f"{type(reason).__name__}: {reason}"
                status = None
                retry = isinstance(reason, ConnectionError)
                timed_out = isinstance(reason, (socket.timeout, TimeoutError))
                code = "DEADLINE_EXCEEDED" if timed_out else "UNAVAILABLE"
            if retry and attempt <= self.retries:
                wait_before_retry(
                    logger, method, url, details, attempt, self.retries, self.backoff
                )
                continue
            raise ServingError(
                method,
                code,
                details,
                self.model_name,
                self.base_url,
                attempts=attempt,
                http_status=status,
            )


def _error_text(error):
    """The `{"error": ...}` message of an HTTP error answer, or its body."""
    try:
        body = error.read().decode("utf-8", errors="replace")
    except OSError:
        return str(error.reason)
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.strip() or str(error.reason)


def _to_array(values):
    array = np.asarray(values)
    if array.dtype.kind in ("U", "O"):
        return array.astype(object)
    return array


def _tensor_info(info):
    shape = info.get("tensor_shape", {})
    if shape.get("unknown_rank"):
        dims = None
    else:
        dims = [int(dim.get("size", 0)) for dim in shape.get("dim", [])]
    return {"dtype": info.get("dtype", "DT_INVALID"), "shape": dims}
