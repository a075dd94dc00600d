"""`kmlc.registry.Registry`: names to factories, errors that name the field."""

import pytest

from kmlc.registry import Registry


def test_register_get_and_names_in_order():
    registry = Registry("colour")

    @registry.register("red")
    def red():
        return "r"

    registry.register("blue", lambda: "b")
    assert registry.names() == ("red", "blue")
    assert registry.get("red") is red and registry.get("blue")() == "b"
    assert "red" in registry and "green" not in registry
    assert list(registry) == ["red", "blue"]


def test_an_unknown_name_names_the_field_the_value_and_the_choices():
    registry = Registry("colour")
    registry.register("red", object)
    registry.register("blue", object)
    with pytest.raises(ValueError) as info:
        registry.get("green", field="paint.colour")
    assert str(info.value) == (
        "paint.colour must be one of ('red', 'blue'). Received: paint.colour='green'"
    )
    with pytest.raises(ValueError, match=r"^colour must be one of"):
        registry.check("colour", "green")


def test_a_name_registered_twice_is_an_error():
    registry = Registry("colour")
    registry.register("red", object)
    with pytest.raises(ValueError, match="'red' is already registered"):
        registry.register("red", dict)
    assert registry.get("red") is object
