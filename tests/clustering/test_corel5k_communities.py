"""Label communities on the real Corel-5k labels (KMLC_COREL5K)."""

import numpy as np

from kmlc.clustering.communities import label_communities
from kmlc.graph import LabelGraph


def test_corel5k_labels_fall_into_themes(corel5k_labels):
    y, names = corel5k_labels
    graph = LabelGraph.from_labels(y, label_names=names)
    communities = label_communities(graph)
    assert communities.modularity > 0.4
    assert 5 <= communities.num_communities <= 30

    def together(*labels):
        found = {int(communities.communities[names.index(label)]) for label in labels}
        return len(found) == 1 and found != {-1}

    assert together("polar", "bear", "snow")
    assert together("pyramid", "sphinx")
    assert together("coral", "reefs", "ocean")
    assert not together("coral", "pyramid")
    # The reordered weights are heavier inside the communities than outside.
    inside = communities.communities[:, None] == communities.communities[None]
    inside &= communities.communities[:, None] >= 0
    weights = communities.weights
    assert weights[inside].mean() > 5 * weights[~inside].mean()
    assert np.isfinite(weights).all()
