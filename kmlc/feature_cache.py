"""Backbone feature maps computed once, on disk, to train the heads fast.

With a frozen backbone (`model.freeze_backbone: true`) every epoch would run
the same images through the same backbone again: that is almost all of a
CPU's training time. `FeatureCache.build` runs it once over the training
images (in a fixed number of views: the image, and with `views=2` its mirror
image too) and keeps the feature maps `[h, w, E]` as float16 in a
memory-mapped `.npy` file, so that `MultiLabelClassifier.heads_model()`
trains on them at hundreds of images per second, with memory independent
of the collection's size. Feature maps, not pooled vectors, because the
fusion and attention heads work on the map.

A cache folder holds `features.npy` (`[N * views, h, w, E]` float16, the
views of image i at rows `i * views ...`), `labels.npy` (`[N * views, D]`
uint8) and `meta.json` (what it was computed from). It is written in a
temporary folder and renamed into place, so a cache is whole or absent; one
computed from anything else (another backbone, size, weights, image list)
is recomputed.
"""

import hashlib
import json
import logging
import os
import shutil

import keras
import numpy as np

logger = logging.getLogger("kmlc.train")


def fingerprint(image_set):
    """A short hash of an `ImageSet`'s image keys and labels."""
    digest = hashlib.sha256()
    for key in image_set.keys:
        digest.update(str(key).encode("utf-8", "surrogateescape") + b"\0")
    digest.update(np.ascontiguousarray(image_set.labels, dtype=np.uint8).tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """A folder of cached feature maps and labels (see the module).

    Args:
        directory: str. A folder written by `FeatureCache.build`.

    Attributes:
        features: `np.memmap` `[N * views, h, w, E]` float16.
        labels: `np.ndarray` `[N * views, D]` uint8.
        meta: dict. What the features were computed from.
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        with open(os.path.join(self.directory, "meta.json"), encoding="utf-8") as f:
            self.meta = json.load(f)
        self.features = np.load(
            os.path.join(self.directory, "features.npy"), mmap_mode="r"
        )
        self.labels = np.load(os.path.join(self.directory, "labels.npy"))
        if len(self.features) != len(self.labels):
            raise ValueError(
                f"{self.directory}: {len(self.features)} feature maps but "
                f"{len(self.labels)} label rows: a damaged cache (delete it)."
            )

    def __len__(self):
        return len(self.labels)

    @classmethod
    def open(cls, directory, meta):
        """The cache in `directory` if it was computed from `meta`, else None."""
        try:
            cache = cls(directory)
        except (OSError, ValueError):
            return None
        return cache if cache.meta == meta else None

    @classmethod
    def build(cls, directory, extractor, dataset, num_images, meta, views=1):
        """Computes the feature maps of a dataset and writes the folder.

        Args:
            directory: str. Where the cache goes (replaced if present).
            extractor: keras.Model. Images `[B, H, W, 3]` -> feature maps.
            dataset: a finite `tf.data.Dataset` of `(images, labels)`
                batches, not augmented, in a fixed order.
            num_images: int. At most this many images (skipped images make
                fewer).
            meta: dict. JSON-ready; `FeatureCache.open` compares it.
            views: int. 1 (the images) or 2 (also mirrored left-right).

        Returns:
            The `FeatureCache`.
        """
        if views not in (1, 2):
            raise ValueError(f"views must be 1 or 2. Received: views={views}")
        directory = os.fspath(directory)
        tmp = directory + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        shape = tuple(int(d) for d in extractor.output.shape[1:])
        features = np.lib.format.open_memmap(
            os.path.join(tmp, "features.npy"),
            mode="w+",
            dtype=np.float16,
            shape=(num_images * views, *shape),
        )
        labels = []
        count = 0
        progress = keras.utils.Progbar(num_images, unit_name="image")
        logger.info(
            "computing the backbone's feature maps of %d images (%d view(s)) into %s",
            num_images,
            views,
            directory,
        )
        for images, batch_labels in dataset:
            images = np.asarray(images)
            outputs = [np.asarray(extractor.predict_on_batch(images))]
            if views == 2:
                outputs.append(
                    np.asarray(extractor.predict_on_batch(images[:, :, ::-1]))
                )
            rows = np.stack(outputs, axis=1).reshape(-1, *shape)
            features[count : count + len(rows)] = rows.astype(np.float16)
            labels.append(np.repeat(np.asarray(batch_labels, np.uint8), views, axis=0))
            count += len(rows)
            progress.update(count // views)
        features.flush()
        del features
        if count < num_images * views:  # skipped images: keep the rows written
            _truncate_npy(os.path.join(tmp, "features.npy"), count)
        np.save(
            os.path.join(tmp, "labels.npy"),
            np.concatenate(labels) if labels else np.zeros((0, 0), np.uint8),
        )
        with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        shutil.rmtree(directory, ignore_errors=True)
        os.replace(tmp, directory)
        return cls(directory)

    def dataset(self, batch_size, training=False, seed=0):
        """`(features float32, labels float32)` batches, shuffled if training."""
        import tensorflow as tf

        features, labels = self.features, self.labels
        shape = features.shape[1:]

        def gather(indices):
            indices = np.sort(indices)  # sequential reads of the memmap
            return (
                np.asarray(features[indices], np.float32),
                labels[indices].astype(np.float32),
            )

        def load(indices):
            x, y = tf.numpy_function(gather, [indices], (tf.float32, tf.float32))
            x.set_shape((None, *shape))
            y.set_shape((None, labels.shape[1]))
            return x, y

        ds = tf.data.Dataset.range(len(self))
        if training:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).map(load).prefetch(2)


def _truncate_npy(path, rows):
    """Keeps the first `rows` rows of an `.npy` file written by open_memmap."""
    old = np.load(path, mmap_mode="r")
    new_path = path + ".part"
    new = np.lib.format.open_memmap(
        new_path, mode="w+", dtype=old.dtype, shape=(rows, *old.shape[1:])
    )
    new[:] = old[:rows]
    new.flush()
    del new, old
    os.replace(new_path, path)
