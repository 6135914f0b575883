"""Helpers for rule tests: run one rule through pulumi_policy's public API.

``check(rule, type, props, **settings)`` builds the ``ResourceValidationArgs`` the engine would
pass and returns the violation messages the rule's CrossGuard policy reports.
``check_stack(rule, [(type, name, props), ...], **settings)`` does the same for stack rules and
returns (resource name, message) pairs. Settings start from the rule's dev defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from mlscaffold.policies.rule import RULES, rules_of

rules_of("security")  # load the table

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
