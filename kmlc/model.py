"""The multi-label model: a backbone and the paper's heads."""

import keras
from keras import ops

from kmlc import backbones as backbones_lib
from kmlc import model_graph
from kmlc import rescoring as rescoring_lib
from kmlc.backbone_rate import backbone_trainability
from kmlc.backbone_rate import set_backbone_trainability
from kmlc.graph import LabelGraph
from kmlc.head_training import HeadsModel
from kmlc.head_training import HeadTraining
from kmlc.head_training import checked_label_names
from kmlc.head_training import resolve_heads
from kmlc.layers import FeatureActivation
from kmlc.layers import ImagePreprocessing
from kmlc.layers import KnowledgeFusion
from kmlc.layers import LabelGCN
from kmlc.layers import LabelwiseDense
from kmlc.layers import RelationAttention
from kmlc.thresholds import ThresholdsMixin


@keras.saving.register_keras_serializable(package="kmlc")
class MultiLabelClassifier(HeadTraining, ThresholdsMixin, keras.Model):
    """Multi-label image recognition with a label graph (Xu, 2022).

    Images `[B, H, W, 3]` (RGB, 0-255) to logits `[B, D]`; build it with
    `kmlc.build_model`, which also takes the label graph. The heads, each
    switchable so that the paper's ablation rows can be built from flags:

    - `"cls"`: the plain classifier on pooled backbone features (eq. 2);
    - `"gcn"`: per-label activation vectors (eq. 3) through a GCN over the
      label graph (eq. 6, 9), one score per label node;
    - `"fusion"`: the GCN's node features fed back into the feature map and
      classified again (eq. 10-11); trained with its own BCE (eq. 12);
    - `"attention"`: relation attention among the top candidate labels,
      with position weights (eq. 13-19).

    The final logits are the sum of the enabled heads' logits (eq. 7 and
    docs/design.md). With `training=True` the model returns a dict of every
    head's logits and `"logits"` (for `compute_loss`'s auxiliary loss), else
    the final logits; `head_logits` gives the dict at inference.

    Args:
        num_labels: int. D, at least 2.
        backbone: str or keras.Model. A `kmlc.backbones.BACKBONES` name, or a
            model from images to a feature map `[B, h, w, E]`.
        image_size: int or `(height, width)`. Defaults to 448.
        heads: str or tuple of str. A `PRESETS` name or heads from `HEADS`.
            Defaults to `"full"`.
        adjacency: array `[D, D]`, scipy sparse matrix or None. X' for the
            GCN; None leaves zeros until weights are loaded.
        gcn_layers: int. Graph convolutions. Defaults to 4.
        gcn_propagation: `"auto"`, `"dense"` or `"sparse"`: how the GCN
            holds X' and multiplies with it (`kmlc.layers.LabelGCN`).
            Defaults to `"auto"` (sparse for large graphs with few edges).
        gcn_edges: int or None. The sparse GCN's edge-list length, recorded
            in the config so that a reloaded model has weights of the saved
            shapes; taken from `adjacency` when one is given.
        node_dim: int or None. Label node width K. Defaults to 20, not
            the paper's 70 (docs/design.md, "Eq. 3", says why).
        top_k: int. Candidate labels for relation attention. Defaults to 10.
        label_names: list of str or None. Defaults to `label_0`...
        preprocessing: str or None. `ImagePreprocessing` mode; None takes the
            backbone's own (`"none"` for a custom backbone model).
        backbone_weights: None, `"imagenet"` or a weights file path, for a
            named backbone; not in the config (a reloaded model's come from
            its file).
        thresholds: D floats in [0, 1] or None (0.5 everywhere): per-label
            decision thresholds on the scores (`kmlc.thresholds`).
        rescoring: a `kmlc.layers.CooccurrenceRescoring` (or its serialized
            config) applied to the final logits after every head, or None.
        backbone_trainable: `True`, `False` (frozen) or
            `"except_batch_norms"` (fine-tuning, `kmlc.backbone_rate`); the
            config records the backbone's state, so a reloaded model trains
            what the saved one did. Defaults to True.
    """

    def __init__(
        self,
        num_labels,
        backbone="resnet101",
        image_size=448,
        heads="full",
        adjacency=None,
        gcn_layers=4,
        node_dim=20,
        top_k=10,
        label_names=None,
        preprocessing=None,
        backbone_weights=None,
        gcn_propagation="auto",
        gcn_edges=None,
        thresholds=None,
        rescoring=None,
        backbone_trainable=True,
        **kwargs,
    ):
        num_labels = int(num_labels)
        if num_labels < 2:
            raise ValueError(
                "A multi-label model needs at least 2 labels. "
                f"Received: num_labels={num_labels}"
            )
        heads = resolve_heads(heads)
        height, width = backbones_lib.image_shape(image_size)
        label_names = checked_label_names(label_names, num_labels)
        if isinstance(backbone, dict):  # from a saved config
            backbone = keras.saving.deserialize_keras_object(backbone)
        if isinstance(backbone, keras.Model):
            backbone_model = backbone
            preprocessing = preprocessing or "none"
        else:
            backbone_model, spec = backbones_lib.build_backbone(
                backbone, (height, width), weights=backbone_weights
            )
            preprocessing = preprocessing or spec.preprocessing

        # === Layers ===
        self.backbone = backbone_model
        self.preprocessing = ImagePreprocessing(preprocessing, name="preprocessing")
        self.pooling = keras.layers.GlobalAveragePooling2D(name="pooling")
        if "gcn" in heads:
            self.feature_activation = FeatureActivation(
                num_labels,
                node_dim=node_dim,
                use_bias="cls" in heads,
                name="feature_activation",
            )
            self.label_gcn = LabelGCN(
                adjacency,
                num_layers=gcn_layers,
                propagation=gcn_propagation,
                num_edges=gcn_edges,
                name="label_gcn",
            )
            self.gcn_scores = LabelwiseDense(name="gcn_scores")
        else:
            self.classifier = keras.layers.Dense(num_labels, name="classifier")
        if "fusion" in heads:
            self.knowledge_fusion = KnowledgeFusion(num_labels, name="knowledge_fusion")
        if "attention" in heads:
            self.relation_attention = RelationAttention(
                num_labels, top_k=top_k, name="relation_attention"
            )
        if len(heads) > 1:
            self.head_sum = keras.layers.Add(name="head_sum")
        if "attention" in heads and len(heads) > 2:
            self.prior_sum = keras.layers.Add(name="attention_prior")
        self.logits_output = keras.layers.Activation(
            "linear", dtype="float32", name="logits"
        )
        if isinstance(rescoring, dict):  # from a saved config
            rescoring = keras.saving.deserialize_keras_object(rescoring)
        self.rescoring = rescoring

        # === Functional Model ===
        images = keras.Input(shape=(height, width, 3), name="images")
        feature_map = self.backbone(self.preprocessing(images))
        if len(feature_map.shape) != 4:
            raise ValueError(
                "The backbone must output a feature map [B, h, w, E]. "
                f"Received: output shape {feature_map.shape}"
            )
        outputs = self._head_outputs(feature_map, heads)
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        set_backbone_trainability(self.backbone, backbone_trainable)

        # === Config ===
        self.num_labels = num_labels
        self.backbone_name = None if isinstance(backbone, keras.Model) else backbone
        self.image_size = (height, width)
        self.heads = heads
        self.gcn_layers = gcn_layers
        self.node_dim = node_dim
        self.top_k = top_k
        self.label_names = label_names
        self.preprocessing_mode = preprocessing
        self.aux_loss_weight = 1.0
        self._aux_loss_fn = None
        self.set_thresholds(thresholds)

    def _head_outputs(self, feature_map, heads):
        """Every enabled head's logits and `"logits"`, on a feature map."""
        pooled = self.pooling(feature_map)
        outputs = {}
        if "gcn" in heads:
            cls_logits, activations = self.feature_activation(pooled)
            nodes = self.label_gcn(activations)
            outputs["gcn"] = self.gcn_scores(nodes)
        else:
            cls_logits = self.classifier(pooled)
        if "cls" in heads:
            outputs["cls"] = cls_logits
        if "fusion" in heads:
            feature_map, outputs["fusion"] = self.knowledge_fusion(feature_map, nodes)
        if "attention" in heads:
            prior = list(outputs.values())
            prior = self.prior_sum(prior) if len(prior) > 1 else prior[0]
            outputs["attention"] = self.relation_attention(feature_map, prior)
        outputs = {head: outputs[head] for head in heads}
        logits = list(outputs.values())
        logits = self.head_sum(logits) if len(logits) > 1 else logits[0]
        logits = self.logits_output(logits)
        if self.rescoring is not None:  # passes the logits through in training
            logits = self.rescoring(logits)
        outputs = {head: ops.cast(value, "float32") for head, value in outputs.items()}
        outputs["logits"] = logits
        return outputs

    def head_layer_names(self):
        """Names of the layers that compute the heads' logits.

        Every layer after the backbone's pooling but the final sum of the
        heads and the float32 output; what an int8 export keeps in float
        (`kmlc.export.lite`). Read from the built graph, so a renamed or new
        head layer is listed without further change.
        """
        merge = (self.pooling, getattr(self, "head_sum", None), self.logits_output)
        trunk = {id(layer) for layer in (self.preprocessing, self.backbone, *merge)}
        return [
            layer.name
            for layer in self.layers
            if id(layer) not in trunk and not isinstance(layer, keras.layers.InputLayer)
        ]

    def heads_model(self):
        """The heads alone: backbone feature maps `[B, h, w, E]` -> logits.

        The returned `HeadsModel` shares this model's head layers (their
        weights are the same variables), so training it trains this model's
        heads: with a frozen backbone, its feature maps can be computed
        once (`kmlc.feature_cache`) and the heads trained on them, while
        this model, images in, is what gets saved.
        """
        feature_map = keras.Input(
            shape=tuple(self.backbone.output.shape[1:]), name="feature_map"
        )
        return HeadsModel(
            self.num_labels,
            inputs=feature_map,
            outputs=self._head_outputs(feature_map, self.heads),
            name=f"{self.name}_heads",
        )

    # === Forward pass ===

    def attention_maps(self, images):
        """The relation-attention maps of the candidate labels.

        Returns `(maps [B, h, w, K], labels [B, K])` as NumPy arrays.
        """
        if "attention" not in self.heads:
            raise ValueError(f"This model has no 'attention' head. Heads: {self.heads}")
        extractor = keras.Model(self.inputs, list(self.relation_attention.input[:2]))
        feature_map, prior = extractor(images, training=False)
        _, maps, labels = self.relation_attention(feature_map, prior, return_maps=True)
        return keras.ops.convert_to_numpy(maps), keras.ops.convert_to_numpy(labels)

    def set_graph(self, graph, normalization="symmetric"):
        """Replaces the GCN's adjacency and the re-scoring's statistics with
        a `LabelGraph`'s (or the adjacency with an X' array)."""
        model_graph.set_graph(self, graph, normalization)

    # === Config ===

    def get_config(self):
        backbone = self.backbone_name
        if backbone is None:
            backbone = keras.saving.serialize_keras_object(self.backbone)
        gcn = getattr(self, "label_gcn", None)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_labels": self.num_labels,
            "backbone": backbone,
            "backbone_trainable": backbone_trainability(self.backbone),
            "image_size": list(self.image_size),
            "heads": list(self.heads),
            "gcn_layers": self.gcn_layers,
            "node_dim": self.node_dim,
            "top_k": self.top_k,
            "label_names": self.label_names,
            "preprocessing": self.preprocessing_mode,
            "gcn_propagation": gcn.propagation if gcn else "auto",
            "gcn_edges": gcn.num_edges if gcn else None,
            "thresholds": self.threshold_config(),
            "rescoring": None
            if self.rescoring is None
            else keras.saving.serialize_keras_object(self.rescoring),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_model(
    num_labels,
    graph=None,
    backbone="resnet101",
    image_size=448,
    weights=None,
    heads="full",
    gcn_layers=4,
    node_dim=20,
    top_k=10,
    normalization="symmetric",
    label_names=None,
    preprocessing=None,
    gcn_propagation="auto",
    rescoring_gamma=0.0,
    name="kmlc",
):
    """Builds the multi-label model: images `[B, H, W, 3]` -> logits `[B, D]`.

    Args:
        num_labels: int. D, at least 2.
        graph: `kmlc.LabelGraph` counted on the training labels, or an
            already normalised X' `[D, D]` (NumPy or scipy sparse). Required
            by the `"gcn"` head.
        backbone: str or keras.Model. A `keras.applications` name
            (`kmlc.backbones.BACKBONES`) or a model giving a feature map.
            Defaults to `"resnet101"`.
        image_size: int or `(height, width)`. Defaults to 448.
        weights: None, `"imagenet"` (needs the internet) or the path of a
            backbone weights file. Defaults to None.
        heads: a `PRESETS` name (`"baseline"`, `"gcn"`, `"full"`) or a
            tuple of heads from `HEADS`. Defaults to `"full"`.
        gcn_layers: int. Defaults to 4 (the paper's best).
        node_dim: int or None. Label node width. Defaults to 20 (the
            paper's 70 gave the same mAP on Corel-5k, its heads at twice
            the time; docs/design.md, "Eq. 3").
        top_k: int. Candidates for relation attention. Defaults to 10.
        normalization: how X' is made from the graph: `"symmetric"` or
            `"row"`. Defaults to `"symmetric"`.
        label_names: list of str or None. Defaults to the graph's.
        preprocessing: str or None. See `MultiLabelClassifier`.
        gcn_propagation: `"auto"`, `"dense"` or `"sparse"`. See
            `kmlc.layers.LabelGCN`. Defaults to `"auto"`.
        rescoring_gamma: float >= 0. With a `LabelGraph`, re-score the final
            logits with its co-occurrence statistics at this strength
            (`kmlc.layers.CooccurrenceRescoring`). Defaults to 0 (off).
        name: str. The model's name.

    Returns:
        A compiled-ready `MultiLabelClassifier`.

    Example:
    >>> graph = kmlc.LabelGraph.from_labels(train_labels)
    >>> model = kmlc.build_model(80, graph, backbone="resnet101")
    >>> model.compile(optimizer="adamw")
    >>> model.fit(train_ds, validation_data=val_ds)
    """
    if int(num_labels) < 2:
        raise ValueError(
            "A multi-label model needs at least 2 labels. "
            f"Received: num_labels={num_labels}"
        )
    heads = resolve_heads(heads)
    adjacency = None
    if "gcn" in heads:
        if graph is None:
            raise ValueError(
                f"heads={heads} include 'gcn', which needs the label graph: "
                "pass graph=kmlc.LabelGraph.from_labels(train_labels)."
            )
        adjacency = model_graph.normalized_adjacency(
            graph, int(num_labels), normalization
        )
    if isinstance(graph, LabelGraph) and graph.num_labels != int(num_labels):
        raise ValueError(
            f"The label graph has {graph.num_labels} labels but "
            f"num_labels={num_labels}."
        )
    if label_names is None and isinstance(graph, LabelGraph):
        label_names = graph.label_names
    rescoring = None
    if rescoring_lib.checked_gamma(rescoring_gamma) > 0:
        rescoring = model_graph.rescoring_layer(graph, int(num_labels), rescoring_gamma)
    return MultiLabelClassifier(
        num_labels,
        backbone=backbone,
        image_size=image_size,
        heads=heads,
        adjacency=adjacency,
        gcn_layers=gcn_layers,
        node_dim=node_dim,
        top_k=top_k,
        label_names=label_names,
        preprocessing=preprocessing,
        backbone_weights=weights,
        gcn_propagation=gcn_propagation,
        rescoring=rescoring,
        name=name,
    )
