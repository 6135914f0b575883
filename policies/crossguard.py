"""The rule table as Pulumi CrossGuard policies, for the packs and for offline evaluation.

The same ``ResourceValidationPolicy`` / ``StackValidationPolicy`` objects run in Pulumi's engine
(``pulumi preview --policy-pack``) and in ``mlscaffold check``, which feeds them the mocked
graph through pulumi_policy's public argument types.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from .registry import rules_of
from .rule import Rule, Subject

__all__ = ["pack_policies", "to_policy"]


def _settings(args: Any) -> dict[str, Any]:
    return {k: v for k, v in args.get_config().items() if k != "enforcementLevel"}


def to_policy(rule: Rule) -> ResourceValidationPolicy | StackValidationPolicy:
    """The CrossGuard policy of a rule."""
    common: dict[str, Any] = {
        "name": rule.name,
        "description": rule.description,
        "enforcement_level": EnforcementLevel(rule.level),
        "severity": Severity(rule.severity),
        "config_schema": PolicyConfigSchema(properties={k: dict(v) for k, v in
                                                        rule.config_schema.items()})
        if rule.config_schema else None,
    }
    if rule.stack:
        def validate_stack(args: StackValidationArgs, report: ReportViolation) -> None:
            subjects = [Subject(r.resource_type, r.name, r.urn, r.props) for r in args.resources]
            for subject, message in rule.check(subjects, _settings(args)):
                report(message, subject.urn)

        return StackValidationPolicy(validate=validate_stack, **common)

    types = frozenset(rule.resource_types)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in types:
            return
        subject = Subject(args.resource_type, args.name, args.urn, args.props)
        for message in rule.check(subject, _settings(args)):
            report(message, None)

    return ResourceValidationPolicy(validate=validate, **common)


def pack_policies(pack: str) -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """Every policy of a pack, for its ``__main__.py``."""
    return [to_policy(rule) for rule in rules_of(pack)]  # type: ignore[arg-type]
