"""Make a new project: render a blueprint with Copier, add sample data, commit.

Everything happens in a temporary folder beside the destination, which is renamed into
place only when the project is complete: a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BlueprintError, DestinationError, MlscaffoldError, UsageError
from .files import temporary_directory
from .spec import SPEC_FILENAME, ProjectSpec

__all__ = ["BLUEPRINT_TRAILER", "BUNDLED", "TEMPLATE_BRANCH", "ProjectResult",
           "bundled_blueprint", "create_project", "export_blueprint", "is_remote",
           "recorded_blueprint", "render_into", "render_message", "render_project"]

# the branch holding the pristine render of each version (`new`, then every `update`)
TEMPLATE_BRANCH = "mlscaffold-template"
# the trailer of each pristine render's commit that names the blueprint it was rendered from:
# "bundled", or the folder or git URL given to --blueprint. A folder is a path on one machine,
# so it is kept out of the answers file (which records only a git URL, as Copier's
# `_src_path`); `mlscaffold update` renders from it again by default
BLUEPRINT_TRAILER = "Mlscaffold-Blueprint"
BUNDLED = "bundled"
# a fixed identity for the initial commit when the user has none configured
_FALLBACK_GIT_IDENTITY = {"user.name": "mlscaffold", "user.email": "mlscaffold@localhost"}


@dataclass(frozen=True)
class ProjectResult:
    """What :func:`create_project` made."""

    path: Path
    spec: ProjectSpec
    blueprint: str
    files: list[str]
    git_commit: str | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "package": self.spec.package,
            "blueprint": self.blueprint,
            "files": self.files,
            "git_commit": self.git_commit,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "spec": self.spec.model_dump(mode="json"),
        }


def export_blueprint(dest: Path, name: str = "ml-project") -> Path:
    """Write the self-contained Copier template of a bundled blueprint into `dest` (new or
    empty): the blueprint with mlscaffold's shared templates (``templates/ci``: the CI pipelines
    and their pins) overlaid. Hosted in git and tagged, it renders and updates with `--blueprint
    URL --vcs-ref TAG` and with plain `copier update`. Written whole or not at all."""
    from importlib.resources import files

    dest = _destination(Path(dest))
    _check_destination(dest)
    source = Path(str(files("mlscaffold.blueprints") / name))
    if not (source / "copier.yml").is_file():
        raise BlueprintError(f"no bundled blueprint is called {name!r}",
                             hint="the bundled blueprint is ml-project")
    skip = shutil.ignore_patterns("__pycache__", "*.py[co]")
    staging = _staging_folder(dest)
    try:
        shutil.copytree(source, staging, ignore=skip, dirs_exist_ok=True)
        shutil.copytree(Path(str(files("mlscaffold.templates") / "ci")), staging, ignore=skip,
                        dirs_exist_ok=True)
        if dest.is_dir():
            dest.rmdir()  # empty (checked above)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


_EXPORTED: dict[str, Path] = {}


def bundled_blueprint(name: str = "ml-project") -> Path:
    """The folder of a bundled blueprint as Copier renders it (:func:`export_blueprint`),
    made once per process in a temporary folder removed at exit."""
    if name not in _EXPORTED:
        import atexit
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="mlscaffold-blueprint-"))
        atexit.register(shutil.rmtree, folder, True)
        _EXPORTED[name] = export_blueprint(folder / name, name)
    return _EXPORTED[name]


def blueprint_source(blueprint: str | None) -> str:
    """The blueprint to render: a git URL as given, a folder made absolute, else the bundled one."""
    source = blueprint or str(bundled_blueprint())
    if is_remote(source):
        return source
    source_path = Path(source).expanduser()
    if not source_path.is_dir():
        raise BlueprintError(f"blueprint {source} is not a folder or a git URL",
                             hint="pass a Copier template folder or git URL to --blueprint")
    if _copier_config(source_path) is None:  # Copier would copy the folder as it is
        raise BlueprintError(f"blueprint {source} has no copier.yml: it is not a Copier template",
                             hint="pass the folder that holds copier.yml (`mlscaffold blueprint "
                                  "DEST` writes the bundled one to start from)")
    return str(source_path.absolute())


def _copier_config(root: Path) -> Path | None:
    """A template folder's copier.yml (or copier.yaml), None without one."""
    return next((root / name for name in ("copier.yml", "copier.yaml")
                 if (root / name).is_file()), None)


def first_commit_subject(name: str) -> str:
    """The subject of the commit `new` makes of its render, by which `update` finds that render
    in a clone without the template branch."""
    return f"Create {name} with mlscaffold"


def render_message(subject: str, source: str | None) -> str:
    """The commit message of a pristine render of the blueprint `source` (None: the bundled
    one): `subject`, then the :data:`BLUEPRINT_TRAILER` that records the source."""
    return f"{subject}\n\n{BLUEPRINT_TRAILER}: {source or BUNDLED}\n"


def recorded_blueprint(message: str) -> str | None:
    """The blueprint a pristine render's commit `message` records (:data:`BUNDLED`, a folder
    or a git URL), or None when it records none (a render by an earlier mlscaffold)."""
    found = None
    for line in message.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() == BLUEPRINT_TRAILER and value.strip():
            found = value.strip()
    return found


def is_remote(source: str) -> bool:
    """Whether a blueprint source is a git URL (as Copier reads it), not a folder."""
    return "://" in source or source.startswith(("git@", "gh:", "gl:"))


def blueprint_questions(source: str) -> set[str] | None:
    """The names of the questions a local blueprint's copier.yml asks (its documents and
    ``!include``s; not the computed ``when: false`` ones), or None for a git URL (not read
    before Copier fetches it)."""
    import yaml

    if is_remote(source):
        return None
    root = Path(source)
    config = _copier_config(root)
    if config is None:
        return None

    class _Loader(yaml.SafeLoader):
        pass

    def _include(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
        pattern = str(loader.construct_scalar(node))  # type: ignore[arg-type]
        return [document for path in sorted(root.glob(pattern))
                for document in yaml.load_all(path.read_text(encoding="utf-8"), _Loader)]

    _Loader.add_constructor("!include", _include)
    documents: list[Any] = list(yaml.load_all(config.read_text(encoding="utf-8"), _Loader))
    names: set[str] = set()
    while documents:
        document = documents.pop()
        if isinstance(document, list):
            documents.extend(document)
        elif isinstance(document, dict):
            names.update(key for key, question in document.items()
                         if not str(key).startswith("_")
                         and not (isinstance(question, dict) and question.get("when") is False))
    return names


def check_data(source: str, data: Mapping[str, Any] | None) -> None:
    """Refuse `--data` keys a local blueprint does not ask for (a typo would be dropped)."""
    questions = blueprint_questions(source)
    unknown = sorted(set(data or {}) - questions) if questions is not None else []
    if unknown:
        from .answers import DERIVED_ANSWERS
        from .spec import ProjectSpec

        # what mlscaffold answers itself is set through the spec, not --data
        own = set(ProjectSpec.model_fields) | {"project_name", "package_name",
                                                *DERIVED_ANSWERS}
        extra = sorted(set(questions or ()) - own)
        from .suggest import did_you_mean

        raise UsageError(f"--data {unknown[0]}: the blueprint asks no question "
                         f"{unknown[0]!r}{did_you_mean(unknown[0], extra)}",
                         hint=f"its own questions are: {', '.join(extra)}" if extra else
                         "it asks nothing beyond the spec, whose values have their own "
                         "options (`mlscaffold new --help`)")


def _staging_folder(dest: Path, missing_parents: Sequence[Path] = ()) -> Path:
    """A new empty folder beside `dest` (its parents made as needed) to render into and rename
    to `dest` once complete: it has the umask's mode, not mkdtemp's 0700, as it becomes the
    project. A destination that cannot be written (a read-only file system, a parent that is
    a file) is a DestinationError; the parents this made are removed again."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return temporary_directory(dest.parent, f".{dest.name}.mlscaffold-")
    except OSError as error:
        _remove_made(missing_parents)
        reason = (error.strerror or type(error).__name__).lower()
        raise DestinationError(f"cannot create {dest}: {reason}",
                               hint="choose a folder you can write to") from None


def _remove_made(parents: Sequence[Path]) -> None:
    """Remove the folders a failed `new` made, deepest first, while they are empty."""
    for parent in reversed(parents):
        try:
            parent.rmdir()
        except OSError:
            break


def _destination(dest: Path) -> Path:
    """`dest` made absolute, and a symbolic link followed: the project is made where it points
    (the link itself cannot be replaced by the finished folder). A dangling link is refused."""
    dest = dest.expanduser().absolute()
    if dest.is_symlink():
        target = dest.resolve()
        if not target.exists():
            raise DestinationError(f"destination {dest} is a link to {target}, which does not "
                                   "exist", hint="create that folder or choose another")
        return target
    return dest


def _check_destination(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"destination {dest} exists and is a file",
                               hint="choose a new folder name")
    existing = next((parent for parent in dest.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise DestinationError(f"cannot create {dest}: {existing} is a file",
                               hint="choose a folder outside it")
    if dest.is_dir() and any(dest.iterdir()):
        raise DestinationError(f"destination {dest} exists and is not empty",
                               hint="choose a new or empty folder; "
                                    "mlscaffold never overwrites files")


def render_project(target: Path, spec: ProjectSpec, blueprint: str,
                   data: Mapping[str, Any] | None = None, vcs_ref: str | None = None, *,
                   progress: Callable[[str], None] | None = None,
                   kubernetes_versions: Mapping[str, str] | None = None) -> list[str]:
    """Every generated file of a project into the empty folder `target`: the blueprint, which
    renders everything from the spec's answers, then sample data (the team's from then on).
    Returns notes for the user; `progress` hears of each step."""
    from .answers import blueprint_data
    from .sample_data import write_sample_datasets

    step = progress or _quiet
    step("deriving stack settings and diagram…")
    answers = {**blueprint_data(spec, kubernetes_versions), **(data or {})}
    step("rendering blueprint…")
    render_into(target, spec, blueprint, answers, vcs_ref)
    notes = []
    if not (target / SPEC_FILENAME).is_file():
        # a blueprint of its own that does not render the spec: the project still needs it
        (target / SPEC_FILENAME).write_text(spec.to_yaml(), encoding="utf-8")
        notes.append(f"the blueprint does not render {SPEC_FILENAME}; mlscaffold wrote it")
    step("writing sample data…")
    if (target / "datasets" / "train.csv").exists():
        notes.append("the blueprint ships its own datasets; no sample data written")
    else:
        write_sample_datasets(target / "datasets", spec.task, spec.label)
    return notes


def render_into(target: Path, spec: ProjectSpec, blueprint: str,
                data: Mapping[str, Any] | None = None, vcs_ref: str | None = None) -> None:
    """Render `blueprint` into the empty folder `target` with `data` as the answers (default:
    everything :func:`mlscaffold.answers.blueprint_data` derives from `spec`)."""
    import copier
    from copier.errors import CopierError
    from jinja2 import TemplateError

    if data is None:
        from .answers import blueprint_data

        data = blueprint_data(spec)
    try:
        copier.run_copy(blueprint, target, data=dict(data), defaults=True, quiet=True,
                        unsafe=False, vcs_ref=vcs_ref, overwrite=True)
    except CopierError as error:
        raise BlueprintError(f"blueprint {blueprint} could not be rendered: {error}") from error
    except TemplateError as error:
        raise BlueprintError(f"blueprint {blueprint} failed to render: {error}",
                             hint="fix the template or pass the missing value with --data",
                             ) from error
    except (OSError, ValueError) as error:
        raise BlueprintError(f"blueprint {blueprint} could not be read: {error}") from error


def _git(root: Path, *args: str) -> str:
    completed = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                               text=True)
    return completed.stdout.strip()


def _git_commit_all(root: Path, message: str) -> str:
    """Initialise a repository in `root` and commit everything; returns the commit id."""
    _git(root, "-c", "init.defaultBranch=main", "init", "-q")
    # one lookup for both keys, in the new repository (conditional includes apply)
    found = subprocess.run(["git", "config", "--get-regexp", r"^user\.(name|email)$"], cwd=root,
                           capture_output=True, text=True).stdout
    configured = {line.split(" ", 1)[0] for line in found.splitlines()}
    identity: list[str] = []
    for key, value in _FALLBACK_GIT_IDENTITY.items():
        if key not in configured:
            identity += ["-c", f"{key}={value}"]
    _git(root, "add", "-A")
    _git(root, *identity, "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify",
         "-m", message)
    return _head_commit(root)


def _head_commit(root: Path) -> str:
    """The commit id of HEAD: read from the new repository's loose ref, else `git rev-parse`
    (refs stored otherwise, e.g. reftable, or SHA-256 ids)."""
    git_dir = root / ".git"
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if head.startswith("ref: "):
            head = (git_dir / head.removeprefix("ref: ")).read_text(encoding="utf-8").strip()
    except OSError:
        head = ""
    if len(head) == 40 and all(c in "0123456789abcdef" for c in head):
        return head
    return _git(root, "rev-parse", "HEAD")


def _quiet(line: str) -> None:
    """No progress lines: the core never prints."""


def _list_files(root: Path) -> list[str]:
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts[:1]
    )


def create_project(dest: Path, spec: ProjectSpec, *, blueprint: str | None = None,
                   data: Mapping[str, Any] | None = None, git: bool = True,
                   vcs_ref: str | None = None, org_config: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> ProjectResult:
    """Make a complete project at `dest` (new or empty) from `spec`.

    `org_config` is the organisation's policy file: it is copied to ``spec.policy_config``.
    `progress` is called with a short line as each step starts.

    Raises :class:`DestinationError` or :class:`BlueprintError`; on any failure `dest` is as
    it was before the call.
    """
    started = time.perf_counter()
    step = progress or _quiet
    dest = _destination(dest)
    _check_destination(dest)
    source = blueprint_source(blueprint)
    check_data(source, data)

    dest_was_empty_dir = dest.is_dir()
    missing_parents = [p for p in reversed(dest.parents) if not p.exists()]
    staging = _staging_folder(dest, missing_parents)
    try:
        notes = render_project(staging, spec, source, data, vcs_ref, progress=step)
        if org_config is not None and spec.policy_config:
            shutil.copyfile(org_config, staging / spec.policy_config)
        commit = None
        if git:
            if shutil.which("git") is None:
                notes.append("git was not found: the project is not a git repository yet")
            else:
                step("git commit…")
                try:
                    commit = _git_commit_all(staging, render_message(
                        first_commit_subject(spec.name), source if blueprint else None))
                    # the pristine render, which `mlscaffold update` merges the next one against
                    _git(staging, "branch", TEMPLATE_BRANCH, commit)
                except subprocess.CalledProcessError as error:
                    raise MlscaffoldError(
                        f"git failed in the new project: {error.stderr.strip() or error}",
                        hint="check `git --version` works, or pass --no-git") from error
        files = _list_files(staging)
        if dest.is_dir():
            dest.rmdir()  # empty (checked above); rename needs the name free
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if dest_was_empty_dir and not dest.exists():
            dest.mkdir()
        _remove_made(missing_parents)
        raise
    return ProjectResult(path=dest, spec=spec, blueprint=blueprint or "ml-project (bundled)",
                         files=files, git_commit=commit,
                         seconds=time.perf_counter() - started, notes=notes)
