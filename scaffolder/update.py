"""`mlscaffold update`: bring a project to the installed mlscaffold's blueprint, keeping the team's
edits, by a three-way merge in the project's own git.

How: `mlscaffold new` leaves the pristine render of the project on the branch
``mlscaffold-template`` (its first commit). `update` renders the project again, from today's
``mlscaffold.yaml`` and the blueprint the last render was made from (the installed, bundled one
unless `new --blueprint` chose another; recorded by the answers file or the render's commit),
commits that render on the branch (plumbing only: the working tree is not touched), and merges
the branch into the current one. Git's merge
base is the previous pristine render, so a line only the template changed is applied, a line only
the team changed is kept, and a line both changed is a conflict marked in place.

Why this and not `copier update`: Copier's update re-renders the *old* template version, which
needs that version's blueprint (a git tag); a blueprint shipped inside the wheel has only the
installed version. The pristine render in git needs nothing but the new version, derives the
answers again from today's spec (Copier's update reuses the recorded ones), works offline, and
leaves a merge that `git status`, `git diff` and `git merge --abort` explain. Copier renders
every generated file either way, so a project made from a tagged git blueprint also updates
with plain `copier update` (docs/getting-started.md).

What is not the template's is left out of the render: ``datasets/`` (the team's data) and the
organisation's policy file keep whatever the team has.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MlscaffoldError, UsageError
from .project import (
    BUNDLED,
    TEMPLATE_BRANCH,
    blueprint_source,
    check_data,
    first_commit_subject,
    is_remote,
    recorded_blueprint,
    render_message,
    render_project,
)
from .spec import SPEC_FILENAME, ProjectSpec

__all__ = ["UpdateResult", "update_project"]

# paths of a project that are the team's even though `new` wrote them first
_TEAM_OWNED = ("datasets",)
_IDENTITY = {"GIT_AUTHOR_NAME": "mlscaffold", "GIT_AUTHOR_EMAIL": "mlscaffold@localhost",
             "GIT_COMMITTER_NAME": "mlscaffold", "GIT_COMMITTER_EMAIL": "mlscaffold@localhost"}


@dataclass(frozen=True)
class UpdateResult:
    """What :func:`update_project` did (or, with ``dry_run``, would do)."""

    path: Path
    from_version: str
    to_version: str
    changed: list[str] = field(default_factory=list)  # files the merge changes
    added: list[str] = field(default_factory=list)  # of `changed`, those it adds
    deleted: list[str] = field(default_factory=list)  # of `changed`, those it deletes
    conflicts: list[str] = field(default_factory=list)  # files the merge could not merge
    # of `conflicts`, those changed on one side and deleted on the other: no markers to edit
    deleted_conflicts: list[str] = field(default_factory=list)
    diff: str = ""  # what the merge changes, as `git diff` shows it
    commit: str | None = None  # the merge commit (a clean, real update)
    dry_run: bool = False
    # a dry run's uncommitted files: the preview merges into HEAD (the spec as it is now)
    uncommitted: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.changed and not self.conflicts

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "from_version": self.from_version,
                "to_version": self.to_version, "changed": self.changed,
                "added": self.added, "deleted": self.deleted, "conflicts": self.conflicts,
                "deleted_conflicts": self.deleted_conflicts,
                "commit": self.commit, "dry_run": self.dry_run, "uncommitted": self.uncommitted}


class _Git:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        for key, value in _IDENTITY.items():  # only where the user has no identity configured
            config = "user.name" if key.endswith("NAME") else "user.email"
            if not self.ok("config", "--get", config):
                self.env.setdefault(key, value)

    def run(self, *args: str, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=self.root,
                                   capture_output=True, text=True, env=env or self.env)
        if check and completed.returncode != 0:
            raise MlscaffoldError(f"git {args[0]} failed in {self.root}: "
                                  f"{(completed.stderr or completed.stdout).strip()}")
        return completed

    def out(self, *args: str, **kwargs: Any) -> str:
        return self.run(*args, **kwargs).stdout.strip()

    def ok(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0


def update_project(root: Path, *, blueprint: str | None = None, vcs_ref: str | None = None,
                   dry_run: bool = False, data: dict[str, Any] | None = None) -> UpdateResult:
    """Render the project at `root` again and merge the render into its current branch.

    Raises UsageError (nothing touched) for: no git, a dirty tree (a dry run previews the
    merge into HEAD all the same, with the spec as it is in the tree, and lists the uncommitted
    files), a spec made by a newer mlscaffold or invalid, answers changed through Copier, no
    pristine render to merge against. A merge with conflicts returns them in ``conflicts``; the
    tree is then mid-merge.
    """
    from . import __version__

    root = Path(root).expanduser().resolve()
    if not (root / SPEC_FILENAME).is_file():  # from inside the project (infra/): its root
        root = next((folder for folder in root.parents if (folder / SPEC_FILENAME).is_file()),
                    root)
    spec, made_by = _load(root, __version__)
    git, uncommitted = _repository(root, dirty_ok=dry_run, name=spec.name)
    base = _pristine_base(git, spec)
    _refuse_answers_changed_through_copier(git, base)

    target = spec.model_copy(update={"mlscaffold_version": __version__})
    source, ref, record = _blueprint_to_render(git, base, blueprint, vcs_ref)
    check_data(source, data)
    rendered = _commit_render(git, base, target, source, data, ref, record)
    if git.ok("merge-base", "--is-ancestor", rendered, "HEAD"):
        return UpdateResult(root, made_by, __version__, dry_run=dry_run, uncommitted=uncommitted)

    merged = git.run("merge-tree", "--write-tree", "--name-only", "HEAD", rendered, check=False)
    if merged.returncode not in (0, 1):
        raise MlscaffoldError(f"git merge-tree failed: {merged.stderr.strip()}")
    lines = merged.stdout.splitlines()
    tree, conflicts = lines[0], _conflicted_names(lines[1:])
    changes = {**_changes(git, tree), "deleted_conflicts": _deleted_conflicts(lines[1:])}
    # a file changed on one side and deleted on the other is in the merged tree as HEAD has it,
    # so the diff leaves it out; it is changed all the same, as a conflict with markers is
    changes["changed"] = sorted({*changes["changed"], *conflicts})
    _refuse_mass_deletion(git, base, source, changes["deleted"])
    diff = git.out("diff", "--no-renames", "HEAD", tree)
    if dry_run:
        return UpdateResult(root, made_by, __version__, conflicts=conflicts, diff=diff,
                            dry_run=True, uncommitted=uncommitted, **changes)

    git.run("update-ref", f"refs/heads/{TEMPLATE_BRANCH}", rendered)
    message = f"Update {spec.name} to mlscaffold {__version__}"
    done = git.run("merge", "--no-ff", "--no-edit", "-m", message, rendered, check=False)
    if done.returncode != 0:
        unmerged = git.out("diff", "--name-only", "--diff-filter=U").splitlines()
        if not unmerged:
            raise MlscaffoldError(f"git merge failed: {(done.stderr or done.stdout).strip()}")
        return UpdateResult(root, made_by, __version__, conflicts=unmerged, diff=diff,
                            **changes)
    return UpdateResult(root, made_by, __version__, diff=diff,
                        commit=git.out("rev-parse", "HEAD"), **changes)


def _refuse_mass_deletion(git: _Git, base: str, source: str, deleted: list[str]) -> None:
    """Refuse an update that would delete most of the last render's files: a --blueprint that
    is another template (or a folder Copier copies as it is) renders none of them. A change of
    CI provider or environments deletes a few; files the team deleted itself are not counted."""
    rendered = git.out("ls-tree", "-r", "--name-only", base).splitlines()
    if rendered and len(deleted) > len(rendered) / 2:
        raise UsageError(
            f"the blueprint {source} would delete {len(deleted)} of the {len(rendered)} files "
            f"of the last render ({shown_files(deleted)}): it is not this project's blueprint",
            hint="check --blueprint; if the blueprint really drops them, delete them in a "
                 "commit of your own, then update")


def _changes(git: _Git, tree: str) -> dict[str, list[str]]:
    """What the merged `tree` changes from HEAD: every file, and which of them it adds or
    deletes. No rename detection (porcelain `git diff` has it on by default since git 2.9,
    git/git@5404c11): a deleted stack config is listed as deleted, not as the source of a
    similar new one (dev,staging,prod -> dev,main)."""
    changed: list[str] = []
    added: list[str] = []
    deleted: list[str] = []
    for line in git.out("diff", "--no-renames", "--name-status", "HEAD", tree).splitlines():
        status, _, name = line.partition("\t")
        changed.append(name)
        if status == "A":
            added.append(name)
        elif status == "D":
            deleted.append(name)
    return {"changed": changed, "added": added, "deleted": deleted}


def _load(root: Path, installed: str) -> tuple[ProjectSpec, str]:
    """The project's spec and the version that made it; refuses a newer one."""
    import yaml

    from .lifecycle.config import CONFIG_FILE
    from .spec import load_spec

    path = root / SPEC_FILENAME
    if not path.is_file():
        raise UsageError(f"{root} holds no {CONFIG_FILE}",
                         hint="run `mlscaffold update` in a project made by `mlscaffold new`")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raw = None  # load_spec below reports it
    made_by = str(raw.get("mlscaffold_version", "0.1.0")) if isinstance(raw, dict) else "?"
    if _newer(made_by, installed):
        from . import DISTRIBUTION

        raise UsageError(f"{path} was made by mlscaffold {made_by}, newer than this mlscaffold "
                         f"{installed}",
                         hint=f"install it: pip install '{DISTRIBUTION}=={made_by}'")
    spec = load_spec(path)
    if isinstance(raw, dict) and "mlscaffold_version" not in raw:  # made before it was recorded
        spec = spec.model_copy(update={"mlscaffold_version": made_by})
    return spec, made_by


def _newer(version: str, than: str) -> bool:
    from .packaging import release_of

    return (release_of(version) or (0, 0, 0)) > (release_of(than) or (0, 0, 0))


def _repository(root: Path, dirty_ok: bool, name: str) -> tuple[_Git, list[str]]:
    """The project's repository, which must be its own and not mid-merge, and its uncommitted
    files, which must be none unless `dirty_ok` (a dry run merges into HEAD through a temporary
    index and writes nothing in the tree; of the tree it reads only mlscaffold.yaml)."""
    if shutil.which("git") is None:
        raise UsageError("git was not found; `mlscaffold update` merges with git",
                         hint="install git")
    git = _Git(root)
    top = git.run("rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise UsageError(f"{root} is not a git repository; `update` merges the new render with "
                         "the team's committed edits",
                         hint="if its files are still as `mlscaffold new` made them, commit them "
                              "as that render: `git init && git add -A && git commit -m "
                              f"'{first_commit_subject(name)}'` (edited files would be taken for "
                              "the render, and the edits undone by the merge)")
    if Path(top.stdout.strip()).resolve() != root:
        raise UsageError(f"{root} is inside the git repository {top.stdout.strip()}, not its top",
                         hint="run `mlscaffold update` on a project that is its own repository")
    if git.ok("rev-parse", "-q", "--verify", "MERGE_HEAD"):
        raise UsageError(f"{root} is in the middle of a merge",
                         hint="finish it (`git commit`) or abort it (`git merge --abort`) first")
    dirty = [line[3:] for line in
             git.run("status", "--porcelain", "--untracked-files=normal").stdout.splitlines()]
    if dirty and not dirty_ok:
        raise UsageError(f"{root} has uncommitted changes ({shown_files(dirty)}); `update` "
                         "merges into committed work only",
                         hint="commit or stash them, then run it again (`--dry-run` previews "
                              "it before)")
    return git, dirty


def shown_files(names: list[str], most: int = 5) -> str:
    """The first `most` file names, then '...' if there are more."""
    return ", ".join(names[:most]) + (" ..." if len(names) > most else "")


def _pristine_base(git: _Git, spec: ProjectSpec) -> str:
    """The last pristine render merged into HEAD: where the template branch meets HEAD, else
    the commit `new` made.

    The branch moves when `update` starts its merge; a merge that is then aborted (`git merge
    --abort`) leaves the branch on a render HEAD never took, and the render HEAD holds is the
    merge base of the two. (`git merge --abort` is `git reset --merge`, git/git@35d2fff: it
    restores HEAD and the tree, not other refs.)"""
    branch = git.run("rev-parse", "-q", "--verify", f"refs/heads/{TEMPLATE_BRANCH}^{{commit}}",
                     check=False)
    if branch.returncode == 0:
        met = git.run("merge-base", "HEAD", branch.stdout.strip(), check=False)
        return met.stdout.strip() if met.returncode == 0 else branch.stdout.strip()
    subject = first_commit_subject(spec.name)
    for line in git.out("log", "--format=%H %s", "--max-parents=0", "HEAD").splitlines():
        commit, _, title = line.partition(" ")
        if title == subject:
            return commit
    raise UsageError(f"{git.root} has no branch {TEMPLATE_BRANCH} nor a first commit "
                     f"'{subject}', so there is no pristine render to merge against",
                     hint=f"fetch the branch ({'git fetch origin ' + TEMPLATE_BRANCH}:"
                          f"{TEMPLATE_BRANCH}) if a clone lacks it")


def _refuse_answers_changed_through_copier(git: _Git, base: str) -> None:
    """The answers are derived from the spec: a committed answers file that differs from the
    last render was changed through Copier (or by hand), and that change would be lost."""
    from .spec import ANSWERS_FILENAME

    rendered = git.run("show", f"{base}:{ANSWERS_FILENAME}", check=False)
    path = git.root / ANSWERS_FILENAME
    if rendered.returncode != 0 or not path.is_file():
        return
    if path.read_text(encoding="utf-8") != rendered.stdout:
        raise UsageError(
            f"{path} differs from the last render: an answer was changed through Copier, but "
            f"the answers come from {SPEC_FILENAME}",
            hint=f"set the value in {SPEC_FILENAME}, restore the answers "
                 f"(`git checkout {_name_of(git, base)} -- {ANSWERS_FILENAME}`), commit, and "
                 "run `mlscaffold update` again")


def _name_of(git: _Git, base: str) -> str:
    """The template branch when `base` is its tip, else `base`'s short id."""
    tip = git.run("rev-parse", "-q", "--verify", f"refs/heads/{TEMPLATE_BRANCH}", check=False)
    return TEMPLATE_BRANCH if tip.stdout.strip() == base else base[:12]


def _blueprint_to_render(git: _Git, base: str, blueprint: str | None,
                         vcs_ref: str | None) -> tuple[str, str | None, str | None]:
    """The blueprint source, the git ref and the record (for the render's commit: None for the
    bundled blueprint) of this update.

    Without --blueprint, the blueprint the last render (`base`) was made from: the git URL its
    answers record as Copier's `_src_path`, else the folder or "bundled" its commit records.
    The ref is --vcs-ref, else the one that render records (`_commit`) when the source is the
    same: `update` alone never moves a project to another blueprint or version."""
    answers = _answers_at(git, base)
    recorded_ref = str(answers["_commit"]) if answers.get("_commit") else None
    recorded = (str(answers["_src_path"]) if answers.get("_src_path")
                else recorded_blueprint(git.out("log", "-1", "--format=%B", base)))
    if recorded is not None and recorded != BUNDLED and not is_remote(recorded):
        recorded = str(_folder(git, recorded))
    if blueprint is not None:
        source = blueprint_source(blueprint)
        same = recorded is not None and (recorded == source if is_remote(source)
                                         else _folder(git, recorded) == Path(source))
        return source, vcs_ref or (recorded_ref if same else None), source
    if recorded is None and recorded_ref is not None:
        # rendered from a git folder by an earlier mlscaffold: not the bundled blueprint
        raise UsageError(f"{git.root} was rendered from a git blueprint at {recorded_ref} but "
                         "does not record which one", hint=_PASS_BLUEPRINT)
    if recorded is None or recorded == BUNDLED:  # earlier renders: only the bundled one
        return blueprint_source(None), vcs_ref, None
    if not is_remote(recorded) and not Path(recorded).is_dir():
        raise UsageError(f"{git.root} was rendered from the blueprint folder {recorded}, "
                         "which no longer exists", hint=_PASS_BLUEPRINT)
    source = blueprint_source(recorded)
    # Copier records `_commit` as `git describe --tags --always` of the render (copier's
    # Template.commit), a name git checks out again
    return source, vcs_ref or recorded_ref, source


_PASS_BLUEPRINT = "pass the blueprint with --blueprint (a folder or git URL)"


def _folder(git: _Git, recorded: str) -> Path:
    """A recorded blueprint folder, absolute (a relative one, from the project)."""
    folder = Path(recorded).expanduser()
    return folder if folder.is_absolute() else git.root / folder


def _answers_at(git: _Git, commit: str) -> dict[str, Any]:
    """The answers file of `commit`, or {} without one (or unreadable)."""
    import yaml

    from .spec import ANSWERS_FILENAME

    shown = git.run("show", f"{commit}:{ANSWERS_FILENAME}", check=False)
    if shown.returncode != 0:
        return {}
    try:
        answers = yaml.safe_load(shown.stdout)
    except yaml.YAMLError:
        return {}
    return answers if isinstance(answers, dict) else {}


def _commit_render(git: _Git, base: str, spec: ProjectSpec, blueprint: str,
                   data: dict[str, Any] | None, vcs_ref: str | None,
                   record: str | None) -> str:
    """Commit the render of `spec` on top of `base` (no ref moves); returns its commit, or
    `base` itself when the render is what `base` holds."""
    with tempfile.TemporaryDirectory(prefix="mlscaffold-update-") as scratch:
        tree_dir = Path(scratch) / "render"
        tree_dir.mkdir()
        render_project(tree_dir, spec, blueprint, data, vcs_ref,
                       kubernetes_versions=_pinned_kubernetes_versions(git, base))
        index = Path(scratch) / "index"
        env = {**git.env, "GIT_INDEX_FILE": str(index)}
        git.run("read-tree", base, env=env)
        excluded = [f":(exclude){path}" for path in (*_TEAM_OWNED, spec.policy_config) if path]
        git.run("--work-tree", str(tree_dir), "add", "-A", "--", ".", *excluded, env=env)
        tree = git.out("write-tree", env=env)
    if tree == git.out("rev-parse", f"{base}^{{tree}}"):
        return base
    from . import __version__

    return git.out("commit-tree", tree, "-p", base, "-m",
                   render_message(f"mlscaffold {__version__}: pristine render of {spec.name}",
                                  record))


def _pinned_kubernetes_versions(git: _Git, base: str) -> dict[str, str]:
    """The Kubernetes version each environment of the last render pins (recorded in its
    answers), so that `update` keeps it: a render made before stack files pinned one gets the
    version its stacks have used all along (UNPINNED_KUBERNETES_VERSION). A new environment
    gets today's default."""
    from .stacks.config import UNPINNED_KUBERNETES_VERSION

    recorded = _answers_at(git, base).get("stack_settings")
    if not isinstance(recorded, dict):
        return {}
    pinned = {}
    for environment, settings in recorded.items():
        cluster = settings.get("cluster") if isinstance(settings, dict) else None
        version = cluster.get("kubernetes_version") if isinstance(cluster, dict) else None
        pinned[str(environment)] = str(version or UNPINNED_KUBERNETES_VERSION)
    return pinned


def _deleted_conflicts(lines: list[str]) -> list[str]:
    """The files `git merge-tree`'s messages (after the blank line) name as changed on one side
    and deleted on the other: ``CONFLICT (modify/delete): PATH deleted in ... and modified
    in ...`` (git's merge-ort.c)."""
    messages = lines[lines.index(""):] if "" in lines else []
    return sorted({found.group(1) for line in messages
                   if (found := re.match(r"CONFLICT \(modify/delete\): (.+?) deleted in ",
                                         line))})


def _conflicted_names(lines: list[str]) -> list[str]:
    """File names of `git merge-tree --name-only` output: the list after the tree, up to the
    blank line before the messages."""
    names = []
    for line in lines:
        if not line.strip():
            break
        names.append(line.strip())
    return sorted(set(names))
