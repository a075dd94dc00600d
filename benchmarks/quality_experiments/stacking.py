"""Co-occurrence re-scoring with a strength per label, learned by stacking.

    python -m benchmarks.quality_experiments.stacking --seeds 0,1,2 \\
        [--cache-dir runs/research/feature_cache] [--C 1.0]

Fixed-gamma re-scoring (`posthoc.refine`, `kmlc.layers.CooccurrenceRescoring`)
gives every label the same trust in its neighbours' evidence. Here each
label j gets its own: a logistic regression of `y_j` on the classifier's
logit `z_j` and the re-scoring term `f_j = log((eps + q_j) / (eps + P(j)))`,
fitted on out-of-fold logits of the training split (5 folds of the tuned
linear classifier, 1e-2 x 12 epochs; each fold's `f` from the label graph
counted on the other folds only, so that an image's own labels never vouch
for it), then applied to the validation logits of the classifier trained
on the whole training split: `z'_j = a_j z_j + g_j f_j + b_j`. Labels
with fewer than 2 positives in the training split keep `z_j`.

Controls with the same parameters: `shuffled` (the statistics of permuted
labels, as `LabelGraph`'s shuffled control) and `identity` (no `f`: a
per-label monotone map of `z_j`, which leaves every label's AP, hence
mAP, as it is). Also reported: fixed gamma 1 and 2 with the counted graph.
Nothing is chosen on the validation split. One JSON line per seed, then
the mean and population std.
"""

import argparse
import json
import statistics

import numpy as np

from benchmarks.quality_experiments import features
from benchmarks.quality_experiments import posthoc
from benchmarks.quality_experiments import run

SPEC = {"head": "baseline", "lr": 1e-2, "epochs": 12}


def statistics_of(labels, permutation=None):
    """`(TG [D, D], P [D])`: eq. 4's P(j | i) and the label frequencies,
    of permuted labels when `permutation` is given."""
    tg, prior = posthoc.conditional(labels), labels.mean(axis=0)
    if permutation is not None:
        tg, prior = tg[permutation][:, permutation], prior[permutation]
    return tg, prior


def rescoring_term(logits, tg, prior):
    """`f [N, D]`: what `posthoc.refine` adds at gamma 1."""
    return posthoc.refine(logits, tg, 1.0, prior) - logits


def fit_per_label(z, f, y, C, min_positives=2):
    """`(a, g, b)`, each `[D]`: label j's logistic regression of `y[:, j]`
    on `(z[:, j], f[:, j])`; `(1, 0, 0)` where a label is too rare."""
    from sklearn.linear_model import LogisticRegression

    num_labels = y.shape[1]
    a, g, b = np.ones(num_labels), np.zeros(num_labels), np.zeros(num_labels)
    for j in range(num_labels):
        if y[:, j].sum() < min_positives:
            continue
        x = np.stack([z[:, j], f[:, j]], axis=1)
        model = LogisticRegression(C=C, max_iter=1000).fit(x, y[:, j])
        (a[j], g[j]), b[j] = model.coef_[0], model.intercept_[0]
    return a, g, b


def one_seed(splits, cache_dir, seed, C):
    from kmlc.metrics import mean_average_precision

    y_val = splits["validation"].labels
    # `labels`: the training split's, one row an image (view 0).
    oof, labels, helds = posthoc.out_of_fold_logits(cache_dir, SPEC, seed=seed)
    z_val = run.train_one(splits, dict(run.DEFAULTS, **SPEC), seed)["logits"]["logits"]
    permutation = np.random.default_rng(seed).permutation(labels.shape[1])

    def score(logits):
        return round(100 * mean_average_precision(y_val, logits), 2)

    line = {"seed": seed, "baseline": score(z_val)}
    tg, prior = statistics_of(labels)
    for gamma in (1.0, 2.0):
        line[f"fixed gamma {gamma:g}"] = score(posthoc.refine(z_val, tg, gamma, prior))
    for control, perm in (("graph", None), ("shuffled", permutation)):
        f_oof = np.zeros_like(oof)
        for held in helds:
            kept = np.setdiff1d(np.arange(len(labels)), held)
            tg, prior = statistics_of(labels[kept], perm)
            f_oof[held] = rescoring_term(oof[held], tg, prior)
        a, g, b = fit_per_label(oof, f_oof, labels, C)
        tg, prior = statistics_of(labels, perm)
        f_val = rescoring_term(z_val, tg, prior)
        line[f"stacked, {control}"] = score(a * z_val + g * f_val + b)
        line[f"median gamma_j, {control}"] = round(float(np.median((g / a)[g != 0])), 3)
    line["stacked, identity"] = line["baseline"]  # per-label monotone: AP as is
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default="runs/research/feature_cache")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength")
    args = parser.parse_args()
    splits = features.load(args.cache_dir)
    lines = []
    for seed in (int(s) for s in args.seeds.split(",")):
        lines.append(one_seed(splits, args.cache_dir, seed, args.C))
        print(json.dumps(lines[-1]), flush=True)
    summary = {
        key: {
            "mean": round(statistics.fmean(line[key] for line in lines), 2),
            "std": round(statistics.pstdev([line[key] for line in lines]), 2),
        }
        for key in lines[0]
        if key != "seed"
    }
    print(json.dumps({"summary": summary, "C": args.C}))


if __name__ == "__main__":
    main()
