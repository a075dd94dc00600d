"""Communities of labels that go together.

Two views of which labels belong together:

- the co-occurrence graph of the collection (`kmlc.LabelGraph` counted on
  its known labels, or on its predicted labels, score >= 0.5, when it has
  none): labels are joined by the Ochiai coefficient
  `N_ij / sqrt(M_i M_j)` (co-occurrences over the geometric mean of the
  two labels' counts, so frequent labels do not join everything), and
  split by spectral clustering; with `num_communities="auto"` the number
  is the one of highest modularity (Newman's Q on the same weights). This
  is `kmlc.label_order.spectral_communities`, the same communities that
  `kmlc.plots.label_graph` boxes;
- the GCN's learned label-node features: each label's node vector P_d
  averaged over the collection with the label's score as weight (what the
  GCN says about label d when d is present), joined by cosine similarity
  (past `DENSE_LABELS_LIMIT` labels, each to its 10 nearest) and split by
  the same spectral clustering into as many communities.

Labels that occur with no other label (or not at all) are in no community
(-1). `agreement` is the NMI between the two partitions.
"""

import dataclasses

import numpy as np
import scipy.sparse
from sklearn.metrics import normalized_mutual_info_score

from kmlc.cooccurrence import DENSE_LABELS_LIMIT
from kmlc.label_order import community_order
from kmlc.label_order import modularity
from kmlc.label_order import ochiai
from kmlc.label_order import spectral_communities
from kmlc.label_order import strengths

__all__ = ["LabelCommunities", "label_communities", "modularity"]
# Past `DENSE_LABELS_LIMIT` labels, each label's node vector is joined to
# this many most similar ones only (a sparse graph, not D x D).
_FEATURE_NEIGHBOURS = 10
# Similarities computed at a time on that path (8 MB of float64).
_FEATURE_BLOCK = 1 << 20


@dataclasses.dataclass
class LabelCommunities:
    """Label communities and what the heat map needs.

    Attributes:
        label_names: list of D names.
        communities: `[D]` int, -1 for labels in none.
        weights: `[D, D]` the co-occurrence weights clustered (dense, or
            CSR for a sparse graph).
        order: `[D]` labels by community (largest first), then by degree.
        modularity: float. Q of the chosen partition.
        modularity_by_k: dict. k -> Q, when k was chosen.
        source: `"labels"` or `"predictions"`: what was counted.
        gcn_communities: `[D]` int or None: from the GCN's node features.
        agreement: float or None. NMI between the two partitions.
    """

    label_names: list
    communities: np.ndarray
    weights: np.ndarray
    order: np.ndarray
    modularity: float
    modularity_by_k: dict
    source: str
    gcn_communities: object = None
    agreement: object = None

    @property
    def num_communities(self):
        return int(self.communities.max()) + 1 if self.communities.size else 0

    def members(self, communities=None):
        """Lists of label names, one per community, in `order`."""
        communities = self.communities if communities is None else communities
        groups = {}
        for index in self.order:
            if communities[index] >= 0:
                groups.setdefault(int(communities[index]), []).append(
                    self.label_names[index]
                )
        return [groups[key] for key in sorted(groups)]

    def summary(self):
        """JSON-ready description."""
        result = {
            "source": self.source,
            "communities": self.num_communities,
            "modularity": round(self.modularity, 4),
            "modularity_by_k": {
                str(k): round(q, 4) for k, q in self.modularity_by_k.items()
            },
            "members": self.members(),
        }
        if self.gcn_communities is not None:
            result["gcn_members"] = self.members(self.gcn_communities)
            result["agreement_nmi"] = round(float(self.agreement), 4)
        return result


def label_communities(
    graph,
    source="labels",
    node_features=None,
    num_communities="auto",
    max_communities=30,
    seed=0,
):
    """Communities of the labels of a `kmlc.LabelGraph`.

    Args:
        graph: `kmlc.LabelGraph` counted on the collection.
        source: str. What the graph was counted on, for the report.
        node_features: `[D, K]` or None. The GCN's label-node features.
        num_communities: int or `"auto"` (highest modularity).
        max_communities: int. The largest k tried by `"auto"`.

    Returns:
        `LabelCommunities`.
    """
    weights = ochiai(graph.pair_counts, graph.label_counts)
    names = graph.label_names or [str(i) for i in range(graph.num_labels)]
    communities, by_k = spectral_communities(
        weights, num_communities, max_communities, seed
    )
    degrees = strengths(weights)
    active = np.flatnonzero(degrees > 0)
    order = community_order(communities, degrees)
    q = modularity(weights, communities) if len(active) else 0.0
    result = LabelCommunities(names, communities, weights, order, q, by_k, source)
    count = result.num_communities
    if node_features is not None and count >= 2:
        similarity = _feature_similarity(np.asarray(node_features)[active])
        gcn = np.full(graph.num_labels, -1, np.int64)
        gcn[active], _ = spectral_communities(similarity, count, seed=seed)
        result.gcn_communities = gcn
        shared = gcn[active] >= 0
        result.agreement = float(
            normalized_mutual_info_score(
                communities[active][shared], gcn[active][shared]
            )
        )
    return result


def _feature_similarity(features):
    """Cosine similarity of node vectors `[n, K]`, negatives and the diagonal
    zeroed: `[n, n]`, or past `DENSE_LABELS_LIMIT` rows a CSR matrix of each
    row's `_FEATURE_NEIGHBOURS` largest entries (made symmetric)."""
    features = np.asarray(features, np.float64)
    features = features / np.maximum(
        np.linalg.norm(features, axis=1, keepdims=True), 1e-12
    )
    n = len(features)
    if n <= DENSE_LABELS_LIMIT:
        similarity = np.clip(features @ features.T, 0.0, None)
        np.fill_diagonal(similarity, 0.0)
        return similarity
    keep = min(_FEATURE_NEIGHBOURS, n - 1)
    rows, cols, values = [], [], []
    step = max(1, _FEATURE_BLOCK // n)
    for start in range(0, n, step):
        block = features[start : start + step] @ features.T
        block[np.arange(len(block)), start + np.arange(len(block))] = -np.inf
        nearest = np.argpartition(block, -keep, axis=1)[:, -keep:]
        rows.append(np.repeat(start + np.arange(len(block)), keep))
        cols.append(nearest.ravel())
        values.append(np.take_along_axis(block, nearest, axis=1).ravel())
    similarity = scipy.sparse.csr_matrix(
        (
            np.clip(np.concatenate(values), 0.0, None),
            (np.concatenate(rows), np.concatenate(cols)),
        ),
        shape=(n, n),
    )
    similarity = similarity.maximum(similarity.T).tocsr()
    similarity.eliminate_zeros()
    return similarity
