"""`tf.distribute` strategies, by name (`strategy`), and who writes files.

The registered strategies:

    default      the current (default) strategy: one device
    mirrored     every visible device of this machine
    multiworker  several machines, from `TF_CONFIG` (kmlc's own loop:
                 `kmlc.training.multiworker`)
"""

from kmlc.registry import Registry

# TensorFlow is imported when a strategy is made, so that the command line
# can check a strategy's name without loading it.
STRATEGIES = Registry("strategy")


@STRATEGIES.register("default")
def _default():
    import tensorflow as tf

    return tf.distribute.get_strategy()


@STRATEGIES.register("mirrored")
def _mirrored():
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


@STRATEGIES.register("multiworker")
def _multiworker():
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy()


def make_strategy(name):
    """The `tf.distribute` strategy of a name (`STRATEGIES`)."""
    return STRATEGIES.get(name, "strategy")()


def is_multiworker(strategy):
    """Whether `strategy` spans machines (where `model.fit` cannot run)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes files (always, except a non-chief worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker"
        and task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
