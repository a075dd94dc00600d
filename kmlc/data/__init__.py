"""Data: label vocabularies, readers, one `tf.data` pipeline, checks.

Every reader returns an `ImageSet` (keys, multi-hot labels, and a dataset of
the encoded images); `make_dataset` turns any of them into batches of
`(images [B, H, W, 3] float32 0..255, labels [B, D] float32)`, skipping and
logging the images it cannot use; `split` divides one deterministically;
`check` lists what is wrong with one; `pack` writes one as sharded
TFRecords. `read_source` reads any registered format (`SOURCES`) and
`read_image_set` a training config's data, split.

The names load on first use (`kmlc.lazy`): `kmlc.data.image_header`
and the other modules without TensorFlow stay light to import.
"""

from kmlc import lazy

# Bound now: a lazily read `split` would be shadowed by the `split` module
# once something imports it (NumPy only, so this costs little).
from kmlc.data.split import split  # noqa: F401
from kmlc.data.split import validation_mask  # noqa: F401

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    attributes={
        "check": "data_check",
        "read_csv": "csv_reader",
        "decode_image": "image_decoding",
        "diagnose_image": "image_decoding",
        "FileSource": "image_set",
        "ImageSet": "image_set",
        "LabelVocabulary": "label_vocabulary",
        "UnknownLabelError": "label_vocabulary",
        "read_manifest": "manifest_reader",
        "make_dataset": "pipeline",
        "Problem": "problem",
        "SkippedImages": "skipped_images",
        "SOURCES": "sources",
        "read_image_set": "sources",
        "read_source": "sources",
        "read_tfds": "tfds_reader",
        "PackResult": "tfrecords",
        "pack": "tfrecords",
        "read_tfrecords": "tfrecords",
    },
)
__all__ = sorted([*__all__, "split", "validation_mask"])
