"""Trains head variants on the cached Corel-5k features; appends JSON lines.

    python -m benchmarks.quality_experiments.run --experiment lr \\
        --out runs/research/results.jsonl

A variant is a dict of settings (`DEFAULTS` lists them); an experiment is a
named list of variants (`experiments.py`). Each (variant, seed) trains
with AdamW, a linear warm-up then a cosine decay (kmlc's
`make_optimizer`), the same batches for the same seed, and is scored on the
validation split (454 images, `data.split_seed: 0`) after every epoch:
mAP, and CP/CR/CF1/N+/OF1 on each image's top-5 labels (`kmlc.metrics`).
The line written holds the last epoch's scores (`final`), the best epoch's
mAP and its epoch, and every epoch's mAP.
"""

import argparse
import json
import logging
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

DEFAULTS = {
    "head": "baseline",  # a kmlc preset, "cls,gcn,fusion"-style list, mlgcn, refine
    "strategy": "threshold",
    "tau": 0.4,
    "p": 0.2,  # None: no re-weighting
    "k": 5,
    "control": None,
    "normalization": "symmetric",
    "node_dim": 70,
    "gcn_layers": 4,
    "top_k": 10,
    "loss": "bce",
    "aux": 1.0,
    "lr": 3e-3,
    "head_lr_mult": 1.0,
    "epochs": 12,
    "batch": 32,
    "wd": 1e-4,
    "warmup": 1.0,
    "views": 1,
    "zero_init": False,
    # mlgcn
    "embedding": "learned",
    "emb_dim": 256,
    "hidden": 512,
    "with_linear": True,
    # refine
    "mode": "graph",
    # graphreg
    "lam": 1.0,
}


def make_graph(train_labels, spec, vocabulary=None):
    from kmlc.graph import LabelGraph

    return LabelGraph.from_labels(
        train_labels.astype(np.uint8),
        strategy=spec["strategy"],
        tau=spec["tau"],
        k=spec["k"],
        reweight_p=spec["p"],
        control=spec["control"],
    )


def make_head(spec, graph, num_labels, feature_dim):
    from benchmarks.quality_experiments import heads

    name = spec["head"]
    adjacency = graph.normalized(spec["normalization"])
    if name == "mlgcn":
        return heads.MLGCNHead(
            num_labels,
            feature_dim,
            adjacency,
            embedding=spec["embedding"],
            embedding_dim=spec["emb_dim"],
            hidden=spec["hidden"],
            gcn_layers=spec["gcn_layers"],
            with_linear=spec["with_linear"],
        )
    if name == "refine":
        return heads.GraphRefineHead(
            num_labels, feature_dim, graph.adjacency, mode=spec["mode"]
        )
    if name == "graphreg":
        return heads.GraphRegHead(
            num_labels, feature_dim, graph.adjacency, lam=spec["lam"]
        )
    head_names = name if name in ("baseline", "gcn", "full") else name.split(",")
    return heads.KmlcHeads(
        num_labels,
        adjacency,
        head_names,
        spec["node_dim"],
        spec["gcn_layers"],
        spec["top_k"],
        zero_init=spec["zero_init"],
    )


def optimizer(lr, wd, warmup, steps, epochs):
    from kmlc.config import OptimizerConfig
    from kmlc.training.optimizers import make_optimizer

    config = OptimizerConfig(
        name="adamw", learning_rate=lr, weight_decay=wd, warmup_epochs=warmup
    )
    return make_optimizer(config, steps, epochs)


def report(labels, logits):
    """The protocol's metrics of logits (`benchmarks.quality`)."""
    from benchmarks.quality import protocol_metrics
    from kmlc.metrics import sigmoid

    return protocol_metrics(labels, sigmoid(logits))


def train_one(splits, spec, seed, log_epochs=False):
    """Trains one (variant, seed); returns the result dict."""
    import keras
    import tensorflow as tf

    from kmlc.losses import get as get_loss

    keras.utils.set_random_seed(seed)
    train, validation = splits["train"], splits["validation"]
    views = train.views
    if spec["views"] not in (1, views):
        raise ValueError(f"the cache has {views} views; asked for {spec['views']}")
    rows = np.arange(len(train.labels))
    if spec["views"] == 1:
        rows = rows[::views]
    train_labels = train.labels[rows]
    graph = make_graph(train_labels[:: spec["views"]], spec)
    num_labels = train_labels.shape[1]
    feature_dim = train.pooled.shape[1]
    head = make_head(spec, graph, num_labels, feature_dim)
    use_maps = head.needs_maps
    kmlc_head = hasattr(head, "heads")

    def batch_features(split, index):
        if use_maps:
            return split.maps[index].astype(np.float32)
        pooled = split.pooled[index]
        return pooled[:, None, None, :] if kmlc_head else pooled

    steps = int(np.ceil(len(rows) / spec["batch"]))
    epochs = spec["epochs"]
    groups = [(head.plain_variables, 1.0), (head.new_variables, spec["head_lr_mult"])]
    groups = [(v, m) for v, m in groups if v]
    if spec["head_lr_mult"] == 1.0:
        groups = [([v for vs, _ in groups for v in vs], 1.0)]
    optimizers = []
    for variables, mult in groups:
        opt = optimizer(spec["lr"] * mult, spec["wd"], spec["warmup"], steps, epochs)
        opt.build(variables)
        optimizers.append((opt, variables))
    loss_fn = get_loss(spec["loss"])
    aux = float(spec["aux"])

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            out = head.logits(x, training=True)
            loss = loss_fn(y, out["logits"])
            if "fusion" in out and aux:
                loss = loss + aux * loss_fn(y, out["fusion"])
            if hasattr(head, "regularizer"):
                loss = loss + head.regularizer()
        variables = [v for _, vs in optimizers for v in vs]
        grads = tape.gradient(loss, variables)
        i = 0
        for opt, vs in optimizers:
            opt.apply(grads[i : i + len(vs)], vs)
            i += len(vs)
        return loss

    @tf.function(reduce_retracing=True)
    def predict(x):
        return head.logits(x, training=False)

    def evaluate(split):
        outs = []
        for start in range(0, len(split.labels), 128):
            index = np.arange(start, min(start + 128, len(split.labels)))
            out = predict(tf.constant(batch_features(split, index)))
            outs.append({k: np.asarray(v) for k, v in out.items()})
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    rng = np.random.default_rng(seed)
    history = []
    t0 = time.time()
    last = None
    for epoch in range(epochs):
        order = rng.permutation(rows)
        losses = []
        for start in range(0, len(order), spec["batch"]):
            index = np.sort(order[start : start + spec["batch"]])
            x = tf.constant(batch_features(train, index))
            y = tf.constant(train.labels[index])
            losses.append(float(step(x, y)))
        out = evaluate(validation)
        last = report(validation.labels, out["logits"])
        last["loss"] = float(np.mean(losses))
        history.append(last)
        if log_epochs:
            logging.warning("epoch %d %s", epoch + 1, last)
    seconds = time.time() - t0
    maps = [h["mAP"] for h in history]
    best = int(np.argmax(maps))
    heads_only = {}
    for name, value in out.items():
        if name != "logits" and value.shape == validation.labels.shape:
            if np.any(value != 0):
                heads_only[name] = report(validation.labels, value)["mAP"]
    return {
        "logits": out,
        "final": last,
        "best_mAP": maps[best],
        "best_epoch": best + 1,
        "mAP_per_epoch": maps,
        "head_mAP": heads_only,
        "graph": {
            "edges": graph.num_edges,
            "density": graph.density,
            "isolated": int((graph.degrees() == 0).sum()),
        },
        "seconds": seconds,
    }


def main():
    from benchmarks.quality_experiments import experiments
    from benchmarks.quality_experiments import features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True, help=", ".join(experiments.ALL))
    parser.add_argument("--only", help="comma-separated variant names to run")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--cache-dir", default="runs/research/feature_cache")
    parser.add_argument("--out", default="runs/research/results.jsonl")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="a setting for every variant (appended to its name)",
    )
    parser.add_argument("--log-epochs", action="store_true")
    args = parser.parse_args()
    variants = experiments.ALL[args.experiment]
    if args.only:
        keep = set(args.only.split(","))
        variants = {k: v for k, v in variants.items() if k in keep}
    splits = features.load(args.cache_dir)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    for name, settings in variants.items():
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"{name}: unknown settings {sorted(unknown)}")
        extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
        spec = {**DEFAULTS, **settings, **extra}
        if extra:
            name = name + " " + " ".join(args.set)
        for seed in (int(s) for s in args.seeds.split(",")):
            result = train_one(splits, spec, seed, args.log_epochs)
            logits = result.pop("logits")
            folder = os.path.join(os.path.dirname(args.out), "logits", args.experiment)
            os.makedirs(folder, exist_ok=True)
            np.savez_compressed(
                os.path.join(folder, f"{name}-seed{seed}.npz".replace(" ", "_")),
                **logits,
            )
            line = {
                "experiment": args.experiment,
                "variant": name,
                "seed": seed,
                "spec": spec,
                **result,
            }
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            final = result["final"]
            heads = {k: round(100 * v, 2) for k, v in result["head_mAP"].items()}
            print(
                f"{args.experiment:>12} {name:<28} seed {seed}: mAP "
                f"{100 * final['mAP']:.2f} (best {100 * result['best_mAP']:.2f} "
                f"@{result['best_epoch']}) CF1 {final['CF1']:.3f} N+ {final['N+']} "
                f"heads {json.dumps(heads)} "
                f"{result['seconds']:.0f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
