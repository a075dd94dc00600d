"""The errors of the serving clients and the dev server, with their codes.

Codes are gRPC status code names (`"INVALID_ARGUMENT"`, ...), so that the
library can name them without importing grpc; the REST side maps them to
HTTP statuses the way TF Serving's REST API does.
"""

import time

# The longest wait between two attempts of a client request, in seconds.
MAX_BACKOFF_SECONDS = 8.0

# TF Serving's REST API (model_servers/http_server.cc, ToHTTPStatusCode).
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

# The other way, for the REST client: HTTP status -> the code it most likely
# stands for. 413 is the REST server's "payload too large".
CODE_OF_HTTP_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    411: "INVALID_ARGUMENT",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class RequestError(Exception):
    """A request the dev server refuses, with the status to answer.

    Args:
        code: str. A gRPC status code name, e.g. `"INVALID_ARGUMENT"`.
        message: str. What was wrong, for the client to read.
        http_status: int or None. The REST status; None takes TF Serving's
            mapping of `code` (`HTTP_STATUS`).
    """

    def __init__(self, code, message, http_status=None):
        if code not in HTTP_STATUS:
            raise ValueError(
                f"Unknown status code name. Valid names: {sorted(HTTP_STATUS)}. "
                f"Received: code={code!r}"
            )
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS[code]


class ServingError(Exception):
    """A call to a model server that failed: what the server answered.

    Args:
        method: str. The call, e.g. `"Predict"`.
        code: str. The gRPC status code name (for REST, the code that the
            HTTP status stands for, see `CODE_OF_HTTP_STATUS`).
        details: str. The server's message (or the transport's).
        model_name: str. The model asked for.
        target: str. The server, `host:port` or a URL.
        attempts: int. How many times the call was tried.
        http_status: int or None. The HTTP status, for the REST client.
    """

    def __init__(
        self, method, code, details, model_name, target, attempts=1, http_status=None
    ):
        self.method = method
        self.code = code
        self.details = details
        self.model_name = model_name
        self.target = target
        self.attempts = attempts
        self.http_status = http_status
        status = code if http_status is None else f"HTTP {http_status} ({code})"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(
            f"{method} for model {model_name!r} at {target} failed{tries}. "
            f"The server answered {status}: {details}"
        )


def check_retry_settings(timeout, retries, backoff):
    """Raises `ValueError` for a client's bad timeout, retries or backoff."""
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive. Received: timeout={timeout}")
    if int(retries) < 0:
        raise ValueError(f"retries must be >= 0. Received: retries={retries}")
    if backoff < 0:
        raise ValueError(f"backoff must be >= 0. Received: backoff={backoff}")


def wait_before_retry(logger, method, target, details, attempt, retries, backoff):
    """Logs a failed attempt, then sleeps `backoff * 2**(attempt - 1)` seconds.

    The wait is capped at `MAX_BACKOFF_SECONDS`; both clients use it.
    """
    delay = min(backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    logger.info(
        "%s to %s: %s; retry %d of %d in %.2f s",
        method,
        target,
        details,
        attempt,
        retries,
        delay,
    )
    time.sleep(delay)
