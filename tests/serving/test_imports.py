"""The REST client side of `kmlc.serving` imports without TensorFlow.

(The gRPC client cannot: the `tensorflow_serving.apis` protos import
`tensorflow.core`, which loads the `tensorflow` package.)
"""

import os
import subprocess
import sys
import textwrap


def _imported_modules(code):
    """The `sys.modules` names starting with "tensorflow" after `code` runs
    in a fresh interpreter."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import sys
        print(sorted({m.split(".")[0] for m in sys.modules
                      if m.split(".")[0] in ("tensorflow", "keras")}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def test_rest_client_and_errors_import_without_tensorflow():
    loaded = _imported_modules(
        """
        import kmlc.serving
        from kmlc.serving import RequestError, RestClient, ServingError, rank_labels
        from kmlc.serving.client import predictions, rest_client
        client = RestClient("http://127.0.0.1:1", "m", retries=0, timeout=1)
        assert rank_labels([0.2, 0.9], ["a", "b"]) == [("b", 0.9), ("a", 0.2)]
        """
    )
    assert loaded == "[]"
