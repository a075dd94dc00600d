"""Files that appear whole or not at all.

Every writer here writes to a hidden temporary file beside its target (the
same directory, so the same file system) and renames it into place, so a
reader sees the old file or the new one, never a half-written one, and a
process killed mid-write leaves the target as it was.

    from kmlc import io

    io.write_json("metrics.json", {"mAP": 0.52})
    io.save_model(model, "best.keras")
    with io.atomic_path("curves.png") as temp:
        figure.savefig(temp)
"""

import contextlib
import json
import os
import re
import shutil
import time
import uuid

TEMP_PREFIX = ".tmp-"


def temp_path_beside(path, suffix=None):
    """A fresh hidden path in `path`'s directory, ending in `suffix`.

    `suffix` defaults to `path`'s extension, which writers that choose the
    format by extension (Keras, Matplotlib, NumPy) need.
    """
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    if suffix is None:
        suffix = os.path.splitext(base)[1]
    name = f"{TEMP_PREFIX}{base}.{os.getpid()}.{uuid.uuid4().hex}{suffix}"
    return os.path.join(directory, name)


def remove_path(path):
    """Removes a file or a directory tree; a missing path is not an error."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yields a temporary path beside `path`, renamed onto `path` on success.

    The caller writes the temporary path (a file, or a directory whose
    target does not exist yet); if the block raises, the temporary path is
    removed and `path` is left untouched. Temporaries of the same target
    left by a killed writer are removed first.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temps(directory, target=os.path.basename(path))
    temp = temp_path_beside(path, suffix)
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        remove_path(temp)
        raise


def write_bytes(path, data):
    """Writes `data` (bytes) to `path` atomically. Returns `path`."""
    with atomic_path(path) as temp, open(temp, "wb") as f:
        f.write(data)
    return os.fspath(path)


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically. Returns `path`."""
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)


def write_json(path, value, indent=2, **kwargs):
    """Writes `value` as JSON to `path` atomically. Returns `path`."""
    return write_text(path, json.dumps(value, indent=indent, **kwargs) + "\n")


def save_model(model, path):
    """Saves a Keras model to `path` (`.keras` or `.weights.h5`) atomically."""
    path = os.fspath(path)
    suffix = ".weights.h5" if path.endswith(".weights.h5") else None
    with atomic_path(path, suffix=suffix) as temp:
        if suffix:
            model.save_weights(temp)
        else:
            model.save(temp)
    return path


def copy_file(source, target):
    """Copies `source` to `target` atomically. Returns `target`."""
    with atomic_path(target) as temp:
        shutil.copyfile(source, temp)
    return os.fspath(target)


def remove_stale_temps(directory, target=None, older_than_s=24 * 3600):
    """Removes what writers killed mid-write left in `directory`.

    Only names this module creates (`.tmp-<target>.<pid>.<id>`) are
    touched: those whose writing process is gone (the pid in the name is
    not running on this machine) and any older than `older_than_s`
    seconds, so a writer still at work is spared. `target` limits the
    sweep to the temporaries of one file name. Returns the removed paths.
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    now = time.time()
    prefix = TEMP_PREFIX + (f"{target}." if target else "")
    for name in sorted(os.listdir(directory)):
        if not name.startswith(prefix):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(FileNotFoundError):
            old = now - os.lstat(path).st_mtime >= older_than_s
            if old or _writer_is_gone(name):
                remove_path(path)
                removed.append(path)
    return removed


_WRITER = re.compile(r"\.(\d+)\.[0-9a-f]{32}")


def _writer_is_gone(name):
    """Whether the process that named a temporary `name` has ended."""
    matches = _WRITER.findall(name)
    if not matches:
        return False
    pid = int(matches[-1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False
