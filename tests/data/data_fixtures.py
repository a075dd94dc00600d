"""Small data sets written to disk, with the answers computed independently.

Pixels come from PIL (`Image.open(path).convert("RGB")`), labels from the
Python lists the files were written from: nothing here uses `kmlc.data`.
"""

import csv
import io
import json
import pathlib

import numpy as np
from PIL import Image

VOCABULARY = ("sky", "sun", "sea", "tree", "boat", "city")

# (file name, labels, format): one image a line, all 24x32 px.
SAMPLES = (
    ("img00.jpg", ["sky", "sun"], "JPEG"),
    ("img01.png", ["sea"], "PNG"),
    ("img02.jpg", ["tree", "sky", "tree"], "JPEG"),
    ("img03.bmp", ["boat", "sea"], "BMP"),
    ("img04.gif", ["city"], "GIF"),
    ("img05.png", [], "PNG"),
    ("sub/img06.jpg", ["sun", "sea", "boat"], "JPEG"),
    ("img07.png", ["sky", "city", "tree", "sun"], "PNG"),
    ("img08.jpg", ["sea", "sky"], "JPEG"),
    ("img09.png", ["tree"], "PNG"),
    ("img10.jpg", ["boat"], "JPEG"),
    ("img11.png", ["sky"], "PNG"),
)
HEIGHT, WIDTH = 24, 32


def smooth_image(seed, height=HEIGHT, width=WIDTH, mode="RGB"):
    """A PIL image of smooth random colours (JPEG-friendly), deterministic."""
    rng = np.random.default_rng(seed)
    small = (rng.random((max(height // 4, 1), max(width // 4, 1), 3)) * 255).astype(
        np.uint8
    )
    image = Image.fromarray(small).resize((width, height), Image.BILINEAR)
    return image.convert(mode)


def encode(image, image_format, **options):
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def pil_rgb(path_or_bytes):
    """The reference decode: PIL's conversion to RGB, uint8 `[H, W, 3]`."""
    if isinstance(path_or_bytes, bytes):
        path_or_bytes = io.BytesIO(path_or_bytes)
    with Image.open(path_or_bytes) as image:
        return np.array(image.convert("RGB"))


def multi_hot(labels, vocabulary=VOCABULARY):
    row = np.zeros(len(vocabulary), np.uint8)
    for label in labels:
        row[vocabulary.index(label)] = 1
    return row


class WrittenDataSet:
    """`SAMPLES` written as image files plus a manifest, a CSV, a vocabulary.

    Attributes:
        root: the folder. images: the images folder. manifest, csv,
        vocabulary: the files. keys: the image names. labels: key -> label
        list. pixels: key -> PIL's RGB array. multi_hot: key -> uint8 [D].
    """

    def __init__(self, root, samples=SAMPLES, vocabulary=VOCABULARY):
        self.root = pathlib.Path(root)
        self.images = self.root / "images"
        self.keys = [name for name, _, _ in samples]
        self.labels = {name: labels for name, labels, _ in samples}
        self.pixels = {}
        for position, (name, _, image_format) in enumerate(samples):
            path = self.images / name
            path.parent.mkdir(parents=True, exist_ok=True)
            image = smooth_image(position)
            if image_format == "GIF":
                image = image.convert("P")
            path.write_bytes(encode(image, image_format))
            self.pixels[name] = pil_rgb(str(path))
        self.multi_hot = {
            name: multi_hot(labels, vocabulary) for name, labels in self.labels.items()
        }
        self.vocabulary = self.root / "vocabulary.txt"
        self.vocabulary.write_text("".join(f"{label}\n" for label in vocabulary))
        self.manifest = self.root / "train.json"
        self.manifest.write_text(
            json.dumps(
                {
                    "samples": [
                        {"image_name": name, "image_labels": labels}
                        for name, labels, _ in samples
                    ]
                }
            )
        )
        self.csv = self.root / "train.csv"
        with open(self.csv, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["path", "labels"])
            for name, labels, _ in samples:
                writer.writerow([name, " ".join(labels)])


def match_batches(dataset, written):
    """Pairs every image of a `make_dataset` output with its written sample.

    Images are matched by exact pixel equality (the samples are distinct),
    so the order does not matter. Returns {key: labels float32 [D]} and
    fails when an image matches no sample.
    """
    references = {
        key: pixels.astype(np.float32) for key, pixels in written.pixels.items()
    }
    found = {}
    for images, labels in dataset:
        for image, label in zip(images.numpy(), labels.numpy(), strict=True):
            matches = [
                key
                for key, pixels in references.items()
                if pixels.shape == image.shape and np.array_equal(pixels, image)
            ]
            assert len(matches) == 1, "an output image matches no written image"
            assert matches[0] not in found, f"{matches[0]} came twice"
            found[matches[0]] = label
    return found


class BadDataSet:
    """Good images and every kind of bad one, with a manifest listing all.

    Attributes:
        root, images, manifest, vocabulary: as `WrittenDataSet`.
        good: names of the usable images. bad: name -> the kind of problem
        (`"unreadable"`, `"too-small"`, `"missing"`). pixels, multi_hot:
        key -> answer, for the good images.
    """

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.images = self.root / "images"
        self.images.mkdir(parents=True)
        self.pixels = {}
        contents = {}
        for position, (name, image_format) in enumerate(
            [("good0.jpg", "JPEG"), ("good1.png", "PNG"), ("good2.jpg", "JPEG")]
        ):
            contents[name] = encode(smooth_image(100 + position), image_format)
            self.pixels[name] = pil_rgb(contents[name])
        self.good = list(contents)
        jpeg = encode(smooth_image(7, 64, 64), "JPEG")
        contents["truncated.jpg"] = jpeg[: len(jpeg) // 2]
        contents["empty.jpg"] = b""
        contents["text.jpg"] = b"this is not an image\n"
        contents["tiny.png"] = encode(smooth_image(8, 1, 1), "PNG")
        for name, data in contents.items():
            (self.images / name).write_bytes(data)
        self.bad = {
            "truncated.jpg": "unreadable",
            "empty.jpg": "unreadable",
            "text.jpg": "unreadable",
            "tiny.png": "too-small",
            "missing.jpg": "missing",
        }
        names = self.good[:2] + list(self.bad) + self.good[2:]
        self.labels = {
            name: [VOCABULARY[i % len(VOCABULARY)]] for i, name in enumerate(names)
        }
        self.multi_hot = {
            name: multi_hot(labels) for name, labels in self.labels.items()
        }
        self.vocabulary = self.root / "vocabulary.txt"
        self.vocabulary.write_text("".join(f"{label}\n" for label in VOCABULARY))
        self.manifest = self.root / "train.json"
        self.manifest.write_text(
            json.dumps(
                {
                    "samples": [
                        {"image_name": name, "image_labels": self.labels[name]}
                        for name in names
                    ]
                }
            )
        )
