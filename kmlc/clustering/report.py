"""`report.html`: one self-contained page a person can look at, offline.

Everything is inlined: the figures as base64 PNGs, the thumbnails as base64
JPEGs, the style in a `<style>` element; no script, font or style sheet is
fetched. A small inline script records, once the page has loaded, each
image's natural width and how many images failed to load (as `data-`
attributes of `<body>`), so that a browser test can check the page.
"""

import base64
import html
import io
import logging

import numpy as np

logger = logging.getLogger("kmlc.cluster")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.figure { max-width: 100%; }
.cluster { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em;
           margin: 1em 0; background: #fafafa; }
.cluster h3 { margin: 0.2em 0; }
.sheet { display: flex; flex-wrap: wrap; gap: 4px; }
.sheet figure { margin: 0; width: 112px; text-align: center; }
.sheet img { width: 112px; height: 84px; object-fit: cover; border-radius: 3px; }
.sheet figcaption { font-size: 0.65em; color: #666; overflow: hidden;
                    white-space: nowrap; text-overflow: ellipsis; }
.outliers img { outline: 2px solid #d62728; }
.muted { color: #777; font-size: 0.9em; }
"""

CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var broken = 0;
  for (var i = 0; i < document.images.length; i++) {
    var image = document.images[i];
    image.setAttribute("data-natural-width", image.naturalWidth);
    if (!image.complete || image.naturalWidth === 0) broken++;
  }
  document.body.setAttribute("data-images", document.images.length);
  document.body.setAttribute("data-broken-images", broken);
});
"""


def data_uri(data, mime):
    """`data:` URI of some bytes."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnails(image_set, keys, size=160):
    """JPEG thumbnails of some of an `ImageSet`'s images.

    Reads only the images named (a subset of the set), keeps their aspect
    ratio and returns a dict key -> `data:` URI; an image that cannot be
    read now is left out and logged.
    """
    from PIL import Image

    wanted = set(keys)
    if not wanted:
        return {}
    index = [i for i, key in enumerate(image_set.keys) if key in wanted]
    result = {}
    for item, _, key in image_set.subset(index).dataset():
        key = key.numpy().decode("utf-8")
        try:
            if image_set.image_is_path:
                with open(item.numpy().decode("utf-8"), "rb") as f:
                    encoded = f.read()
            else:
                encoded = item.numpy()
            with Image.open(io.BytesIO(encoded)) as image:
                image = image.convert("RGB")
                image.thumbnail((size, size))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=80)
            result[key] = data_uri(buffer.getvalue(), "image/jpeg")
        except Exception as error:  # noqa: BLE001 - any unreadable image
            logger.warning("no thumbnail for %s: %s", key, error)
    return result


def _png(path):
    with open(path, "rb") as f:
        return data_uri(f.read(), "image/png")


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value, digits=3):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _sheet(keys, thumbs, css=""):
    cells = []
    for key in keys:
        if key not in thumbs:
            continue
        name = html.escape(str(key))
        cells.append(
            f'<figure><img src="{thumbs[key]}" alt="{name}" title="{name}">'
            f"<figcaption>{name}</figcaption></figure>"
        )
    return f'<div class="sheet {css}">{"".join(cells)}</div>'


def _cluster_section(entry, thumbs):
    labels = _table(
        ["label", "rate in cluster", "base rate", "lift"],
        [
            [
                item["label"],
                _number(item["rate"]),
                _number(item["base_rate"]),
                _number(item["lift"], 2),
            ]
            for item in entry["top_labels"]
        ],
    )
    return (
        f'<div class="cluster" id="cluster-{entry["cluster"]}">'
        f"<h3>{entry['cluster']}: {html.escape(entry['name'])}</h3>"
        f'<p class="muted">{entry["size"]} images ({100 * entry["share"]:.1f}%), '
        f"mean distance to centre {entry['mean_distance']:.3f}</p>"
        f'{labels}<p class="muted">Most central images</p>'
        f"{_sheet(entry['central_images'], thumbs)}"
        f'<p class="muted">Outliers (farthest from the centre)</p>'
        f"{_sheet(entry['outliers'], thumbs, 'outliers')}</div>"
    )


def _evaluation_section(metrics):
    evaluation = metrics.get("evaluation")
    if not evaluation:
        return '<p class="muted">The collection has no labels: no evaluation.</p>'
    rows = [
        [
            name,
            _number(result["nmi"]),
            _number(result["ari"]),
            _number(result["purity"]),
            _number(result["jaccard_within"]),
            _number(result["jaccard_between"]),
        ]
        for name, result in evaluation.items()
    ]
    rule = next(iter(evaluation.values()))["dominant_rule"]
    return (
        f"<p>Against each image's dominant label ({html.escape(rule)} label), with "
        f"k-means at k = {metrics['clusters']} for every embedding:</p>"
        + _table(
            [
                "embedding",
                "NMI",
                "ARI",
                "label purity",
                "Jaccard within",
                "Jaccard between",
            ],
            rows,
        )
    )


def _communities_section(communities, heatmap_path):
    if communities is None:
        return '<p class="muted">Too few labels co-occur to form communities.</p>'
    summary = communities.summary()
    rows = [[i, ", ".join(group)] for i, group in enumerate(summary["members"])]
    gcn = ""
    if "gcn_members" in summary:
        gcn = (
            f"<p>From the GCN's label-node features (agreement with the "
            f"co-occurrence communities: NMI {summary['agreement_nmi']:.3f}):</p>"
            + _table(
                ["community", "labels"],
                [[i, ", ".join(g)] for i, g in enumerate(summary["gcn_members"])],
            )
        )
    return (
        f'<img class="figure" src="{_png(heatmap_path)}" alt="label communities">'
        f"<p>From the co-occurrence of the {html.escape(summary['source'])} "
        f"({summary['communities']} communities, modularity "
        f"{summary['modularity']:.3f}):</p>"
        + _table(["community", "labels"], rows)
        + gcn
    )


def write_report(path, metrics, summaries, thumbs, figures, communities, skipped):
    """Writes `report.html`.

    Args:
        path: the file to write.
        metrics: the `metrics.json` dict.
        summaries: `kmlc.clustering.naming.describe` output.
        thumbs: dict image name -> `data:` URI.
        figures: dict with the PNG paths `"map"`, `"profiles"` and,
            optionally, `"communities"`.
        communities: `LabelCommunities` or None.
        skipped: dict. Unreadable image -> why.
    """
    from kmlc import io as kmlc_io

    overview = _table(
        ["", ""],
        [
            ["images clustered", metrics["images"]],
            ["unreadable images (skipped)", len(skipped)],
            [
                "embedding",
                f"{metrics['embedding']}: {metrics['embedding_description']}",
            ],
            ["algorithm", metrics["algorithm"]],
            ["clusters", metrics["clusters"]],
            [
                "embedding speed",
                f"{metrics['embedding_images_per_second']:.1f} images/s",
            ],
            [
                "clustering speed",
                f"{metrics['clustering_images_per_second']:.0f} images/s",
            ],
        ],
    )
    if metrics.get("silhouettes"):
        overview += (
            '<p class="muted">k chosen by silhouette: '
            + ", ".join(f"k={k}: {s:.3f}" for k, s in metrics["silhouettes"].items())
            + "</p>"
        )
    clusters = "".join(_cluster_section(entry, thumbs) for entry in summaries)
    noise = metrics.get("noise_images", 0)
    if noise:
        clusters += f"<p>{noise} images are in no cluster (HDBSCAN noise).</p>"
    skipped_html = "<p>None.</p>"
    if skipped:
        skipped_html = _table(
            ["image", "why"], [[name, why] for name, why in sorted(skipped.items())]
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cluster analysis: {metrics["images"]} images</title>
<style>{STYLE}</style></head>
<body>
<h1>Cluster analysis of {metrics["images"]} images</h1>
{overview}
<h2 id="evaluation">Agreement with the known labels</h2>
{_evaluation_section(metrics)}
<h2 id="map">Map of the embedding</h2>
<img class="figure" src="{_png(figures["map"])}" alt="embedding map">
<h2 id="clusters">Clusters</h2>
<img class="figure" src="{_png(figures["profiles"])}" alt="cluster profiles">
{clusters}
<h2 id="communities">Label communities</h2>
{_communities_section(communities, figures.get("communities"))}
<h2 id="skipped">Unreadable images</h2>
{skipped_html}
<script>{CHECK_SCRIPT}</script>
</body></html>
"""
    return kmlc_io.write_text(path, page)
