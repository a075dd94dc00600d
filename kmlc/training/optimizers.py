"""Optimizers and learning-rate schedules, by name (`optimizer.name`,
`optimizer.schedule`).

`make_optimizer(config.optimizer, steps_per_epoch, epochs)` builds the
configured optimizer with its schedule: a linear warm-up from zero over
`warmup_epochs`, then the schedule (`cosine`: down to `min_learning_rate`
at the last step; `constant`: the peak rate throughout, without warm-up).
"""

import keras

from kmlc.registry import Registry

OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")


# Schedules: `(peak, warmup_steps, total_steps, config) -> learning rate`.


@SCHEDULES.register("cosine")
def cosine(peak, warmup, total, config):
    """Linear warm-up from 0 to `peak`, then cosine decay to the minimum."""
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else peak,
        decay_steps=max(1, total - warmup),
        alpha=config.min_learning_rate / peak,
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


@SCHEDULES.register("constant")
def constant(peak, warmup, total, config):
    """The peak rate at every step (no warm-up)."""
    del warmup, total, config
    return peak


# Optimizers: `(config, **kwargs) -> keras.optimizers.Optimizer`, where the
# keyword arguments are the learning rate and the clipping.


@OPTIMIZERS.register("sgd")
def sgd(config, **kwargs):
    """SGD with (heavy-ball) momentum and decoupled weight decay."""
    return keras.optimizers.SGD(
        momentum=config.momentum,
        nesterov=False,
        weight_decay=config.weight_decay or None,
        **kwargs,
    )


@OPTIMIZERS.register("adamw")
def adamw(config, **kwargs):
    """Adam with decoupled weight decay."""
    return keras.optimizers.AdamW(weight_decay=config.weight_decay, **kwargs)


@OPTIMIZERS.register("adam")
def adam(config, **kwargs):
    """Adam (`weight_decay` unused)."""
    del config
    return keras.optimizers.Adam(**kwargs)


def make_optimizer(optimizer_config, steps_per_epoch, epochs):
    """The configured optimizer with its learning-rate schedule.

    Args:
        optimizer_config: `kmlc.config.OptimizerConfig`.
        steps_per_epoch: int. Optimizer steps in an epoch.
        epochs: int. The run's epochs (the schedule ends at the last step).
    """
    peak = optimizer_config.learning_rate
    total = max(1, steps_per_epoch * epochs)
    warmup = min(
        int(round(optimizer_config.warmup_epochs * steps_per_epoch)), total - 1
    )
    schedule = SCHEDULES.get(optimizer_config.schedule, "optimizer.schedule")
    kwargs = {"learning_rate": schedule(peak, warmup, total, optimizer_config)}
    if optimizer_config.clipnorm:
        kwargs["clipnorm"] = optimizer_config.clipnorm
    factory = OPTIMIZERS.get(optimizer_config.name, "optimizer.name")
    return factory(optimizer_config, **kwargs)
