"""The kmlc command drops TensorFlow's start-up lines and nothing else."""

import subprocess
import sys
import textwrap

from kmlc.startup_noise import is_noise

# Lines TensorFlow 2.21 printed here at start-up, despite TF_CPP_MIN_LOG_LEVEL.
SEEN = [
    b"WARNING: All log messages before absl::InitializeLog() is called are "
    b"written to STDERR\n",
    b"I0000 00:00:1796223869.123792   20015 port.cc:153] oneDNN custom "
    b"operations are on. You may see slightly different numerical results.\n",
    b"I0000 00:00:1796223869.124076   20015 cudart_stub.cc:31] Could not find "
    b"cuda drivers on your machine, GPU will not be used.\n",
    b"E0000 00:00:1796223938.561622   21101 cuda_platform.cc:52] failed call "
    b"to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other "
    b"operations, rebuild TensorFlow with the appropriate compiler flags.\n",
]

KEPT = [
    b"kmlc train: error: Manifest file not found: train.json\n",
    b"E0000 00:00:1796223938.561622   21101 op_kernel.cc:1830] OP_REQUIRES "
    b"failed at example_parsing_ops.cc:98 : INVALID_ARGUMENT: bad record\n",
    b"Epoch 1/12\n",
    b"WARNING: something else entirely\n",
]


def test_the_start_up_lines_are_noise_and_others_are_not():
    assert all(is_noise(line) for line in SEEN)
    assert not any(is_noise(line) for line in KEPT)


def test_filtered_stderr_keeps_the_other_lines_in_order():
    code = textwrap.dedent(
        """
        import os, sys
        from kmlc.startup_noise import filter_stderr
        filter_stderr()
        print("before", file=sys.stderr, flush=True)
        import tensorflow as tf
        tf.constant([1.0]) + 1.0
        os.write(2, b"from C\\n")
        print("after", file=sys.stderr)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 0, lines
    assert lines == ["before", "from C", "after"], lines


def test_without_the_filter_tensorflow_does_print_them():
    # The control: the lines above are what TensorFlow prints here.
    result = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf; tf.constant(1.0) + 1.0"],
        capture_output=True,
        timeout=300,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": ":".join(sys.path),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        },
    )
    assert any(is_noise(line + b"\n") for line in result.stderr.splitlines())
