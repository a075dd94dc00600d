"""Session fixtures that every pytest-xdist worker of a run shares.

A session fixture runs once per worker; the costly ones (a trained model,
SavedModel exports) are the same files on every worker, so the first
worker to need them builds them and the others wait for it and read them.
"""

import fcntl
import os
import shutil


def build_once(tmp_path_factory, name, build):
    """The folder `name`, filled by `build(folder)` once for the whole run.

    Under xdist the folder lies beside the workers' own temporary folders
    (in this run's base temporary directory); without xdist it is this
    session's. A file lock makes the other workers wait while one builds;
    a build that failed leaves no `.built` mark, so the next one retries.

    Returns:
        pathlib.Path: the folder.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder
