"""Heads for the experiments: kmlc's own, and prototypes kmlc lacks.

Every head is a `keras.layers.Layer`-holding object with
`logits(features, training) -> {"logits": [B, D], <head>: [B, D], ...}`,
`new_variables` (the variables of the parts that are not the plain
classifier, for a head-specific learning rate) and `needs_maps` (whether it
needs the `[B, h, w, E]` feature maps or only the pooled `[B, E]`).

- `KmlcHeads`: kmlc's `MultiLabelClassifier` heads (presets or head lists),
  built from kmlc's layers, called through the model's own
  `_head_outputs` (pooled features are fed as `[B, 1, 1, E]` maps).
- `MLGCNHead` (prototype): ML-GCN (Chen et al., CVPR 2019): a GCN over
  the label graph turns label embeddings (learnable, or fixed one-hot)
  into one classifier per label, `logits = a W_gcn^T`, optionally added to
  a plain linear classifier.
- `GraphRefineHead` (prototype): a learned label-to-label correction of
  the scores restricted to the graph's edges: `logits' = z + (M * R)
  sigmoid(z)`, with M the binary adjacency (no self-loops) and R learned
  (zero-initialised), so that the identity control has no correction and the
  shuffled control the same number of free weights on wrong pairs.
"""

import keras
import numpy as np
from keras import ops

from kmlc.layers import LabelGCN


class KmlcHeads:
    """kmlc's heads (`kmlc.build_model`) on cached features."""

    def __init__(
        self, num_labels, adjacency, heads, node_dim, gcn_layers, top_k, zero_init=False
    ):
        from kmlc.model import MultiLabelClassifier
        from kmlc.model import resolve_heads

        self.heads = resolve_heads(heads)
        self.model = MultiLabelClassifier(
            num_labels,
            backbone="efficientnet_lite0",
            image_size=224,
            heads=self.heads,
            adjacency=adjacency if "gcn" in self.heads else None,
            gcn_layers=gcn_layers,
            node_dim=node_dim,
            top_k=top_k,
        )
        self.needs_maps = "fusion" in self.heads or "attention" in self.heads
        if zero_init and "gcn" in self.heads:
            # The GCN's readout starts at zero: b_gcn starts at 0 and grows
            # into a correction of the classifier's logits.
            self.model.gcn_scores.kernel.assign(
                np.zeros(self.model.gcn_scores.kernel.shape, np.float32)
            )
        classifier = (
            self.model.feature_activation
            if "gcn" in self.heads
            else self.model.classifier
        )
        plain = {id(classifier.kernel)}
        if getattr(classifier, "bias", None) is not None:
            plain.add(id(classifier.bias))
        heads_vars = [
            v
            for v in self.model.trainable_variables
            if not any(v is b for b in self.model.backbone.trainable_variables)
        ]
        self.plain_variables = [v for v in heads_vars if id(v) in plain]
        self.new_variables = [v for v in heads_vars if id(v) not in plain]

    def set_adjacency(self, adjacency):
        self.model.label_gcn.set_adjacency(adjacency)

    def logits(self, features, training=False):
        return self.model._head_outputs(features, self.heads)


class MLGCNHead:
    """ML-GCN: a GCN over label embeddings gives each label's classifier.

    Args:
        num_labels: int. D.
        feature_dim: int. E.
        adjacency: `[D, D]` normalised X'.
        embedding: `"learned"` (D x embedding_dim, random) or `"onehot"`
            (the identity, so the first GCN layer's kernel is the embedding).
        hidden: int. Width of the hidden GCN layer.
        gcn_layers: int. Graph convolutions (the last outputs E).
        with_linear: bool. Add a plain linear classifier's logits.
    """

    needs_maps = False

    def __init__(
        self,
        num_labels,
        feature_dim,
        adjacency,
        embedding="learned",
        embedding_dim=256,
        hidden=512,
        gcn_layers=2,
        with_linear=True,
    ):
        self.embedding_kind = embedding
        if embedding == "onehot":
            self.embedding = keras.Variable(
                np.eye(num_labels, dtype=np.float32), trainable=False, name="emb"
            )
            in_dim = num_labels
        else:
            self.embedding = keras.Variable(
                keras.initializers.RandomNormal(stddev=1.0)(
                    (num_labels, embedding_dim)
                ),
                name="emb",
            )
            in_dim = embedding_dim
        units = [hidden] * (gcn_layers - 1) + [feature_dim]
        self.gcn = LabelGCN(adjacency, units=units, name="mlgcn")
        self.gcn.build((num_labels, in_dim))
        self.linear = None
        new = list(self.gcn.trainable_variables)
        if embedding != "onehot":
            new.append(self.embedding)
        self.plain_variables = []
        if with_linear:
            self.linear = keras.layers.Dense(num_labels, name="linear")
            self.linear.build((None, feature_dim))
            self.plain_variables = list(self.linear.trainable_variables)
        self.new_variables = new

    def set_adjacency(self, adjacency):
        self.gcn.set_adjacency(adjacency)

    def logits(self, features, training=False):
        classifiers = self.gcn(self.embedding)  # [D, E]
        gcn = ops.matmul(features, ops.transpose(classifiers))
        out = {"gcn": gcn}
        logits = gcn
        if self.linear is not None:
            out["cls"] = self.linear(features)
            logits = logits + out["cls"]
        out["logits"] = logits
        return out


class GraphRefineHead:
    """A linear classifier whose scores are corrected along the graph's edges.

    `z = a W + b`; `logits = z + (M * R) sigmoid(z)`, M `[D, D]` the binary
    adjacency (M[i, j] = 1: label i's score informs label j), R learned,
    zero at the start. `mode="dense"` learns R on every pair (no graph), the
    capacity control.
    """

    needs_maps = False

    def __init__(self, num_labels, feature_dim, mask, mode="graph"):
        self.linear = keras.layers.Dense(num_labels, name="linear")
        self.linear.build((None, feature_dim))
        self.mode = mode
        self.mask = keras.Variable(
            np.asarray(mask, np.float32), trainable=False, name="mask"
        )
        self.relation = keras.Variable(
            np.zeros((num_labels, num_labels), np.float32), name="relation"
        )
        self.plain_variables = list(self.linear.trainable_variables)
        self.new_variables = [self.relation]

    def set_adjacency(self, mask):
        self.mask.assign(np.asarray(mask, np.float32))

    def logits(self, features, training=False):
        z = self.linear(features)
        relation = self.relation if self.mode == "dense" else self.mask * self.relation
        correction = ops.matmul(ops.sigmoid(z), relation)
        return {"cls": z, "refine": correction, "logits": z + correction}


class GraphRegHead:
    """A linear classifier whose label weights are pulled together along edges.

    Graph-regularised multi-task learning: the loss gains
    `lam * mean over edges (i, j) of ||w_i - w_j||^2`, with w_d the
    classifier's weight vector of label d and the edges those of the
    binary adjacency (symmetrised). The identity control has no edges (no
    penalty: the plain classifier); the shuffled control pulls the same
    number of wrong pairs together.
    """

    needs_maps = False

    def __init__(self, num_labels, feature_dim, mask, lam=1.0):
        self.linear = keras.layers.Dense(num_labels, name="linear")
        self.linear.build((None, feature_dim))
        self.lam = float(lam)
        self.plain_variables = list(self.linear.trainable_variables)
        self.new_variables = []
        self.set_adjacency(mask)

    def set_adjacency(self, mask):
        mask = np.asarray(mask, np.float32)
        mask = np.maximum(mask, mask.T)
        np.fill_diagonal(mask, 0.0)
        laplacian = np.diag(mask.sum(axis=1)) - mask
        self.laplacian = ops.convert_to_tensor(laplacian)
        self.num_edges = max(1.0, float(mask.sum()))

    def regularizer(self):
        kernel = self.linear.kernel  # [E, D]
        # sum_ij A_ij ||w_i - w_j||^2 = 2 tr(W L W^T)
        value = 2.0 * ops.sum(ops.matmul(kernel, self.laplacian) * kernel)
        return self.lam * value / self.num_edges

    def logits(self, features, training=False):
        z = self.linear(features)
        return {"cls": z, "logits": z}
