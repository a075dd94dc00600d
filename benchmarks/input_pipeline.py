"""Input-pipeline throughput on the Corel-5k images; prints JSON.

    python benchmarks/input_pipeline.py --image-size 224 --batch-size 32 \
        --batches 20 --repeats 3

Runs `kmlc.data.make_dataset(training=True)` (random resized crop and
flip; `--randaugment` adds RandAugment) over the Corel-5k training images,
repeated, pulls `--warmup` batches, then times `--repeats` runs of
`--batches` batches each and reports the median images/s. With
`--baseline` it also times the same decode and augmentation as a plain
`map` over the files without the per-image error guard, to show what the
guard costs. `--tfrecords DIR` reads a `kmlc data pack` output instead.
The data folder comes from `--data`, else `KMLC_COREL5K`, else
`<repo>/../shared/data/corel5k`.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def corel5k_dir(path=None):
    default = REPO_ROOT.parent / "shared" / "data" / "corel5k"
    path = pathlib.Path(path or os.environ.get("KMLC_COREL5K", default))
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


def time_batches(dataset, batch_size, batches, repeats, warmup):
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        rates.append(batches * batch_size / (time.perf_counter() - start))
    return rates


def unguarded_dataset(image_set, image_size, batch_size, seed):
    """The same reads, decodes and augmentation as a plain parallel map."""
    import tensorflow as tf

    from kmlc.data.augmentation import augment
    from kmlc.data.image_decoding import decode_image

    size = (image_size, image_size)
    paths = [image_set.name(key) for key in image_set.keys]
    labels = image_set.multi_hot()
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    dataset = dataset.shuffle(len(paths), seed=seed).repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    dataset = tf.data.Dataset.zip(dataset, seeds).map(
        lambda element, element_seed: (
            augment(decode_image(tf.io.read_file(element[0])), size, element_seed),
            tf.cast(element[1], tf.float32),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5, help="batches first")
    parser.add_argument("--randaugment", action="store_true")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--data", help="Corel-5k folder")
    parser.add_argument(
        "--tfrecords",
        help="read this `kmlc data pack` output of Corel-5k instead of the files",
    )
    args = parser.parse_args(argv)

    import tensorflow as tf

    from kmlc.data import make_dataset
    from kmlc.data import read_manifest
    from kmlc.data import read_tfrecords

    root = corel5k_dir(args.data)
    image_set = read_manifest(
        root / "train.json", root / "images", root / "vocabulary.txt"
    )
    files = image_set
    if args.tfrecords:
        image_set = read_tfrecords(args.tfrecords)
    dataset = make_dataset(
        image_set,
        args.image_size,
        args.batch_size,
        training=True,
        randaugment=args.randaugment,
        repeat=True,
        seed=0,
    )
    rates = time_batches(
        dataset, args.batch_size, args.batches, args.repeats, args.warmup
    )
    result = {
        "benchmark": "input_pipeline",
        "data": "corel5k",
        "source": "tfrecords" if args.tfrecords else "jpeg files (manifest)",
        "images_in_set": len(image_set),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "batches_per_run": args.batches,
        "warmup_batches": args.warmup,
        "augmentation": "random resized crop + flip"
        + (" + RandAugment" if args.randaugment else ""),
        "images_per_second_runs": [round(rate, 1) for rate in rates],
        "images_per_second_median": round(statistics.median(rates), 1),
        "skipped_images": dataset.skipped.count,
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
    }
    if args.baseline:
        baseline = time_batches(
            unguarded_dataset(files, args.image_size, args.batch_size, 0),
            args.batch_size,
            args.batches,
            args.repeats,
            args.warmup,
        )
        result["unguarded_images_per_second_runs"] = [round(r, 1) for r in baseline]
        result["unguarded_images_per_second_median"] = round(
            statistics.median(baseline), 1
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
