"""Training over several machines with `MultiWorkerMirroredStrategy`.

`model.fit` fails under `MultiWorkerMirroredStrategy` with TF 2.21 / Keras
3.15 ("Attempt to convert a value (PerReplica...)", keras issue #20585), so
this path runs kmlc's own distributed step: `strategy.run` over
`experimental_distribute_dataset`, the model's own `compute_loss` (final
and auxiliary losses, already scaled per replica by Keras), and the
optimizer's cross-replica gradient sum. The same Keras callbacks as
`model.fit` are driven by hand, so the effects are the same: exact
validation mAP, the best checkpoint, backup and resume, early stopping and
the logs. Every worker runs the same number of steps an epoch (the data is
repeated), so a skipped image on one worker cannot leave another waiting.

Only the chief (task `chief`, or `worker` 0 without one) writes files;
every worker restores the chief's backup before the loop
(`kmlc.training.builders.build_run`), only the chief saves one. Workers find
each other through `TF_CONFIG`, as in any `tf.distribute` cluster, and need
a shared file system for the backup.
"""

import hashlib
import logging

import keras
import numpy as np

from kmlc.training.callbacks import make_callbacks
from kmlc.training.results import finish
from kmlc.training.results import worker_result

logger = logging.getLogger("kmlc.train")


def weights_fingerprint(weights):
    """A short hash of weights: equal on workers that agree."""
    digest = hashlib.sha256()
    for weight in weights:
        digest.update(
            np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes()
        )
    return digest.hexdigest()[:16]


def fit(run):
    """Trains `run.model` on several workers; returns a `TrainResult`."""
    import tensorflow as tf

    config, model, strategy, chief = run.config, run.model, run.strategy, run.chief
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    distributed = strategy.experimental_distribute_dataset(
        run.train_ds.repeat().with_options(options)
    )
    if not model.optimizer.built:  # a restored backup built it already
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(iterator):
        def step_fn(images, labels):
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                # Keras scales each replica's loss by 1 / num_replicas.
                loss = model.compute_loss(images, labels, outputs, training=True)
            variables = model.trainable_variables
            gradients = tape.gradient(loss, variables)
            model.optimizer.apply_gradients(zip(gradients, variables, strict=True))
            return loss

        per_replica = strategy.run(step_fn, args=next(iterator))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    # Each worker scores the whole validation set itself (identical
    # weights give identical scores, so every worker takes the same early
    # stopping decision); predict_on_batch would gather across workers.
    local_predict = tf.function(lambda images: model(images, training=False))
    floating = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]

    @tf.function
    def worker_means():
        local = strategy.run(lambda: [tf.identity(v.value) for v in floating])
        return [
            strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for value in local
        ]

    def average_non_trainable():
        # Batch-norm statistics are updated from each worker's own batches;
        # averaging them each epoch keeps every worker's model identical,
        # and so every worker's validation score and stopping decision.
        for variable, mean in zip(floating, worker_means(), strict=True):
            variable.assign(mean)

    # Early stopping restarts its count on resume here (no previous
    # val_mAP): only the chief has the history it would continue from, and
    # the workers must decide alike. Only the chief's callbacks write.
    callbacks = make_callbacks(
        run, predict_fn=local_predict, epoch_log=True, previous_val_map=()
    )
    callback_list = keras.callbacks.CallbackList(
        callbacks, model=model, epochs=config.epochs, steps=run.steps, verbose=0
    )
    model.stop_training = False
    callback_list.on_train_begin()
    history = {}
    iterator = iter(distributed)
    for epoch in range(run.initial_epoch, config.epochs):
        callback_list.on_epoch_begin(epoch)
        losses = []
        for step in range(run.steps):
            callback_list.on_train_batch_begin(step)
            loss = float(train_step(iterator))
            losses.append(loss)
            callback_list.on_train_batch_end(step, {"loss": loss})
        average_non_trainable()
        logs = {"loss": float(np.mean(losses))}
        callback_list.on_epoch_end(epoch, logs)
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        if model.stop_training:
            break
    callback_list.on_train_end()
    logger.info(
        "worker %s:%s finished; trainable weights fingerprint %s, non-trainable %s",
        getattr(strategy.cluster_resolver, "task_type", None),
        getattr(strategy.cluster_resolver, "task_id", None),
        weights_fingerprint(model.trainable_weights),
        weights_fingerprint(model.non_trainable_weights),
    )
    if not chief:
        return worker_result(run, history)
    return finish(run, history)
