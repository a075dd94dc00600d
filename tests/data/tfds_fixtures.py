"""A TFDS builder with voc/2007's features, built from local images.

Import only where `tensorflow_datasets` is installed (the "datasets" extra).
"""

import numpy as np
import tensorflow_datasets as tfds

from tests.data.data_fixtures import SAMPLES
from tests.data.data_fixtures import VOCABULARY

POSES = ("frontal", "rear", "left", "right", "unspecified")


class KmlcTinyVoc(tfds.core.GeneratorBasedBuilder):
    """The written samples with voc/2007's features; one object per label."""

    VERSION = tfds.core.Version("1.0.0")
    images_dir = None  # set before download_and_prepare

    def _info(self):
        label = tfds.features.ClassLabel(names=VOCABULARY)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(),
                    "image/filename": tfds.features.Text(),
                    "objects": tfds.features.Sequence(
                        {
                            "label": label,
                            "bbox": tfds.features.BBoxFeature(),
                            "pose": tfds.features.ClassLabel(names=POSES),
                            "is_truncated": np.bool_,
                            "is_difficult": np.bool_,
                        }
                    ),
                    "labels": tfds.features.Sequence(label),
                    "labels_no_difficult": tfds.features.Sequence(label),
                }
            )
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for name, labels, _ in SAMPLES:
            box = tfds.features.BBox(0.1, 0.2, 0.5, 0.6)
            yield (
                name,
                {
                    "image": str(self.images_dir / name),
                    "image/filename": name,
                    "objects": [
                        {
                            "label": label,
                            "bbox": box,
                            "pose": "frontal",
                            "is_truncated": False,
                            "is_difficult": False,
                        }
                        for label in labels
                    ],
                    "labels": sorted(set(labels)),
                    "labels_no_difficult": sorted(set(labels)),
                },
            )


def prepare_tiny_voc(written, data_dir):
    """Builds `kmlc_tiny_voc` from a `WrittenDataSet` into `data_dir`."""
    KmlcTinyVoc.images_dir = written.images
    KmlcTinyVoc(data_dir=str(data_dir)).download_and_prepare()
    return data_dir
