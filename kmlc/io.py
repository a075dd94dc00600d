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
    return os.path.join(directory, f"{TEMP_PREFIX}{base}-{uuid.uuid4().hex}{suffix}")


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
    removed and `path` is left untouched.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
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


def remove_stale_temps(directory, older_than_s=0.0):
    """Removes what writers killed mid-write left in `directory`.

    Only names this module creates (`.tmp-*`) that were last modified more
    than `older_than_s` seconds ago are touched, so a writer still at work
    can be spared. Returns the removed paths.
    """
    removed = []
    if not os.path.isdir(directory):
        return removed
    now = time.time()
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.startswith(TEMP_PREFIX):
            continue
        with contextlib.suppress(FileNotFoundError):
            if now - os.lstat(path).st_mtime >= older_than_s:
                remove_path(path)
                removed.append(path)
    return removed
