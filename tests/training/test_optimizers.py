"""`kmlc.training.optimizers`: the optimizer and schedule registries, the
warm-up then cosine learning rate, and the config validating against the
registries."""

import math

import keras
import pytest

from kmlc.config import OptimizerConfig
from kmlc.config import load_config
from kmlc.training.optimizers import OPTIMIZERS
from kmlc.training.optimizers import SCHEDULES
from kmlc.training.optimizers import make_optimizer


def schedule_of(optimizer):
    """The optimizer's learning rate as a function of the step."""
    rate = optimizer.get_config()["learning_rate"]
    if isinstance(rate, dict):
        schedule = keras.optimizers.schedules.deserialize(rate)
        return lambda step: float(schedule(step))
    return lambda step: float(rate)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("sgd", keras.optimizers.SGD),
        ("adamw", keras.optimizers.AdamW),
        ("adam", keras.optimizers.Adam),
    ],
)
def test_each_registered_optimizer(name, cls):
    config = OptimizerConfig(name=name, weight_decay=0.01, clipnorm=2.0)
    optimizer = make_optimizer(config, steps_per_epoch=10, epochs=3)
    assert type(optimizer) is cls
    assert optimizer.clipnorm == 2.0
    if name == "sgd":
        assert optimizer.momentum == pytest.approx(0.9)


def test_warm_up_then_cosine_to_the_minimum():
    """The rate written out: linear from 0 over the warm-up's 10 steps to
    the peak, then half a cosine down to the minimum at step 30."""
    config = OptimizerConfig(learning_rate=0.1, warmup_epochs=1, min_learning_rate=0.01)
    optimizer = make_optimizer(config, steps_per_epoch=10, epochs=3)
    lr = schedule_of(optimizer)
    for step in (0, 5, 10):
        assert lr(step) == pytest.approx(0.1 * step / 10, abs=1e-7)
    for step in (10, 20, 30):
        fraction = (step - 10) / 20
        expected = 0.01 + (0.1 - 0.01) * 0.5 * (1 + math.cos(math.pi * fraction))
        assert lr(step) == pytest.approx(expected, rel=1e-5)


def test_a_constant_schedule_is_the_peak_at_every_step():
    config = OptimizerConfig(learning_rate=0.05, schedule="constant")
    lr = schedule_of(make_optimizer(config, steps_per_epoch=10, epochs=3))
    assert [lr(step) for step in (0, 10, 29)] == pytest.approx([0.05] * 3)


def test_the_config_accepts_exactly_the_registered_names(monkeypatch, tmp_path):
    data = [
        f"data.manifest={tmp_path}/m.json",
        f"data.images={tmp_path}",
        f"data.vocabulary={tmp_path}/v.txt",
    ]
    with pytest.raises(ValueError) as info:
        load_config(None, data + ["optimizer.name=lion"])
    assert str(info.value) == (
        f"optimizer.name must be one of {OPTIMIZERS.names()}. "
        "Received: optimizer.name='lion'"
    )
    # Registering a name is all it takes (as a plugin would).
    monkeypatch.setitem(OPTIMIZERS._entries, "lion", lambda config, **kw: None)
    assert load_config(None, data + ["optimizer.name=lion"]).optimizer.name == "lion"
    assert SCHEDULES.names() == ("cosine", "constant")
