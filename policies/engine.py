"""Evaluate the packs on a resource graph offline, through pulumi_policy's public API.

Each resource becomes a ``ResourceValidationArgs`` with its inputs behind pulumi_policy's
unknown-checking proxy; each stack rule gets a ``StackValidationArgs``. A rule that reads a
value unknown before deployment is reported as the engine does: an advisory note, not a
violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from .crossguard import to_policy
from .registry import RULES
from .rule import Rule

__all__ = ["CheckResult", "Finding", "evaluate"]


@dataclass(frozen=True)
class Finding:
    """A violation (or, with level 'unknown', a rule that could not run before deployment)."""

    rule: str
    pack: str
    severity: str
    level: str
    urn: str
    resource: str
    resource_type: str
    message: str


@dataclass
class CheckResult:
    """Findings of every pack on one stack."""

    project: str
    stack: str
    resources: int
    rules: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "mandatory"]

    @property
    def passed(self) -> bool:
        return not self.mandatory

    def as_dict(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack, "resources": self.resources,
                "rules": self.rules, "passed": self.passed,
                "findings": [asdict(f) for f in self.findings]}


def _options(parent: str | None) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None,
                                 aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
                                 additional_secret_outputs=[], parent=parent)


def _finding(rule: Rule, level: str, resource: Any | None, message: str) -> Finding:
    """A finding on `resource` (None: on the stack as a whole)."""
    return Finding(rule.name, rule.pack, rule.severity, level,
                   resource.urn if resource else "", resource.name if resource else "",
                   resource.type if resource else "", message)


def _policy_resources(resources: list[Any]) -> list[PolicyResource]:
    return [PolicyResource(r.type, unknown_checking_proxy(r.inputs), r.urn, r.name,
                           _options(r.parent), None, None, [], {}) for r in resources]


def evaluate(graph: Any, configs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> CheckResult:
    """Run every enabled rule of the packs in `configs` ({pack: pack_config}) on `graph`."""
    rules = [RULES[name] for pack in configs for name in configs[pack]
             if configs[pack][name].get("enforcementLevel", "mandatory") != "disabled"]
    resources = [r for r in graph.resources if r.custom]
    result = CheckResult(graph.project, graph.stack, len(resources), len(rules))
    by_urn = {r.urn: r for r in resources}
    of_type: dict[str, list[Any]] = {}
    for resource in resources:
        of_type.setdefault(resource.type, []).append(resource)
    stack_resources: list[PolicyResource] = []  # built for the first stack rule

    for rule in rules:
        config = configs[rule.pack][rule.name]
        level = config.get("enforcementLevel", rule.level)
        policy = to_policy(rule)
        if rule.stack:
            stack_resources = stack_resources or _policy_resources(resources)
            try:
                policy.validate(StackValidationArgs(stack_resources, config),
                                lambda message, urn=None, rule=rule, level=level:
                                result.findings.append(
                                    _finding(rule, level, by_urn.get(urn or ""), message)))
            except UnknownValueError as error:
                result.findings.append(_finding(rule, "unknown", None, error.message))
            continue
        for resource in (r for t in rule.resource_types for r in of_type.get(t, ())):
            args = ResourceValidationArgs(resource.type, unknown_checking_proxy(resource.inputs),
                                          resource.urn, resource.name, _options(resource.parent),
                                          None, config)
            try:
                policy.validate(args, lambda message, urn=None, rule=rule, level=level,
                                resource=resource: result.findings.append(
                                    _finding(rule, level, resource, message)))
            except UnknownValueError as error:
                result.findings.append(_finding(rule, "unknown", resource, error.message))
    result.findings.sort(key=lambda f: (f.level != "mandatory", f.resource, f.rule))
    return result
