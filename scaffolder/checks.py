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

from .infra import InfraProject, infra_project, preview_stack, require_environment
from .spec import ProjectSpec

__all__ = ["StackCheck", "check_project", "check_stack", "cost_project", "cost_stack",
           "policy_configs", "resolve_stacks", "to_sarif"]


@dataclass
class StackCheck:
    """A stack's findings and the settings they were evaluated with."""

    result: Any  # mlscaffold.policies.engine.CheckResult
    configs: dict[str, dict[str, dict[str, Any]]]


def resolve_stacks(spec: ProjectSpec, stack: str | None) -> list[str]:
    """`--stack ENV|all` as a list of environments (default: all)."""
    if stack in (None, "all"):
        return list(spec.environments)
    return [require_environment(spec, stack, all_too=True)]


def policy_configs(project: InfraProject,
                   stack: str) -> dict[str, dict[str, dict[str, Any]]]:
    """{pack: --policy-pack-config settings} of both packs for `stack`."""
    from .policies import PACKS
    from .policies.config import pack_config
    from .stacks.config import environment_profile

    return {pack: pack_config(pack, environment=stack,
                              profile=environment_profile(stack, project.spec.environments),
                              region=project.spec.region, policy_file=project.policy_file)
            for pack in PACKS}


def check_stack(project: InfraProject, environment: str) -> StackCheck:
    """Evaluate both packs on one stack of the project."""
    from .policies.engine import evaluate

    configs = policy_configs(project, environment)
    return StackCheck(evaluate(preview_stack(project, environment), configs), configs)


def check_project(project: InfraProject | Path, stack: str | None = None) -> list[StackCheck]:
    """Evaluate both packs on every requested stack of the project."""
    opened = infra_project(project)
    return [check_stack(opened, environment) for environment in resolve_stacks(opened.spec, stack)]


def cost_stack(project: InfraProject, environment: str) -> Any:
    """The CostEstimate of one stack."""
    from .policies.cost.estimate import estimate

    graph = preview_stack(project, environment)
    return estimate([(r.type, r.name, r.inputs) for r in graph.resources if r.custom],
                    project.spec.region)


def cost_project(project: InfraProject | Path, stack: str | None = None) -> list[tuple[str, Any]]:
    """(environment, CostEstimate) for every requested stack."""
    opened = infra_project(project)
    return [(environment, cost_stack(opened, environment))
            for environment in resolve_stacks(opened.spec, stack)]


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
