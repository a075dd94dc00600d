"""Co-occurrence re-scoring after training, on finished runs; prints JSON.

    python benchmarks/rescore_runs.py runs/quality-ft6/*-seed? --gammas 1,2 \\
        --out runs/quality-ft6/rescored.json

Each argument is a run directory written by `kmlc train` (for example by
`benchmarks/quality.py`), without re-scoring of its own. Its `model.keras`
scores the run's validation split (read from its `config.yaml`), and the
logits are re-scored afterwards (`kmlc.rescoring.rescore`, the formula of
`kmlc.layers.CooccurrenceRescoring`) with each gamma, twice:

- `own`: the run's label graph, its control applied as in training (a
  shuffled-graph run re-scores with the same shuffled statistics; an
  identity-graph run is left unchanged), so that a control run stays a
  control throughout;
- `counted`: the counted graph of the same training labels, control
  removed (what re-scoring adds to a model whatever graph its heads had).

Nothing is chosen here: give the gammas to report. Per run one JSON line
(mAP x 100); at the end, per variant (the run directory's name without
`-seedN`), the mean and population std over its seeds, also written to
`--out`.
"""

import argparse
import json
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# quality.py beside this script: one rule for the mean and std over seeds.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality import aggregate  # noqa: E402


def run_logits(run_dir):
    """`(logits [N, D], labels [N, D], graph)` of a run's validation split."""
    import kmlc
    from kmlc import data
    from kmlc.config import load_config
    from kmlc.data.sources import read_image_set
    from kmlc.prediction import collect_scores

    config = load_config(os.path.join(run_dir, "config.yaml"))
    if config.model.rescoring_gamma:
        raise ValueError(
            f"{run_dir} was trained with re-scoring (model.rescoring_gamma="
            f"{config.model.rescoring_gamma!r}); give runs without it."
        )
    _, validation = read_image_set(config.data)
    model = kmlc.load_model(os.path.join(run_dir, "model.keras"), compile=False)
    dataset = data.make_dataset(validation, config.model.image_size, 32)
    logits, labels = collect_scores(model, dataset)
    graph = kmlc.LabelGraph.load(os.path.join(run_dir, "label_graph.npz"))
    return logits, labels, graph


def rescored_maps(logits, labels, graph, gammas):
    """`{"raw": mAP, "own gG": mAP, "counted gG": mAP}`, in percent."""
    from kmlc import rescoring
    from kmlc.metrics import mean_average_precision

    graphs = {
        "own": graph,
        "counted": graph.with_strategy(graph.strategy, control=None),
    }
    out = {"raw": 100 * mean_average_precision(labels, logits)}
    for name, source in graphs.items():
        conditional, prior = rescoring.statistics(source)
        for gamma in gammas:
            rescored = rescoring.rescore(logits, conditional, prior, gamma)
            out[f"{name} g{gamma:g}"] = 100 * mean_average_precision(labels, rescored)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--gammas", default="1,2", help="comma-separated, each >= 0")
    parser.add_argument("--out", help="where to write the per-variant JSON")
    args = parser.parse_args()
    gammas = [float(g) for g in args.gammas.split(",")]

    by_variant = {}
    for run_dir in args.runs:
        logits, labels, graph = run_logits(run_dir)
        scores = rescored_maps(logits, labels, graph, gammas)
        name = os.path.basename(os.path.normpath(run_dir))
        print(json.dumps({"run": name, "mAP": scores}), flush=True)
        variant = re.sub(r"-seed\d+$", "", name)
        by_variant.setdefault(variant, []).append(scores)
    summary = {variant: aggregate(runs) for variant, runs in by_variant.items()}
    print(json.dumps({"summary": summary}))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(summary, file, indent=1)


if __name__ == "__main__":
    main()
