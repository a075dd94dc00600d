"""A lower learning rate for the backbone: one optimizer per variable group.

Keras 3 has no per-variable learning rate. Scaling the backbone's gradients
by the multiplier would be one only for SGD, and even there not for its
decoupled weight decay (which Keras scales by the learning rate): Adam and
AdamW divide each gradient by its own running magnitude, so a scaled
gradient gives almost the same step. So `BackboneRateOptimizer` holds
two optimizers of the same kind: one for the backbone's variables, built
with the learning rate (and schedule) times the multiplier, one for every
other variable. That is exactly a per-variable learning rate, weight decay
included, for any optimizer (as PyTorch's parameter groups, which ML-GCN
uses); both take a step at every step, so their schedules stay in line.

Which variables are the backbone's is told by `bind(model)` (the variables
of `model.backbone`), which `kmlc.head_training.HeadTraining.compile` calls,
so that a model reloaded from a `.keras` file gets the same split.
"""

import keras

from kmlc.precision import all_layers


@keras.saving.register_keras_serializable(package="kmlc")
class BackboneRateOptimizer(keras.optimizers.Optimizer):
    """The backbone's variables to one optimizer, the others to another.

    Args:
        optimizer: keras.optimizers.Optimizer. For the variables outside
            the backbone (the heads).
        backbone_optimizer: keras.optimizers.Optimizer. For the backbone's
            variables (typically the same kind, at a lower learning rate).
        name: str. Defaults to `"backbone_rate"`.

    Example:
    >>> optimizer = BackboneRateOptimizer(
    ...     keras.optimizers.AdamW(1e-3), keras.optimizers.AdamW(1e-4))
    >>> model.compile(optimizer=optimizer)  # binds model.backbone's variables
    """

    def __init__(self, optimizer, backbone_optimizer, name="backbone_rate", **kwargs):
        if kwargs:
            raise ValueError(
                "BackboneRateOptimizer takes its settings from its two "
                f"optimizers. Received: {sorted(kwargs)}"
            )
        super().__init__(learning_rate=0.0, name=name)
        self.optimizer = optimizer
        self.backbone_optimizer = backbone_optimizer
        self._backbone_ids = None

    def bind(self, model):
        """Takes the variables of `model.backbone` as the backbone's."""
        if self.built:
            raise ValueError(
                "BackboneRateOptimizer is built already: bind it to the model "
                f"before it is built. Received: model={model.name!r}"
            )
        backbone = getattr(model, "backbone", None)
        variables = backbone.variables if backbone is not None else []
        self._backbone_ids = {id(variable) for variable in variables}

    def _split(self, items, variables):
        if self._backbone_ids is None:
            raise ValueError(
                "BackboneRateOptimizer does not know the backbone's variables: "
                "compile a kmlc model with it (or call bind(model)) first. "
                f"Received: {len(variables)} variables"
            )
        heads, backbone = [], []
        for item, variable in zip(items, variables, strict=True):
            (backbone if id(variable) in self._backbone_ids else heads).append(item)
        return heads, backbone

    def build(self, var_list):
        var_list = list(var_list)
        heads, backbone = self._split(var_list, var_list)
        self.optimizer.build(heads)
        self.backbone_optimizer.build(backbone)
        super().build(var_list)

    @property
    def variables(self):
        return (
            self._variables
            + self.optimizer.variables
            + self.backbone_optimizer.variables
        )

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        pairs = list(zip(grads, trainable_variables, strict=True))
        for optimizer, group in zip(
            (self.optimizer, self.backbone_optimizer),
            self._split(pairs, trainable_variables),
            strict=True,
        ):
            if group:
                optimizer.apply([g for g, _ in group], [v for _, v in group])
        self._iterations.assign_add(1)

    @property
    def learning_rate(self):
        """The heads' learning rate (the backbone's is its optimizer's)."""
        return self.optimizer.learning_rate

    def scale_loss(self, loss):
        return self.optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        heads, backbone = self._split(var_list, var_list)
        self.optimizer.finalize_variable_values(heads)
        self.backbone_optimizer.finalize_variable_values(backbone)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "backbone_optimizer": keras.saving.serialize_keras_object(
                self.backbone_optimizer
            ),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("optimizer", "backbone_optimizer"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)


# How much of a backbone trains (`backbone_trainability`): a saved model
# records it, because a named backbone is rebuilt, all trainable, on load.
TRAINABILITIES = (True, False, "except_batch_norms")


def unfreeze_backbone(model):
    """Makes `model.backbone` trainable but for its batch norms.

    The batch norms stay frozen (`trainable=False`), which in Keras 3 also
    keeps them in inference mode: their moving statistics, computed on
    ImageNet, are neither used in training nor updated by small batches of
    the new data (the fine-tuning advice of Keras' transfer-learning
    guide); their scale and offset stay as they are.
    """
    set_backbone_trainability(model.backbone, "except_batch_norms")


def _batch_norms(backbone):
    return [
        layer
        for layer in all_layers(backbone)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def backbone_trainability(backbone):
    """`False` (frozen), `"except_batch_norms"` (`unfreeze_backbone`'s
    state: trainable, its batch norms frozen) or `True`."""
    if not backbone.trainable:
        return False
    norms = _batch_norms(backbone)
    if norms and not any(layer.trainable for layer in norms):
        return "except_batch_norms"
    return True


def set_backbone_trainability(backbone, trainability):
    """Sets what `backbone_trainability` reads; one of `TRAINABILITIES`."""
    if trainability not in TRAINABILITIES:
        raise ValueError(
            f"backbone_trainable must be one of {TRAINABILITIES}. "
            f"Received: backbone_trainable={trainability!r}"
        )
    backbone.trainable = bool(trainability)
    if trainability == "except_batch_norms":
        for layer in _batch_norms(backbone):
            layer.trainable = False
