"""Reading resource inputs in rules: tolerant of missing keys, old schema shapes and values
that are unknown before deployment (pulumi_policy raises UnknownValueError on access)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

__all__ = ["as_mapping", "condition_keys", "document", "is_false", "is_set", "is_true", "items_of",
           "number", "one_or_many", "statements"]


def is_set(props: Mapping[str, Any], key: str) -> bool:
    """Whether `key` holds a value (not None, "" or empty); unknown before deployment counts
    as set: it comes from another resource of the program."""
    if key not in list(props):
        return False
    try:
        value = props[key]
    except UnknownValueError:
        return True
    if isinstance(value, str):
        return value != ""
    if isinstance(value, Sequence | Mapping):
        return len(value) > 0
    return value is not None


def as_mapping(value: Any) -> Mapping[str, Any]:
    """An object input; a one-element list (older provider schemas) is read as its element."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0:
        return as_mapping(value[0])
    return {}


def items_of(value: Any) -> list[Any]:
    """A list input; anything else is empty."""
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def one_or_many(value: Any) -> list[Any]:
    """A value that may be one string or a list of them (IAM Action, Resource)."""
    return [value] if isinstance(value, str) else items_of(value)


def is_true(value: Any) -> bool:
    """A boolean input; some providers pass booleans as the strings "true"/"false"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def number(value: Any) -> float | None:
    """A numeric input (ints arrive as floats on the wire); None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def document(value: Any) -> Mapping[str, Any]:
    """A JSON policy document given as text or as an object; {} when it is neither."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def statements(policy: Any) -> list[Mapping[str, Any]]:
    """The statements of a policy document (text or object); a lone statement counts as one."""
    found = document(policy).get("Statement")
    return [as_mapping(s) for s in ([found] if isinstance(found, Mapping) else one_or_many(found))]


def condition_keys(condition: Any) -> set[str]:
    """The condition keys (lower-case) a statement's Condition tests in earnest: operators
    ending in ``IfExists`` pass when the key is absent, and a value of only ``*`` matches
    anything, so neither counts."""
    keys: set[str] = set()
    for operator, tests in as_mapping(condition).items():
        if str(operator).lower().endswith("ifexists"):
            continue
        for key, value in as_mapping(tests).items():
            values = [str(v) for v in ([value] if isinstance(value, str | bool | int | float)
                                       else one_or_many(value))]
            if values and any(v != "*" for v in values):
                keys.add(str(key).lower())
    return keys
