"""Where a `LabelGraph` enters a `MultiLabelClassifier`.

Two parts of the model hold what the graph counted on the training labels:
the GCN's X' (`kmlc.layers.LabelGCN`, eq. 9) and the co-occurrence
re-scoring's TG and P(j) (`kmlc.layers.CooccurrenceRescoring`). This
module makes both from a graph, replaces both (`set_graph`), and adds the
re-scoring to a trained model (`with_rescoring`).
"""

import logging

import numpy as np
import scipy.sparse

from kmlc import rescoring as rescoring_lib
from kmlc.graph import LabelGraph
from kmlc.layers import CooccurrenceRescoring

logger = logging.getLogger(__name__)


def normalized_adjacency(graph, num_labels, normalization):
    """X' `[D, D]` from a `LabelGraph`, or an X' array checked for its shape."""
    if isinstance(graph, LabelGraph):
        _check_size(graph, num_labels)
        return graph.normalized(normalization)
    adjacency = graph
    if not scipy.sparse.issparse(adjacency):
        adjacency = np.asarray(graph, dtype=np.float32)
    if adjacency.shape != (num_labels, num_labels):
        raise ValueError(
            f"The label graph has {adjacency.shape[0] if adjacency.ndim else 0} "
            f"labels but num_labels={num_labels}: an adjacency must be "
            f"[{num_labels}, {num_labels}]. Received: shape={adjacency.shape}"
        )
    return adjacency


def rescoring_layer(graph, num_labels, gamma):
    """The `CooccurrenceRescoring` layer of a graph (float32, named `rescoring`)."""
    if not isinstance(graph, LabelGraph):
        raise ValueError(
            "Co-occurrence re-scoring needs the label graph's counts: pass "
            "graph=kmlc.LabelGraph.from_labels(train_labels). Received: "
            f"graph of type {type(graph).__name__}"
        )
    _check_size(graph, num_labels)
    return CooccurrenceRescoring(
        *rescoring_lib.statistics(graph),
        gamma=rescoring_lib.checked_gamma(gamma),
        dtype="float32",
        name="rescoring",
    )


def set_graph(model, graph, normalization="symmetric"):
    """Replaces the model's graph: the GCN's X' and the re-scoring's TG, P(j).

    Everything is checked before anything changes. An X' array can only
    replace the GCN's adjacency: a model that re-scores needs a
    `LabelGraph`.
    """
    gcn = getattr(model, "label_gcn", None)
    layer = getattr(model, "rescoring", None)
    if gcn is None and layer is None:
        raise ValueError(
            "This model has no 'gcn' head and no co-occurrence re-scoring: "
            f"it holds no label graph. Heads: {model.heads}"
        )
    if layer is not None:
        if not isinstance(graph, LabelGraph):
            raise ValueError(
                "This model re-scores its logits with the co-occurrence "
                "statistics, which an X' array does not hold: pass a "
                f"LabelGraph. Received: graph of type {type(graph).__name__}"
            )
        _check_size(graph, model.num_labels)
        statistics = rescoring_lib.statistics(graph)
        layer.check_statistics(*statistics)
    if gcn is not None:
        gcn.set_adjacency(normalized_adjacency(graph, model.num_labels, normalization))
    if layer is not None:
        layer.set_statistics(*statistics)


def with_rescoring(model, graph, gamma):
    """A copy of a `MultiLabelClassifier` with re-scoring added (same weights).

    The model is rebuilt from its config with a `CooccurrenceRescoring` of
    `graph` after the final logits, its weights copied layer by layer, and
    compiled as it was. A model that already re-scores gets the new gamma
    and graph instead.
    """
    config = model.get_config()
    config["rescoring"] = rescoring_layer(graph, model.num_labels, gamma)
    rebuilt = model.__class__.from_config(config)
    for layer in model.layers:
        if layer.name == "rescoring" or not layer.weights:
            continue
        rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    if model.compiled and model.get_compile_config():
        rebuilt.compile_from_config(model.get_compile_config())
    logger.info("added co-occurrence re-scoring to %r, gamma %g", model.name, gamma)
    return rebuilt


def _check_size(graph, num_labels):
    if graph.num_labels != num_labels:
        raise ValueError(
            f"The label graph has {graph.num_labels} labels but "
            f"num_labels={num_labels}. Count the graph on the same "
            f"label vocabulary as the model. Received: {graph!r}"
        )
