"""TF Serving's REST API over a `ModelStore`, on the standard library's HTTP.

- `POST /v1/models/<name>[/versions/<v>]:predict` with `{"signature_name":
  ..., "instances": [...]}` (row format) or `{"inputs": ...}` (columnar);
  string tensors as `{"b64": "..."}` or plain text;
- `GET /v1/models/<name>[/versions/<v>]`: the version statuses;
- `GET /v1/models/<name>[/versions/<v>]/metadata`: the signatures.

Errors answer `{"error": "..."}` with TF Serving's HTTP status for the code
(400, 404, 501, ...) and 413 for a body over the size limit.
"""

import base64
import binascii
import http.server
import json
import logging
import re

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2

from kmlc.serving.errors import RequestError
from kmlc.serving.server.grpc_service import signature_def_map
from kmlc.serving.server.servable import DEFAULT_SIGNATURE
from kmlc.serving.server.servable import dtype_name

logger = logging.getLogger(__name__)

PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+))?:(classify|regress|predict)", re.I
)
METADATA_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?/metadata", re.I)
STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+))?", re.I)


def json_to_array(value, dtype, where):
    """A JSON value -> an array of a signature input's dtype."""
    if dtype == types_pb2.DT_STRING:
        return np.array(_json_to_bytes(value, where), dtype=object)
    numpy_dtype = tf.as_dtype(dtype).as_numpy_dtype
    try:
        return np.asarray(value, dtype=numpy_dtype)
    except (TypeError, ValueError) as error:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"{where} must be a (nested, rectangular) list of numbers for "
            f"{dtype_name(dtype)}: {error}",
        ) from None


def _json_to_bytes(value, where):
    if isinstance(value, list):
        return [_json_to_bytes(item, where) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as error:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"{where}: the 'b64' value is not valid base64: {error}",
            ) from None
    raise RequestError(
        "INVALID_ARGUMENT",
        f'{where} must be a string or {{"b64": "..."}}. '
        f"Received: {type(value).__name__}",
    )


def array_to_json(array, name):
    """An output array -> JSON; strings as text, `*_bytes` outputs as b64."""
    array = np.asarray(array)
    if array.dtype.kind not in ("O", "S"):
        return array.tolist()

    def convert(item):
        if isinstance(item, list):
            return [convert(value) for value in item]
        item = bytes(item)
        if not name.endswith("_bytes"):
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(item).decode("ascii")}

    return convert(array.tolist())


def parse_predict_body(body, signature):
    """A predict request body -> (inputs dict, row format or not)."""
    keys = sorted(signature.inputs)
    has_instances = "instances" in body
    if has_instances == ("inputs" in body):
        raise RequestError(
            "INVALID_ARGUMENT",
            "A predict request needs exactly one of 'instances' (row format) "
            f"and 'inputs' (columnar format). Received: keys {sorted(body)}",
        )
    if has_instances:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise RequestError(
                "INVALID_ARGUMENT",
                f"'instances' must be a list. Received: {type(instances).__name__}",
            )
        if not instances:
            raise RequestError(
                "INVALID_ARGUMENT",
                "'instances' is an empty batch; send at least one instance. "
                "Received: []",
            )
        columns = {key: [] for key in keys}
        for index, instance in enumerate(instances):
            instance = _named(instance, keys, f"instance {index}")
            for key in keys:
                columns[key].append(instance[key])
        return {
            key: json_to_array(
                columns[key], signature.inputs[key].dtype, f"Input {key!r}"
            )
            for key in keys
        }, True
    named = _named(body["inputs"], keys, "'inputs'")
    return {
        key: json_to_array(named[key], signature.inputs[key].dtype, f"Input {key!r}")
        for key in keys
    }, False


def _named(value, keys, where):
    """`{input name: value}` from a named object or a bare single value."""
    if isinstance(value, dict) and set(value) != {"b64"}:
        if sorted(value) != keys:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"{where} must name the signature's inputs {keys}. "
                f"Received: keys {sorted(value)}",
            )
        return value
    if len(keys) != 1:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"{where} must be an object naming the signature's inputs {keys}. "
            f"Received: {type(value).__name__}",
        )
    return {keys[0]: value}


class RestServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server answering TF Serving's REST API.

    Args:
        address: `(host, port)`; port 0 picks a free one.
        store: `kmlc.serving.ModelStore`.
        max_request_bytes: int. Bodies over this answer 413.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, store, max_request_bytes):
        self.store = store
        self.max_request_bytes = int(max_request_bytes)
        super().__init__(address, RestHandler)


class RestHandler(http.server.BaseHTTPRequestHandler):
    """One REST request; see the module docstring for the routes."""

    protocol_version = "HTTP/1.1"
    server_version = "kmlc-dev-server"

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def log_message(self, format, *args):
        logger.debug("%s - %s", self.address_string(), format % args)

    def _handle(self, method):
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body() if method == "POST" else b""
            payload = self._route(method, path, body)
            self._send(200, payload)
        except RequestError as error:
            logger.info("REST %s %s refused: %s", method, path, error)
            self._send(error.http_status, {"error": error.message})
        except Exception as error:  # the server must keep answering
            logger.exception("REST %s %s failed", method, path)
            self._send(500, {"error": f"{type(error).__name__}: {error}"})

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise RequestError(
                "INVALID_ARGUMENT",
                "A POST needs a Content-Length header (chunked bodies are not "
                f"supported). Received: Content-Length={length!r}",
            )
        length = int(length)
        limit = self.server.max_request_bytes
        if length > limit:
            self._discard(length)
            raise RequestError(
                "RESOURCE_EXHAUSTED",
                f"The request body is larger than the server's limit of {limit} "
                f"bytes (--max-request-bytes). Received: {length} bytes",
                http_status=413,
            )
        return self.rfile.read(length)

    def _discard(self, length):
        """Reads and drops a refused body, so the client gets the answer."""
        self.close_connection = True
        remaining = length if length <= 16 * self.server.max_request_bytes else 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _route(self, method, path, body):
        store = self.server.store
        match = PREDICT_PATH.fullmatch(path)
        if method == "POST" and match:
            name, version, verb = match.groups()
            if verb.lower() != "predict":
                raise RequestError(
                    "UNIMPLEMENTED",
                    f"{verb} is not implemented by the kmlc dev server; it "
                    "answers predict, status and metadata.",
                )
            return self._predict(store, name, version, body)
        if method == "GET":
            match = METADATA_PATH.fullmatch(path)
            if match:
                return self._metadata(store, *match.groups())
            match = STATUS_PATH.fullmatch(path)
            if match:
                return self._status(store, *match.groups())
        raise RequestError("INVALID_ARGUMENT", f"Malformed request: {method} {path}")

    def _servable(self, store, name, version):
        if name != store.name:
            raise RequestError(
                "NOT_FOUND",
                f"Servable not found for request: Latest({name}). This server "
                f"serves model {store.name!r}.",
            )
        return store.servable(None if version is None else int(version))

    def _predict(self, store, name, version, body):
        servable = self._servable(store, name, version)
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(
                "INVALID_ARGUMENT", f"JSON Parse error: {error}"
            ) from None
        if not isinstance(request, dict):
            raise RequestError(
                "INVALID_ARGUMENT",
                "A predict request must be a JSON object. "
                f"Received: {type(request).__name__}",
            )
        signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
        signature = servable.signature_def(signature_name)
        inputs, rows = parse_predict_body(request, signature)
        outputs = servable.run(signature_name, inputs)
        if not rows:
            columns = {key: array_to_json(value, key) for key, value in outputs.items()}
            if len(columns) == 1:
                return {"outputs": next(iter(columns.values()))}
            return {"outputs": columns}
        batch = {len(value) for value in outputs.values()}
        if len(batch) != 1:
            raise RequestError(
                "INVALID_ARGUMENT",
                "The row format needs outputs with one batch size; use 'inputs' "
                f"(columnar). Received: batch sizes {sorted(batch)}",
            )
        columns = {key: array_to_json(value, key) for key, value in outputs.items()}
        if len(columns) == 1:
            return {"predictions": next(iter(columns.values()))}
        return {
            "predictions": [
                {key: column[index] for key, column in columns.items()}
                for index in range(batch.pop())
            ]
        }

    def _status(self, store, name, version):
        if not name:
            raise RequestError("INVALID_ARGUMENT", "Missing model name in request.")
        self._servable(store, name, None)
        statuses = store.statuses(None if version is None else int(version))
        return {
            "model_version_status": [
                {
                    "version": str(status.version),
                    "state": status.state,
                    "status": {
                        "error_code": status.error_code,
                        "error_message": status.error_message,
                    },
                }
                for status in statuses
            ]
        }

    def _metadata(self, store, name, version):
        servable = self._servable(store, name, version)
        return {
            "model_spec": {
                "name": store.name,
                "signature_name": "",
                "version": str(servable.version),
            },
            "metadata": {
                "signature_def": json_format.MessageToDict(
                    signature_def_map(servable), preserving_proto_field_name=True
                )
            },
        }

    def _send(self, status, payload):
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
