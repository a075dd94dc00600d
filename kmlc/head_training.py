"""The paper's heads as a training unit: their names, the presets, and the
training that every model with per-head logits shares.

`HEADS` are the heads a model can have; `PRESETS` the paper's Table 1 rows.
`HeadTraining` is the `keras.Model` mixin that returns every head's logits
when training and adds the auxiliary loss on the fusion head (eq. 12);
`MultiLabelClassifier` (images in) and `HeadsModel` (backbone feature
maps in, for training on cached features) both use it.
"""

import keras
from keras import ops

HEADS = ("cls", "gcn", "fusion", "attention")

PRESETS = {
    # The paper's Table 1, rows 3-5.
    "baseline": ("cls",),
    "gcn": ("cls", "gcn"),
    "full": ("cls", "gcn", "fusion", "attention"),
}


def default_label_names(num_labels):
    """`label_0`, `label_1`, ...: the names of a model built without any."""
    return [f"label_{i}" for i in range(num_labels)]


def checked_label_names(label_names, num_labels):
    """`label_names` as `num_labels` strings (`default_label_names` for None).

    Raises `ValueError` when their number is not `num_labels`.
    """
    if label_names is None:
        return default_label_names(num_labels)
    names = [str(name) for name in label_names]
    if len(names) != num_labels:
        raise ValueError(
            f"Got {len(names)} label names for num_labels={num_labels}. "
            f"Received: label_names={names[:5]}{'...' if len(names) > 5 else ''}"
        )
    return names


def resolve_heads(heads):
    """A preset name or a sequence of head names -> a checked tuple."""
    if isinstance(heads, str):
        if heads not in PRESETS:
            raise ValueError(
                f"Unknown preset. Valid presets: {sorted(PRESETS)}, or a tuple "
                f"of heads from {HEADS}. Received: heads={heads!r}"
            )
        return PRESETS[heads]
    heads = tuple(heads)
    unknown = [head for head in heads if head not in HEADS]
    if unknown or not heads:
        raise ValueError(
            f"Unknown or no heads: valid heads are {HEADS}. Received: heads={heads}"
        )
    if len(set(heads)) != len(heads):
        raise ValueError(f"A head is listed twice. Received: heads={heads}")
    if "fusion" in heads and "gcn" not in heads:
        raise ValueError(
            "The 'fusion' head feeds the GCN's node features back into the "
            f"image features, so it needs 'gcn' too. Received: heads={heads}"
        )
    if heads == ("attention",):
        raise ValueError(
            "The 'attention' head attends among the top candidates of the "
            "other heads, so it needs at least one of 'cls', 'gcn', "
            f"'fusion'. Received: heads={heads}"
        )
    return tuple(head for head in HEADS if head in heads)


class HeadTraining:
    """Training with per-head logits, shared by `MultiLabelClassifier` and
    `HeadsModel`: called with `training=True` the model returns the dict of
    every head's logits plus `"logits"`, and the loss adds the auxiliary
    loss on the fusion head's logits (eq. 12); otherwise it returns the
    final logits."""

    def call(self, inputs, training=None, mask=None):
        outputs = super().call(inputs, training=training, mask=mask)
        return outputs if training else outputs["logits"]

    def head_logits(self, inputs, training=False):
        """Every head's logits and the final ones: dict of `[B, D]`."""
        return super().call(inputs, training=training)

    def compute_output_spec(self, inputs, training=None, mask=None):
        outputs = super().compute_output_spec(inputs, training=training, mask=mask)
        return outputs if training else outputs["logits"]

    # === Training ===

    def compile(
        self,
        optimizer="adam",
        loss="auto",
        metrics="auto",
        aux_loss_weight=1.0,
        **kwargs,
    ):
        """Configures training; the auxiliary loss is added automatically.

        Args:
            optimizer: as in `keras.Model.compile`.
            loss: a loss on logits. `"auto"` is binary cross-entropy from
                logits (eq. 8); `kmlc.losses.AsymmetricLoss()` is the other
                choice kmlc ships.
            metrics: `"auto"` is `[kmlc.metrics.MeanAveragePrecision(D)]`.
            aux_loss_weight: float. Weight of the same loss on the fusion
                head's logits `b_hat` (eq. 12), added to the loss on the
                final logits. Ignored without a `"fusion"` head. Defaults
                to 1.0.
        """
        from kmlc.losses import get as get_loss
        from kmlc.metrics import MeanAveragePrecision

        if loss == "auto":
            loss = "bce"
        loss = get_loss(loss)
        if metrics == "auto":
            metrics = [MeanAveragePrecision(self.num_labels, name="mAP")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        # An optimizer with its own rate for the backbone learns which
        # variables are the backbone's (kmlc.backbone_rate).
        inner = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        if hasattr(inner, "bind"):
            inner.bind(self)
        self.aux_loss_weight = float(aux_loss_weight)
        self._aux_loss_fn = loss

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        heads = y_pred if isinstance(y_pred, dict) else None
        logits = heads["logits"] if heads is not None else y_pred
        loss = super().compute_loss(x, y, logits, sample_weight, training=training)
        if (
            heads is not None
            and "fusion" in heads
            and self.aux_loss_weight
            and self._aux_loss_fn is not None
        ):
            aux = self._aux_loss_fn(y, heads["fusion"], sample_weight)
            loss = loss + ops.cast(self.aux_loss_weight, loss.dtype) * aux
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):
            y_pred = y_pred["logits"]
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_compile_config(self):
        config = super().get_compile_config()
        if self.compiled and config:
            config["aux_loss_weight"] = self.aux_loss_weight
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if hasattr(self, "optimizer") and self.built:
            self.optimizer.build(self.trainable_variables)


class HeadsModel(HeadTraining, keras.Model):
    """A `MultiLabelClassifier`'s heads on backbone feature maps.

    Made by `MultiLabelClassifier.heads_model()`, sharing its layers; it
    trains like the whole model (per-head logits, the auxiliary loss) and is
    not saved on its own: save the whole model.

    Args:
        num_labels: int. D.
        inputs, outputs, name: as for a functional `keras.Model`.
    """

    def __init__(self, num_labels, inputs, outputs, name=None):
        super().__init__(inputs=inputs, outputs=outputs, name=name)
        self.num_labels = int(num_labels)
        self.aux_loss_weight = 1.0
        self._aux_loss_fn = None
