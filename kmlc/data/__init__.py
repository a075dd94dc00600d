"""Data: label vocabularies, readers, one `tf.data` pipeline, checks.

Every reader returns an `ImageSet` (keys, multi-hot labels, and a dataset of
the encoded images); `make_dataset` turns any of them into batches of
`(images [B, H, W, 3] float32 0..255, labels [B, D] float32)`, skipping and
logging the images it cannot use; `split` divides one deterministically;
`check` lists what is wrong with one; `pack` writes one as sharded
TFRecords. `read_source` reads any registered format (`SOURCES`) and
`read_image_set` a training config's data, split.
"""

from kmlc.data.check import check
from kmlc.data.csv_reader import read_csv
from kmlc.data.image_decoding import decode_image
from kmlc.data.image_decoding import diagnose_image
from kmlc.data.image_set import FileSource
from kmlc.data.image_set import ImageSet
from kmlc.data.label_vocabulary import LabelVocabulary
from kmlc.data.label_vocabulary import UnknownLabelError
from kmlc.data.manifest_reader import read_manifest
from kmlc.data.pipeline import make_dataset
from kmlc.data.problem import Problem
from kmlc.data.skipped_images import SkippedImages
from kmlc.data.sources import SOURCES
from kmlc.data.sources import read_image_set
from kmlc.data.sources import read_source
from kmlc.data.split import split
from kmlc.data.split import validation_mask
from kmlc.data.tfds_reader import read_tfds
from kmlc.data.tfrecords import PackResult
from kmlc.data.tfrecords import pack
from kmlc.data.tfrecords import read_tfrecords

__all__ = [
    "FileSource",
    "ImageSet",
    "LabelVocabulary",
    "PackResult",
    "Problem",
    "SOURCES",
    "SkippedImages",
    "UnknownLabelError",
    "check",
    "decode_image",
    "diagnose_image",
    "make_dataset",
    "pack",
    "read_csv",
    "read_image_set",
    "read_manifest",
    "read_source",
    "read_tfds",
    "read_tfrecords",
    "split",
    "validation_mask",
]
