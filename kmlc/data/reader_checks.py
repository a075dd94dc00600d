"""Checks and label parsing shared by the file readers (manifest, CSV)."""

import os

from kmlc.data.label_vocabulary import UnknownLabelError
from kmlc.data.problem import Problem

UNKNOWN_LABELS = ("raise", "report")


def check_images_dir(images_dir):
    """The images directory as a str; FileNotFoundError when it is not one."""
    if images_dir is None:
        return None
    images_dir = os.fspath(images_dir)
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(
            f"The images directory does not exist. Received: images_dir={images_dir!r}"
        )
    return images_dir


def check_inside(images_dir, name, where):
    """Raises `ValueError` unless the image `name` resolves inside `images_dir`.

    Refused: absolute paths, paths that climb out through `..`, and paths
    whose symbolic links lead out of the directory. Only the path is
    looked at; the file is never opened.

    Args:
        images_dir: str. The directory image names are relative to.
        name: str. The image name as the data file writes it.
        where: str. The data file and entry, for the message.
    """
    if os.path.isabs(name):
        reason = "an absolute path"
    elif os.path.normpath(name).split(os.sep)[0] == os.pardir:
        reason = "it climbs out through '..'"
    else:
        root = os.path.realpath(images_dir)
        resolved = os.path.realpath(os.path.join(root, name))
        if os.path.commonpath([root, resolved]) == root:
            return
        reason = f"a symbolic link leads to {resolved}"
    raise ValueError(
        f"{where}: the image {name!r} is outside the images directory "
        f"{images_dir} ({reason}). Image names must be paths inside it; pass "
        "allow_outside_images_dir=True (--allow-outside) to read files "
        f"elsewhere. Received: {name!r}"
    )


def label_indices(vocabulary, labels, where, unknown_labels, problems, source, key):
    """Label names -> indices, raising or recording unknown labels."""
    if unknown_labels == "raise":
        return vocabulary.indices(labels, where)
    indices = []
    for label in labels:
        try:
            indices.append(vocabulary.index(label, where))
        except UnknownLabelError as error:
            problems.append(
                Problem("unknown-label", source.name(key), str(error), key=key)
            )
    return sorted(set(indices))


def check_unknown_labels(unknown_labels):
    """Raises unless `unknown_labels` is one of `UNKNOWN_LABELS`."""
    if unknown_labels not in UNKNOWN_LABELS:
        raise ValueError(
            f"unknown_labels must be one of {UNKNOWN_LABELS}. "
            f"Received: unknown_labels={unknown_labels!r}"
        )
