"""`kmlc cluster`: the scenes come back as clusters; outputs; bad input."""

import csv
import json
import re

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from kmlc.cli import main

GROUNDS = ("sea", "grass", "road")


def cluster_args(scenes, model_path, out, *extra):
    manifest, images, vocabulary, _ = scenes
    return [
        "cluster",
        "--model",
        str(model_path),
        "--manifest",
        str(manifest),
        "--images",
        str(images),
        "--vocabulary",
        str(vocabulary),
        "--map",
        "pca",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def analysis(scenes, scenes_model, tmp_path_factory):
    """One `kmlc cluster --clusters 3 --embedding label-aware` run."""
    out = tmp_path_factory.mktemp("analysis") / "clusters"
    args = cluster_args(
        scenes, scenes_model[1], out, "--clusters", "3", "--embedding", "label-aware"
    )
    assert main(args) == 0
    return out


def ground_of(labels):
    """The scene type: the ground label every scene has exactly one of."""
    return next(label for label in GROUNDS if label in labels)


def test_the_clusters_are_the_scene_types(scenes, analysis):
    _, _, _, image_set = scenes
    with open(analysis / "clusters.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "image",
        "cluster",
        "cluster_name",
        "distance",
        "top_labels",
    ]
    names = list(image_set.vocabulary)
    truth = {
        key: ground_of([names[j] for j in np.flatnonzero(row)])
        for key, row in zip(image_set.keys, image_set.multi_hot(), strict=True)
        if key != "broken.png"
    }
    assert sorted(r["image"] for r in rows) == sorted(truth)
    assert (
        adjusted_rand_score(
            [truth[r["image"]] for r in rows], [int(r["cluster"]) for r in rows]
        )
        > 0.6
    )
    # Each cluster's name holds its own ground label.
    metrics = json.loads((analysis / "metrics.json").read_text())
    named = [
        set(entry["name"].split(" · ")) & set(GROUNDS)
        for entry in metrics["cluster_summaries"]
    ]
    assert sorted(len(found) for found in named) == [1, 1, 1]
    assert set().union(*named) == set(GROUNDS)


def test_metrics_compare_the_embeddings_and_list_the_skipped_image(analysis):
    metrics = json.loads((analysis / "metrics.json").read_text())
    assert metrics["images"] == 180 and metrics["unreadable_images"] == 1
    assert metrics["clusters"] == 3 and metrics["embedding"] == "label-aware"
    for name in ("nmi_label_aware", "nmi_plain", "nmi_scores"):
        assert 0.0 <= metrics[name] <= 1.0
    assert metrics["nmi_plain"] == metrics["evaluation"]["features"]["nmi"]
    assert set(metrics["evaluation"]) == {"label-aware", "features", "scores"}
    assert metrics["embedding_images_per_second"] > 0
    assert list(metrics["skipped_images"]) == [
        name for name in metrics["skipped_images"] if name.endswith("broken.png")
    ]
    sizes = [entry["size"] for entry in metrics["cluster_summaries"]]
    assert sum(sizes) == 180
    page = (analysis / "report.html").read_text()
    assert "broken.png" in page.split('id="skipped"')[1]
    sources = re.findall(r'<img[^>]* src="([^"]*)"', page)
    assert len(sources) > 3 * 12 and all(s.startswith("data:image/") for s in sources)
    for figure in ("map.png", "cluster_profiles.png", "label_communities.png"):
        assert (analysis / figure).stat().st_size > 5000


def test_an_earlier_report_is_kept_unless_overwrite(
    scenes, scenes_model, analysis, capsys
):
    before = (analysis / "metrics.json").read_text()
    args = cluster_args(scenes, scenes_model[1], analysis, "--clusters", "2")
    assert main(args) == 2
    error = capsys.readouterr().err
    assert (
        "holds an earlier cluster analysis (report.html, clusters.csv, metrics.json)"
        in error
    )
    assert "pass --overwrite" in error and f"Received: --out {analysis}" in error
    assert (analysis / "metrics.json").read_text() == before


def test_overwrite_hdbscan_and_auto(scenes, scenes_model, tmp_path, capsys):
    out = tmp_path / "again"
    out.mkdir()
    (out / "report.html").write_text("old")
    args = cluster_args(
        scenes,
        scenes_model[1],
        out,
        "--algorithm",
        "hdbscan",
        "--no-compare",
        "--overwrite",
    )
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["algorithm"] == "hdbscan" and "evaluation" not in metrics
    assert "nmi_plain" not in metrics
    args = cluster_args(
        scenes,
        scenes_model[1],
        out,
        "--clusters",
        "auto",
        "--embedding",
        "scores",
        "--overwrite",
    )
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert str(metrics["clusters"]) in metrics["silhouettes"]
    best = max(metrics["silhouettes"].items(), key=lambda item: item[1])
    assert int(best[0]) == metrics["clusters"]
    assert "cluster   0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--clusters", "500"],
            r"between 2 and the number of images \(181\)\. Received: --clusters 500",
        ),
        (
            ["--clusters", "many"],
            r"must be a whole number or 'auto'\. Received: 'many'",
        ),
    ],
)
def test_bad_cluster_counts(scenes, scenes_model, tmp_path, capsys, extra, message):
    args = cluster_args(scenes, scenes_model[1], tmp_path / "out", *extra)
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out" / "report.html").exists()


def test_label_aware_needs_the_fusion_head(
    scenes, baseline_model_path, tmp_path, capsys
):
    args = cluster_args(
        scenes, baseline_model_path, tmp_path / "out", "--embedding", "label-aware"
    )
    assert main(args) == 2
    error = capsys.readouterr().err
    assert (
        "needs a model with the 'fusion' head; this model has heads ('cls',)" in error
    )


def test_an_empty_collection_is_refused(scenes, scenes_model, tmp_path, capsys):
    manifest = tmp_path / "empty.json"
    manifest.write_text('{"samples": []}')
    _, images, vocabulary, _ = scenes
    args = cluster_args(
        (manifest, images, vocabulary, None), scenes_model[1], tmp_path / "out"
    )
    assert main(args) == 2
    assert "The collection is empty" in capsys.readouterr().err
