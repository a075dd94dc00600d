"""`kmlc cluster --model M.keras --manifest F --images D --clusters K|auto
--embedding scores|label-aware|features --out DIR`."""

from kmlc.commands.data_source import add_source_arguments

EMBEDDINGS = ("scores", "label-aware", "features")
ALGORITHMS = ("auto", "kmeans", "minibatch", "hdbscan")


def clusters_argument(value):
    """`--clusters`: a whole number, or `auto`."""
    import argparse

    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number or 'auto'. Received: {value!r}"
        ) from None


def register(subparsers):
    parser = subparsers.add_parser(
        "cluster",
        help="group a collection of images with a trained model",
        description=(
            "Embed every image with a trained model, group the images, name "
            "each group by its characteristic labels, find the label "
            "communities and, when the images have labels, measure how well "
            "the groups agree with them. Writes DIR/report.html, "
            "DIR/clusters.csv, DIR/metrics.json and PNG figures."
        ),
    )
    parser.add_argument("--model", required=True, help="a .keras model")
    add_source_arguments(parser)
    parser.add_argument(
        "--clusters",
        type=clusters_argument,
        default="auto",
        help="how many clusters, or 'auto' (k by silhouette; default)",
    )
    parser.add_argument(
        "--embedding",
        choices=EMBEDDINGS,
        help="label-aware: the fused feature after knowledge fusion (needs the "
        "fusion head); features: the plain backbone feature; scores: the label "
        "scores (default: label-aware if the model has the fusion head, else "
        "scores)",
    )
    parser.add_argument(
        "--algorithm",
        choices=ALGORITHMS,
        default="auto",
        help="auto: k-means in memory, mini-batch k-means streamed for large "
        "collections; hdbscan finds the number of groups itself",
    )
    parser.add_argument("--min-cluster-size", type=int, help="HDBSCAN's")
    parser.add_argument("--map", choices=("tsne", "pca"), default="tsne")
    parser.add_argument(
        "--no-compare",
        action="store_true",
        help="with labels, do not cluster and evaluate the other embeddings",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier report in --out"
    )
    parser.set_defaults(func=run)


def run(args):
    import sys

    from kmlc.clustering.analysis import analyse
    from kmlc.clustering.analysis import check_output_dir
    from kmlc.commands.data_source import read_source
    from kmlc.saving import load_model

    check_output_dir(args.out, args.overwrite)
    model = load_model(args.model, compile=False)
    image_set = read_source(args)
    embedding = args.embedding
    if embedding is None:
        embedding = "label-aware" if "fusion" in model.heads else "scores"
    metrics, summaries = analyse(
        model,
        image_set,
        args.out,
        embedding=embedding,
        clusters=args.clusters,
        algorithm=args.algorithm,
        compare=not args.no_compare,
        map_method=args.map,
        batch_size=args.batch_size,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=sys.stderr.isatty(),
        min_cluster_size=args.min_cluster_size,
    )
    for entry in summaries:
        labels = ", ".join(
            f"{item['label']} x{item['lift']:.1f}" for item in entry["top_labels"][:4]
        )
        print(f"cluster {entry['cluster']:>3} ({entry['size']:>6} images): {labels}")
    for name in ("label_aware", "plain", "scores"):
        if f"nmi_{name}" in metrics:
            print(f"NMI {name}: {metrics[f'nmi_{name}']:.3f}")
    if metrics["unreadable_images"]:
        print(f"skipped {metrics['unreadable_images']} unreadable images")
    clusters = f"{metrics['clusters']} clusters ({metrics['algorithm']})"
    print(f"embedding: {embedding}, {clusters}")
    print(f"wrote {args.out}/report.html, clusters.csv, metrics.json")
    return 0
