"""TF Serving's REST API over a `ModelStore`, on the standard library's HTTP.

- `POST /v1/models/<name>[/versions/<v>]:predict` with `{"signature_name":
  ..., "instances": [...]}` (row format) or `{"inputs": ...}` (columnar);
  string tensors as `{"b64": "..."}` or plain text;
- `GET /v1/models/<name>[/versions/<v>]`: the version statuses;
- `GET /v1/models/<name>[/versions/<v>]/metadata`: the signatures.

Errors answer `{"error": "..."}` with TF Serving's HTTP status for the code
(400, 404, 501, ...), 413 for a body over the size limit and 408 when a
client stops sending a body it announced. Like TF Serving, the body is read
as JSON whatever its Content-Type.
"""

import http.server
import json
import logging
import re
import socket

from google.protobuf import json_format

from kmlc.serving.errors import RequestError
from kmlc.serving.server.grpc_service import signature_def_map
from kmlc.serving.server.limits import RequestLimits
from kmlc.serving.server.rest_json import array_to_json
from kmlc.serving.server.rest_json import parse_predict_body
from kmlc.serving.server.servable import DEFAULT_SIGNATURE

logger = logging.getLogger(__name__)

PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+))?:(classify|regress|predict)", re.I
)
METADATA_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?/metadata", re.I)
STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+))?", re.I)
# TF Serving reads a version as an int64.
MAX_VERSION = 2**63 - 1


def parse_version(text):
    """A path's version digits -> int, or None; 400 past int64 like TF Serving."""
    if text is None:
        return None
    if len(text) > 19 or int(text) > MAX_VERSION:
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
        raise RequestError(
            "INVALID_ARGUMENT", f"Failed to convert version: {shown} to numeric."
        )
    return int(text)


class RestServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server answering TF Serving's REST API.

    Args:
        address: `(host, port)`; port 0 picks a free one.
        store: `kmlc.serving.ModelStore`.
        max_request_bytes: int. Bodies over this answer 413.
        limits: `RequestLimits`. Defaults to `RequestLimits()`.
        read_timeout: float. Seconds to wait for a client's next bytes
            (a request line, headers or body) before giving up on it.
            Defaults to 30.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address, store, max_request_bytes, limits=None, read_timeout=30.0
    ):
        self.store = store
        self.max_request_bytes = int(max_request_bytes)
        self.limits = limits or RequestLimits()
        self.read_timeout = float(read_timeout)
        super().__init__(address, RestHandler)


class RestHandler(http.server.BaseHTTPRequestHandler):
    """One REST request; see the module docstring for the routes."""

    protocol_version = "HTTP/1.1"
    server_version = "kmlc-dev-server"

    def setup(self):
        # Every read of the connection waits at most this long: a client
        # that announces more bytes than it sends cannot hold a thread.
        self.timeout = self.server.read_timeout
        super().setup()

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
        try:
            body = self.rfile.read(length)
        except (TimeoutError, socket.timeout):
            self.close_connection = True
            raise RequestError(
                "DEADLINE_EXCEEDED",
                f"The request body did not arrive within "
                f"{self.server.read_timeout:g} s. Received: fewer than the "
                f"{length} bytes of its Content-Length",
                http_status=408,
            ) from None
        if len(body) < length:
            self.close_connection = True
            raise RequestError(
                "INVALID_ARGUMENT",
                f"The request body ended before its Content-Length. Received: "
                f"{len(body)} of {length} bytes",
            )
        return body

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
            return self._predict(store, name, parse_version(version), body)
        if method == "GET":
            match = METADATA_PATH.fullmatch(path)
            if match:
                name, version = match.groups()
                return self._metadata(store, name, parse_version(version))
            match = STATUS_PATH.fullmatch(path)
            if match:
                name, version = match.groups()
                return self._status(store, name, parse_version(version))
        raise RequestError("INVALID_ARGUMENT", f"Malformed request: {method} {path}")

    def _servable(self, store, name, version):
        if name != store.name:
            raise RequestError(
                "NOT_FOUND",
                f"Servable not found for request: Latest({name}). This server "
                f"serves model {store.name!r}.",
            )
        return store.servable(version)

    def _predict(self, store, name, version, body):
        servable = self._servable(store, name, version)
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(
                "INVALID_ARGUMENT", f"JSON Parse error: {error}"
            ) from None
        except RecursionError:
            raise RequestError(
                "INVALID_ARGUMENT",
                "JSON Parse error: the document is nested too deeply. Received: "
                f"{len(body)} bytes",
            ) from None
        if not isinstance(request, dict):
            raise RequestError(
                "INVALID_ARGUMENT",
                "A predict request must be a JSON object. "
                f"Received: {type(request).__name__}",
            )
        signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
        signature = servable.signature_def(signature_name)
        try:
            inputs, rows = parse_predict_body(request, signature, self.server.limits)
        except RecursionError:
            raise RequestError(
                "INVALID_ARGUMENT",
                "The request's tensors are nested too deeply to be read. "
                f"Received: {len(body)} bytes",
            ) from None
        outputs = servable.run(signature_name, inputs, limits=self.server.limits)
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
        statuses = store.statuses(version)
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
