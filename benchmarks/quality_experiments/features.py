"""The cached Lite0 feature maps of Corel-5k's training/validation split.

    python -m benchmarks.quality_experiments.features \\
        --cache-dir runs/research/feature_cache

Builds (or reopens) the cache exactly as `kmlc.train` does with
`model.cache_features: true` (`kmlc.training.cached_datasets`: the same
deterministic 10 % split, `data.split_seed: 0`, the same meta, so a
`benchmarks/quality.py` run with the same `model.cache_dir` and views
reuses it), and loads it into memory for the experiments.
"""

import argparse
import os

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COREL5K = os.environ.get(
    "KMLC_COREL5K", os.path.join(REPO_ROOT, "..", "shared", "data", "corel5k")
)


def corel5k_config(cache_dir, views=2, image_size=224, output_dir=None):
    """The `TrainConfig` whose split and cache the experiments use."""
    from kmlc.config import load_config

    overrides = {
        "data.format": "manifest",
        "data.manifest": os.path.join(COREL5K, "train.json"),
        "data.images": os.path.join(COREL5K, "images"),
        "data.vocabulary": os.path.join(COREL5K, "vocabulary.txt"),
        "data.validation_fraction": 0.1,
        "data.split_seed": 0,
        "model.preset": "baseline",
        "model.backbone": "efficientnet_lite0",
        "model.weights": "imagenet",
        "model.image_size": image_size,
        "model.freeze_backbone": True,
        "model.cache_features": True,
        "model.cache_views": views,
        "model.cache_dir": os.path.abspath(cache_dir),
        "batch_size": 32,
        "output_dir": output_dir or os.path.join(cache_dir, "..", "cache_run"),
    }
    return load_config(None, [f"{k}={v}" for k, v in overrides.items()])


class Split:
    """Cached feature maps of one split.

    Attributes:
        maps: `[N, h, w, E]` float16, memory-mapped (view v of image i at
            row `i * views + v`).
        pooled: `[N, E]` float32, the global average of `maps` (computed
            once, kept beside the cache in `pooled.npy`).
        labels: `[N, D]` float32.
        views: int.
    """

    def __init__(self, directory):
        from kmlc.feature_cache import FeatureCache

        cache = FeatureCache(directory)
        self.maps = cache.features
        self.labels = cache.labels.astype(np.float32)
        self.views = cache.meta["views"]
        path = os.path.join(directory, "pooled.npy")
        if not os.path.exists(path):
            pooled = np.concatenate(
                [
                    np.asarray(self.maps[i : i + 512], np.float32).mean(axis=(1, 2))
                    for i in range(0, len(self.maps), 512)
                ]
            )
            np.save(path, pooled)
        self.pooled = np.load(path)


def build_or_open(cache_dir, views=2):
    """`(splits, train ImageSet, validation ImageSet)`: builds the cache
    through `kmlc.training.build_run` if needed, then `load`s it."""
    from kmlc import training

    config = corel5k_config(cache_dir, views=views)
    config.overwrite = True  # the throw-away run directory beside the cache
    run = training.build_run(config)
    return load(cache_dir), run.train_set, run.validation_set


def load(cache_dir):
    """`{"train": Split, "validation": Split}` from a built cache."""
    return {
        split: Split(os.path.join(cache_dir, split))
        for split in ("train", "validation")
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default="runs/research/feature_cache")
    parser.add_argument("--views", type=int, default=2)
    args = parser.parse_args()
    splits, train_set, validation_set = build_or_open(args.cache_dir, args.views)
    for name, split in splits.items():
        print(name, split.maps.shape, split.labels.shape, split.views)
    print("images", len(train_set), len(validation_set))


if __name__ == "__main__":
    main()
