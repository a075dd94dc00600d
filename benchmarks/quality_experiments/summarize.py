"""Tables of `run.py`'s JSON lines: one per experiment, mean ± std over seeds.

python -m benchmarks.quality_experiments.summarize runs/research/results.jsonl
"""

import argparse
import json
import statistics


def rows(path):
    groups = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            run = json.loads(line)
            key = (run["experiment"], run["variant"])
            groups.setdefault(key, []).append(run)
    return groups


def _stat(values, scale=100.0, digits=2):
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    std = statistics.pstdev(values) * scale
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(groups, experiments=None):
    out = []
    current = None
    for (experiment, variant), runs in groups.items():
        if experiments and experiment not in experiments:
            continue
        if experiment != current:
            current = experiment
            out.append(f"\n**{experiment}**\n")
            out.append(
                "| variant | seeds | mAP (last epoch) | best-epoch mAP (epoch) "
                "| CF1 | N+ | head mAPs | s/run |"
            )
            out.append("|---|---|---|---|---|---|---|---|")
        seeds = sorted({r["seed"] for r in runs})
        best_epochs = ",".join(str(r["best_epoch"]) for r in runs)
        heads = {}
        for r in runs:
            for k, v in r["head_mAP"].items():
                heads.setdefault(k, []).append(v)
        head_text = ", ".join(f"{k} {_stat(v)}" for k, v in heads.items())
        out.append(
            f"| {variant} | {','.join(map(str, seeds))} "
            f"| {_stat([r['final']['mAP'] for r in runs])} "
            f"| {_stat([r['best_mAP'] for r in runs])} ({best_epochs}) "
            f"| {_stat([r['final']['CF1'] for r in runs], 1.0, 3)} "
            f"| {_stat([r['final']['N+'] for r in runs], 1.0, 1)} "
            f"| {head_text} "
            f"| {statistics.fmean(r['seconds'] for r in runs):.0f} |"
        )
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--experiments", help="comma-separated, in file order")
    args = parser.parse_args()
    experiments = args.experiments.split(",") if args.experiments else None
    print(markdown(rows(args.path), experiments))


if __name__ == "__main__":
    main()
