"""Tests for kmlc/data/csv_reader.py."""

import numpy as np
import pytest

from kmlc.data.csv_reader import read_csv
from kmlc.data.label_vocabulary import UnknownLabelError
from tests.data.data_fixtures import VOCABULARY


def test_reads_the_written_csv(written):
    image_set = read_csv(written.csv, written.images, written.vocabulary)
    assert list(image_set.keys) == written.keys
    expected = np.stack([written.multi_hot[key] for key in written.keys])
    np.testing.assert_array_equal(image_set.labels, expected)
    assert image_set.name("img01.png") == str(written.images / "img01.png")


def test_vocabulary_built_from_the_data_sorted(written):
    image_set = read_csv(written.csv, written.images)
    assert image_set.vocabulary.names == tuple(sorted(VOCABULARY))
    for key, row in zip(image_set.keys, image_set.labels, strict=True):
        assert sorted(image_set.vocabulary.decode(row)) == sorted(
            set(written.labels[key])
        )


def test_no_header_custom_separator_and_paths_relative_to_the_csv(tmp_path):
    (tmp_path / "pics").mkdir()
    csv_path = tmp_path / "list.csv"
    csv_path.write_text('pics/a.jpg,"sky;sun"\n\npics/b.jpg,\n/abs/c.jpg, sea ; sky \n')
    image_set = read_csv(csv_path, separator=";", allow_outside_images_dir=True)
    assert list(image_set.keys) == ["pics/a.jpg", "pics/b.jpg", "/abs/c.jpg"]
    assert image_set.vocabulary.names == ("sea", "sky", "sun")
    assert image_set.labels.tolist() == [[0, 1, 1], [0, 0, 0], [1, 1, 0]]
    assert image_set.name("pics/a.jpg") == str(tmp_path / "pics" / "a.jpg")
    assert image_set.name("/abs/c.jpg") == "/abs/c.jpg"


def test_line_without_path_names_the_line(tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("path,labels\na.jpg,sky\n,sun sea\n")
    with pytest.raises(
        ValueError, match=r"Line 3 of .*bad.csv has no path field"
    ) as raised:
        read_csv(csv_path)
    assert str(raised.value).endswith("Received: ',sun sea'")


def test_too_many_fields_names_the_line(tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("a.jpg,sky,sun\n")
    with pytest.raises(ValueError, match=r"Line 1 of .*bad.csv has 3 fields"):
        read_csv(csv_path, separator=",")


def test_unknown_label_names_the_line(tmp_path, written):
    csv_path = tmp_path / "l.csv"
    csv_path.write_text("a.jpg,sky\nb.jpg,moon\n")
    with pytest.raises(UnknownLabelError, match=r"'moon' \(.*l.csv, line 2\)"):
        read_csv(csv_path, vocabulary=written.vocabulary)


def test_missing_files_are_named(tmp_path, written):
    with pytest.raises(FileNotFoundError, match=r"CSV file not found.*nope.csv"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(
        FileNotFoundError, match=r"images directory does not exist.*gone"
    ):
        read_csv(written.csv, images_dir=tmp_path / "gone")
    with pytest.raises(ValueError, match="separator must not be empty"):
        read_csv(written.csv, separator="")
