"""`kmlc.prediction.collect_scores`: the scoring loop of evaluation and
validation."""

import numpy as np
import pytest
import tensorflow as tf

from kmlc.prediction import collect_scores
from tests import model_fixtures as fx


def _dataset(x, y, batch):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def test_collect_scores_pads_the_last_batch_and_keeps_the_order():
    model = fx.tiny_model("baseline")
    x, y = fx.images(5), fx.label_matrix(5)
    logits, labels = collect_scores(model, _dataset(x, y, 2))
    np.testing.assert_allclose(
        logits, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(labels, y)


def test_collect_scores_names_an_empty_dataset():
    model = fx.tiny_model("baseline")
    empty = _dataset(fx.images(1), fx.label_matrix(1), 1).take(0)
    with pytest.raises(ValueError, match="yielded no batches"):
        collect_scores(model, empty)
