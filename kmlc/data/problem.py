"""One problem found in a data set: what, which file, and the details."""

import dataclasses

KINDS = (
    "missing",
    "unreadable",
    "too-small",
    "too-large",
    "unknown-label",
    "no-labels",
    "duplicate-key",
    "duplicate-content",
    "corrupt-shard",
)


@dataclasses.dataclass(frozen=True)
class Problem:
    """A problem with one image of a data set, as `kmlc.data.check` reports it.

    Args:
        kind: str. One of `KINDS`: `"missing"` (no such file),
            `"unreadable"` (cannot be decoded), `"too-small"` (smaller than
            the minimum side), `"too-large"` (more pixels than the limit),
            `"unknown-label"` (a label outside the
            vocabulary), `"no-labels"`, `"duplicate-key"` (the same key
            twice), `"duplicate-content"` (the same bytes as another image),
            `"corrupt-shard"` (a TFRecord shard that cannot be read to its
            end).
        name: str. The file it concerns (its path for images read from
            files and for shards, its key otherwise).
        detail: str. What is wrong, in words.
        key: str, optional. The image's key in its `ImageSet`.

    `str(problem)` is one line: `"{name}: {kind}: {detail}"`.
    """

    kind: str
    name: str
    detail: str
    key: str = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(
                f"Unknown problem kind. Expected one of {KINDS}. "
                f"Received: kind={self.kind!r}"
            )

    def __str__(self):
        return f"{self.name}: {self.kind}: {self.detail}"
