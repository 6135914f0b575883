"""CI/CD pipelines for a project, from the shared templates in ``templates/ci``.

The templates are Copier templates that every bundled blueprint renders (they are overlaid on
it: :func:`mlscaffold.project.export_blueprint`), so ``mlscaffold new`` and ``mlscaffold
update`` write the pipelines as Copier renders them, and ``mlscaffold ci`` writes the same
render into an existing repository (:func:`write_pipeline`). Their facts (pinned actions, tool
versions, the default branch) are the computed answers of ``templates/ci/copier-ci.yml``,
read here too; the deployment order is :func:`deploy_stages`, passed as an answer.

The pipelines call the project's Makefile targets (``make check``, ``make deploy`` ...), so
what CI runs is what a developer runs.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import UsageError
from .spec import SPEC_FILENAME, ProjectSpec

__all__ = [
    "ACTIONS",
    "DEFAULT_BRANCH",
    "DOWNLOADS",
    "PIPELINE_FILES",
    "TOOLS",
    "CiResult",
    "DeployStage",
    "FileChange",
    "PipelineConflictError",
    "deploy_stages",
    "make_targets_called",
    "makefile_targets",
    "pipeline_commands",
    "render_pipeline",
    "write_pipeline",
]

# provider -> the pipeline files in the project (rendered from templates/ci by the blueprint)
PIPELINE_FILES: dict[str, tuple[str, ...]] = {
    "github": (".github/workflows/ci.yml", ".github/workflows/drift.yml"),
    "gitlab": (".gitlab-ci.yml",),
    "none": (),
}


def _ci_facts() -> dict[str, Any]:
    """The computed answers of templates/ci/copier-ci.yml: the one table of the pipelines' pins,
    which the templates render and the tests and tools here read."""
    from importlib.resources import files

    import yaml

    text = (files("mlscaffold.templates") / "ci" / "copier-ci.yml").read_text(encoding="utf-8")
    return {key: question["default"] for key, question in yaml.safe_load(text).items()}


_FACTS = _ci_facts()
# The branch whose pushes train and deploy (mlscaffold makes repositories with it).
DEFAULT_BRANCH: str = _FACTS["default_branch"]
# GitHub Actions the workflows use: key -> (action, full commit SHA or None, release)
ACTIONS: dict[str, tuple[str, str | None, str]] = {
    key: (pin["action"], pin["commit"], pin["release"])
    for key, pin in _FACTS["ci_actions"].items()}
# Versions of the tools the pipelines install or run, for both providers.
TOOLS: dict[str, str] = _FACTS["ci_tools"]
# The only downloads a pipeline makes outside a package manager, each pinned by version.
DOWNLOADS: dict[str, str] = _FACTS["ci_downloads"]


@dataclass(frozen=True)
class DeployStage:
    """One environment in the deployment chain of the main branch."""

    name: str
    profile: str
    production: bool  # behind a manual approval; gets the model promoted to production
    previous: str | None  # the environment deployed just before, if any

    @property
    def model_stage(self) -> str:
        """The model registry stage this environment serves."""
        return "production" if self.production else "staging"


def deploy_stages(environments: Iterable[str]) -> list[DeployStage]:
    """The environments in deployment order, production ones marked.

    Production is what the stacks size as production: the one rule of
    :func:`mlscaffold.stacks.config.environment_profiles` (environments named like production,
    else the last of several). A single non-production environment deploys without approval.
    """
    from .stacks.config import environment_profiles

    names = list(environments)
    profiles = environment_profiles(names)
    return [DeployStage(name, profiles[name], profiles[name] == "prod",
                        names[i - 1] if i else None) for i, name in enumerate(names)]


def render_pipeline(spec: ProjectSpec, provider: str | None = None) -> dict[Path, str]:
    """The pipeline files of `provider` (default: the spec's) as {relative path: content},
    rendered by Copier from the bundled blueprint, as `new` renders them."""
    provider = provider or spec.ci
    if provider not in PIPELINE_FILES:
        raise UsageError(f"CI provider {provider!r} is not known",
                         hint=f"use one of: {', '.join(p for p in PIPELINE_FILES if p != 'none')}")
    if not PIPELINE_FILES[provider]:
        return {}
    import tempfile

    from .project import blueprint_source, render_into

    with tempfile.TemporaryDirectory(prefix="mlscaffold-ci-") as folder:
        target = Path(folder) / "render"
        render_into(target, spec.model_copy(update={"ci": provider}), blueprint_source(None))
        return {Path(name): (target / name).read_text(encoding="utf-8")
                for name in PIPELINE_FILES[provider]}


# ---------------------------------------------------------------- what a pipeline runs

_COMMAND_KEYS = frozenset({"run", "script", "before_script", "after_script"})
_SHELL_SEPARATORS = re.compile(r"\$\(|\)|&&|\|\||[;|`]")
_MAKE_RULE = re.compile(r"^([A-Za-z0-9][\w.%/-]*(?:[ \t]+[A-Za-z0-9][\w.%/-]*)*)[ \t]*::?(?!=)",
                        re.MULTILINE)


def _command_texts(node: Any, key: str | None = None) -> Iterable[str]:
    if isinstance(node, dict):
        for child_key, child in node.items():
            yield from _command_texts(child, str(child_key))
    elif isinstance(node, list):
        for child in node:
            yield from _command_texts(child, key)
    elif isinstance(node, str) and key in _COMMAND_KEYS:
        yield node


def pipeline_commands(files: Mapping[Path, str]) -> list[str]:
    """Every shell command line of the pipeline files (``run:``, ``script:`` and the like).

    Continued lines (ending in a backslash) are joined; comments and blank lines dropped.
    """
    import yaml

    lines: list[str] = []
    for path, text in files.items():
        if path.name == SPEC_FILENAME:
            continue
        for block in _command_texts(yaml.safe_load(text)):
            for line in re.sub(r"[ \t]*\\\n\s*", " ", block).splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    lines.append(line)
    return lines


def _simple_commands(line: str) -> Iterable[list[str]]:
    for part in _SHELL_SEPARATORS.split(line):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        while words and re.match(r"^[A-Za-z_]\w*=", words[0]):  # VAR=value command
            words = words[1:]
        if words:
            yield words


def make_targets_called(commands: Iterable[str]) -> set[str]:
    """The make targets the command lines run (``make lint``, ``$(make -s best)`` ...)."""
    targets = set()
    for line in commands:
        for words in _simple_commands(line):
            if words[0] == "make":
                targets.update(w for w in words[1:] if not w.startswith("-") and "=" not in w)
    return targets


def makefile_targets(text: str) -> set[str]:
    """The targets a Makefile defines (explicit rules only; pattern rules are skipped)."""
    targets = set()
    for match in _MAKE_RULE.finditer(text):
        targets.update(name for name in match.group(1).split()
                       if "%" not in name and not name.startswith("."))
    return targets


# ---------------------------------------------------------------- mlscaffold ci

ChangeStatus = Literal["create", "update", "unchanged", "conflict"]


@dataclass(frozen=True)
class FileChange:
    """A file `mlscaffold ci` writes: its path in the project, what happens to it, the diff."""

    path: Path
    status: ChangeStatus
    diff: str = ""


@dataclass(frozen=True)
class CiResult:
    """What :func:`write_pipeline` did (or, on a dry run or a conflict, would do)."""

    project: Path
    provider: str
    spec: ProjectSpec
    changes: list[FileChange]
    written: bool
    notes: list[str] = field(default_factory=list)
    missing_targets: list[str] = field(default_factory=list)

    def with_status(self, *statuses: ChangeStatus) -> list[FileChange]:
        return [change for change in self.changes if change.status in statuses]

    @property
    def conflicts(self) -> list[FileChange]:
        return self.with_status("conflict")


class PipelineConflictError(UsageError):
    """Pipeline files exist with other content and ``force`` was not given.

    ``result`` holds the diffs; nothing was written.
    """

    def __init__(self, result: CiResult) -> None:
        names = ", ".join(change.path.as_posix() for change in result.conflicts)
        one = len(result.conflicts) == 1
        super().__init__(
            f"{names} {'differs' if one else 'differ'} from the pipeline mlscaffold would write",
            hint="see the diff above; pass --force to overwrite "
                 f"{'it' if one else 'them'}, or --dry-run to write nothing")
        self.result = result


def _diff(path: Path, old: str | None, new: str) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile="/dev/null" if old is None else f"a/{path.as_posix()}",
        tofile=f"b/{path.as_posix()}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return path.read_bytes().decode("utf-8", errors="replace")


def _spec_for(project: Path, provider: str | None, spec_values: Mapping[str, Any],
              dry_run: bool) -> tuple[ProjectSpec, str, str | None, list[str]]:
    """(spec, provider, mlscaffold.yaml text to write or None, notes)."""
    from .spec import load_spec, validate_spec

    given = {key: value for key, value in spec_values.items() if value is not None}
    spec_path = project / SPEC_FILENAME
    if spec_path.is_file():
        if given:
            options = ", ".join("--" + key.replace("_", "-") for key in given)
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{spec_path} exists, and {options} {verb} only to a repository "
                             f"without one", hint=f"edit {SPEC_FILENAME} instead, or leave out "
                                                  f"{options}")
        spec = load_spec(spec_path)
        chosen = provider or spec.ci
        if chosen == "none":
            raise UsageError(f"{spec_path} says ci: none",
                             hint="pass --provider github or --provider gitlab")
        notes = []
        if chosen != spec.ci:
            notes.append(f"{SPEC_FILENAME} says ci: {spec.ci}; left as it is (set ci: "
                         f"{chosen} there to record the change)")
        return spec, chosen, None, notes
    if provider is None:
        raise UsageError(f"{project} has no {SPEC_FILENAME}, so the CI provider is not known",
                         hint="pass --provider github or --provider gitlab")
    spec = validate_spec({"name": project.name, **given, "ci": provider})
    verb = "would write" if dry_run else "wrote"
    return spec, provider, spec.to_yaml(), [f"{verb} the spec the pipeline reads to "
                                            f"{SPEC_FILENAME}; review it"]


def _repository_notes(project: Path, files: Mapping[Path, str]) -> tuple[list[str], list[str]]:
    """(make targets the pipeline runs that the project's Makefile lacks, notes on them)."""
    called = sorted(make_targets_called(pipeline_commands(files)))
    makefile = _read(project / "Makefile")
    notes = []
    if makefile is None:
        missing = called
        if called:
            notes.append(f"there is no Makefile; the pipeline runs make targets "
                         f"{', '.join(called)} (an mlscaffold project's Makefile has them all)")
    else:
        missing = sorted(set(called) - makefile_targets(makefile))
        if missing:
            notes.append(f"the Makefile lacks targets the pipeline runs: {', '.join(missing)}")
    if not (project / "infra" / "__main__.py").is_file():
        notes.append("infra/ has no Pulumi program: the policy, preview and deploy jobs need "
                     "one (`mlscaffold new` makes it)")
    return missing, notes


def write_pipeline(project: Path, provider: str | None = None, *, force: bool = False,
                   dry_run: bool = False,
                   spec_values: Mapping[str, Any] | None = None) -> CiResult:
    """Write the CI/CD pipeline of `provider` into the repository at `project`.

    With an ``mlscaffold.yaml`` the pipeline follows it (`provider` defaults to its ``ci``);
    without one, `spec_values` (name, task, label, metric, serving, region, environments)
    and the defaults make a spec, written to ``mlscaffold.yaml`` too. Files that exist with
    other content are only replaced with `force`; otherwise :class:`PipelineConflictError`
    is raised, carrying the diffs, and nothing is written. `dry_run` writes nothing and
    returns the same result. Writes are atomic, file by file.
    """
    from .files import atomic_write_text

    project = project.expanduser().absolute()
    if not project.is_dir():
        raise UsageError(f"{project} is not a folder",
                         hint="pass the folder of the repository to add the pipeline to")
    spec, provider, spec_text, notes = _spec_for(project, provider, spec_values or {},
                                                 dry_run)
    rendered = render_pipeline(spec, provider)
    planned: dict[Path, str] = {}
    changes = []
    if spec_text is not None:
        planned[Path(SPEC_FILENAME)] = spec_text
        changes.append(FileChange(Path(SPEC_FILENAME), "create",
                                  _diff(Path(SPEC_FILENAME), None, spec_text)))
    for relative, content in rendered.items():
        current = _read(project / relative)
        if current is None:
            status: ChangeStatus = "create"
        elif current == content:
            status = "unchanged"
        else:
            status = "update" if force else "conflict"
        changes.append(FileChange(relative, status,
                                  "" if status == "unchanged" else _diff(relative, current,
                                                                         content)))
        if status in ("create", "update"):
            planned[relative] = content
    missing, target_notes = _repository_notes(project, rendered)
    result = CiResult(project=project, provider=provider, spec=spec, changes=changes,
                      written=False, notes=notes + target_notes, missing_targets=missing)
    if result.conflicts and not dry_run:
        raise PipelineConflictError(result)
    if dry_run:
        return result
    for relative, content in planned.items():
        atomic_write_text(project / relative, content)
    return CiResult(project=project, provider=provider, spec=spec, changes=changes,
                    written=True, notes=result.notes, missing_targets=missing)
