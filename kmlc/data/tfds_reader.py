"""`read_tfds`: TensorFlow Datasets with object labels (VOC, COCO)."""

import tensorflow as tf

from kmlc.data.image_set import ImageSet
from kmlc.data.image_set import multi_hot_matrix
from kmlc.data.image_set import to_multi_hot
from kmlc.data.label_vocabulary import LabelVocabulary

IMAGE_FEATURE = "image"
KEY_FEATURE = "image/filename"


def read_tfds(name, split, data_dir=None, download=True, label_feature="objects/label"):
    """Reads a TFDS data set as multi-label images (e.g. `voc/2007`, `coco/2014`).

    An image's labels are the distinct classes of its objects (the
    `label_feature`, a `ClassLabel` per object); the label names are that
    feature's names. Keys are the `image/filename` feature when the data
    set has one, else TFDS's record id. Images stay encoded (TFDS stores
    the original JPEGs) until `make_dataset` decodes them.

    Needs the optional `tensorflow-datasets` package
    (`pip install "kmlc[datasets]"`).

    Args:
        name: str. A TFDS name with its config: `"voc/2007"`, `"coco/2014"`.
        split: str. A TFDS split: `"train"`, `"validation"`, `"test"`,
            `"train[:10%]"`...
        data_dir: str, optional. Where TFDS keeps data sets. `None`: TFDS's
            default (`~/tensorflow_datasets`).
        download: bool. Download and prepare the data set when it is not
            in `data_dir` yet (needs the internet). Defaults to `True`.
        label_feature: str. The path of the per-object class feature.
            Defaults to `"objects/label"` (VOC and COCO).

    Returns:
        An `ImageSet`. Reading its keys and labels takes one pass over the
        split's records (without decoding images).
    """
    tfds = _import_tfds()
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    features = builder.info.features
    vocabulary = LabelVocabulary(
        _label_names(features, label_feature, name), source=f"TFDS {name}"
    )
    if IMAGE_FEATURE not in features:
        raise ValueError(
            f"TFDS data set {name} has no {IMAGE_FEATURE!r} feature. "
            f"Received features: {sorted(features.keys())}"
        )
    source = TFDSSource(
        builder,
        split,
        label_feature=label_feature,
        use_filename=KEY_FEATURE in features,
    )
    keys, index_lists = [], []
    for key, indices in source.label_records().as_numpy_iterator():
        keys.append(key.decode("utf-8"))
        index_lists.append(indices)
    source.num_records = len(keys)
    return ImageSet(
        vocabulary=vocabulary,
        keys=keys,
        labels=multi_hot_matrix(index_lists, len(vocabulary)),
        source=source,
    )


class TFDSSource:
    """Images in a prepared TFDS data set.

    Args:
        builder: `tfds.core.DatasetBuilder`, prepared.
        split: str.
        label_feature: str. The path of the per-object `ClassLabel`.
        use_filename: bool. Key by `image/filename` (else by TFDS id).
    """

    image_is_path = False
    streams = True

    def __init__(self, builder, split, label_feature, use_filename):
        self.builder = builder
        self.split = split
        self.label_feature = label_feature
        self.use_filename = use_filename
        self.num_records = None

    def __repr__(self):
        return f"TFDSSource({self.builder.info.full_name!r}, split={self.split!r})"

    def name(self, key):
        return key

    def _examples(self, shuffle_files=False, seed=None):
        tfds = _import_tfds()
        read_config = tfds.ReadConfig(
            add_tfds_id=not self.use_filename,
            shuffle_seed=seed,
            try_autocache=False,
        )
        return self.builder.as_dataset(
            split=self.split,
            shuffle_files=shuffle_files,
            decoders={IMAGE_FEATURE: tfds.decode.SkipDecoding()},
            read_config=read_config,
        )

    def _key(self, example):
        return example[KEY_FEATURE] if self.use_filename else example["tfds_id"]

    def label_records(self):
        """(key, sorted unique label indices) per record, images unread."""

        def select(example):
            indices = _lookup(example, self.label_feature)
            return self._key(example), tf.sort(tf.unique(indices).y)

        return self._examples().map(select, num_parallel_calls=tf.data.AUTOTUNE)

    def records(self, image_set, shuffle_files=False, seed=None):
        num_labels = len(image_set.vocabulary)

        def select(example):
            indices = _lookup(example, self.label_feature)
            return (
                example[IMAGE_FEATURE],
                to_multi_hot(indices, num_labels),
                self._key(example),
            )

        return self._examples(shuffle_files, seed).map(
            select, num_parallel_calls=tf.data.AUTOTUNE
        )


def _import_tfds():
    try:
        import tensorflow_datasets
    except ImportError as error:
        raise ImportError(
            "Reading TFDS data sets needs the optional tensorflow-datasets "
            'package: pip install "kmlc[datasets]". '
            f"Received: {error}"
        ) from error
    return tensorflow_datasets


def _lookup(mapping, path):
    """`mapping["a/b"]`, else `mapping["a"]["b"]`: TFDS keys contain slashes."""
    try:
        return mapping[path]
    except (KeyError, TypeError, ValueError):
        pass
    head, _, rest = path.partition("/")
    if not rest:
        raise KeyError(path)
    return _lookup(mapping[head], rest)


def _label_names(features, label_feature, name):
    try:
        feature = _lookup(features, label_feature)
    except (KeyError, TypeError):
        raise ValueError(
            f"TFDS data set {name} has no {label_feature!r} feature. "
            f"Received features: {sorted(features.keys())}"
        ) from None
    feature = getattr(feature, "feature", feature)  # Sequence(ClassLabel)
    names = getattr(feature, "names", None)
    if not names:
        raise ValueError(
            f"The {label_feature!r} feature of TFDS data set {name} is not a "
            f"ClassLabel with names. Received: {feature!r}"
        )
    return names
