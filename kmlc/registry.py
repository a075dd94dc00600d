"""Names to factories, one registry per concern (as timm's `register_model`).

A concern (optimizers, schedules, strategies, losses, data formats) keeps
its choices in one `Registry`, filled where each choice is written; the
config validates its fields against the registry's keys, so adding a
choice is one decorated function and nothing else.

    OPTIMIZERS = Registry("optimizer")

    @OPTIMIZERS.register("sgd")
    def sgd(config, **kwargs):
        return keras.optimizers.SGD(momentum=config.momentum, **kwargs)

    OPTIMIZERS.get("sgd", field="optimizer.name")
"""


class Registry:
    """An ordered mapping of names to factories.

    Args:
        kind: str. What the names name, for error messages (`"optimizer"`).
    """

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name, entry=None):
        """Registers `entry` under `name`; without `entry`, a decorator."""
        if entry is None:
            return lambda function: self.register(name, function)
        if name in self._entries:
            raise ValueError(
                f"A {self.kind} named {name!r} is already registered. "
                f"Received: name={name!r}"
            )
        self._entries[name] = entry
        return entry

    def names(self):
        """The registered names, in registration order, as a tuple."""
        return tuple(self._entries)

    def check(self, field, name):
        """Raises a `ValueError` naming `field` unless `name` is registered."""
        if name not in self._entries:
            raise ValueError(
                f"{field} must be one of {self.names()}. Received: {field}={name!r}"
            )
        return name

    def get(self, name, field=None):
        """The entry of `name`; an unknown name names `field` (or the kind)."""
        self.check(field or self.kind, name)
        return self._entries[name]

    def __contains__(self, name):
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __repr__(self):
        return f"Registry({self.kind!r}, {list(self._entries)})"
