"""Every reader gives the same images, labels and split for the same data.

The same twelve images are read as a manifest, a CSV, TFRecords packed from
the manifest, and a TFDS data set; each goes through `make_dataset` at the
images' own size (so the pixels are the decoded ones) and is compared with
PIL's decoding and the written labels.
"""

import numpy as np
import pytest

from kmlc.data.csv_reader import read_csv
from kmlc.data.manifest_reader import read_manifest
from kmlc.data.pipeline import make_dataset
from kmlc.data.split import split
from kmlc.data.tfrecords import pack
from kmlc.data.tfrecords import read_tfrecords
from tests.data.data_fixtures import HEIGHT
from tests.data.data_fixtures import WIDTH
from tests.data.data_fixtures import match_batches

FORMATS = ("manifest", "csv", "tfrecords", "tfds")


@pytest.fixture(scope="module")
def image_sets(written, tmp_path_factory, request):
    manifest_set = read_manifest(written.manifest, written.images, written.vocabulary)
    packed = tmp_path_factory.mktemp("agree-packed")
    pack(manifest_set, packed, num_shards=4)
    sets = {
        "manifest": manifest_set,
        "csv": read_csv(written.csv, written.images, written.vocabulary),
        "tfrecords": read_tfrecords(packed),
    }
    try:
        from kmlc.data.tfds_reader import read_tfds

        tfds_dir = request.getfixturevalue("tfds_dir")
        sets["tfds"] = read_tfds("kmlc_tiny_voc", "train", data_dir=tfds_dir)
    except pytest.skip.Exception:
        pass
    return sets


@pytest.mark.parametrize("name", FORMATS)
def test_same_pixels_and_labels_in_every_format(image_sets, written, name):
    if name not in image_sets:
        pytest.skip("tensorflow-datasets is not installed")
    image_set = image_sets[name]
    assert image_set.vocabulary.names == image_sets["manifest"].vocabulary.names
    dataset = make_dataset(image_set, (HEIGHT, WIDTH), batch_size=5)
    found = match_batches(dataset, written)
    assert sorted(found) == sorted(written.keys)
    for key, labels in found.items():
        np.testing.assert_array_equal(labels, written.multi_hot[key])


def test_split_is_the_same_in_every_format(image_sets, written):
    splits = {
        name: split(image_set, validation_fraction=0.4, seed=5)
        for name, image_set in image_sets.items()
    }
    validation_keys = {
        name: sorted(validation.keys) for name, (_, validation) in splits.items()
    }
    reference = validation_keys["manifest"]
    assert 0 < len(reference) < len(written.keys)
    assert all(keys == reference for keys in validation_keys.values())
    for name, (train, validation) in splits.items():
        assert sorted(set(train.keys) | set(validation.keys)) == sorted(written.keys)
        assert not set(train.keys) & set(validation.keys)
        # The datasets stream exactly the split's images, whatever the format.
        streamed = sorted(
            key.decode() for _, _, key in validation.dataset().as_numpy_iterator()
        )
        assert streamed == reference, name
        found = match_batches(
            make_dataset(train, (HEIGHT, WIDTH), batch_size=8), written
        )
        assert sorted(found) == sorted(train.keys), name
