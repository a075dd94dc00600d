"""The label vocabulary: label names <-> indices, multi-hot encoding."""

import os

import numpy as np


class UnknownLabelError(KeyError, ValueError):
    """A label name that is not in the vocabulary.

    A `KeyError` (lookups by name) and a `ValueError` (bad input data). The
    message names the label and, where known, where it came from.

    Args:
        message: str. The full message.
        label: str. The unknown label.
    """

    def __init__(self, message, label):
        super().__init__(message)
        self.message = message
        self.label = label

    def __str__(self):
        # KeyError quotes its argument; the message reads better without.
        return self.message


class LabelVocabulary:
    """An ordered set of label names: index `d` is column `d` of the labels.

    Args:
        names: sequence of str. The label names, in index order. Each is a
            non-empty string without line breaks or surrounding whitespace;
            no name may appear twice.
        source: str, optional. Where the names came from (a file path), used
            in error messages. Defaults to `None`.

    Example:
    >>> vocabulary = LabelVocabulary(["sky", "sun", "sea"])
    >>> vocabulary.encode(["sea", "sky"])
    array([1, 0, 1], dtype=uint8)
    >>> vocabulary.decode([0.9, 0.2, 0.7], threshold=0.5)
    ['sky', 'sea']
    """

    def __init__(self, names, source=None):
        if isinstance(names, str):
            raise ValueError(
                "names must be a sequence of label names, not one string. "
                f"Received: names={names!r}"
            )
        names = tuple(names)
        self.source = None if source is None else os.fspath(source)
        where = f" in {self.source}" if self.source else ""
        positions = {}
        for position, name in enumerate(names):
            if not isinstance(name, str) or not name or name != name.strip():
                raise ValueError(
                    f"Label {position}{where} is not a non-empty name without "
                    f"surrounding whitespace. Received: {name!r}"
                )
            if "\n" in name or "\r" in name:
                raise ValueError(
                    f"Label {position}{where} contains a line break. Received: {name!r}"
                )
            if name in positions:
                raise ValueError(
                    f"Label {name!r} is listed twice{where}, at positions "
                    f"{positions[name]} and {position}. Received: {name!r}"
                )
            positions[name] = position
        if not names:
            raise ValueError(f"The vocabulary{where} is empty. Received: names=()")
        self.names = names
        self._indices = positions

    # Lookups.

    def __len__(self):
        return len(self.names)

    def __iter__(self):
        return iter(self.names)

    def __contains__(self, name):
        return name in self._indices

    def __eq__(self, other):
        return isinstance(other, LabelVocabulary) and self.names == other.names

    def __hash__(self):
        return hash(self.names)

    def __repr__(self):
        shown = ", ".join(repr(name) for name in self.names[:5])
        more = ", ..." if len(self.names) > 5 else ""
        return f"LabelVocabulary([{shown}{more}], size={len(self)})"

    def index(self, name, where=None):
        """The index of `name`; `where` describes its origin for the error."""
        try:
            return self._indices[name]
        except (KeyError, TypeError):
            origin = f" ({where})" if where else ""
            vocabulary = f" {self.source}" if self.source else ""
            raise UnknownLabelError(
                f"Label {name!r}{origin} is not in the vocabulary{vocabulary} "
                f"({len(self)} labels). Received: label={name!r}",
                label=name,
            ) from None

    # Encoding.

    def indices(self, names, where=None):
        """Label names -> sorted unique indices, int64 `[k]`."""
        if isinstance(names, str):
            raise ValueError(
                f"Expected a list of label names, not one string. Received: {names!r}"
            )
        found = {self.index(name, where) for name in names}
        return np.array(sorted(found), np.int64)

    def encode(self, names, where=None):
        """A list of label names -> multi-hot uint8 `[D]`.

        Args:
            names: sequence of str. Label names; repeats are allowed.
            where: str, optional. Their origin, named in the error for an
                unknown label (e.g. "train.json, sample 3").
        """
        multi_hot = np.zeros((len(self),), np.uint8)
        multi_hot[self.indices(names, where)] = 1
        return multi_hot

    def encode_batch(self, batch):
        """A list of lists of label names -> multi-hot uint8 `[N, D]`."""
        multi_hot = np.zeros((len(batch), len(self)), np.uint8)
        for row, names in enumerate(batch):
            multi_hot[row, self.indices(names, f"row {row}")] = 1
        return multi_hot

    def decode(self, values, threshold=0.5):
        """Multi-hot labels or scores -> label names at or above `threshold`.

        Args:
            values: array-like `[D]` or `[N, D]`. Multi-hot labels or scores
                (probabilities, not logits, for the default threshold).
            threshold: float. Defaults to `0.5`.

        Returns:
            A list of names in vocabulary order for `[D]`, a list of such
            lists for `[N, D]`.
        """
        values = np.asarray(values)
        if values.ndim not in (1, 2) or values.shape[-1] != len(self):
            raise ValueError(
                f"Expected values of shape [{len(self)}] or [N, {len(self)}] for "
                f"a vocabulary of {len(self)} labels. Received: shape="
                f"{values.shape}"
            )
        if values.ndim == 2:
            return [self.decode(row, threshold) for row in values]
        return [self.names[index] for index in np.flatnonzero(values >= threshold)]

    # Files.

    def save(self, path):
        """Writes the names to `path`, one a line, UTF-8."""
        with open(path, "w", encoding="utf-8") as file:
            file.write("".join(f"{name}\n" for name in self.names))

    @classmethod
    def load(cls, path):
        """Reads a vocabulary written one label a line; blank lines skipped."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Vocabulary file not found. Received: vocabulary={path!r}"
            )
        names = []
        lines = {}
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                name = line.strip()
                if not name:
                    continue
                if name in lines:
                    raise ValueError(
                        f"Label {name!r} is listed twice in {path}, on lines "
                        f"{lines[name]} and {number}. Received: {name!r}"
                    )
                lines[name] = number
                names.append(name)
        if not names:
            raise ValueError(f"The vocabulary file {path} holds no labels.")
        return cls(names, source=path)

    @classmethod
    def from_labels(cls, label_lists):
        """The sorted set of names found in an iterable of label lists."""
        return cls(sorted({name for names in label_lists for name in names}))


def as_vocabulary(vocabulary):
    """A `LabelVocabulary`, a path to one, or a sequence of names -> vocabulary."""
    if isinstance(vocabulary, LabelVocabulary):
        return vocabulary
    if isinstance(vocabulary, (str, os.PathLike)):
        return LabelVocabulary.load(vocabulary)
    return LabelVocabulary(vocabulary)
