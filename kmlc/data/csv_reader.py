"""`read_csv`: a CSV of `path,labels` rows, images as files."""

import csv
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

_PATH_HEADERS = ("path", "image", "image_path", "image_name", "file", "filename")
_LABELS_HEADERS = ("labels", "label", "image_labels", "tags")


def read_csv(
    csv_path,
    images_dir=None,
    vocabulary=None,
    separator=" ",
    unknown_labels="raise",
    allow_outside_images_dir=False,
):
    """Reads a CSV file of `path,labels` rows.

    Each row is an image path and its labels, joined by `separator` (quote
    the field when the separator is a comma): `img/1.jpg,sky sun`. A first
    row `path,labels` (or `image,label`, `filename,tags`...) is a header and
    skipped; blank lines are skipped; a row without labels is an image with
    no labels. Paths must stay inside the images directory (see
    `read_manifest`) unless `allow_outside_images_dir`.

    Args:
        csv_path: str. The CSV file.
        images_dir: str, optional. The directory that relative paths are
            resolved against. `None`: the CSV file's directory.
        vocabulary: `LabelVocabulary`, a path to a vocabulary file or a
            sequence of names. `None`: the sorted labels found in the file.
            Defaults to `None`.
        separator: str. Separates labels inside the labels field; `" "`
            splits on any run of whitespace. Defaults to `" "`.
        unknown_labels: str. `"raise"` or `"report"`, as for
            `read_manifest`. Defaults to `"raise"`.
        allow_outside_images_dir: bool. Accept absolute paths and paths
            that lead out of the images directory. Defaults to `False`.

    Returns:
        An `ImageSet` whose keys are the paths as the CSV writes them.
    """
    csv_path = os.fspath(csv_path)
    check_unknown_labels(unknown_labels)
    if not separator:
        raise ValueError(f"separator must not be empty. Received: {separator!r}")
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"CSV file not found. Received: csv_path={csv_path!r}")
    if images_dir is None:
        root = os.path.dirname(os.path.abspath(csv_path))
    else:
        root = check_images_dir(images_dir)
    rows = list(_read_rows(csv_path, separator))
    if not allow_outside_images_dir:
        for line, path, _ in rows:
            check_inside(root, path, f"{csv_path}, line {line}")
    if vocabulary is None:
        vocabulary = LabelVocabulary.from_labels(labels for _, _, labels in rows)
    vocabulary = as_vocabulary(vocabulary)
    source = FileSource(root)
    problems = []
    index_lists = [
        label_indices(
            vocabulary,
            labels,
            f"{csv_path}, line {line}",
            unknown_labels,
            problems,
            source,
            path,
        )
        for line, path, labels in rows
    ]
    return ImageSet(
        vocabulary=vocabulary,
        keys=[path for _, path, _ in rows],
        labels=multi_hot_matrix(index_lists, len(vocabulary)),
        source=source,
        problems=tuple(problems),
    )


def _read_rows(csv_path, separator):
    """Yields (line number, path, label names) for each data row."""
    with open(csv_path, newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        first = True
        for fields in reader:
            line = reader.line_num
            if not any(field.strip() for field in fields):
                continue
            if first:
                first = False
                if _is_header(fields):
                    continue
            if len(fields) > 2:
                raise ValueError(
                    f"Line {line} of {csv_path} has {len(fields)} fields; "
                    "expected path,labels (quote the labels field if it "
                    f"contains commas). Received: {','.join(fields)!r}"
                )
            path = fields[0].strip()
            if not path:
                raise ValueError(
                    f"Line {line} of {csv_path} has no path field. "
                    f"Received: {','.join(fields)!r}"
                )
            labels_field = fields[1] if len(fields) > 1 else ""
            if separator == " ":
                labels = labels_field.split()
            else:
                labels = [x.strip() for x in labels_field.split(separator)]
            yield line, path, [label for label in labels if label]


def _is_header(fields):
    names = [field.strip().lower() for field in fields]
    return names[0] in _PATH_HEADERS and (
        len(names) == 1 or names[1] in _LABELS_HEADERS
    )
