"""`read_manifest`: JSON manifests in the Corel-5k form, images as files."""

import json
import os

from kmlc.data.image_set import FileSource
from kmlc.data.image_set import ImageSet
from kmlc.data.image_set import multi_hot_matrix
from kmlc.data.label_vocabulary import LabelVocabulary
from kmlc.data.label_vocabulary import as_vocabulary
from kmlc.data.reader_checks import check_images_dir
from kmlc.data.reader_checks import check_inside
from kmlc.data.reader_checks import check_unknown_labels
from kmlc.data.reader_checks import label_indices


def read_manifest(
    manifest,
    images_dir,
    vocabulary=None,
    unknown_labels="raise",
    allow_outside_images_dir=False,
):
    """Reads a JSON manifest of images and their labels.

    The manifest is `{"samples": [{"image_name": "1000.jpeg", "image_labels":
    ["sky", "sun"]}, ...]}` (the Corel-5k form); image names are paths
    relative to `images_dir`, and must stay inside it: an absolute name, a
    name that climbs out through `..` or through a symbolic link is an
    error naming the sample, unless `allow_outside_images_dir`.

    Args:
        manifest: str. The JSON file.
        images_dir: str. The directory holding the images.
        vocabulary: `LabelVocabulary`, a path to a vocabulary file (one label
            a line) or a sequence of names. `None`: the manifest's own
            `"labels"` list if it has one, else the sorted labels found in
            the samples. Defaults to `None`.
        unknown_labels: str. `"raise"`: a label outside the vocabulary is an
            error naming the label, the manifest and the sample. `"report"`:
            drop it and record a `Problem` in the set's `problems` (what
            `kmlc data check` uses). Defaults to `"raise"`.
        allow_outside_images_dir: bool. Accept image names that lead out
            of `images_dir`. Defaults to `False`.

    Returns:
        An `ImageSet` whose keys are the image names.
    """
    manifest = os.fspath(manifest)
    check_unknown_labels(unknown_labels)
    samples, listed_labels = _load_samples(manifest)
    images_dir = check_images_dir(images_dir)
    names, label_lists = [], []
    for position, sample in enumerate(samples):
        name, labels = _parse_sample(sample, position, manifest)
        if not allow_outside_images_dir:
            check_inside(
                images_dir or os.curdir, name, f"{manifest}, sample {position}"
            )
        names.append(name)
        label_lists.append(labels)
    if vocabulary is None:
        vocabulary = (
            LabelVocabulary(listed_labels, source=f"{manifest} (labels)")
            if listed_labels is not None
            else LabelVocabulary.from_labels(label_lists)
        )
    vocabulary = as_vocabulary(vocabulary)
    source = FileSource(images_dir)
    problems = []
    index_lists = []
    for position, (name, labels) in enumerate(zip(names, label_lists, strict=True)):
        where = f"{manifest}, sample {position}, image_name {name!r}"
        index_lists.append(
            label_indices(
                vocabulary, labels, where, unknown_labels, problems, source, name
            )
        )
    return ImageSet(
        vocabulary=vocabulary,
        keys=names,
        labels=multi_hot_matrix(index_lists, len(vocabulary)),
        source=source,
        problems=tuple(problems),
    )


def _load_samples(manifest):
    if not os.path.isfile(manifest):
        raise FileNotFoundError(
            f"Manifest file not found. Received: manifest={manifest!r}"
        )
    with open(manifest, encoding="utf-8") as file:
        try:
            content = json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"Manifest {manifest} is not valid JSON: {error.msg} at line "
                f"{error.lineno}, column {error.colno}."
            ) from None
    if not isinstance(content, dict) or not isinstance(content.get("samples"), list):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(
            f'Manifest {manifest} has no "samples" list: expected '
            '{"samples": [{"image_name": ..., "image_labels": [...]}, ...]}. '
            f"Received: {found}"
        )
    listed = content.get("labels")
    if listed is not None and not isinstance(listed, list):
        listed = None
    return content["samples"], listed


def _parse_sample(sample, position, manifest):
    if not isinstance(sample, dict):
        raise ValueError(
            f"Sample {position} of {manifest} is not an object. Received: {sample!r}"
        )
    name = sample.get("image_name")
    if not isinstance(name, str) or not name:
        raise ValueError(
            f'Sample {position} of {manifest} has no "image_name" string. '
            f"Received: {sample!r}"
        )
    labels = sample.get("image_labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError(
            f'Sample {position} of {manifest} ({name!r}): "image_labels" must be '
            f"a list of label names. Received: {labels!r}"
        )
    return name, labels
