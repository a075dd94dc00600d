"""The versions of one model under a base path: load the latest, swap in newer.

TF Serving's layout: `<base>/<name>/<version>/saved_model.pb` with integer
versions. Directories whose names start with `"."` or `"tmp-"` (exports in
progress) and version directories without a `saved_model.pb` yet are
skipped. A version that fails to load (say, its variables were still being
copied) is retried when any of its files changes (names, sizes, mtimes),
with a backoff while it keeps failing.
"""

import dataclasses
import logging
import os
import threading

from kmlc.serving.errors import RequestError
from kmlc.serving.server.servable import Servable

logger = logging.getLogger(__name__)

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# A version that keeps failing while its files keep changing is retried at
# most every 2**(failures - 1) polls, and at least every this many.
MAX_SKIPPED_POLLS = 32


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    """What GetModelStatus says about one version.

    Attributes:
        version: int.
        state: str. `"AVAILABLE"` (served) or `"END"` (unloaded, or failed
            to load: then `error_code` is not `"OK"`).
        error_code: str. A status code name.
        error_message: str. Why it failed to load, or empty.
    """

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


def list_versions(base_path):
    """`{version: path}` of the complete versions under a model base path."""
    versions = {}
    for entry in os.scandir(base_path):
        if entry.name.startswith((".", "tmp-")) or not entry.is_dir():
            continue
        if not entry.name.isdigit():
            logger.debug("Skipping %s: not an integer version", entry.path)
            continue
        if any(os.path.isfile(os.path.join(entry.path, f)) for f in SAVED_MODEL_FILES):
            versions[int(entry.name)] = entry.path
    return versions


def fingerprint(path):
    """`(relative path, size, mtime_ns)` of every file under a version
    directory: changes when any of them is written, added or removed."""
    stamps = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue  # removed while we looked: the next scan sees it
            stamps.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(stamps))


@dataclasses.dataclass
class _Failure:
    """A version that failed to load: with which files, why, how often."""

    fingerprint: tuple
    message: str
    attempts: int = 1
    skip_polls: int = 0


class ModelStore:
    """Serves the highest version of a model and picks up newer ones.

    A new version is loaded fully (and warmed up) before it replaces the
    served one; if it fails to load, the old one keeps serving and the
    reason is logged and reported by `statuses()`. A failed version is
    retried when any of its files changes; after its n-th failure in a row
    the next 2**(n-1) - 1 scans (at most 32) skip it. If the served
    version's directory is removed, the highest remaining version is
    loaded instead.

    Args:
        base_path: str. The model base path, holding integer versions.
        name: str. The model name clients ask for.
        poll_interval: float. Seconds between scans of `base_path`.
            Defaults to 1.0.
        warm_up: bool. Replay `assets.extra/tf_serving_warmup_requests`
            before serving a version. Defaults to True.
    """

    def __init__(self, base_path, name, poll_interval=1.0, warm_up=True):
        if poll_interval <= 0:
            raise ValueError(
                f"poll_interval must be positive. Received: {poll_interval}"
            )
        self.base_path = os.path.abspath(os.fspath(base_path))
        self.name = str(name)
        self.poll_interval = float(poll_interval)
        self.warm_up = bool(warm_up)
        self._servable = None
        self._failed = {}  # version -> _Failure
        self._unloaded = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    @property
    def version(self):
        """The served version, or None before `start()`."""
        servable = self._servable
        return None if servable is None else servable.version

    def start(self):
        """Loads the highest loadable version, then polls in the background."""
        if not os.path.isdir(self.base_path):
            raise FileNotFoundError(
                f"The model base path of {self.name!r} is not a directory: "
                f"{self.base_path}"
            )
        versions = list_versions(self.base_path)
        if not versions:
            raise FileNotFoundError(
                f"No versions of model {self.name!r} under {self.base_path}: "
                "expected integer subdirectories holding a SavedModel, e.g. "
                f"{os.path.join(self.base_path, '1', 'saved_model.pb')}. "
                f"Received: entries {sorted(os.listdir(self.base_path))}"
            )
        self.poll()
        if self._servable is None:
            reasons = "; ".join(
                f"version {version}: {failure.message}"
                for version, failure in sorted(self._failed.items())
            )
            raise ValueError(
                f"No version of model {self.name!r} under {self.base_path} "
                f"could be loaded. {reasons}"
            )
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll_loop, name=f"kmlc-model-store-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        """Stops polling (the served version stays loaded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def poll(self):
        """Scans the base path once; returns True if the served version changed.

        The highest version that is not the served one and has not failed
        with the same files (or is not waiting out its backoff) is loaded;
        versions below the served one are tried only when the served one's
        directory is gone.
        """
        try:
            versions = list_versions(self.base_path)
        except OSError as error:
            logger.warning("Cannot list %s: %s", self.base_path, error)
            return False
        current = self.version
        for version in sorted(versions, reverse=True):
            if version == current:
                return False
            failure = self._failed.get(version)
            if failure is not None:
                if failure.fingerprint == fingerprint(versions[version]):
                    continue
                if failure.skip_polls > 0:
                    failure.skip_polls -= 1
                    continue
            if self._load(version, versions[version]):
                return True
        if current is not None and current not in versions:
            logger.warning(
                "Version %d of model %r was removed from %s and no other version "
                "loads; still serving it from memory.",
                current,
                self.name,
                self.base_path,
            )
        return False

    def servable(self, version=None):
        """The served `Servable`; `version` must be it if given."""
        servable = self._servable
        if servable is None:
            raise RequestError(
                "NOT_FOUND", f"Servable not found for request: Latest({self.name})"
            )
        if version is not None and int(version) != servable.version:
            raise RequestError(
                "NOT_FOUND",
                f"Servable not found for request: Specific({self.name}, {version}). "
                f"The dev server serves the latest version only: "
                f"{servable.version}. Received: version={version}",
            )
        return servable

    def statuses(self, version=None):
        """`VersionStatus` of every version seen, highest first."""
        with self._lock:
            entries = {v: VersionStatus(v, "END") for v in self._unloaded}
            for v, failure in self._failed.items():
                entries[v] = VersionStatus(v, "END", "UNKNOWN", failure.message)
            if self._servable is not None:
                current = self._servable.version
                entries[current] = VersionStatus(current, "AVAILABLE")
        if version is not None:
            if int(version) not in entries:
                raise RequestError(
                    "NOT_FOUND",
                    f"Could not find version {version} of model {self.name}. "
                    f"Known versions: {sorted(entries)}",
                )
            return [entries[int(version)]]
        return [entries[v] for v in sorted(entries, reverse=True)]

    def _poll_loop(self):
        while not self._stop.wait(self.poll_interval):
            try:
                self.poll()
            except Exception:  # keep polling whatever one scan met
                logger.exception("Polling %s failed", self.base_path)

    def _load(self, version, path):
        files = fingerprint(path)
        logger.info("Loading model %r version %d from %s", self.name, version, path)
        try:
            servable = Servable(path, version)
            replayed = servable.warm_up() if self.warm_up else 0
        except Exception as error:  # any load failure keeps the old version
            message = f"{type(error).__name__}: {error}"
            with self._lock:
                previous = self._failed.get(version)
                attempts = 1 if previous is None else previous.attempts + 1
                self._failed[version] = _Failure(
                    files,
                    message,
                    attempts,
                    skip_polls=min(2 ** min(attempts - 1, 6) - 1, MAX_SKIPPED_POLLS),
                )
            current = self.version
            logger.error(
                "Could not load model %r version %d from %s; %s. %s",
                self.name,
                version,
                path,
                "nothing served yet"
                if current is None
                else f"still serving version {current}",
                message,
            )
            return False
        with self._lock:
            old = self._servable
            self._servable = servable
            self._failed.pop(version, None)
            self._unloaded.discard(version)
            if old is not None:
                self._unloaded.add(old.version)
        logger.info(
            "Serving model %r version %d (was %s; %d warm-up requests replayed)",
            self.name,
            version,
            None if old is None else old.version,
            replayed,
        )
        return True
