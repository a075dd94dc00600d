"""The contract every kmlc layer meets, checked by one helper.

`run_layer_test` builds a layer from its constructor arguments and checks:
the config round trip, symbolic and eager calls and `compute_output_shape`
with the expected output shapes, that gradients reach every trainable
weight (for a layer without weights, or with non-trainable ones only: that
it has none, or none trainable, and that gradients reach its inputs), a
mixed-precision call, and that a model holding the layer gives identical
outputs after a `.keras` save and reload.
"""

import os

import keras
import numpy as np
import tensorflow as tf


def _flat(outputs):
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shapes,
    tmp_path,
    call_kwargs=None,
    zero_gradient_weights=(),
    has_weights=True,
    trainable=True,
):
    """Runs the layer contract.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        input_data: tuple of NumPy arrays, the call's positional inputs.
        expected_output_shapes: list of shape tuples, one per output.
        tmp_path: a directory for the saved model.
        call_kwargs: dict of extra call arguments.
        zero_gradient_weights: names of weights whose gradient is zero at
            initialisation by design (they are still checked to be
            connected: not None).
        has_weights: False for a layer that has no weights by design (such
            as `ImagePreprocessing`): the helper then checks that it has
            none and that the gradient reaches every input instead.
        trainable: False for a layer whose weights are all non-trainable by
            design (such as `CooccurrenceRescoring`'s statistics): the
            helper checks that none is trainable and that the gradient
            reaches every input instead.
    """
    call_kwargs = call_kwargs or {}
    input_data = tuple(input_data)

    # Config round trip.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    restored = layer_cls.from_config(config)
    assert restored.get_config() == config

    # Symbolic call.
    inputs = [keras.Input(shape=x.shape[1:], batch_size=x.shape[0]) for x in input_data]
    symbolic = _flat(layer(*inputs, **call_kwargs))
    assert [tuple(t.shape) for t in symbolic] == [
        tuple(s) for s in expected_output_shapes
    ]

    # compute_output_shape, given the inputs' shapes.
    computed = layer.compute_output_shape(*[x.shape for x in input_data])
    if len(expected_output_shapes) == 1:
        computed = [computed]
    assert [tuple(s) for s in computed] == [tuple(s) for s in expected_output_shapes]

    # Eager call.
    eager = _flat(layer(*input_data, **call_kwargs))
    assert [tuple(t.shape) for t in eager] == [tuple(s) for s in expected_output_shapes]
    for tensor in eager:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(tensor)))

    # Gradients reach every trainable weight (or, without weights, the inputs).
    tensors = [tf.convert_to_tensor(x) for x in input_data]
    watch_inputs = not has_weights or not trainable
    with tf.GradientTape() as tape:
        if watch_inputs:
            tape.watch(tensors)
        outputs = _flat(layer(*tensors, **call_kwargs))
        loss = sum(tf.reduce_sum(tf.square(tf.cast(o, "float32"))) for o in outputs)
    if not has_weights:
        assert not layer.weights, f"expected no weights, found {layer.weights}"
    elif not trainable:
        assert layer.weights and not layer.trainable_weights, (
            f"expected non-trainable weights only, found {layer.weights}"
        )
    if watch_inputs:
        grads = tape.gradient(loss, tensors)
        for i, grad in enumerate(grads):
            assert grad is not None, f"no gradient reaches input {i}"
            assert np.any(grad.numpy() != 0), f"zero gradient for input {i}"
    else:
        weights = layer.trainable_weights
        grads = tape.gradient(loss, [w.value for w in weights])
        assert weights, "the layer has no trainable weights"
        for weight, grad in zip(weights, grads, strict=True):
            assert grad is not None, f"no gradient reaches {weight.path}"
            if weight.name not in zero_gradient_weights:
                grad = tf.convert_to_tensor(grad)  # IndexedSlices from gathers
                assert np.any(grad.numpy() != 0), f"zero gradient for {weight.path}"

    # Mixed precision.
    mixed = layer_cls(**init_kwargs, dtype="mixed_float16")
    for tensor in _flat(mixed(*input_data, **call_kwargs)):
        assert tensor.dtype == "float16"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(tensor)))

    # A model holding the layer survives .keras saving.
    inputs = [keras.Input(shape=x.shape[1:]) for x in input_data]
    model = keras.Model(inputs, layer_cls(**init_kwargs)(*inputs, **call_kwargs))
    before = _flat(model.predict(list(input_data), verbose=0))
    path = os.path.join(tmp_path, "layer_model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    after = _flat(reloaded.predict(list(input_data), verbose=0))
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(b, a)
    return layer
