"""Issue 13 probe: k-means NMI of label-score embeddings on cached features.

    python -m benchmarks.quality_experiments.cluster_embeddings \\
        [--cache-dir runs/research/feature_cache]

On the 454 validation images of the cached frozen Lite0 features
(`features.py`): plain GAP(A), a linear probe's scores (1e-2 x 12 epochs,
seed 0), their lift, the scores propagated through the co-occurrence
graph counted on the training labels (`s TG / sum s`, over the base rate)
and concatenations with GAP(A). Each row is L2-normalised; NMI against the
rarest label (`kmlc.clustering.evaluate`), the mean over k-means seeds
0-4 at k = 20, 30, 50. One JSON line an embedding.
"""

import argparse
import json

import numpy as np

from benchmarks.quality_experiments import features
from benchmarks.quality_experiments import posthoc
from benchmarks.quality_experiments import run


def unit(rows):
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def embeddings(splits):
    """`{name: [N, F]}` of the validation images."""
    from kmlc.metrics import sigmoid

    train, validation = splits["train"], splits["validation"]
    train_labels = train.labels[:: train.views]
    spec = dict(run.DEFAULTS, head="baseline", lr=1e-2, epochs=12)
    scores = sigmoid(run.train_one(splits, spec, 0)["logits"]["logits"])
    prior = np.maximum(train_labels.mean(axis=0), 1e-6)
    tg = posthoc.conditional(train_labels)
    propagated = scores @ tg / np.maximum(scores.sum(axis=1, keepdims=True), 1e-9)
    plain = unit(validation.pooled)
    lift = unit(np.sqrt(scores / prior))
    graph = unit(np.sqrt(propagated / prior))
    return {
        "plain GAP(A)": plain,
        "sqrt scores": unit(np.sqrt(scores)),
        "sqrt lift": lift,
        "propagated": graph,
        "sqrt lift + propagated": unit(lift + graph),
        "plain | sqrt lift": np.hstack([plain, lift]),
        "plain | propagated": np.hstack([plain, graph]),
    }


def mean_nmi(vectors, labels, k, seeds=range(5)):
    """k-means NMI against the rarest label, the mean over `seeds`."""
    from kmlc.clustering.algorithms import kmeans
    from kmlc.clustering.evaluation import evaluate

    nmis = [
        evaluate(kmeans(vectors, k, seed=seed).assignments, labels)["nmi"]
        for seed in seeds
    ]
    return round(float(np.mean(nmis)), 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default="runs/research/feature_cache")
    args = parser.parse_args()
    splits = features.load(args.cache_dir)
    labels = splits["validation"].labels
    for name, vectors in embeddings(splits).items():
        nmi = {k: mean_nmi(vectors, labels, k) for k in (20, 30, 50)}
        print(json.dumps({"embedding": name, "nmi": nmi}), flush=True)


if __name__ == "__main__":
    main()
