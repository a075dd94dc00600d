"""`analyse`: a whole cluster analysis of a collection, into one folder.

Embed the images (`embeddings`), group them (`algorithms`), describe each
group (`describe`), find the label communities (`communities`), compare
the groups with the known labels (`evaluation`) and write:

    DIR/clusters.csv        image, cluster, cluster_name, distance, top_labels
    DIR/metrics.json        settings, speed, evaluation, clusters, communities
    DIR/report.html         the page a person looks at (`report`)
    DIR/map.png, cluster_profiles.png, label_communities.png
    DIR/embeddings/*.npy    the vectors, scores and labels, one row an image

When the collection has labels, every embedding the model can give is
clustered with the same k and evaluated, so that `metrics.json` holds
`nmi_label_aware`, `nmi_plain` (the backbone feature) and `nmi_scores`.
"""

import csv
import logging
import os

import numpy as np

from kmlc import io as kmlc_io
from kmlc.clustering import algorithms
from kmlc.clustering import embeddings as embeddings_lib
from kmlc.clustering import evaluation
from kmlc.clustering import figures
from kmlc.clustering import naming
from kmlc.clustering import report
from kmlc.clustering import store
from kmlc.clustering.communities import label_communities

logger = logging.getLogger("kmlc.cluster")

OUTPUTS = ("report.html", "clusters.csv", "metrics.json")
METRIC_NAMES = {"label-aware": "label_aware", "features": "plain", "scores": "scores"}


def check_output_dir(directory, overwrite=False):
    """Refuses a folder that holds an earlier report, unless `overwrite`."""
    found = [name for name in OUTPUTS if os.path.exists(os.path.join(directory, name))]
    if found and not overwrite:
        raise FileExistsError(
            f"{directory} holds an earlier cluster analysis ({', '.join(found)}); "
            f"pass --overwrite to replace it, or choose another --out. "
            f"Received: --out {directory}"
        )


def predicted_labels(scores, threshold=0.5):
    """Each image's labels of score >= threshold, at least its best one."""
    labels = scores >= threshold
    labels[np.arange(len(scores)), np.argmax(scores, axis=1)] = True
    return labels.astype(np.uint8)


def collection_graph(paths, label_names, known):
    """The `kmlc.LabelGraph` of the collection's labels (or predictions)."""
    from kmlc.graph import LabelGraph

    if known:
        batches = (block for _, block in store.iter_chunks(paths["labels"]))
    else:
        batches = (
            predicted_labels(block) for _, block in store.iter_chunks(paths["scores"])
        )
    return LabelGraph.from_dataset(
        batches, num_labels=len(label_names), label_names=label_names
    )


def write_csv(path, keys, partition, scores, label_names, names, chunk_rows=65536):
    """clusters.csv, a chunk at a time: each image's cluster and top labels."""
    with kmlc_io.atomic_path(path) as temp, open(temp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "cluster", "cluster_name", "distance", "top_labels"])
        for start, block in store.iter_chunks(scores, chunk_rows):
            stop = start + len(block)
            clusters = store.rows(partition.assignments, start, stop).reshape(-1)
            distances = store.rows(partition.distances, start, stop).reshape(-1)
            top = np.argsort(-block, axis=1, kind="stable")[:, :3]
            for row in range(len(block)):
                labels = " ".join(
                    f"{label_names[i]}:{block[row, i]:.2f}" for i in top[row]
                )
                cluster = int(clusters[row])
                writer.writerow(
                    [
                        keys[start + row],
                        cluster,
                        names.get(cluster, "noise"),
                        f"{distances[row]:.5f}",
                        labels,
                    ]
                )
    return path


def compare_embeddings(embedded, main_name, main_partition, num_clusters, seed):
    """Each embedding clustered with the same k, evaluated on the labels."""
    labels = store.load(embedded.paths["labels"])
    results = {}
    for name in ("label-aware", "features", "scores"):
        if name not in embedded.paths:
            continue
        if name == main_name and main_partition.algorithm != "hdbscan":
            partition = main_partition
        else:
            partition = algorithms.cluster(
                embedded.paths[name],
                num_clusters,
                os.path.join(os.path.dirname(embedded.paths[name]), name),
                seed=seed,
            )
        assignments, _ = partition.arrays()
        results[name] = evaluation.evaluate(assignments, labels, seed=seed)
        results[name]["algorithm"] = partition.algorithm
    return results


def analyse(
    model,
    image_set,
    directory,
    embedding="label-aware",
    clusters="auto",
    algorithm="auto",
    compare=True,
    map_method="tsne",
    batch_size=32,
    seed=0,
    overwrite=False,
    progress=False,
    min_cluster_size=None,
):
    """Runs a cluster analysis and writes its folder.

    Args:
        model: a trained `MultiLabelClassifier`.
        image_set: `kmlc.data.ImageSet`, the collection.
        directory: the output folder.
        embedding: one of `embeddings.EMBEDDINGS`.
        clusters: int or `"auto"`.
        algorithm: one of `algorithms.ALGORITHMS`.
        compare: bool. With labels, also cluster and evaluate the other
            embeddings.
        map_method: `"tsne"` or `"pca"`.
        overwrite: bool. Replace an earlier analysis in `directory`.
        progress: bool. A progress bar while embedding.
        min_cluster_size: int or None, for HDBSCAN.

    Returns:
        `(metrics dict, summaries list)`.
    """
    check_output_dir(directory, overwrite)
    embeddings_lib.check_embedding(model, embedding)
    embeddings_lib.check_collection(image_set)
    if clusters != "auto":
        algorithms.check_num_clusters(clusters, len(image_set))
    known = evaluation.labels_known(image_set.labels)
    names = [embedding]
    if known and compare:
        names += embeddings_lib.available_embeddings(model)
    work = os.path.join(directory, "embeddings")
    embedded = embeddings_lib.embed_collection(
        model, image_set, work, names, batch_size=batch_size, progress=progress
    )
    if embedded.skipped:
        logger.warning(
            "%d unreadable images skipped (listed in the report)", len(embedded.skipped)
        )
    if clusters != "auto":
        algorithms.check_num_clusters(clusters, len(embedded.keys))
    source = embedded.paths[embedding]
    partition = algorithms.cluster(
        source,
        clusters,
        os.path.join(work, embedding),
        algorithm,
        seed=seed,
        min_cluster_size=min_cluster_size,
    )
    label_names = embedded.label_names
    summaries = naming.describe(
        partition, embedded.paths["scores"], embedded.keys, label_names
    )
    cluster_names = {entry["cluster"]: entry["name"] for entry in summaries}
    assignments_all = store.load(partition.assignments).reshape(-1)
    metrics = {
        "images": len(embedded.keys),
        "unreadable_images": len(embedded.skipped),
        "embedding": embedding,
        "embedding_description": embeddings_lib.DESCRIPTIONS[embedding],
        "algorithm": partition.algorithm,
        "clusters": partition.num_clusters,
        "silhouettes": {str(k): round(s, 4) for k, s in partition.silhouettes.items()},
        "noise_images": int((assignments_all < 0).sum()),
        "embedding_seconds": round(embedded.seconds, 3),
        "embedding_images_per_second": round(embedded.images_per_second, 2),
        "clustering_seconds": round(partition.seconds, 3),
        "clustering_images_per_second": round(
            len(embedded.keys) / max(partition.seconds, 1e-9), 1
        ),
    }
    if known and compare:
        results = compare_embeddings(
            embedded, embedding, partition, partition.num_clusters, seed
        )
        metrics["evaluation"] = results
        for name, result in results.items():
            metrics[f"nmi_{METRIC_NAMES[name]}"] = result["nmi"]
    try:
        communities = label_communities(
            collection_graph(embedded.paths, label_names, known),
            source="labels" if known else "predicted labels",
            node_features=embedded.node_features,
            seed=seed,
        )
        if communities.num_communities < 2:
            communities = None
    except ValueError as error:
        logger.warning("no label communities: %s", error)
        communities = None
    metrics["label_communities"] = communities.summary() if communities else None
    rates, _, _ = naming.label_rates(
        embedded.paths["scores"], partition.assignments, partition.num_clusters
    )
    rows, points = figures.project(source, method=map_method, seed=seed)
    paths = {
        "map": figures.embedding_map(
            points,
            assignments_all[rows],
            cluster_names,
            os.path.join(directory, "map.png"),
            title=f"{embedding} embedding ({map_method.upper()}, "
            f"{len(rows)} of {len(embedded.keys)} images)",
        ),
        "profiles": figures.cluster_profiles(
            summaries,
            rates,
            label_names,
            os.path.join(directory, "cluster_profiles.png"),
        ),
    }
    if communities is not None:
        paths["communities"] = figures.community_heatmap(
            communities, os.path.join(directory, "label_communities.png")
        )
    metrics["cluster_summaries"] = [
        {key: value for key, value in entry.items() if not key.endswith("_rows")}
        for entry in summaries
    ]
    write_csv(
        os.path.join(directory, "clusters.csv"),
        embedded.keys,
        partition,
        embedded.paths["scores"],
        label_names,
        cluster_names,
    )
    wanted = [
        key
        for entry in summaries
        for key in entry["central_images"] + entry["outliers"]
    ]
    thumbs = report.thumbnails(image_set, wanted)
    metrics["skipped_images"] = embedded.skipped
    kmlc_io.write_json(os.path.join(directory, "metrics.json"), metrics)
    report.write_report(
        os.path.join(directory, "report.html"),
        metrics,
        summaries,
        thumbs,
        paths,
        communities,
        embedded.skipped,
    )
    return metrics, summaries
