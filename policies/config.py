"""Each rule's settings for an environment: defaults, profile defaults, the org's policy file.

Resolution, later wins: the rule's schema defaults; its defaults for the environment's profile
(dev, staging, prod); the policy file's ``rules``; the policy file's
``environments.<env>``. Context settings (``region``, ``environment``) come from the project.
The result per pack is exactly what ``pulumi preview --policy-pack-config`` takes.

A policy file (YAML or JSON)::

    version: 1
    rules:
      s3-bucket-versioning: {enforcementLevel: advisory}
      required-tags: {tags: [project, env, owner, cost-center, team]}
    environments:
      prod:
        monthly-budget: {budget_usd: 25000}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..suggest import nearest, offer, unknown_key_message, value_message
from ..yamlfiles import describe_yaml_error
from .registry import RULES, rules_of
from .rule import Rule

__all__ = ["CONTEXT_SETTINGS", "PolicyConfigError", "PolicyFile", "check_environment_sections",
           "load_policy_file", "pack_config", "policy_file_schema"]

LEVELS = ("advisory", "mandatory", "disabled")
POLICY_FILE_VERSION = 1
# settings a rule may declare that mlscaffold fills from the project, not from files
CONTEXT_SETTINGS = ("region", "environment")

RuleSettings = dict[str, Any]


class PolicyConfigError(ValueError):
    """A policy file is invalid: the message names the key and the fix."""


def _rule_schema(rule: Rule) -> dict[str, Any]:
    properties = {k: dict(v) for k, v in rule.config_schema.items() if k not in CONTEXT_SETTINGS}
    properties["enforcementLevel"] = {"enum": list(LEVELS)}
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "description": rule.description}


def _check_rules(rules: dict[str, RuleSettings], where: str) -> dict[str, RuleSettings]:
    import jsonschema

    for name, settings in rules.items():
        if name not in RULES:
            raise ValueError(f"{where}: unknown rule {name!r}; `mlscaffold policy list` shows "
                             "the rules")
        try:
            jsonschema.validate(settings, _rule_schema(RULES[name]))
        except jsonschema.ValidationError as error:
            path = ".".join(str(p) for p in error.absolute_path)
            key = f"{where}.{name}" + (f".{path}" if path else "")
            raise ValueError(f"{key}: {error.message}") from None
    return rules


class PolicyFile(BaseModel):
    """An organisation's policy settings, for every environment and per environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    rules: dict[str, RuleSettings] = Field(default_factory=dict)
    environments: dict[str, dict[str, RuleSettings]] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != POLICY_FILE_VERSION:
            raise ValueError(f"version: {version} is not supported; this mlscaffold reads "
                             f"version {POLICY_FILE_VERSION}")
        return version

    @field_validator("rules")
    @classmethod
    def _valid_rules(cls, rules: dict[str, RuleSettings]) -> dict[str, RuleSettings]:
        return _check_rules(rules, "rules")

    @field_validator("environments")
    @classmethod
    def _valid_environments(cls, environments: dict[str, dict[str, RuleSettings]]
                            ) -> dict[str, dict[str, RuleSettings]]:
        for environment, rules in environments.items():
            _check_rules(rules, f"environments.{environment}")
        return environments


def load_policy_file(path: Path) -> PolicyFile:
    """Read and validate a policy file (YAML or JSON); errors name the file and the key."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyConfigError(f"policy config {path} cannot be read: {error.strerror}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise PolicyConfigError(f"policy config {path} is not valid JSON: {error}") from None
    except yaml.YAMLError as error:
        raise PolicyConfigError(f"policy config {path} is not valid YAML: "
                                f"{describe_yaml_error(error)}") from None
    if not isinstance(raw or {}, dict):
        raise PolicyConfigError(f"policy config {path} must hold a mapping of version, rules "
                                "and environments")
    try:
        return PolicyFile.model_validate(raw or {})
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        if first["type"] == "extra_forbidden":
            message = unknown_key_message(PolicyFile, tuple(first["loc"]))
        elif first["type"] == "value_error":  # our own checks name the key
            message = value_message(first)
        else:
            key = ".".join(str(part) for part in first["loc"]) or "the file"
            message = f"{key}: {value_message(first)}"
        raise PolicyConfigError(f"policy config {path}: {message}") from None


def check_environment_sections(policy_file: PolicyFile, environments: list[str],
                               source: object) -> None:
    """Refuse a section of ``environments:`` that looks like a misspelt environment of this
    project: its settings would apply to no stack, silently. One organisation's file serves
    projects with different environments, so a section that is close to none of this project's
    (another project's), or whose nearest environment has its own section too, is left alone."""
    for key in policy_file.environments:
        match = None if key in environments else nearest(key, environments)
        if match is not None and match not in policy_file.environments:
            raise PolicyConfigError(
                f"policy config {source}: environments.{key} is not an environment of this "
                f"project{offer(match)}, so its settings would apply to no stack; rename it to "
                f"one of: {', '.join(environments)}")


def pack_config(pack: str, *, environment: str, profile: str, region: str,
                policy_file: PolicyFile | None = None) -> dict[str, dict[str, Any]]:
    """Every rule of `pack` with its settings and enforcement level for `environment`."""
    policy_file = policy_file or PolicyFile()
    context = {"region": region, "environment": environment}
    config = {}
    for rule in rules_of(pack):  # type: ignore[arg-type]
        settings: dict[str, Any] = {"enforcementLevel": rule.level, **rule.defaults(profile)}
        settings.update(policy_file.rules.get(rule.name, {}))
        settings.update(policy_file.environments.get(environment, {}).get(rule.name, {}))
        settings.update({k: v for k, v in context.items() if k in rule.config_schema})
        config[rule.name] = settings
    return config


def policy_file_schema() -> dict[str, Any]:
    """JSON Schema of a policy file, with every rule's settings."""
    rules = {r.name: _rule_schema(r) for pack in ("security", "cost") for r in rules_of(pack)}
    rule_map = {"type": "object", "properties": rules, "additionalProperties": False}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mlscaffold policy config",
        "type": "object",
        "properties": {"version": {"const": POLICY_FILE_VERSION}, "rules": rule_map,
                       "environments": {"type": "object", "additionalProperties": rule_map}},
        "additionalProperties": False,
    }


def settings_of(config: Mapping[str, Mapping[str, Any]], rule: str) -> dict[str, Any]:
    """A rule's settings from a pack config, without its enforcement level."""
    return {k: v for k, v in config[rule].items() if k != "enforcementLevel"}
