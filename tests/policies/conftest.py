"""Helpers for rule tests: run one rule through pulumi_policy's public API.

``check(rule, type, props, **settings)`` builds the ``ResourceValidationArgs`` the engine would
pass and returns the violation messages the rule's CrossGuard policy reports.
``check_stack(rule, [(type, name, props), ...], **settings)`` does the same for stack rules and
returns (resource name, message) pairs. Settings start from the rule's dev defaults.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from mlscaffold.policies.crossguard import to_policy
from mlscaffold.policies.registry import RULES

_OPTIONS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def _config(rule: str, profile: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {"enforcementLevel": RULES[rule].level, **RULES[rule].defaults(profile), **settings}


def check(rule: str, resource_type: str, props: Mapping[str, Any], *, name: str = "res",
          profile: str = "dev", **settings: Any) -> list[str]:
    messages: list[str] = []
    args = ResourceValidationArgs(resource_type, unknown_checking_proxy(dict(props)),
                                  f"urn:pulumi:dev::demo::{resource_type}::{name}", name,
                                  _OPTIONS, None, _config(rule, profile, settings))
    to_policy(RULES[rule]).validate(args, lambda message, urn=None: messages.append(message))
    return messages


def check_stack(rule: str, resources: Iterable[tuple[str, str, Mapping[str, Any]]], *,
                profile: str = "dev", **settings: Any) -> list[tuple[str, str]]:
    items = [PolicyResource(t, unknown_checking_proxy(dict(p)), f"urn:pulumi:dev::demo::{t}::{n}",
                            n, _OPTIONS, None, None, [], {}) for t, n, p in resources]
    names = {item.urn: item.name for item in items}
    found: list[tuple[str, str]] = []
    args = StackValidationArgs(items, _config(rule, profile, settings))
    to_policy(RULES[rule]).validate(args, lambda message, urn=None: found.append(
        (names.get(urn or "", ""), message)))
    return found


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DELETE = object()


def changed(props: dict[str, Any], path: str, value: Any = DELETE) -> dict[str, Any]:
    """A deep copy of `props` with `path` (``a.b[0].c``, ``labels["x.io/y"]``) set to `value`,
    or deleted: the failing case is the passing one with one field changed."""
    new = copy.deepcopy(props)
    keys: list[Any] = [quoted or (int(k) if k.isdigit() else k)
                       for quoted, k in re.findall(r'\["([^"]+)"\]|([^.\[\]]+)', path)]
    target: Any = new
    for key in keys[:-1]:
        target = target[key]
    if value is DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return new
