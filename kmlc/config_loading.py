"""From YAML mappings and `key=value` overrides to config dataclasses.

`from_dict` builds a dataclass from a nested mapping, checking each key and
the type of each value (errors name the key, the file and the valid keys);
`apply_overrides` turns `--set` strings into a mapping; `resolve_paths`
expands variables in the data paths and makes them absolute. The config
classes themselves are in `kmlc.config`.
"""

import dataclasses
import os
import re
import types
import typing

import yaml


def check_choice(field, value, choices):
    """Raises a ValueError naming `field` unless `value` is in `choices`."""
    if value not in choices:
        raise ValueError(
            f"{field} must be one of {choices}. Received: {field}={value!r}"
        )


def read_config_file(path):
    """A YAML config file's mapping, its relative paths resolved against the
    file's directory. Errors name the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: the top level must be a mapping of keys to values. "
            f"Received: {data!r}"
        )
    return resolve_paths(data, os.path.dirname(os.path.abspath(path)))


def from_dict(data, cls, where="config", prefix=""):
    """Builds a config dataclass from a nested dict, checking keys and types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{where}: {prefix.rstrip('.') or 'the top level'} must be a "
            f"mapping of keys to values. Received: {data!r}"
        )
    fields = {field.name: field for field in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise ValueError(
                f"{where}: unknown config key {prefix + str(key)!r}. Valid keys "
                f"{'in ' + prefix.rstrip('.') if prefix else 'at the top level'}: "
                f"{', '.join(sorted(fields))}"
            )
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = from_dict(value, hint, where, prefix + key + ".")
        else:
            values[key] = _coerce(value, hint, prefix + key, where)
    return cls(**values)


def _coerce(value, hint, name, where):
    """Checks (and gently converts) a value against a type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None:
            return None
        # The first option that takes the value (`Union[float, str]`: a
        # number if it reads as one), else the first option's error.
        errors = []
        for option in options:
            try:
                return _coerce(value, option, name, where)
            except ValueError as error:
                errors.append(error)
        raise errors[0]
    if hint is list or origin is list:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: {name} must be a list. Received: {value!r}")
        return list(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{where}: {name} must be true or false. Received: {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ValueError(f"{where}: {name} must be an integer. Received: {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):
            # PyYAML reads `1e-3` (no dot) as a string: accept it as a number.
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: {name} must be a number. Received: {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError(f"{where}: {name} must be a string. Received: {value!r}")
        return str(value)
    return value


def apply_overrides(data, overrides, where="--set"):
    """Applies `key=value` strings (dotted keys, YAML values) to a dict."""
    data = dict(data or {})
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(
                f"{where}: expected key=value, like model.backbone=resnet50. "
                f"Received: {item!r}"
            )
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ValueError(f"{where}: {key!r}: {part!r} is not a section")
            node[part] = dict(child)
            node = node[part]
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    return data


def merge(base, update):
    """`base` with `update`'s values, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = merge(merged[key], value)
        merged[key] = value
    return merged


def resolve_paths(data, base):
    """`data` with its `data:` section's paths expanded and made absolute.

    Variables (`$HOME`, `${NAME:-default}`) and `~` are expanded; a relative
    path is taken relative to `base`. The path fields are those of the
    registered data formats (`kmlc.data.sources.path_fields`).
    """
    from kmlc.data.sources import path_fields

    if not isinstance(data, dict):
        return data
    data = dict(data)
    section = data.get("data")
    if isinstance(section, dict):
        section = dict(section)
        for name in path_fields():
            value = section.get(name)
            if isinstance(value, str) and value:
                value = os.path.expanduser(os.path.expandvars(_expand_defaults(value)))
                section[name] = os.path.normpath(os.path.join(base, value))
        data["data"] = section
    return data


_DEFAULTED_VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _expand_defaults(value):
    """Shell-style `${NAME:-default}`: the variable if set, else the default."""
    return _DEFAULTED_VARIABLE.sub(
        lambda m: os.environ.get(m.group(1)) or m.group(2), value
    )
