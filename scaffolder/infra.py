"""A project's infra/: its stack config files, and running its program offline.

``Pulumi.<env>.yaml`` holds the settings mlscaffold derives from the spec for that environment
(under ``<project>:platform``); users edit it, and ``preview`` validates and runs the program
with it under Pulumi's mocks, as ``pulumi up`` would with the real engine.

A command opens the project once (:func:`open_infra_project`): the spec is parsed and validated
once, the organisation's policy file at most once, and the :class:`InfraProject` goes down to
every stack (and, through :func:`mlscaffold.stacks.project_spec`, to the programs it runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import MlscaffoldError, UsageError, describe_yaml_error
from .spec import SPEC_FILENAME, ProjectSpec, load_spec

__all__ = ["InfraProgramError", "InfraProject", "find_project", "infra_project",
           "open_infra_project", "preview_stack", "stack_config",
           "stack_platform_config"]

PROGRAM = Path("infra") / "__main__.py"
# the in-cluster program: applied through `mlscaffold tunnel` after the base stack
CLUSTER_PROGRAM = Path("infra") / "cluster" / "__main__.py"


class InfraProgramError(MlscaffoldError):
    """The project's infra program failed under mocks."""


def find_project(start: Path) -> Path:
    """The project folder: `start` or the nearest parent holding mlscaffold.yaml."""
    start = start.expanduser().absolute()
    for folder in (start, *start.parents):
        if (folder / SPEC_FILENAME).is_file():
            return folder
    raise UsageError(f"{start} is not inside an mlscaffold project (no {SPEC_FILENAME} found)",
                     hint="pass the project folder, or run `mlscaffold new` first")


@dataclass
class InfraProject:
    """A project as one command sees it: its folder and its spec, loaded once; the
    organisation's policy file read on first use, once."""

    root: Path
    spec: ProjectSpec
    #: the policy file given on the command line (`--policy-config`), over the spec's own
    policy_override: Path | None = None

    @cached_property
    def policy_file(self) -> Any:
        """The validated policy file (a ``PolicyFile``), or None when there is none."""
        from .policies.config import (
            PolicyConfigError,
            check_environment_sections,
            load_policy_file,
        )

        path = self.policy_override or (
            self.root / self.spec.policy_config if self.spec.policy_config else None)
        if path is None:
            return None
        try:
            policy_file = load_policy_file(path)
        except PolicyConfigError as error:
            raise UsageError(str(error), hint="fix the file; `mlscaffold policy schema` prints "
                                              "its JSON Schema") from None
        try:
            check_environment_sections(policy_file, self.spec.environments, path)
        except PolicyConfigError as error:
            raise UsageError(str(error)) from None
        return policy_file


def open_infra_project(start: Path, *, policy_override: Path | None = None) -> InfraProject:
    """The project at `start` or above it (see :func:`find_project`), its spec validated."""
    root = find_project(start)
    return InfraProject(root, load_spec(root / SPEC_FILENAME), policy_override)


def infra_project(project: InfraProject | Path) -> InfraProject:
    """`project` itself, or the project in folder `project`, its spec loaded (for callers that
    hold a path)."""
    if isinstance(project, InfraProject):
        return project
    return InfraProject(project, load_spec(project / SPEC_FILENAME))


def require_environment(spec: ProjectSpec, stack: str, project: Path | None = None, *,
                        all_too: bool = False) -> str:
    """`stack` when it is one of the project's environments; else UsageError naming them and
    the nearest (`project`: name its spec file; `all_too`: the command also takes ``all``)."""
    if stack in spec.environments:
        return stack
    from .suggest import did_you_mean

    where = project / SPEC_FILENAME if project is not None else "the project"
    raise UsageError(f"--stack {stack!r} is not an environment of {where}"
                     f"{did_you_mean(stack, spec.environments)}",
                     hint=f"use one of: {', '.join(spec.environments)}"
                          + (", or all" if all_too else ""))


def stack_config(project: Path, spec: ProjectSpec, stack: str) -> dict[str, str]:
    """The config of `stack` as the Pulumi CLI would pass it: full keys to strings."""
    import yaml

    require_environment(spec, stack, project)
    path = project / "infra" / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist",
                         hint=f"create it with `pulumi stack init {stack}` in infra/") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path} is not valid YAML: {describe_yaml_error(error)}") from None
    raw = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: `config` must be a mapping of keys to values")
    from .stacks.config import StackConfigError, check_config_keys, check_stack_region

    try:
        check_config_keys(spec.name, raw)
        check_stack_region(spec.region, raw)
    except StackConfigError as error:
        raise UsageError(f"infra/Pulumi.{stack}.yaml: {error}") from None
    config = {}
    for key, value in raw.items():
        full_key = key if ":" in key else f"{spec.name}:{key}"
        config[full_key] = value if isinstance(value, str) else json.dumps(value)
    return config


def stack_platform_config(project: Path, spec: ProjectSpec, stack: str) -> Any:
    """The validated PlatformConfig of `stack`: the spec's settings for the environment,
    overridden by ``infra/Pulumi.<stack>.yaml`` (as the stack's program builds it)."""
    from .stacks.config import PLATFORM_KEY, StackConfigError, platform_config

    raw = stack_config(project, spec, stack).get(f"{spec.name}:{PLATFORM_KEY}")
    try:
        overrides = json.loads(raw) if raw is not None else None
        return platform_config(spec, stack, overrides)
    except StackConfigError as error:
        raise UsageError(f"infra/Pulumi.{stack}.yaml: {error}") from None


def _with_model_stand_in(config: dict[str, str], project: str) -> dict[str, str]:
    """Offline, a stack without ``platform.serving.model_key`` (as `new` writes it, before a
    model was ever uploaded) is built with the stand-in key `pulumi preview` uses."""
    from .stacks.config import PLATFORM_KEY
    from .stacks.model_keys import STAND_IN_MODEL_KEY

    key = f"{project}:{PLATFORM_KEY}"
    platform = json.loads(config[key]) if key in config else {}
    if not isinstance(platform, dict) or not isinstance(platform.get("serving", {}), dict):
        return config  # invalid: the program reports it with the key
    if platform.get("serving", {}).get("model_key") is not None:
        return config
    serving = {**platform.get("serving", {}), "model_key": STAND_IN_MODEL_KEY}
    return {**config, key: json.dumps({**platform, "serving": serving})}


def preview_stack(project: InfraProject | Path, stack: str) -> Any:
    """Run the project's infra programs for `stack` under mocks; returns one ResourceGraph.

    The base program (``infra/``) runs first; when its outputs describe a cluster, the
    in-cluster program (``infra/cluster/``) runs next with them as its StackReference, as the
    real deployment does, and the graph holds the resources of both (outputs: the base's).
    Serving without a model key is built with the stand-in key, as `pulumi preview` does.
    The programs get the project's loaded spec from :func:`mlscaffold.stacks.project_spec`.
    A path instead of an :class:`InfraProject` loads the spec first.
    """
    from .graph import merge_graphs, stack_reference_name
    from .stacks.program import spec_provided

    opened = infra_project(project)
    root, spec = opened.root, opened.spec
    config = _with_model_stand_in(stack_config(root, spec, stack), spec.name)
    region = config.get("aws:region", spec.region)
    program = root / PROGRAM
    if not program.is_file():
        raise UsageError(f"{program} does not exist", hint="the project has no Pulumi program")
    with spec_provided(root, spec):
        base = _run_program(program, spec.name, stack, config, region)
        inner_program = root / CLUSTER_PROGRAM
        if "cluster" not in base.outputs or not inner_program.is_file():
            return base
        inner = _run_program(inner_program, f"{spec.name}-cluster", stack, {}, region,
                             stack_references={stack_reference_name(spec.name, stack):
                                               base.outputs})
    return merge_graphs(base, inner)


def _run_program(program: Path, project: str, stack: str, config: dict[str, str], region: str,
                 stack_references: dict[str, Any] | None = None) -> Any:
    from .graph import ProgramError, run_program
    from .stacks.config import StackConfigError
    from .stacks.feature_schema import FeatureSchemaError

    try:
        return run_program(program, project=project, stack=stack, config=config,
                           region=region, stack_references=stack_references)
    except ProgramError as failure:
        if isinstance(failure.error, StackConfigError):
            raise UsageError(f"infra/Pulumi.{stack}.yaml: {failure.error}") from None
        if isinstance(failure.error, FeatureSchemaError):  # the data, not the program
            raise UsageError(str(failure.error),
                             hint="`mlscaffold features schema` shows what is derived") from None
        where = f" at {failure.location}" if failure.location else ""
        raise InfraProgramError(
            f"infra program of stack {stack} failed{where}: {failure}",
            hint="fix the program; it runs the same way under `pulumi up`",
            details=failure.traceback) from None
