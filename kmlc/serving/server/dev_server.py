"""`DevServer`: a development model server that speaks TF Serving's protocol."""

import concurrent.futures
import logging
import os
import threading

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from kmlc.serving.server.grpc_service import ModelService
from kmlc.serving.server.grpc_service import PredictionService
from kmlc.serving.server.limits import RequestLimits
from kmlc.serving.server.model_store import ModelStore
from kmlc.serving.server.rest_service import RestServer

logger = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


class DevServer:
    """A development server for one exported model, on TF Serving's APIs.

    It serves the highest version under `model_base` over gRPC
    (PredictionService: Predict, GetModelMetadata; ModelService:
    GetModelStatus) and REST (`/v1/models/<name>...`), and swaps in a
    newer version when one appears (see `ModelStore`). Clients written for
    TF Serving work unchanged; in production run TF Serving itself.

    Args:
        model_base: str. The model base path `<base>/<name>` holding
            integer version directories.
        name: str or None. The model name clients use. Defaults to the
            base path's last component.
        grpc_port: int. 0 picks a free port. Defaults to 8500.
        rest_port: int or None. 0 picks a free port; None serves no REST.
            Defaults to 8501.
        host: str. The address to bind. Defaults to `"127.0.0.1"`.
        max_request_bytes: int. The largest request accepted; bigger ones
            answer RESOURCE_EXHAUSTED (gRPC) or 413 (REST). Defaults to
            64 MiB.
        poll_interval: float. Seconds between scans for new versions.
            Defaults to 1.0.
        warm_up: bool. Replay a version's warm-up requests before serving
            it. Defaults to True.
        max_workers: int. Threads answering gRPC calls. Defaults to 8.
        limits: `RequestLimits`. The most one predict request may ask for
            (batch size, pixels per image and per request); requests over
            them answer INVALID_ARGUMENT (HTTP 400). Defaults to
            `RequestLimits()`: 64 instances, 40 and 50 megapixels.
        rest_read_timeout: float. Seconds the REST side waits for a
            request's next bytes before it answers 408 and closes the
            connection. Defaults to 30.

    Example:
    >>> server = kmlc.serving.DevServer("models/corel", grpc_port=0).start()
    >>> client = kmlc.serving.Client(server.grpc_target, "corel")
    >>> client.predict(["beach.jpg"], top_k=5)
    >>> server.stop()
    """

    def __init__(
        self,
        model_base,
        name=None,
        grpc_port=8500,
        rest_port=8501,
        host="127.0.0.1",
        max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
        poll_interval=1.0,
        warm_up=True,
        max_workers=8,
        limits=None,
        rest_read_timeout=30.0,
    ):
        model_base = os.path.abspath(os.fspath(model_base))
        if name is None:
            name = os.path.basename(model_base.rstrip(os.sep))
        if int(max_request_bytes) < 1:
            raise ValueError(
                f"max_request_bytes must be positive. Received: {max_request_bytes}"
            )
        for label, port in (("grpc_port", grpc_port), ("rest_port", rest_port)):
            if port is not None and not 0 <= int(port) <= 65535:
                raise ValueError(f"{label} must be in [0, 65535]. Received: {port}")
        self.model_base = model_base
        self.name = name
        self.host = host
        self.max_request_bytes = int(max_request_bytes)
        self.max_workers = int(max_workers)
        self.limits = limits or RequestLimits()
        if not rest_read_timeout > 0:
            raise ValueError(
                f"rest_read_timeout must be positive. Received: {rest_read_timeout}"
            )
        self.rest_read_timeout = float(rest_read_timeout)
        self.store = ModelStore(model_base, name, poll_interval, warm_up)
        self._requested_ports = (grpc_port, rest_port)
        self.grpc_port = None
        self.rest_port = None
        self._grpc_server = None
        self._rest_server = None
        self._rest_thread = None

    @property
    def grpc_target(self):
        """`host:port` of the gRPC endpoint, for `kmlc.serving.Client`."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def rest_url(self):
        """`http://host:port` of the REST endpoint, for `RestClient`."""
        if self.rest_port is None:
            return None
        return f"http://{self.host}:{self.rest_port}"

    @property
    def version(self):
        """The version being served."""
        return self.store.version

    def start(self):
        """Loads the model and starts answering; returns the server."""
        self.store.start()
        try:
            self._start_grpc()
            if self._requested_ports[1] is not None:
                self._start_rest()
        except BaseException:
            self.stop(grace=0)
            raise
        logger.info(
            "Serving model %r version %s: gRPC on %s, REST on %s",
            self.name,
            self.version,
            self.grpc_target,
            self.rest_url,
        )
        return self

    def stop(self, grace=1.0):
        """Stops answering (in-flight calls get `grace` seconds) and polling."""
        if self._grpc_server is not None:
            self._grpc_server.stop(grace).wait()
            self._grpc_server = None
        if self._rest_server is not None:
            self._rest_server.shutdown()
            self._rest_server.server_close()
            self._rest_thread.join()
            self._rest_server = None
        self.store.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _start_grpc(self):
        server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix="kmlc-grpc"
            ),
            options=[
                ("grpc.max_receive_message_length", self.max_request_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.store, self.limits), server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(self.store), server
        )
        address = f"{self.host}:{self._requested_ports[0]}"
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as error:
            raise OSError(f"Cannot bind the gRPC port {address}: {error}") from None
        if port == 0:
            raise OSError(f"Cannot bind the gRPC port {address}")
        server.start()
        self._grpc_server = server
        self.grpc_port = port

    def _start_rest(self):
        address = (self.host, int(self._requested_ports[1]))
        try:
            server = RestServer(
                address,
                self.store,
                self.max_request_bytes,
                limits=self.limits,
                read_timeout=self.rest_read_timeout,
            )
        except OSError as error:
            raise OSError(
                f"Cannot bind the REST port {address[0]}:{address[1]}: {error}"
            ) from None
        self._rest_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="kmlc-rest",
            daemon=True,
        )
        self._rest_thread.start()
        self._rest_server = server
        self.rest_port = server.server_address[1]
