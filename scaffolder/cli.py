"""The `mlscaffold` command line: parse, call the core, print. Nothing slow is imported here.

Every error the core raises is a :class:`~mlscaffold.errors.MlscaffoldError`; :func:`main`
turns it, and Click's own usage errors, into one line on stderr and an exit status
(2 for bad input, 1 for a failure).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__, catalog
from .cli_lifecycle import register as register_lifecycle
from .cli_paths import OutputFile

# spec field -> the option that sets it, so errors name what the user typed
_OPTION_FOR_FIELD = {
    "name": "--name",
    "task": "--task",
    "label": "--label",
    "metric": "--metric",
    "metric_threshold": "--metric-threshold",
    "serving": "--serving",
    "feature_store": "--feature-store",
    "ci": "--ci",
    "region": "--region",
    "environments": "--environments",
    "owner": "--owner",
    "cost_center": "--cost-center",
    "policy_config": "--org-config",
}


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _warn_answers_drift(root: Path, spec: Any) -> None:
    """Say so when the rendered files no longer follow the spec (the answers file differs)."""
    from .spec import answers_drift

    drift = answers_drift(root, spec)
    if drift:
        click.echo(f"warning: {drift}", err=True)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# the help's sections, in order; a command in none of them is listed under "Other"
_SECTIONS = {
    "Make a project": ("new", "update", "ci", "blueprint", "schema"),
    "The ML lifecycle (inside a project)": ("analyze", "train", "list", "evaluate", "promote",
                                            "rollback", "predict", "serve", "drift", "baseline",
                                            "track"),
    "The platform (infra/)": ("preview", "graph", "check", "cost", "policy", "preflight",
                              "tunnel", "model", "endpoint", "features", "status"),
}


class _Cli(click.Group):
    """A group whose errors are one line each, with the exit codes the docs promise."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = {name: self.get_command(ctx, name) for name in self.list_commands(ctx)}
        width = formatter.width - 6 - max(len(name) for name in commands)
        placed: set[str] = set()
        for title, names in (*_SECTIONS.items(), ("Other", tuple(commands))):
            rows = [(name, commands[name].get_short_help_str(width)) for name in names
                    if name in commands and name not in placed and not commands[name].hidden]
            placed.update(name for name, _ in rows)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        from .errors import MlscaffoldError, SpecError

        try:
            code = super().main(args, prog_name or "mlscaffold", standalone_mode=False, **extra)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx else "mlscaffold"
            _fail(f"{error.format_message()} (see '{command} --help')", 2)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except click.Abort as error:
            if isinstance(error.__cause__, KeyboardInterrupt):  # Click turns Ctrl-C into Abort
                _fail("interrupted", 130)
            _fail("aborted", 1)
        except SpecError as error:
            where = f"{error.source}: " if error.source else ""
            option = _OPTION_FOR_FIELD.get(error.field, error.field)
            if error.field == "spec":  # the spec as a whole: the message names the values
                _fail(f"{where}{error}", error.exit_code)
            _fail(f"{where}{option if not where else error.field}: {error}", error.exit_code)
        except MlscaffoldError as error:
            if error.details:
                click.echo(f"Traceback (the project's code only):\n{error.details}", err=True,
                           nl=False)
            _fail(str(error), error.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except ImportError as error:
            from .errors import caused_by_interrupt

            if caused_by_interrupt(error):
                _fail("interrupted", 130)
            # an installation with the lifecycle runtime only (a project's image) lacks the
            # tool's other libraries: one line naming the one missing and what to install
            from .packaging import install_hint, missing_library

            library = missing_library(error) if isinstance(error, ModuleNotFoundError) else None
            if library is None:
                raise
            command = _command_path(self, args, prog_name or "mlscaffold")
            _fail(f"{command} needs {library}, which this installation lacks (an image installs "
                  f"only the lifecycle runtime); {install_hint()}", 2)
        sys.exit(code if isinstance(code, int) else 0)


def _command_path(group: click.Group, args: Any, prog_name: str) -> str:
    """The command the arguments name, e.g. `mlscaffold policy config` (options skipped)."""
    words, command = [prog_name], group
    for arg in sys.argv[1:] if args is None else list(args):
        if not isinstance(command, click.Group):
            break
        if arg.startswith("-"):
            continue
        if arg not in command.commands:
            break
        words.append(arg)
        command = command.commands[arg]
    return " ".join(words)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"],
                                         "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="mlscaffold")
def cli() -> None:
    """Scaffold ML projects on AWS and Kubernetes, and run their ML lifecycle.

    \b
    mlscaffold new churn-model --task binary-classification
    cd churn-model
    mlscaffold train --time 60 && mlscaffold list
    mlscaffold check

    A new project trains, serves and tests with scikit-learn on the first command, and its
    infra/ is a Pulumi program for a production ML platform.
    """


def _load_policy_file(path: Path) -> Any:
    from .errors import UsageError
    from .policies.config import PolicyConfigError, load_policy_file

    try:
        return load_policy_file(path)
    except PolicyConfigError as error:
        raise UsageError(str(error), hint="`mlscaffold policy schema` prints the file's JSON "
                                          "Schema") from None


def _check_policy_environments(policy_file: Any, spec: Any, path: Path) -> None:
    from .errors import UsageError
    from .policies.config import PolicyConfigError, check_environment_sections

    try:
        check_environment_sections(policy_file, spec.environments, path)
    except PolicyConfigError as error:
        raise UsageError(str(error)) from None


def _parse_data(pairs: tuple[str, ...]) -> dict[str, str]:
    from .errors import UsageError

    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--data {pair!r} is not KEY=VALUE",
                             hint="write it as --data key=value, the key a blueprint question")
        if key in _OPTION_FOR_FIELD or key in {"project_name", "package_name"}:
            option = _OPTION_FOR_FIELD.get(key, "--name")
            raise UsageError(f"--data {pair!r} sets a spec field", hint=f"use {option} instead")
        from .answers import DERIVED_ANSWERS

        if key in DERIVED_ANSWERS:
            raise UsageError(f"--data {pair!r} sets an answer mlscaffold derives from the spec",
                             hint="change mlscaffold.yaml (or the stack settings in "
                                  "infra/Pulumi.<env>.yaml) instead")
        data[key] = value
    return data


def _checked(check: Any) -> Any:
    """A prompt's value_proc: the spec's own validator, so a bad answer is asked again."""

    def value_proc(answer: str) -> Any:
        try:
            return check(answer)
        except ValueError as error:
            raise click.UsageError(str(error)) from None

    return value_proc


def _ask(values: dict[str, Any]) -> None:
    """Ask on the terminal for each spec value not given as an option."""
    from . import spec

    def environments(answer: str) -> list[str]:
        return spec.check_environments([e.strip() for e in answer.split(",")])

    questions: list[tuple[str, str, dict[str, Any]]] = [
        ("task", "ML task", {"type": click.Choice(list(catalog.TASKS))}),
        ("label", "Label column", {"value_proc": _checked(spec.check_column)}),
        ("serving", "Serving", {"type": click.Choice(catalog.SERVING_PLATFORMS)}),
        ("feature_store", "Feature store", {"type": click.Choice(catalog.FEATURE_STORES)}),
        ("ci", "CI/CD", {"type": click.Choice(catalog.CI_PROVIDERS)}),
        ("region", "AWS region", {"value_proc": _checked(spec.check_region)}),
        ("environments", "Environments", {"value_proc": _checked(environments)}),
    ]
    for field, text, kind in questions:
        if values.get(field) is None:
            values[field] = click.prompt(text, default=_default(field), **kind)


def _print_result(result: Any) -> None:
    import shlex

    from .packaging import installed_from

    spec = result.spec
    top: dict[str, int] = {}
    for name in result.files:
        head = name.split("/", 1)[0] + ("/" if "/" in name else "")
        top[head] = top.get(head, 0) + 1
    click.echo(f"Created {spec.name} in {result.path} "
               f"({len(result.files)} files, {result.seconds:.2f} s)")
    for head, count in sorted(top.items(), key=lambda item: (not item[0].endswith("/"), item[0])):
        click.echo(f"  {head:<28}{count:>4} file{'s' if count != 1 else ''}")
    if result.git_commit:
        click.echo(f"Git repository initialised; first commit {result.git_commit[:10]}")
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo("\nNext steps:")
    click.echo(f"  cd {result.path}")
    if "Makefile" not in result.files:  # a blueprint of the team's own, without make targets
        click.echo("  mlscaffold train --time 60   # a time-bounded model search on datasets/")
        return
    source = installed_from()
    if source is None:  # from a package index: the project's pin finds this version there
        click.echo("  make install      # a venv with the project and its tools")
    else:  # a checkout or a wheel: the project's `make install` takes mlscaffold from there
        click.echo(f"  make install MLSCAFFOLD_SOURCE={shlex.quote(source)}"
                   "   # a venv with the project, its tools and this mlscaffold")
    click.echo("  make test         # the project's own tests")
    click.echo(f"  make train        # a time-bounded model search on datasets/ ({spec.metric})")


# spec options that `new` and `ci` share (`ci` takes them for a repository without a spec)
def _name_option(folder: str) -> Any:
    return click.option("--name", help=f"Project name [default: {folder}'s folder name].")


def _default(field: str) -> str:
    """The spec's default of `field` as the CLI shows and prompts it (lists comma-separated)."""
    value = catalog.SPEC_DEFAULTS[field]
    return ",".join(value) if isinstance(value, tuple | list) else str(value)


_TASK_OPTION = click.option("--task", type=click.Choice(list(catalog.TASKS)),
                            help=f"ML task [default: {_default('task')}].")
_LABEL_OPTION = click.option("--label", metavar="COLUMN",
                             help=f"Label column of the datasets [default: {_default('label')}].")
_METRIC_OPTION = click.option("--metric", metavar="NAME",
                              help="Metric that selects and gates models [default: by task].")
_SERVING_OPTION = click.option("--serving", type=click.Choice(catalog.SERVING_PLATFORMS),
                               help=f"Where models are served [default: {_default('serving')}].")
_REGION_OPTION = click.option("--region", metavar="CODE",
                              help=f"AWS region code [default: {_default('region')}].")
_ENVIRONMENTS_OPTION = click.option(
    "--environments", metavar="LIST",
    help="Comma-separated environments, one Pulumi stack each "
         f"[default: {_default('environments')}].")


def _split_environments(options: dict[str, Any]) -> None:
    if isinstance(options.get("environments"), str):
        options["environments"] = [e.strip() for e in options["environments"].split(",")]


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path, file_okay=True, dir_okay=True))
@_name_option("DEST")
@_TASK_OPTION
@_LABEL_OPTION
@_METRIC_OPTION
@click.option("--metric-threshold", type=float, metavar="X",
              help="Quality gate for promotion [default: by metric; rmse, mae, mape and "
                   "log_loss have none and need it].")
@_SERVING_OPTION
@click.option("--feature-store", type=click.Choice(catalog.FEATURE_STORES),
              help=f"Feature store [default: {_default('feature_store')}].")
@click.option("--ci", type=click.Choice(catalog.CI_PROVIDERS),
              help=f"CI/CD provider [default: {_default('ci')}].")
@_REGION_OPTION
@_ENVIRONMENTS_OPTION
@click.option("--owner", help=f"Owner tag on every resource [default: {_default('owner')}].")
@click.option("--cost-center",
              help=f"Cost-center tag on every resource [default: {_default('cost_center')}].")
@click.option("--blueprint", metavar="SRC",
              help="Another Copier blueprint: a folder or git URL [default: the bundled "
                   "ml-project].")
@click.option("--vcs-ref", metavar="REF", help="Git tag or commit of a --blueprint URL.")
@click.option("--data", "data_pairs", multiple=True, metavar="KEY=VALUE",
              help="Extra answer for the blueprint (repeatable).")
@click.option("--org-config", type=click.Path(path_type=Path, dir_okay=False),
              help="The organisation's policy file (YAML or JSON): validated, copied into the "
                   "project and used by `check` and CI.")
@click.option("--no-input", is_flag=True, help="Never ask; take defaults for what is not given.")
@click.option("--no-git", is_flag=True, help="Do not make the project a git repository.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output for people or for machines.")
def new(dest: Path, data_pairs: tuple[str, ...], no_input: bool, no_git: bool,
        blueprint: str | None, vcs_ref: str | None, output_format: str,
        org_config: Path | None, **options: Any) -> None:
    """Make a new ML project in DEST (a new or empty folder).

    The project gets sample data, a scikit-learn lifecycle (analyze, train, evaluate, promote,
    predict, serve, drift), tests, a serving image, CI and a Pulumi infra/ program. On a
    terminal, options not given are asked for; --no-input takes the defaults.

    \b
    Examples:
      mlscaffold new churn-model
      mlscaffold new ltv --task regression --label revenue --serving kserve --ci gitlab
      mlscaffold new demo --no-input --environments dev,prod --region eu-west-1
    """
    from .errors import SpecError, UsageError
    from .project import create_project
    from .spec import validate_spec

    if vcs_ref is not None and blueprint is None:
        raise click.UsageError("--vcs-ref picks a tag or commit of a --blueprint git URL; "
                               "pass --blueprint too, or drop --vcs-ref")
    data = _parse_data(data_pairs)
    policy_file = None
    if org_config is not None:
        policy_file = _load_policy_file(org_config)
        options["policy_config"] = "policy" + (".json" if org_config.suffix == ".json"
                                               else ".yaml")
    if not no_input and _stdin_is_tty():
        _ask(options)
    from_folder = options.get("name") is None
    if from_folder:
        options["name"] = dest.expanduser().absolute().name
    _split_environments(options)
    try:
        spec = validate_spec({k: v for k, v in options.items() if v is not None})
    except SpecError as error:
        if from_folder and error.field == "name":
            raise UsageError(f"the project name comes from the folder {dest}: {error}",
                             hint="rename the folder, or give the name with --name") from None
        raise
    if policy_file is not None:
        _check_policy_environments(policy_file, spec, org_config)
    # progress on stderr for a person watching a terminal; none for pipes or JSON
    progress = _progress if output_format == "text" and _stderr_is_tty() else None
    result = create_project(dest, spec, blueprint=blueprint, data=data, git=not no_git,
                            vcs_ref=vcs_ref, org_config=org_config, progress=progress)
    if output_format == "json":
        import json

        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_result(result)


# change status -> (what happened, what a dry run would do)
_CI_VERBS = {"create": ("created", "would create"), "update": ("overwritten", "would overwrite"),
             "unchanged": ("unchanged", "unchanged"),
             "conflict": ("differs", "differs (--force overwrites)")}


@cli.command()
@click.argument("project", type=click.Path(path_type=Path, file_okay=False), default=".",
                required=False)
@click.option("--dry-run", is_flag=True,
              help="Print the diff the update would make; write nothing (uncommitted changes "
                   "allowed: it previews against the last commit).")
@click.option("--blueprint", metavar="SRC",
              help="Blueprint folder or git URL to render [default: the one the last render "
                   "was made from].")
@click.option("--vcs-ref", metavar="REF",
              help="Git tag or commit of the blueprint [default: the one the last render was "
                   "made from, if the blueprint is the same].")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def update(project: Path, dry_run: bool, blueprint: str | None, vcs_ref: str | None,
           output_format: str) -> None:
    """Bring PROJECT to this mlscaffold's blueprint, keeping the team's edits.

    Every generated file is rendered again from mlscaffold.yaml and merged three ways with the
    committed project (git), against the previous pristine render kept on the branch
    mlscaffold-template. Lines only the template changed are applied, the team's own edits are
    kept, and lines both changed are conflicts, marked in place (exit 1). datasets/ is the
    team's and never touched. Change a value in mlscaffold.yaml (region, environments,
    serving), commit, and run `update` to re-render everything that depends on it.

    The blueprint is the one the last render was made from (the bundled one, a folder, or a
    git URL at its tag); --blueprint and --vcs-ref choose another, e.g. the next tag. Each
    changed file is listed: A added, M modified, D deleted, C conflict.
    """
    import json

    from .update import shown_files, update_project

    result = update_project(project, blueprint=blueprint, vcs_ref=vcs_ref, dry_run=dry_run)
    if output_format == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif result.up_to_date:
        click.echo(f"{result.path.name} is up to date with mlscaffold {result.to_version}")
    else:
        if dry_run and result.diff:
            click.echo(result.diff)
        verb = "would change" if dry_run else "changed"
        click.echo(f"mlscaffold {result.from_version} -> {result.to_version}: {verb} "
                   f"{len(result.changed)} file(s)"
                   + (f"; merge commit {result.commit[:10]}" if result.commit else ""))
        for name in sorted({*result.changed, *result.conflicts}):
            click.echo(f"  {_update_status(result, name)}")
    if result.uncommitted and output_format == "text":
        click.echo(f"note: previewed against the last commit, with mlscaffold.yaml as it is "
                   f"now; the update itself needs these committed or stashed: "
                   f"{shown_files(result.uncommitted)}", err=True)
    if result.conflicts:
        files = ", ".join(result.conflicts)
        if dry_run:
            _fail(f"the update would conflict in {files}", 1)
        marked = [name for name in result.conflicts if name not in result.deleted_conflicts]
        steps = []
        if marked:
            steps.append(f"conflicts in {', '.join(marked)}: edit the marked lines and "
                         "`git add` them")
        if result.deleted_conflicts:
            import shlex

            deleted = " ".join(shlex.quote(name) for name in result.deleted_conflicts)
            steps.append(f"{', '.join(result.deleted_conflicts)} changed on one side and "
                         f"deleted on the other: keep with `git add {deleted}` or drop with "
                         f"`git rm {deleted}`")
        _fail("; ".join(steps) + "; then `git commit` (or `git merge --abort` to undo the "
              "update)", 1)


def _update_status(result: Any, name: str) -> str:
    """One changed file of an update: C (a conflict), A (added), D (deleted) or M."""
    if name in result.deleted_conflicts:
        return f"C {name} (conflict: changed on one side, deleted on the other)"
    if name in result.conflicts:
        return f"C {name} (conflict)"
    if name in result.added:
        return f"A {name} (added)"
    if name in result.deleted:
        return f"D {name} (deleted)"
    return f"M {name}"


def _print_ci(result: Any, dry_run: bool) -> None:
    if dry_run:
        for change in result.changes:
            click.echo(change.diff, nl=False)
    for change in result.changes:
        click.echo(f"{_CI_VERBS[change.status][dry_run]}: {change.path.as_posix()}")
    for note in result.notes:
        click.echo(f"note: {note}")
    if dry_run:
        click.echo("dry run: nothing written")


@cli.command("ci")
@click.argument("project", type=click.Path(path_type=Path, file_okay=False), default=".",
                required=False)
@click.option("--provider", type=click.Choice([p for p in catalog.CI_PROVIDERS if p != "none"]),
              help="CI/CD provider [default: the ci of the project's mlscaffold.yaml].")
@click.option("--force", is_flag=True,
              help="Overwrite pipeline files whose content differs from what mlscaffold writes.")
@click.option("--dry-run", is_flag=True, help="Print what would change (a diff); write nothing.")
@_name_option("PROJECT")
@_TASK_OPTION
@_LABEL_OPTION
@_METRIC_OPTION
@_SERVING_OPTION
@_REGION_OPTION
@_ENVIRONMENTS_OPTION
def ci_command(project: Path, provider: str | None, force: bool, dry_run: bool,
               **options: Any) -> None:
    """Write the CI/CD pipeline into PROJECT, an existing repository (default: here).

    The pipeline is the one `new` writes: checks, previews and a training smoke run on every
    pull/merge request; train, quality gate, promotion, image and deployment on main (the
    production environment after approval); a scheduled drift check that starts retraining.
    A file whose content differs is refused, its diff printed, unless --force.

    A repository without mlscaffold.yaml gets one too, from --provider and the options below
    (they describe only such a repository); targets the pipeline runs that its Makefile lacks
    are listed.

    \b
    Examples:
      mlscaffold ci --dry-run
      mlscaffold ci path/to/project --provider gitlab --force
      mlscaffold ci ../fraud-model --provider github --task regression --environments dev,prod
    """
    from .ci import PipelineConflictError, write_pipeline

    _split_environments(options)
    try:
        result = write_pipeline(project, provider, force=force, dry_run=dry_run,
                                spec_values=options)
    except PipelineConflictError as error:
        for change in error.result.conflicts:
            click.echo(change.diff, nl=False)
        raise
    _print_ci(result, dry_run)


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path))
def blueprint(dest: Path) -> None:
    """Write the bundled blueprint into DEST (a new or empty folder), to host and tag in git.

    The blueprint is a Copier template: the ml-project blueprint with the shared CI templates.
    A platform team adapts it, tags a release and makes projects from it; its projects then
    update with `mlscaffold update --blueprint URL --vcs-ref TAG` or with plain `copier update`.

    \b
    Examples:
      mlscaffold blueprint ml-blueprint && cd ml-blueprint && git init && git add -A
      mlscaffold new churn --blueprint https://git.example.com/ml-blueprint.git --vcs-ref v1
    """
    from .project import export_blueprint

    written = export_blueprint(dest)
    click.echo(f"Wrote the ml-project blueprint to {written}")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of mlscaffold.yaml (for editors and CI validation)."""
    import json

    from .spec import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2))


_PROJECT_ARGUMENT = click.argument(
    "project", type=click.Path(path_type=Path, file_okay=False), default=".", required=False)
def _complete_stacks(ctx: click.Context, _param: click.Parameter,
                     incomplete: str) -> list[str]:
    """Shell completion of --stack: the environments of the project's mlscaffold.yaml (read
    as plain YAML: completion must be quick and never fail)."""
    import yaml

    project = ctx.params.get("project")
    if ctx.get_parameter_source("project") in (None, click.core.ParameterSource.DEFAULT):
        # `preview PROJECT --stack <TAB>`: the option still lacks its value, so Click's
        # resilient parse stops there and leaves PROJECT among the unparsed args
        project = next((arg for arg in ctx.args if not arg.startswith("-")), project)
    start = Path(project or ".").expanduser().absolute()
    for folder in (start, *start.parents):
        try:
            spec = yaml.safe_load((folder / "mlscaffold.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        environments = spec.get("environments") if isinstance(spec, dict) else None
        names = [str(name) for name in environments or []]
        if ctx.info_name in ("check", "cost"):
            names.append("all")
        return [name for name in names if name.startswith(incomplete)]
    return []


_STACK_OPTION = click.option(
    "--stack", "-s", metavar="ENV", shell_complete=_complete_stacks,
    help="Environment (stack) [default: the first in the spec].")


def _preview(project: Path, stack: str | None, progress: Any = None) -> Any:
    from .infra import open_infra_project, preview_stack

    opened = open_infra_project(project)
    stack = stack or opened.spec.environments[0]
    if progress is None:
        return preview_stack(opened, stack)
    with progress.stack(stack):
        return preview_stack(opened, stack)


@cli.command()
@_PROJECT_ARGUMENT
@_STACK_OPTION
@click.option("--format", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True)
def preview(project: Path, stack: str | None, output_format: str) -> None:
    """Run PROJECT's infra/ program for a stack under Pulumi's mocks and list its resources.

    No cloud account and no Pulumi CLI needed: the program runs in-process as `pulumi up`
    would run it, against a mock engine. Errors in the stack config name the key; errors in
    the program name its file and line.

    \b
    Examples:
      mlscaffold preview --stack dev
      mlscaffold preview path/to/project --stack prod --format json
    """
    from .cli_tables import StackProgress, print_preview

    graph = _preview(project, stack, StackProgress("previewing",
                                                   enabled=output_format == "table"))
    if output_format == "json":
        click.echo(graph.to_json())
        return
    print_preview(graph)


@cli.command()
@_PROJECT_ARGUMENT
@_STACK_OPTION
@click.option("--format", "output_format", type=click.Choice(["mermaid", "dot", "svg", "png"]),
              help="[default: --output's extension (.mmd .md .dot .gv .svg .png), else "
                   "mermaid]")
@click.option("--output", "-o", type=OutputFile(),
              help="Write the diagram to a file (needed for svg and png) instead of standard "
                   "output; it replaces only a diagram mlscaffold wrote.")
def graph(project: Path, stack: str | None, output_format: str | None,
          output: Path | None) -> None:
    """Print an architecture diagram of a stack: components and their main resources.

    Mermaid renders on GitHub and GitLab (paste it in a ```mermaid block, or write it with
    -o FILE.md); dot renders with Graphviz. svg and png are images, drawn by Graphviz when `dot`
    is on PATH, else by matplotlib: `mlscaffold graph -o platform.svg`.
    """
    from .report_outputs import diagram_format, mark_image, refuse_unless_report

    output_format = diagram_format(output, output_format)
    renderer = None
    if output_format in ("svg", "png"):
        from .diagram_image import image_renderer

        if output is None:
            raise click.UsageError(f"--format {output_format} writes an image file: add "
                                   f"--output FILE (e.g. -o platform.{output_format})")
        renderer = image_renderer(output_format)  # before the slow preview: say what is missing
    refuse_unless_report(output, output_format)
    resources = _preview(project, stack)
    if renderer is not None:
        from .diagram_image import render_image, write_image

        write_image(output, mark_image(render_image(resources, output_format, renderer),
                                       output_format))
        click.echo(f"wrote {output} (drawn by {renderer})", err=True)
        return
    from .diagram import to_dot, to_mermaid

    text = to_mermaid(resources) if output_format == "mermaid" else to_dot(resources)
    if output is None:
        click.echo(text, nl=False)
        return
    from .files import atomic_write_text

    if output.suffix.lower() == ".md":  # a Markdown file: the block GitHub and GitLab render
        text = f"```mermaid\n{text}```\n"
    atomic_write_text(output, text)
    click.echo(f"wrote {output}", err=True)


_STACKS_OPTION = click.option(
    "--stack", "-s", metavar="ENV|all", default="all", show_default=True,
    shell_complete=_complete_stacks,
    help="Environment (stack) to evaluate, or all of them.")


def _write_output(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text)
        return
    from .files import atomic_write_text

    atomic_write_text(output, text + "\n")
    click.echo(f"wrote {output}", err=True)


@cli.command()
@_PROJECT_ARGUMENT
@_STACKS_OPTION
@click.option("--format", "output_format", type=click.Choice(["table", "json", "sarif"]),
              default="table", show_default=True)
@click.option("--policy-config", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The organisation's policy file [default: the project's, if it has one].")
@click.option("--output", "-o", type=OutputFile(),
              help="Write the report to a file instead of standard output (it replaces only an "
                   "earlier report).")
def check(project: Path, stack: str, output_format: str, policy_config: Path | None,
          output: Path | None) -> None:
    """Check PROJECT's stacks against the security and cost policy packs, offline.

    Each stack's infra/ program runs under Pulumi's mocks and every rule of both packs is
    evaluated through pulumi_policy, with the settings `pulumi preview --policy-pack` would
    get. Exit status: 1 when a mandatory rule fails, 0 otherwise (advisory findings are
    printed).

    \b
    Examples:
      mlscaffold check
      mlscaffold check --stack prod --policy-config org-policy.yaml
      mlscaffold check --format sarif --output mlscaffold.sarif
    """
    import json

    from . import __version__
    from .checks import check_stack, resolve_stacks, to_sarif
    from .cli_tables import StackProgress, check_table
    from .infra import open_infra_project
    from .report_outputs import refuse_unless_report

    refuse_unless_report(output, output_format)
    opened = open_infra_project(project, policy_override=policy_config)
    _warn_answers_drift(opened.root, opened.spec)
    progress = StackProgress("checking", enabled=output_format == "table")
    checks = []
    for environment in resolve_stacks(opened.spec, stack):
        with progress.stack(environment):
            checks.append(check_stack(opened, environment))
    if output_format == "sarif":
        _write_output(json.dumps(to_sarif(checks, __version__), indent=2), output)
    elif output_format == "json":
        _write_output(json.dumps([c.result.as_dict() for c in checks], indent=2), output)
    else:
        _write_output(check_table(checks), output)
    if any(not c.result.passed for c in checks):
        sys.exit(1)


@cli.command()
@_PROJECT_ARGUMENT
@_STACKS_OPTION
@click.option("--format", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True)
def cost(project: Path, stack: str, output_format: str) -> None:
    """Estimate the monthly cost of PROJECT's stacks, offline.

    Prices come from the dated price table shipped with mlscaffold (its date and source are
    printed); node groups and endpoints are priced at their desired size, with the figure at
    full scale (maximum sizes) beside it. The same estimator backs the monthly-budget rule.
    """
    import json

    from .checks import cost_project
    from .cli_tables import print_cost
    from .infra import open_infra_project

    estimates = cost_project(open_infra_project(project), stack)
    if output_format == "json":
        click.echo(json.dumps({env: e.as_dict() for env, e in estimates}, indent=2))
        return
    print_cost(estimates)


@cli.command()
@_PROJECT_ARGUMENT
@_STACKS_OPTION
@click.option("--format", "output_format", type=click.Choice(["text", "json"]),
              default="text", show_default=True)
@click.option("--strict", is_flag=True,
              help="Also fail when a quota covers a deploy but not full scale, or is not found.")
def preflight(project: Path, stack: str, output_format: str, strict: bool) -> None:
    """Check the AWS service quotas PROJECT's stacks need, before deploying them.

    Each stack's infra/ program runs under Pulumi's mocks to learn what it launches (node
    groups, Karpenter NodePools, the GPU nodes of KServe predictors, instances, SageMaker
    endpoints and Model Monitor jobs); then
    the quotas of the stack's account and region (config aws:region) are read with your AWS
    credentials (the default chain: AWS_PROFILE, SSO, environment, role) and compared. New
    accounts have 0 vCPUs of GPU instances. A shortfall prints the `aws service-quotas`
    command that requests it.

    Exit status: 1 when a quota is below what a deploy launches (minimum and desired sizes;
    the nodes a GPU predictor's minReplicas need; SageMaker endpoints twice their instances,
    for blue/green updates); 0 when quotas cover a deploy but not full scale (maximum sizes),
    unless --strict. Missing credentials exit 2.

    \b
    Examples:
      mlscaffold preflight --stack prod
      AWS_PROFILE=ml-prod mlscaffold preflight --stack prod --strict
      mlscaffold preflight path/to/project --format json
    """
    import json

    from .cli_tables import print_preflight
    from .infra import open_infra_project
    from .preflight import preflight_project

    results = preflight_project(open_infra_project(project), stack)
    if output_format == "json":
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print_preflight(results, strict)
    if not all(r.passed(strict) for r in results):
        sys.exit(1)


@cli.group()
def policy() -> None:
    """The policy packs: list the rules, find a pack's folder, print settings and schemas."""


@policy.command("list")
@click.option("--pack", type=click.Choice(["security", "cost"]), help="Only this pack.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True)
def policy_list(pack: str | None, output_format: str) -> None:
    """Every rule with its pack, default level, severity and description."""
    import json

    from .cli_tables import print_rules
    from .policies import PACKS
    from .policies.registry import rules_of

    rules = [r for p in PACKS if pack in (None, p) for r in rules_of(p)]  # type: ignore[arg-type]
    if output_format == "json":
        click.echo(json.dumps([{"name": r.name, "pack": r.pack, "level": r.level,
                                "severity": r.severity, "description": r.description,
                                "resource_types": list(r.resource_types), "stack": r.stack,
                                "settings": r.defaults()} for r in rules], indent=2))
        return
    print_rules(rules)


@policy.command("path")
@click.argument("pack", type=click.Choice(["security", "cost"]), metavar="PACK")
def policy_path(pack: str) -> None:
    """Print the installed folder of PACK (security or cost), for `pulumi preview
    --policy-pack`."""
    from .policies import pack_directory

    click.echo(str(pack_directory(pack)))


@policy.command("config")
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, shell_complete=_complete_stacks,
              help="Environment (stack).")
@click.option("--pack", type=click.Choice(["security", "cost"]), required=True)
@click.option("--policy-config", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The organisation's policy file [default: the project's, if it has one].")
@click.option("--output", "-o", type=OutputFile(),
              help="Write to a file instead of standard output (it replaces only an earlier "
                   "configuration).")
def policy_config(project: Path, stack: str, pack: str, policy_config: Path | None,
                  output: Path | None) -> None:
    """Print a pack's settings for a stack: the file `--policy-pack-config` takes.

    \b
    pulumi preview --stack dev \\
      --policy-pack "$(mlscaffold policy path security)" \\
      --policy-pack-config <(mlscaffold policy config --stack dev --pack security)
    """
    import json

    from .checks import policy_configs, resolve_stacks
    from .infra import open_infra_project
    from .report_outputs import refuse_unless_report

    refuse_unless_report(output, "policy-config")
    opened = open_infra_project(project, policy_override=policy_config)
    resolve_stacks(opened.spec, stack)
    configs = policy_configs(opened, stack)
    _write_output(json.dumps(configs[pack], indent=2), output)


@policy.command("schema")
def policy_schema() -> None:
    """Print the JSON Schema of an organisation policy file."""
    import json

    from .policies.config import policy_file_schema

    click.echo(json.dumps(policy_file_schema(), indent=2))


@cli.command(context_settings={"ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@click.option("--project", "project", type=click.Path(path_type=Path, file_okay=False),
              default=".", show_default=True, help="The project (or a folder inside it).")
@click.option("--stack", "-s", metavar="ENV", required=True, shell_complete=_complete_stacks,
              help="Environment (stack).")
@click.option("--outputs", "outputs_source", metavar="FILE|-",
              help="The base stack's `pulumi stack output --json` [default: ask Pulumi].")
@click.option("--relay-timeout", type=float, default=300.0, show_default=True, metavar="SECONDS",
              help="How long to wait for a new API relay to come online in Session Manager.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def tunnel(project: Path, stack: str, outputs_source: str | None, relay_timeout: float,
           command: tuple[str, ...]) -> None:
    """Forward a stack's private EKS API endpoint to 127.0.0.1, through its API relay.

    The in-cluster program (infra/cluster) reaches the cluster at
    https://127.0.0.1:<cluster.tunnel_port>. This opens that port with an AWS Systems Manager
    port-forwarding session (the AWS CLI and its Session Manager plugin) through the relay
    instance of the base stack. With COMMAND (after --), it runs the command while the tunnel
    is open, closes the tunnel and exits with the command's status; without, it keeps the
    tunnel open until Ctrl-C.

    \b
    Examples:
      mlscaffold tunnel --stack dev -- pulumi --cwd infra/cluster up --stack dev
      mlscaffold tunnel --stack dev     # then, in another shell: kubectl, helm ...
    """
    import subprocess

    import boto3

    from .infra import open_infra_project, require_environment
    from .outputs import read_stack_outputs
    from .tunnel import open_tunnel, tunnel_target

    opened = open_infra_project(project)
    root = opened.root
    require_environment(opened.spec, stack)
    target = tunnel_target(read_stack_outputs(root, stack, outputs_source), stack)
    ssm = boto3.client("ssm", region_name=target.region)
    click.echo(f"tunnel: {target.local_url} -> {target.cluster} ({target.host}:443) through "
               f"the API relay {target.relay_instance_id}", err=True)
    with open_tunnel(target, ssm=ssm, relay_timeout=relay_timeout):
        if command:
            code = subprocess.run(list(command), check=False).returncode
        else:
            click.echo("tunnel: open; Ctrl-C closes it", err=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                code = 0
    click.echo("tunnel: closed", err=True)
    sys.exit(code)


@cli.group()
def features() -> None:
    """The SageMaker feature store: the schema a stack derives, and ingestion into it."""


@features.command("schema")
@_PROJECT_ARGUMENT
@click.option("--format", "output_format", type=click.Choice(["text", "yaml", "json"]),
              default="text", show_default=True,
              help="A table, the features section of mlscaffold.yaml, or JSON.")
def features_schema(project: Path, output_format: str) -> None:
    """Print the feature group's schema as the stacks derive it: no AWS, no Pulumi.

    Every column of datasets/train.csv with its feature name, its type and whether the type
    is declared (features.types in mlscaffold.yaml) or inferred from every row; the record
    identifier and the event time, which may be features generated at ingestion. --format yaml
    prints a features section to paste into mlscaffold.yaml, declaring every type as it is.

    \b
    Examples:
      mlscaffold features schema
      mlscaffold features schema --format yaml
    """
    from .cli_tables import print_feature_schema
    from .features import project_schema, schema_yaml

    dataset, schema = project_schema(project)
    if output_format == "json":
        import json

        click.echo(json.dumps({"dataset": dataset.as_posix(), **schema.as_dict()}, indent=2))
        return
    if output_format == "yaml":
        click.echo(schema_yaml(schema, dataset), nl=False)
        return
    print_feature_schema(dataset, schema)


@features.command("ingest")
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, shell_complete=_complete_stacks,
              help="Environment (stack).")
@click.option("--input", "dataset", type=click.Path(path_type=Path, dir_okay=False),
              help="The CSV to ingest [default: the project's datasets/train.csv].")
@click.option("--outputs", "outputs_source", metavar="FILE|-",
              help="The stack's outputs as `pulumi stack output --json` prints them "
                   "[default: run the Pulumi CLI].")
@click.option("--workers", type=click.IntRange(1, 16), default=4, show_default=True,
              help="PutRecord calls in flight at once.")
def features_ingest(project: Path, stack: str, dataset: Path | None,
                    outputs_source: str | None, workers: int) -> None:
    """Put every row of a CSV into a deployed stack's feature group (PutRecord).

    The feature group's name, region and schema come from the stack's outputs, so records
    match what was deployed: a CSV whose columns differ, or a value of another type, is refused
    before anything is written. Values go as the schema's types, event times in UTC, empty
    cells left out; a generated record_id is a digest of the row, a generated event_time the
    time of this ingestion. Throttling is retried; any other error stops at its row. Uses the
    standard AWS credentials.

    \b
    Examples:
      mlscaffold features ingest --stack dev
      pulumi stack output --json -s prod -C infra | mlscaffold features ingest -s prod --outputs -
    """
    from .features import ingest

    result = ingest(project, stack, outputs_source=outputs_source, dataset=dataset,
                    workers=workers)
    click.echo(f"Wrote {result.rows} rows of {result.dataset} to feature group "
               f"{result.feature_group} ({result.region}) in {result.seconds:.1f} s")


_OUTPUTS_OPTION = click.option(
    "--outputs", "outputs_source", metavar="FILE|-",
    help="The stack's outputs as `pulumi stack output --json` prints them [default: run the "
         "Pulumi CLI].")


@cli.group()
def model() -> None:
    """Model versions in a stack's artifact bucket: one immutable key per content."""


@model.command("upload")
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, shell_complete=_complete_stacks,
              help="Environment (stack).")
@click.option("--stage", metavar="STAGE", required=True,
              help="The registry stage whose current model is uploaded, e.g. staging.")
@_OUTPUTS_OPTION
def model_upload(project: Path, stack: str, stage: str, outputs_source: str | None) -> None:
    """Upload the current STAGE model of PROJECT to a stack's artifact bucket; print its key.

    The model is the one models/registry.json names current for STAGE (`make promote`,
    `make rollback`). Its key is models/<sha256 of its files>/model.tar.gz: a version already
    there is not uploaded again, so the key, and the stack, change only with the model. The
    archive is encrypted with the bucket's KMS key. Deploy the key with
    `pulumi config set --path platform.serving.model_key KEY` (`make deploy` does both).

    \b
    Examples:
      mlscaffold model upload --stack dev --stage staging
      pulumi stack output --json -s prod -C infra | mlscaffold model upload -s prod \\
        --stage production --outputs -
    """
    from .model import upload_model

    result = upload_model(project, stack, stage, outputs_source=outputs_source)
    where = f"{result.model.stage} v{result.model.version}"
    if result.uploaded:
        click.echo(f"model: uploaded {where} to {result.url} ({result.size:,} bytes)", err=True)
    else:
        click.echo(f"model: {where} is already at {result.url}", err=True)
    click.echo(result.key)


@model.command("served")
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, help="Environment (stack).")
@click.option("--stage", type=click.Choice(["staging", "production"]), required=True,
              help="production: the newest Approved version; staging: the newest not Rejected.")
@_OUTPUTS_OPTION
def model_served(project: Path, stack: str, stage: str, outputs_source: str | None) -> None:
    """Print the model version a stack serves for STAGE, as its SageMaker Model Registry says.

    The registry of record is the stack's model package group (`mlscaffold promote EXP --to
    STAGE --stack ENV` registers, `mlscaffold rollback --stack ENV` rolls back). Prints three
    lines for a shell's eval: model_key= (models/<sha256>/model.tar.gz), image_tag= (the
    serving image it was registered with, empty if none) and version=.

    \b
    Example (what `make deploy` runs):
      served=$(mlscaffold model served -s prod --stage production); eval "$served"
    """
    from .model_registry import deploy_shell, served_version

    version = served_version(project, stack, stage, outputs_source=outputs_source)
    click.echo(f"model: stack {stack} serves {version.summary()} for {stage}", err=True)
    click.echo(deploy_shell(version), nl=False)


@cli.command()
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, help="Environment (stack).")
@_OUTPUTS_OPTION
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def status(project: Path, stack: str, outputs_source: str | None, output_format: str) -> None:
    """What a stack serves: its approved version, its metrics, and what the endpoint runs.

    Reads the stack's SageMaker Model Registry (the version served for production, the
    newest Approved; for staging, the newest not Rejected; the ten newest versions) and its
    serving: the SageMaker endpoint's variants and their models, or the model key a KServe
    stack deployed. Exit 1 when serving does not run the version served for the stack's
    stage (production in a production environment, else staging).
    """
    import json

    from .model_registry import stack_status

    result = stack_status(project, stack, outputs_source=outputs_source)
    if output_format == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        for line in _status_lines(result):
            click.echo(line)
    if result.in_sync(result.target.stage) is False:
        sys.exit(1)


def _status_lines(result: Any) -> list[str]:
    from .lifecycle.text import number

    target = result.target
    lines = [f"stack {target.stack} ({target.region}): model package group {target.group}"]
    for stage, version in result.served.items():
        if version is None:
            lines.append(f"  {stage}: nothing registered")
            continue
        metrics = ", ".join(f"{name}={number(value)}" for name, value in
                            sorted(version.metrics.items()))
        lines.append(f"  {stage}: {version.summary()}, registered {version.created}")
        lines.append(f"    model {version.model_key or version.model_url}; image "
                     f"{version.image or 'not recorded'}; git {version.git_commit or 'unknown'}")
        if metrics:
            lines.append(f"    validation: {metrics}")
    if result.serving == "sagemaker" and result.endpoint is None:
        lines.append("  endpoint: not deployed yet")
    elif result.serving == "sagemaker":
        lines.append(f"  endpoint {result.endpoint}: {result.endpoint_status or 'missing'}")
        for variant in result.variants:
            served = f"v{variant.version}" if variant.version else "an unregistered model"
            lines.append(f"    variant {variant.name} (weight {variant.weight}): {served}, "
                         f"{variant.model_url}")
    elif result.serving == "kserve":
        from .canary import canary_status

        lines.append(f"  KServe: the stack deployed {result.deployed_key}"
                     f"{canary_status(result.target.canary_percent)}")
    else:
        lines.append("  serving: none")
    stage = target.stage
    synced = result.in_sync(stage)
    if synced is not None:
        lines.append(f"  serving runs the {stage} version" if synced else
                     f"  serving does not run the {stage} version: deploy it "
                     f"(make deploy STACK={target.stack} STAGE={stage})")
    lines.append("  versions (newest first):")
    lines += [f"    {version.summary()}" + (f" [{version.stage}]" if version.stage else "")
              for version in result.versions]
    return lines


@cli.group()
def endpoint() -> None:
    """A stack's serving around `pulumi up`: a SageMaker endpoint's prepare, verify and clean
    up; the version a KServe canary decides on."""


@endpoint.command("prepare")
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, shell_complete=_complete_stacks,
              help="Environment (stack).")
@click.option("--model-key", required=True, metavar="KEY",
              help="The model version the update deploys (`mlscaffold model upload` prints it).")
@click.option("--image-tag", required=True, metavar="TAG",
              help="The serving image tag the update deploys.")
@_OUTPUTS_OPTION
def endpoint_prepare(project: Path, stack: str, model_key: str, image_tag: str,
                     outputs_source: str | None) -> None:
    """Ready a stack's endpoint for the `pulumi up` that deploys MODEL-KEY and IMAGE-TAG.

    Waits while the endpoint updates. When the instance type changes, deregisters the
    variant from autoscaling (SageMaker refuses the update otherwise). Prints two lines for a
    shell's eval: refresh=--refresh when pulumi up must refresh first (the scalable target was
    deregistered, or the endpoint runs another endpoint config than the stack recorded, after
    a rollback), and instance_count=N for the endpoint config: the fleet's current size within
    [min_instances, max_instances] when the update makes a new one, else the running one's
    count, so that autoscaling alone changes nothing (empty for a new endpoint).

    \b
    Example (what `make deploy` runs):
      prepared=$(mlscaffold endpoint prepare -s prod --model-key "$key" --image-tag 1.4.0)
      eval "$prepared"
    """
    from .endpoint import prepare_update

    preparation = prepare_update(project, stack, model_key=model_key, image_tag=image_tag,
                                 outputs_source=outputs_source)
    for note in preparation.notes:
        click.echo(f"endpoint: {note}", err=True)
    click.echo(preparation.shell(), nl=False)


@endpoint.command("verify")
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, shell_complete=_complete_stacks,
              help="Environment (stack).")
@_OUTPUTS_OPTION
@click.option("--wait", "wait_seconds", type=click.FloatRange(0), default=3600.0,
              show_default=True, metavar="SECONDS",
              help="How long to wait for an update in progress to end.")
def endpoint_verify(project: Path, stack: str, outputs_source: str | None,
                    wait_seconds: float) -> None:
    """Check that a stack's endpoint runs what its last `pulumi up` deployed.

    The endpoint must be InService on the endpoint configuration of the stack's output
    `endpoint`. After a blue/green update that its alarms rolled back, it runs the previous
    configuration while pulumi up reported success: exit 1 with the configuration it runs, the
    alarms and the model that did not deploy.

    \b
    Example:
      pulumi stack output --json -s prod -C infra | mlscaffold endpoint verify -s prod --outputs -
    """
    from .endpoint import stack_endpoint, verify_endpoint

    result = verify_endpoint(stack_endpoint(project, stack, outputs_source),
                             wait_seconds=wait_seconds)
    click.echo(f"endpoint {result.endpoint} is InService on endpoint config "
               f"{result.config_name}, serving {result.model_key}")


@endpoint.command("cleanup")
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, shell_complete=_complete_stacks,
              help="Environment (stack).")
@_OUTPUTS_OPTION
@click.option("--keep-previous", type=click.IntRange(0, 10), default=1, show_default=True,
              help="Older endpoint configs (and their models) kept for a rollback.")
def endpoint_cleanup(project: Path, stack: str, outputs_source: str | None,
                     keep_previous: int) -> None:
    """Delete the old model versions of a stack's endpoint that nothing uses.

    Pulumi keeps a replaced SageMaker model and endpoint config (a rolled-back update still
    runs them); this deletes those of the stack that are neither running, nor deployed, nor
    among the newest others it keeps for a rollback (--keep-previous), and the models only
    those used. Refused unless the endpoint is InService.
    """
    from .endpoint import cleanup_endpoint, stack_endpoint

    result = cleanup_endpoint(stack_endpoint(project, stack, outputs_source),
                              keep_previous=keep_previous)
    for name in result.deleted_configs:
        click.echo(f"deleted endpoint config {name}")
    for name in result.deleted_models:
        click.echo(f"deleted model {name}")
    click.echo(f"kept endpoint configs: {', '.join(result.kept_configs)}; models: "
               f"{', '.join(result.kept_models)}")


@endpoint.command("canary")
@_PROJECT_ARGUMENT
@click.option("--stack", "-s", metavar="ENV", required=True, shell_complete=_complete_stacks,
              help="Environment (stack).")
@_OUTPUTS_OPTION
def endpoint_canary(project: Path, stack: str, outputs_source: str | None) -> None:
    """Print the version a stack's KServe canary runs, for a decision on it.

    With serving.kserve_mode serverless and rollout.strategy canary, a deployed version takes
    rollout.canary_percent of the traffic until the stack config's rollout.canary_decision
    names it: promote (all the traffic) or rollback (none: the previous version serves all).
    Prints model_key= and image_tag= lines for a shell's eval; `make canary-promote` and `make
    canary-rollback` set the decision from them and apply the in-cluster program.

    \b
    Example (what `make canary-promote` runs):
      deployed=$(mlscaffold endpoint canary -s prod --outputs outputs.json)
      eval "$deployed"
    """
    from .canary import canary_version

    click.echo(canary_version(project, stack, outputs_source).shell(), nl=False)


register_lifecycle(cli)


def main() -> None:
    """Console-script entry point."""
    import atexit
    import gc

    # the process ends with the command: leave its objects to the OS rather than to a last
    # garbage collection of all that copier, pydantic or Pulumi loaded (0.3 s and more; as in
    # spack/spack#53020). atexit hooks, weakref.finalize callbacks and the flushing of stdout
    # and stderr still happen; registered first, this hook runs last
    atexit.register(gc.freeze)
    cli.main()
