"""`kmlc cluster --model M.keras --manifest ... --clusters K --out DIR`."""

from kmlc.commands.data_source import add_source_arguments


def register(subparsers):
    parser = subparsers.add_parser(
        "cluster",
        help="group a collection of images with a trained model",
        description=(
            "Embed every image with a trained model (its label scores, or its "
            "pooled features), group them with mini-batch k-means and describe "
            "each cluster by its characteristic labels. Writes clusters.csv, "
            "clusters.json and cluster_profiles.png."
        ),
    )
    parser.add_argument("--model", required=True, help="a .keras model")
    add_source_arguments(parser)
    parser.add_argument("--clusters", type=int, required=True, help="how many")
    parser.add_argument("--embedding", choices=("scores", "features"), default="scores")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output directory")
    parser.set_defaults(func=run)


def run(args):
    import csv
    import json
    import os

    from kmlc.clustering import cluster_images
    from kmlc.clustering import plot_profiles
    from kmlc.commands.data_source import read_source
    from kmlc.saving import load_model

    model = load_model(args.model)
    image_set = read_source(args)
    clusters = cluster_images(
        model,
        image_set,
        args.clusters,
        embedding=args.embedding,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "clusters.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "cluster", "distance"])
        for key, k, distance in zip(
            clusters.keys, clusters.assignments, clusters.distances, strict=True
        ):
            writer.writerow([key, int(k), f"{distance:.6f}"])
    summary = clusters.describe()
    with open(os.path.join(args.out, "clusters.json"), "w") as f:
        json.dump({"embedding": args.embedding, "clusters": summary}, f, indent=2)
    plot_profiles(clusters, os.path.join(args.out, "cluster_profiles.png"))
    for entry in summary:
        labels = ", ".join(
            f"{item['label']} {item['mean_score']:.2f}"
            for item in entry["top_labels"][:4]
        )
        print(f"cluster {entry['cluster']:>3} ({entry['size']:>6} images): {labels}")
    print(f"wrote {args.out}/clusters.csv, clusters.json, cluster_profiles.png")
    return 0
