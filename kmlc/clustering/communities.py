"""Communities of labels that go together.

Two views of which labels belong together:

- the co-occurrence graph of the collection (`kmlc.LabelGraph` counted on
  its known labels, or on its predicted labels, score >= 0.5, when it has
  none): labels are joined by the Ochiai coefficient
  `N_ij / sqrt(M_i M_j)` (co-occurrences over the geometric mean of the
  two labels' counts, so frequent labels do not join everything), and
  split by spectral clustering; with `num_communities="auto"` the number
  is the one of highest modularity (Newman's Q on the same weights);
- the GCN's learned label-node features: each label's node vector P_d
  averaged over the collection with the label's score as weight (what the
  GCN says about label d when d is present), joined by cosine similarity
  and split by spectral clustering into as many communities.

Labels that occur with no other label (or not at all) are in no community
(-1). `agreement` is the NMI between the two partitions.
"""

import dataclasses
import warnings

import numpy as np
from sklearn.cluster import SpectralClustering
from sklearn.metrics import normalized_mutual_info_score


def ochiai(graph):
    """`[D, D]` co-occurrence weights `N_ij / sqrt(M_i M_j)`, zero diagonal."""
    counts = np.sqrt(np.asarray(graph.label_counts, np.float64))
    scale = np.outer(counts, counts)
    weights = np.divide(
        graph.pair_counts, scale, out=np.zeros_like(graph.pair_counts), where=scale > 0
    )
    np.fill_diagonal(weights, 0.0)
    return weights


def modularity(weights, communities):
    """Newman's modularity Q of a partition of a weighted graph.

    Args:
        weights: `[n, n]` symmetric, non-negative.
        communities: `[n]` community of each node.
    """
    degrees = weights.sum(axis=1)
    total = degrees.sum()
    if total <= 0:
        return 0.0
    same = communities[:, None] == communities[None]
    expected = np.outer(degrees, degrees) / total
    return float(((weights - expected) * same).sum() / total)


def spectral(weights, num_communities, seed=0):
    """Spectral clustering of a weighted graph `[n, n]` into k communities."""
    with warnings.catch_warnings():
        # A graph of several components still splits; Q judges the result.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        model = SpectralClustering(
            n_clusters=int(num_communities),
            affinity="precomputed",
            random_state=seed,
            assign_labels="cluster_qr",
        )
        return model.fit_predict(weights + 1e-9 * (1 - np.eye(len(weights))))


@dataclasses.dataclass
class LabelCommunities:
    """Label communities and what the heat map needs.

    Attributes:
        label_names: list of D names.
        communities: `[D]` int, -1 for labels in none.
        weights: `[D, D]` the co-occurrence weights clustered.
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


def _relabel_by_size(communities):
    """Community ids 0, 1, ... by decreasing size; -1 stays."""
    ids, sizes = np.unique(communities[communities >= 0], return_counts=True)
    mapping = {
        old: new for new, old in enumerate(ids[np.argsort(-sizes, kind="stable")])
    }
    return np.array([mapping.get(c, -1) for c in communities], np.int64)


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
    weights = ochiai(graph)
    names = graph.label_names or [str(i) for i in range(graph.num_labels)]
    active = np.flatnonzero(weights.sum(axis=1) > 0)
    communities = np.full(graph.num_labels, -1, np.int64)
    by_k = {}
    if len(active) >= 3:
        sub = weights[np.ix_(active, active)]
        if num_communities == "auto":
            candidates = range(2, min(max_communities, len(active) // 2) + 1)
            partitions = {k: spectral(sub, k, seed) for k in candidates}
            by_k = {k: modularity(sub, p) for k, p in partitions.items()}
            chosen = (
                partitions[max(by_k, key=lambda k: (by_k[k], -k))] if by_k else None
            )
        else:
            chosen = spectral(sub, min(int(num_communities), len(active)), seed)
        if chosen is not None:
            communities[active] = chosen
    communities = _relabel_by_size(communities)
    degrees = weights.sum(axis=1)
    rank = np.where(communities >= 0, communities, communities.max() + 1)
    order = np.lexsort((-degrees, rank))
    q = (
        modularity(weights[np.ix_(active, active)], communities[active])
        if len(active)
        else 0.0
    )
    result = LabelCommunities(names, communities, weights, order, q, by_k, source)
    count = result.num_communities
    if node_features is not None and count >= 2:
        features = np.asarray(node_features, np.float64)[active]
        features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        similarity = np.clip(features @ features.T, 0.0, None)
        np.fill_diagonal(similarity, 0.0)
        gcn = np.full(graph.num_labels, -1, np.int64)
        gcn[active] = spectral(similarity, count, seed)
        result.gcn_communities = _relabel_by_size(gcn)
        result.agreement = float(
            normalized_mutual_info_score(communities[active], gcn[active])
        )
    return result
