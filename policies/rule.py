"""Rules as data plus one small function: the table both policy packs and `check` are built from.

A rule's check receives a :class:`Subject` (a resource's type, name, URN and inputs under their
wire names, as Pulumi's policy engine passes them) and the rule's config, and yields violation
messages. Each message names the resource, the property and the fix; :func:`violation` builds
them in one shape. Stack rules receive every resource of the stack at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlscaffold.stacks.constants import PROFILES

__all__ = ["RULES", "Rule", "Subject", "rule", "rules_of", "stack_rule", "violation"]

Pack = Literal["security", "cost"]
Severity = Literal["low", "medium", "high", "critical"]
Level = Literal["advisory", "mandatory", "disabled"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Subject:
    """One resource as a check sees it."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]

    @property
    def kind(self) -> str:
        """``aws:s3/bucket:Bucket`` -> ``Bucket``."""
        return self.type.rsplit(":", 1)[-1]


ResourceCheck = Callable[[Subject, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[Sequence[Subject], Mapping[str, Any]], Iterable[tuple[Subject, str]]]


@dataclass(frozen=True)
class Rule:
    """A policy rule: metadata, config schema and its check."""

    name: str
    pack: Pack
    description: str
    severity: Severity
    level: Level
    #: resource types the rule looks at (for stack rules: the types it reads)
    resource_types: tuple[str, ...]
    check: Callable[..., Iterable[Any]]
    #: JSON Schema properties of the rule's settings, each with a default
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stack: bool = False
    #: settings that differ by environment profile (dev, staging, prod) from the schema defaults
    profile_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def defaults(self, profile: str = "dev") -> dict[str, Any]:
        """The rule's settings before any organisation policy file."""
        settings = {key: spec["default"] for key, spec in self.config_schema.items()}
        settings.update(self.profile_defaults.get(profile, {}))
        return settings


RULES: dict[str, Rule] = {}


def _register(new: Rule) -> Rule:
    if not _NAME.match(new.name):
        raise ValueError(f"rule name {new.name!r} is not kebab-case")
    if new.name in RULES:
        raise ValueError(f"rule {new.name!r} is defined twice")
    for key, spec in new.config_schema.items():
        if "default" not in spec:
            raise ValueError(f"rule {new.name!r}: setting {key!r} needs a default")
    for profile, settings in new.profile_defaults.items():
        unknown = set(settings) - set(new.config_schema)
        if profile not in PROFILES or unknown:
            raise ValueError(f"rule {new.name!r}: profile defaults {profile!r} {sorted(unknown)}")
    RULES[new.name] = new
    return new


def rule(name: str, *, pack: Pack, description: str, severity: Severity,
         resource_types: Sequence[str], level: Level = "mandatory",
         config: Mapping[str, Mapping[str, Any]] | None = None,
         profiles: Mapping[str, Mapping[str, Any]] | None = None,
         ) -> Callable[[ResourceCheck], ResourceCheck]:
    """Register a resource rule: ``check(subject, config)`` yields violation messages."""

    def register(check: ResourceCheck) -> ResourceCheck:
        _register(Rule(name, pack, description, severity, level, tuple(resource_types), check,
                       dict(config or {}), profile_defaults=dict(profiles or {})))
        return check

    return register


def stack_rule(name: str, *, pack: Pack, description: str, severity: Severity,
               resource_types: Sequence[str] = (), level: Level = "mandatory",
               config: Mapping[str, Mapping[str, Any]] | None = None,
               profiles: Mapping[str, Mapping[str, Any]] | None = None,
               ) -> Callable[[StackCheck], StackCheck]:
    """Register a stack rule: ``check(subjects, config)`` yields (subject, message) pairs."""

    def register(check: StackCheck) -> StackCheck:
        _register(Rule(name, pack, description, severity, level, tuple(resource_types), check,
                       dict(config or {}), stack=True, profile_defaults=dict(profiles or {})))
        return check

    return register


def rules_of(pack: Pack) -> list[Rule]:
    """The rules of a pack, loaded on first use, in name order."""
    from . import cost, security  # noqa: F401  (importing registers the rules)

    return sorted((r for r in RULES.values() if r.pack == pack), key=lambda r: r.name)


def violation(subject: Subject, prop: str, problem: str, fix: str) -> str:
    """The one shape of a violation message: resource, property, problem, fix."""
    return f"{subject.kind} '{subject.name}': {prop} {problem}; {fix}"
