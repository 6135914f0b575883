"""`check` and `cost`: run a project's stacks under mocks and evaluate the policy packs.

Each stack's rule settings come from :func:`mlscaffold.policies.config.pack_config`: the rules'
defaults for the environment's profile, overridden by the organisation's policy file (the one
recorded in ``mlscaffold.yaml`` or given with ``--policy-config``). The same settings are what
``pulumi preview --policy-pack-config`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .spec import SPEC_FILENAME, ProjectSpec, load_spec

__all__ = ["StackCheck", "check_project", "cost_project", "policy_configs", "resolve_stacks",
           "to_sarif"]


@dataclass
class StackCheck:
    """A stack's findings and the settings they were evaluated with."""

    result: Any  # mlscaffold.policies.engine.CheckResult
    configs: dict[str, dict[str, dict[str, Any]]]


def resolve_stacks(spec: ProjectSpec, stack: str | None) -> list[str]:
    """`--stack ENV|all` as a list of environments (default: all)."""
    if stack in (None, "all"):
        return list(spec.environments)
    if stack not in spec.environments:
        raise UsageError(f"--stack {stack!r} is not an environment of the project",
                         hint=f"use one of: {', '.join(spec.environments)}, or all")
    return [stack]


def _policy_file(project: Path, spec: ProjectSpec, override: Path | None) -> Any:
    from .policies.config import PolicyConfigError, load_policy_file

    path = override or (project / spec.policy_config if spec.policy_config else None)
    if path is None:
        return None
    try:
        return load_policy_file(path)
    except PolicyConfigError as error:
        raise UsageError(str(error), hint="fix the file; `mlscaffold policy schema` prints its "
                                          "JSON Schema") from None


def policy_configs(project: Path, spec: ProjectSpec, stack: str,
                   policy_file_path: Path | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """{pack: --policy-pack-config settings} of both packs for `stack`."""
    from .policies import PACKS
    from .policies.config import pack_config
    from .stacks.config import environment_profile

    policy_file = _policy_file(project, spec, policy_file_path)
    return {pack: pack_config(pack, environment=stack, profile=environment_profile(stack),
                              region=spec.region, policy_file=policy_file) for pack in PACKS}


def check_project(project: Path, stack: str | None = None,
                  policy_file: Path | None = None) -> list[StackCheck]:
    """Evaluate both packs on every requested stack of the project."""
    from .infra import preview_stack
    from .policies.engine import evaluate

    spec = load_spec(project / SPEC_FILENAME)
    checks = []
    for environment in resolve_stacks(spec, stack):
        configs = policy_configs(project, spec, environment, policy_file)
        graph = preview_stack(project, environment)
        checks.append(StackCheck(evaluate(graph, configs), configs))
    return checks


def cost_project(project: Path, stack: str | None = None) -> list[tuple[str, Any]]:
    """(environment, CostEstimate) for every requested stack."""
    from .infra import preview_stack
    from .policies.cost.estimate import estimate

    spec = load_spec(project / SPEC_FILENAME)
    estimates = []
    for environment in resolve_stacks(spec, stack):
        graph = preview_stack(project, environment)
        resources = [(r.type, r.name, r.inputs) for r in graph.resources if r.custom]
        estimates.append((environment, estimate(resources, spec.region)))
    return estimates


_SARIF_LEVEL = {"mandatory": "error", "advisory": "warning", "unknown": "note"}
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def to_sarif(checks: list[StackCheck], version: str) -> dict[str, Any]:
    """SARIF 2.1.0 for code-scanning UIs: one run, results located in the stack's config file."""
    import hashlib

    from sarif_pydantic import (
        ArtifactLocation,
        Location,
        LogicalLocation,
        Message,
        PhysicalLocation,
        Region,
        ReportingConfiguration,
        ReportingDescriptor,
        Result,
        Run,
        Sarif,
        Tool,
        ToolDriver,
    )

    from .policies.registry import RULES

    used = sorted({f.rule for check in checks for f in check.result.findings})
    descriptors = [ReportingDescriptor(
        id=name, name=name, short_description=Message(text=RULES[name].description),
        default_configuration=ReportingConfiguration(
            level=_SARIF_LEVEL.get(RULES[name].level, "warning")),
        properties={"security-severity": _SECURITY_SEVERITY[RULES[name].severity],
                    "tags": [RULES[name].pack, "infrastructure", "pulumi"]},
    ) for name in used]
    index = {name: i for i, name in enumerate(used)}
    results = []
    for check in checks:
        stack = check.result.stack
        for finding in check.result.findings:
            fingerprint = hashlib.sha256(f"{finding.rule}|{finding.urn}|{finding.message}"
                                         .encode()).hexdigest()[:32]
            results.append(Result(
                rule_id=finding.rule, rule_index=index[finding.rule],
                level=_SARIF_LEVEL[finding.level], message=Message(text=finding.message),
                locations=[Location(
                    physical_location=PhysicalLocation(
                        artifact_location=ArtifactLocation(uri=f"infra/Pulumi.{stack}.yaml"),
                        region=Region(start_line=1)),
                    logical_locations=[LogicalLocation(
                        name=finding.resource or stack, fully_qualified_name=finding.urn or stack,
                        kind="resource")])],
                partial_fingerprints={"mlscaffoldFinding/v1": fingerprint},
                properties={"stack": stack, "pack": finding.pack,
                            "resourceType": finding.resource_type},
            ))
    log = Sarif(version="2.1.0",
                schema_uri="https://json.schemastore.org/sarif-2.1.0.json",
                runs=[Run(tool=Tool(driver=ToolDriver(name="mlscaffold", version=version,
                                                      semantic_version=version,
                                                      rules=descriptors)),
                          results=results)])
    return log.model_dump(mode="json", by_alias=True, exclude_none=True)
