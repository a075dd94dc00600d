"""Training-free uses of the label graph on saved validation logits.

    python -m benchmarks.quality_experiments.posthoc \\
        runs/research/logits/EXPERIMENT/VARIANT-seed0.npz ... [--gamma 1]

1. Score refinement with the co-occurrence statistics (eq. 4's TG):
   `z'_j = z_j + gamma * log(eps + q_j)`, `q_j = sum_i p_i TG[i, j] / sum_i p_i`
   with `p = sigmoid(z)`: label j is boosted by how often it occurs with the
   labels the image is already believed to show. gamma is chosen on one
   half of the validation split and scored on the other (and the other way
   round; the mean of the two halves is reported, against the unrefined
   scores on the same halves). Controls: TG on permuted labels
   (`shuffled`), and `marginal` (TG[i, j] = P(j): label frequency alone,
   no co-occurrence).
2. Per-label AP by training frequency, for comparing runs.
"""

import argparse
import json
import os

import numpy as np

GAMMAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
EPS = 1e-3


def conditional(train_labels):
    from kmlc.graph import LabelGraph

    return LabelGraph.from_labels(train_labels.astype(np.uint8)).conditional


def refine(logits, tg, gamma, prior=None):
    """`z + gamma * log((eps + q) / (eps + prior))`: with `prior` (the labels'
    training frequencies) the boost is relative to each label's base rate,
    which leaves every label's AP as it is without it but keeps a
    frequency bias out of the top-5 ranking."""
    from kmlc.metrics import sigmoid

    p = sigmoid(logits)
    q = (p @ tg) / np.maximum(p.sum(axis=1, keepdims=True), 1e-9)
    boost = np.log(EPS + q)
    if prior is not None:
        boost = boost - np.log(EPS + prior)
    return logits + gamma * boost


def cross_fitted(labels, logits, tg, prior=None, seed=0):
    """gamma chosen on each half of the split, applied to the other half.

    Returns `(plain, refined, gammas)`: `plain` and `refined` are reports
    (mAP, top-5 CF1, N+) on the whole split, `refined` from the scores
    refined half by half with the gamma chosen on the other half.
    """
    from kmlc.metrics import mean_average_precision

    order = np.random.default_rng(seed).permutation(len(labels))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    refined = np.array(logits, dtype=np.float64)
    chosen = []
    for fit, score in (halves, halves[::-1]):
        gains = [
            mean_average_precision(labels[fit], refine(logits[fit], tg, g, prior))
            for g in GAMMAS
        ]
        gamma = GAMMAS[int(np.argmax(gains))]
        chosen.append(gamma)
        refined[score] = refine(logits[score], tg, gamma, prior)
    return _report(labels, logits), _report(labels, refined), chosen


def _report(labels, logits):
    from benchmarks.quality_experiments.run import report

    full = report(labels, logits)
    return {
        "mAP": round(100 * full["mAP"], 2),
        "CF1": round(full["CF1"], 3),
        "N+": full["N+"],
    }


def fixed_gamma(labels, logits, tg, gamma, prior=None):
    return _report(labels, refine(logits, tg, gamma, prior))


def frequency_buckets(train_labels, val_labels, logits, edges=(5, 20)):
    from kmlc.metrics import average_precision

    ap = average_precision(val_labels, logits)
    counts = train_labels.sum(axis=0)
    out = {}
    bounds = (0, *edges, np.inf)
    for low, high in zip(bounds[:-1], bounds[1:], strict=True):
        keep = (counts > low) & (counts <= high) & ~np.isnan(ap)
        out[f"{low + 1}-{high}"] = (float(np.mean(ap[keep])), int(keep.sum()))
    return out


def table(lines):
    """A Markdown table of `main`'s JSON lines, mean ± std over seeds."""
    import re
    import statistics

    groups = {}
    for line in lines:
        name = re.sub(r"-seed\d+\.npz$", "", line["run"]).replace("_", " ")
        groups.setdefault(name, []).append(line)

    def stat(values, digits=2):
        mean = statistics.fmean(values)
        if len(values) == 1:
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} ± {statistics.pstdev(values):.{digits}f}"

    out = [
        "| run | seeds | mAP | + graph, gamma=1 | + shuffled, gamma=1 "
        "| + marginal, gamma=1 | + graph, cross-fitted gamma | CF1 | CF1 + graph "
        "| N+ | N+ + graph |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in groups.items():

        def get(*keys, runs=runs):
            values = []
            for run in runs:
                value = run
                for key in keys:
                    value = value[key]
                values.append(value)
            return values

        out.append(
            f"| {name} | {len(runs)} | {stat(get('plain', 'mAP'))} "
            f"| {stat(get('graph', 'gamma=1', 'mAP'))} "
            f"| {stat(get('shuffled', 'gamma=1', 'mAP'))} "
            f"| {stat(get('marginal', 'gamma=1', 'mAP'))} "
            f"| {stat(get('graph', 'cross-fitted', 'mAP'))} "
            f"| {stat(get('plain', 'CF1'), 3)} "
            f"| {stat(get('graph', 'gamma=1', 'CF1'), 3)} "
            f"| {stat(get('plain', 'N+'), 1)} "
            f"| {stat(get('graph', 'gamma=1', 'N+'), 1)} |"
        )
    return "\n".join(out)


def main():
    from benchmarks.quality_experiments import features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logits", nargs="+")
    parser.add_argument("--cache-dir", default="runs/research/feature_cache")
    parser.add_argument(
        "--gamma", type=float, action="append", default=[], help="also a fixed gamma"
    )
    parser.add_argument(
        "--table", action="store_true", help="a Markdown table (needs --gamma 1)"
    )
    parser.add_argument(
        "--train-folds",
        action="store_true",
        help="choose gamma on out-of-fold logits of the training split instead",
    )
    args = parser.parse_args()
    if args.train_folds:
        spec = {"head": "baseline", "lr": 1e-2, "epochs": 12}
        gamma, scores = train_fold_gamma(args.cache_dir, spec)
        print(json.dumps({"train-fold gamma": gamma, "oof mAP": scores}))
        args.gamma.append(gamma)
    splits = features.load(args.cache_dir)
    train = splits["train"]
    train_labels = train.labels[:: train.views]
    val_labels = splits["validation"].labels
    tg = conditional(train_labels)
    rng = np.random.default_rng(0)
    perm = rng.permutation(tg.shape[0])
    controls = {
        "graph": tg,
        "shuffled": tg[perm][:, perm],
        "marginal": np.tile(train_labels.mean(axis=0), (tg.shape[0], 1)),
    }
    prior = train_labels.mean(axis=0)
    lines = []
    for path in args.logits:
        logits = np.load(path)["logits"]
        line = {"run": os.path.basename(path)}
        for name, matrix in controls.items():
            plain, refined, gammas = cross_fitted(val_labels, logits, matrix, prior)
            line["plain"] = plain
            line[name] = {"cross-fitted": refined, "gamma": gammas}
            for gamma in args.gamma:
                line[name][f"gamma={gamma:g}"] = fixed_gamma(
                    val_labels, logits, matrix, gamma, prior
                )
        line["AP by train count"] = {
            k: (round(100 * v[0], 2), v[1])
            for k, v in frequency_buckets(train_labels, val_labels, logits).items()
        }
        lines.append(line)
        print(json.dumps(line))
    if args.table:
        print(table(lines))


class _Fold:
    """A `features.Split`-like view of some rows of the pooled features."""

    def __init__(self, pooled, labels):
        self.pooled, self.labels, self.views, self.maps = pooled, labels, 1, None


def out_of_fold_logits(cache_dir, spec, folds=5, seed=0):
    """`(oof logits [N, D], labels [N, D], held)` of the training split: each
    fold's logits from a classifier trained on the other folds (view 0 of
    each image's cached features); `held[f]` are fold f's rows."""
    from benchmarks.quality_experiments import features
    from benchmarks.quality_experiments import run

    splits = features.load(cache_dir)
    train = splits["train"]
    pooled = train.pooled[:: train.views]
    labels = train.labels[:: train.views]
    order = np.random.default_rng(seed).permutation(len(labels))
    oof = np.zeros(labels.shape, np.float64)
    helds = [order[fold::folds] for fold in range(folds)]
    for held in helds:
        kept = np.setdiff1d(order, held)
        fold_splits = {
            "train": _Fold(pooled[kept], labels[kept]),
            "validation": _Fold(pooled[held], labels[held]),
        }
        result = run.train_one(fold_splits, dict(run.DEFAULTS, **spec), seed)
        oof[held] = result["logits"]["logits"]
    return oof, labels, helds


def train_fold_gamma(cache_dir, spec, folds=5, seed=0):
    """gamma chosen on the training split alone: out-of-fold logits of
    `folds` classifiers (each trained on the other folds), the gamma with
    the best out-of-fold mAP. Returns `(gamma, {gamma: oof mAP})`."""
    from kmlc.metrics import mean_average_precision

    oof, labels, _ = out_of_fold_logits(cache_dir, spec, folds, seed)
    tg_all = conditional(labels)
    prior = labels.mean(axis=0)
    # Labels must have a positive in the scored rows: all do in training.
    scores = {
        g: round(100 * mean_average_precision(labels, refine(oof, tg_all, g, prior)), 2)
        for g in GAMMAS
    }
    return max(scores, key=scores.get), scores


if __name__ == "__main__":
    main()
