"""Rules as data plus one small function: what both policy packs and `check` are built from.

A rule's check receives a :class:`Subject` (a resource's type, name, URN and inputs under their
wire names, as Pulumi's policy engine passes them) and the rule's config, and yields violation
messages. Each message names the resource, the property and the fix; :func:`violation` builds
them in one shape. Stack rules receive every resource of the stack at once. Defining a rule
registers nothing: :mod:`.registry` lists every rule of every domain, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlscaffold.stacks.constants import PROFILES

__all__ = ["Rule", "Subject", "rule", "stack_rule", "violation"]

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
    """A policy rule: metadata, config schema and its check. Made by :func:`rule` or
    :func:`stack_rule`; the packs hold the rules :mod:`.registry` lists."""

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

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"rule name {self.name!r} is not kebab-case")
        for key, spec in self.config_schema.items():
            if "default" not in spec:
                raise ValueError(f"rule {self.name!r}: setting {key!r} needs a default")
        for profile, settings in self.profile_defaults.items():
            unknown = set(settings) - set(self.config_schema)
            if profile not in PROFILES or unknown:
                raise ValueError(f"rule {self.name!r}: profile defaults {profile!r} "
                                 f"{sorted(unknown)}")

    def defaults(self, profile: str = "dev") -> dict[str, Any]:
        """The rule's settings before any organisation policy file."""
        settings = {key: spec["default"] for key, spec in self.config_schema.items()}
        settings.update(self.profile_defaults.get(profile, {}))
        return settings


def rule(name: str, *, pack: Pack, description: str, severity: Severity,
         resource_types: Sequence[str], level: Level = "mandatory",
         config: Mapping[str, Mapping[str, Any]] | None = None,
         profiles: Mapping[str, Mapping[str, Any]] | None = None,
         ) -> Callable[[ResourceCheck], Rule]:
    """Make a resource rule of a check: ``check(subject, config)`` yields violation messages.

    The decorated name is the :class:`Rule`; :mod:`.registry` lists it to put it in a pack.
    """

    def make(check: ResourceCheck) -> Rule:
        return Rule(name, pack, description, severity, level, tuple(resource_types), check,
                    dict(config or {}), profile_defaults=dict(profiles or {}))

    return make


def stack_rule(name: str, *, pack: Pack, description: str, severity: Severity,
               resource_types: Sequence[str] = (), level: Level = "mandatory",
               config: Mapping[str, Mapping[str, Any]] | None = None,
               profiles: Mapping[str, Mapping[str, Any]] | None = None,
               ) -> Callable[[StackCheck], Rule]:
    """Make a stack rule of a check: ``check(subjects, config)`` yields (subject, message)
    pairs."""

    def make(check: StackCheck) -> Rule:
        return Rule(name, pack, description, severity, level, tuple(resource_types), check,
                    dict(config or {}), stack=True, profile_defaults=dict(profiles or {}))

    return make


def violation(subject: Subject, prop: str, problem: str, fix: str) -> str:
    """The one shape of a violation message: resource, property, problem, fix."""
    return f"{subject.kind} '{subject.name}': {prop} {problem}; {fix}"
