"""`SkippedImages`: the images a pipeline could not use, named and counted."""

import logging
import threading

from kmlc.data.image_decoding import diagnose_image
from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS


class SkippedImages:
    """A record of the images that `make_dataset` skipped, and why.

    `make_dataset` attaches one to the dataset it returns (as
    `dataset.skipped`); each skipped image is logged by name on the
    `"kmlc.data"` logger, at WARNING the first time, at DEBUG when a later
    epoch meets it again.

    Args:
        min_side: int. The minimum side used, for the reasons given.
        max_pixels: int or None. The pixel limit used, likewise.
        logger: `logging.Logger`, optional. Defaults to the `"kmlc.data"`
            logger.

    Attributes:
        reasons: dict. Image name (its path, or its key for images stored
            in records) -> why it was skipped.
        count: int. Skips counted, a repeated image once per epoch.
    """

    def __init__(self, min_side=8, logger=None, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
        self.min_side = min_side
        self.max_pixels = max_pixels
        self.logger = logger or logging.getLogger("kmlc.data")
        self.reasons = {}
        self.count = 0
        self._lock = threading.Lock()

    def __len__(self):
        """How many distinct images were skipped."""
        return len(self.reasons)

    def __contains__(self, name):
        return name in self.reasons

    def __repr__(self):
        return f"SkippedImages({len(self)} images, count={self.count})"

    @property
    def names(self):
        """The names of the skipped images, in the order first met."""
        return list(self.reasons)

    def record(self, name, reason):
        """Counts and logs one skipped image."""
        with self._lock:
            self.count += 1
            first_time = name not in self.reasons
            self.reasons.setdefault(name, reason)
        level = logging.WARNING if first_time else logging.DEBUG
        self.logger.log(level, "skipped unreadable image %s: %s", name, reason)

    def record_element(self, name, image, image_is_path):
        """`record` for tensors met inside `tf.data`: finds the reason first.

        Args:
            name: scalar string tensor.
            image: scalar string tensor: the path or the encoded bytes.
            image_is_path: bool.

        Returns:
            `False`, so that it can serve as a `filter` predicate.
        """
        name = name.numpy().decode("utf-8", "replace")
        found = diagnose_image(
            image.numpy(), image_is_path, self.min_side, self.max_pixels
        )
        reason = found[1] if found else "could not be read (a transient error?)"
        self.record(name, reason)
        return False
