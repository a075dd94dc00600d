"""Silences TensorFlow's start-up messages on a process's standard error.

TensorFlow 2.21 writes its start-up lines (oneDNN, "Could not find cuda
drivers", "failed call to cuInit", CPU instruction sets) through Abseil
before its logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` does not
reach them. The command line therefore routes file descriptor 2 through a
pipe and a thread that drops exactly those lines and passes everything
else on, in order. Only the `kmlc` command installs it (`--verbose` does
not); the library never touches file descriptors.
"""

import atexit
import fcntl
import os
import re
import sys
import threading

# Each pattern matches one whole line that TensorFlow prints at start-up.
NOISE = re.compile(
    rb"^(?:"
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb" are written to STDERR"
    rb"|[IWE]\d{4} [\d:.]+\s+\d+ (?:port|cudart_stub|cpu_feature_guard"
    rb"|cuda_platform|cuda_executor|cuda_diagnostics|dso_loader)\.cc:\d+\] .*"
    rb"|To enable the following instructions: .* in other operations,"
    rb" rebuild TensorFlow with the appropriate compiler flags\."
    rb")\r?\n?$"
)

_PIPE_SIZE = 1 << 20  # room for bursts while the filter thread waits


def is_noise(line):
    """Whether `line` (bytes) is one of TensorFlow's start-up messages."""
    return NOISE.match(line) is not None


def _pump(pipe, target_fd):
    with os.fdopen(pipe, "rb") as lines:
        for line in lines:
            if not is_noise(line):
                os.write(target_fd, line)


def filter_stderr(fd=2):
    """Routes `fd` through a filter thread until the process exits.

    Returns a function that restores `fd` and waits for the filter to pass
    on what is left (registered with `atexit` too).
    """
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (AttributeError, OSError):  # not Linux, or a lower system limit
        pass
    original = os.dup(fd)
    sys.stderr.flush()
    os.dup2(write_end, fd)
    os.close(write_end)
    thread = threading.Thread(
        target=_pump, args=(read_end, original), name="kmlc-stderr", daemon=True
    )
    thread.start()

    def restore():
        if thread.ident is None or not thread.is_alive():
            return
        sys.stderr.flush()
        os.dup2(original, fd)  # closes the pipe's last write end: EOF
        thread.join(timeout=5)

    atexit.register(restore)
    return restore
