"""Tests for kmlc/data/label_vocabulary.py."""

import numpy as np
import pytest

from kmlc.data.label_vocabulary import LabelVocabulary
from kmlc.data.label_vocabulary import UnknownLabelError
from kmlc.data.label_vocabulary import as_vocabulary

NAMES = ["sky", "sun", "sea", "tree"]


def test_names_and_indices():
    vocabulary = LabelVocabulary(NAMES)
    assert len(vocabulary) == 4
    assert list(vocabulary) == NAMES
    assert [vocabulary.index(name) for name in NAMES] == [0, 1, 2, 3]
    assert "sea" in vocabulary and "moon" not in vocabulary


def test_encode_and_decode():
    vocabulary = LabelVocabulary(NAMES)
    np.testing.assert_array_equal(
        vocabulary.encode(["tree", "sky", "tree"]), [1, 0, 0, 1]
    )
    assert vocabulary.encode([]).tolist() == [0, 0, 0, 0]
    assert vocabulary.encode_batch([["sun"], ["sea", "sky"]]).tolist() == [
        [0, 1, 0, 0],
        [1, 0, 1, 0],
    ]
    assert vocabulary.decode([1, 0, 0, 1]) == ["sky", "tree"]
    assert vocabulary.decode([0.2, 0.9, 0.5, 0.49]) == ["sun", "sea"]
    assert vocabulary.decode([0.2, 0.9, 0.5, 0.49], threshold=0.95) == []
    assert vocabulary.decode([[0, 1, 0, 0], [0.7, 0, 0, 0.8]]) == [
        ["sun"],
        ["sky", "tree"],
    ]


def test_decode_checks_the_shape():
    with pytest.raises(
        ValueError, match=r"shape \[4\] or \[N, 4\].*Received: shape=\(3,\)"
    ):
        LabelVocabulary(NAMES).decode([1, 0, 1])


def test_save_and_load_round_trip(tmp_path):
    path = tmp_path / "vocabulary.txt"
    LabelVocabulary(NAMES).save(path)
    assert path.read_text() == "sky\nsun\nsea\ntree\n"
    loaded = LabelVocabulary.load(path)
    assert loaded == LabelVocabulary(NAMES)
    assert loaded.source == str(path)
    assert as_vocabulary(str(path)) == loaded
    assert as_vocabulary(NAMES) == loaded


def test_load_skips_blank_lines_and_strips(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("sky\n\n  sun \r\nsea\n\n")
    assert LabelVocabulary.load(path).names == ("sky", "sun", "sea")


def test_unknown_label_names_label_and_origin(tmp_path):
    path = tmp_path / "v.txt"
    LabelVocabulary(NAMES).save(path)
    vocabulary = LabelVocabulary.load(path)
    with pytest.raises(UnknownLabelError) as raised:
        vocabulary.encode(["sky", "moon"], where="train.json, sample 3")
    message = str(raised.value)
    assert "'moon'" in message and "train.json, sample 3" in message
    assert str(path) in message and message.endswith("Received: label='moon'")
    assert raised.value.label == "moon"
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, ValueError)


def test_duplicates_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"'sun' is listed twice.*positions 1 and 3"):
        LabelVocabulary(["sky", "sun", "sea", "sun"])
    path = tmp_path / "v.txt"
    path.write_text("sky\nsun\n\nsun\n")
    with pytest.raises(
        ValueError, match=r"'sun' is listed twice in .*v.txt, on lines 2 and 4"
    ):
        LabelVocabulary.load(path)


@pytest.mark.parametrize(
    "names, message",
    [
        ("sky", "not one string"),
        ([], "is empty"),
        (["sky", ""], "Label 1 is not a non-empty name"),
        (["sky", " sun"], "surrounding whitespace"),
        (["a\tb\nc"], "line break"),
    ],
)
def test_bad_names(names, message):
    with pytest.raises(ValueError, match=message):
        LabelVocabulary(names)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Vocabulary file not found.*nope.txt"):
        LabelVocabulary.load(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="holds no labels"):
        LabelVocabulary.load(empty)


def test_from_labels_is_sorted():
    vocabulary = LabelVocabulary.from_labels([["sun", "sky"], [], ["sea", "sky"]])
    assert vocabulary.names == ("sea", "sky", "sun")
