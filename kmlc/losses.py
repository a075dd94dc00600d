"""Losses on logits: binary cross-entropy (eq. 8, 12) and Asymmetric Loss."""

import keras
from keras import ops

from kmlc.registry import Registry


@keras.saving.register_keras_serializable(package="kmlc")
class AsymmetricLoss(keras.losses.Loss):
    """Asymmetric Loss for multi-label classification, on logits.

    `L = -y (1 - p)^gamma_pos log(p) - (1 - y) p_m^gamma_neg log(1 - p_m)`
    with `p = sigmoid(logits)` and the shifted probability
    `p_m = max(p - clip, 0)`, summed over labels (as the reference code
    does), then averaged over the batch by the reduction.

    Args:
        gamma_neg: float. Focusing on negatives. Defaults to 4.
        gamma_pos: float. Focusing on positives. Defaults to 0.
        clip: float. Probability margin that discards easy negatives.
            Defaults to 0.05.
        eps: float. Floor inside the logs. Defaults to 1e-8.
        disable_torch_grad_focal_loss: bool. Treat the focusing weights as
            constants (no gradient through them), as the reference's
            training script does. Defaults to True.

    Reference: Ridnik et al., "Asymmetric Loss For Multi-Label
    Classification", ICCV 2021.
    """

    def __init__(
        self,
        gamma_neg=4.0,
        gamma_pos=0.0,
        clip=0.05,
        eps=1e-8,
        disable_torch_grad_focal_loss=True,
        reduction="sum_over_batch_size",
        name="asymmetric_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.gamma_neg = float(gamma_neg)
        self.gamma_pos = float(gamma_pos)
        self.clip = float(clip) if clip else 0.0
        self.eps = float(eps)
        self.disable_torch_grad_focal_loss = bool(disable_torch_grad_focal_loss)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        prob_pos = ops.sigmoid(y_pred)
        prob_neg = 1.0 - prob_pos
        if self.clip > 0:
            prob_neg = ops.minimum(prob_neg + self.clip, 1.0)
        loss = y_true * ops.log(ops.maximum(prob_pos, self.eps)) + (
            1.0 - y_true
        ) * ops.log(ops.maximum(prob_neg, self.eps))
        if self.gamma_neg > 0 or self.gamma_pos > 0:
            pt = prob_pos * y_true + prob_neg * (1.0 - y_true)
            gamma = self.gamma_pos * y_true + self.gamma_neg * (1.0 - y_true)
            # The gradient of power(0, 0) is NaN (0 * 0^-1): where gamma is
            # 0 the weight is the constant 1, as PyTorch's pow gives.
            focusing = gamma > 0
            safe_gamma = ops.where(focusing, gamma, 1.0)
            weight = ops.where(focusing, ops.power(1.0 - pt, safe_gamma), 1.0)
            if self.disable_torch_grad_focal_loss:
                weight = ops.stop_gradient(weight)
            loss = loss * weight
        return -ops.sum(loss, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "gamma_neg": self.gamma_neg,
                "gamma_pos": self.gamma_pos,
                "clip": self.clip,
                "eps": self.eps,
                "disable_torch_grad_focal_loss": self.disable_torch_grad_focal_loss,
            }
        )
        return config


LOSSES = Registry("loss")


@LOSSES.register("bce")
def binary_crossentropy():
    """Binary cross-entropy on logits (eq. 8, 12)."""
    return keras.losses.BinaryCrossentropy(from_logits=True, name="bce")


LOSSES.register("asl", AsymmetricLoss)


def get(identifier):
    """A loss on logits from a name (`LOSSES`: `"bce"`, `"asl"`) or a loss."""
    if isinstance(identifier, str):
        if identifier not in LOSSES:
            raise ValueError(
                f"Unknown loss. Expected one of {LOSSES.names()} (losses on "
                "logits) or a keras.losses.Loss object. Received: "
                f"identifier={identifier!r}"
            )
        return LOSSES.get(identifier)()
    return identifier
