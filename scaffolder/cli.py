"""The `mlscaffold` command line: parse, call the core, print. Nothing slow is imported here.

Every error the core raises is a :class:`~mlscaffold.errors.MlscaffoldError`; :func:`main`
turns it, and Click's own usage errors, into one line on stderr and an exit status
(2 for bad input, 1 for a failure).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__, catalog

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
}


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Cli(click.Group):
    """A group whose errors are one line each, with the exit codes the docs promise."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        from .errors import MlscaffoldError, SpecError

        try:
            code = super().main(args, prog_name or "mlscaffold", standalone_mode=False, **extra)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx else "mlscaffold"
            _fail(f"{error.format_message()} (see '{command} --help')", 2)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except SpecError as error:
            where = f"{error.source}: " if error.source else ""
            option = _OPTION_FOR_FIELD.get(error.field, error.field)
            _fail(f"{where}{option if not where else error.field}: {error}", error.exit_code)
        except MlscaffoldError as error:
            _fail(str(error), error.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"],
                                         "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="mlscaffold")
def cli() -> None:
    """Scaffold ML projects on AWS and Kubernetes.

    \b
    mlscaffold new churn-model --task binary-classification
    cd churn-model && make test train

    A new project trains, serves and tests with scikit-learn on the first command, and its
    infra/ is a Pulumi program for a production ML platform.
    """


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
        data[key] = value
    return data


def _ask(values: dict[str, Any]) -> None:
    """Ask on the terminal for each spec value not given as an option."""
    questions: list[tuple[str, str, Any, click.ParamType | None]] = [
        ("task", "ML task", "binary-classification", click.Choice(list(catalog.TASKS))),
        ("label", "Label column", "label", None),
        ("serving", "Serving", "sagemaker", click.Choice(catalog.SERVING_PLATFORMS)),
        ("feature_store", "Feature store", "none", click.Choice(catalog.FEATURE_STORES)),
        ("ci", "CI/CD", "github", click.Choice(catalog.CI_PROVIDERS)),
        ("region", "AWS region", "us-east-1", None),
        ("environments", "Environments", ",".join(catalog.DEFAULT_ENVIRONMENTS), None),
    ]
    for field, text, default, kind in questions:
        if values.get(field) is None:
            values[field] = click.prompt(text, default=default, type=kind)


def _print_result(result: Any) -> None:
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
    click.echo("  make install      # a venv with the project and its tools")
    click.echo("  make test         # the project's own tests")
    click.echo(f"  make train        # a time-bounded model search on datasets/ ({spec.metric})")


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path, file_okay=True, dir_okay=True))
@click.option("--name", help="Project name [default: DEST's folder name].")
@click.option("--task", type=click.Choice(list(catalog.TASKS)),
              help="ML task [default: binary-classification].")
@click.option("--label", metavar="COLUMN", help="Label column of the datasets [default: label].")
@click.option("--metric", metavar="NAME",
              help="Metric that selects and gates models [default: by task].")
@click.option("--metric-threshold", type=float, metavar="X",
              help="Quality gate for promotion [default: by task].")
@click.option("--serving", type=click.Choice(catalog.SERVING_PLATFORMS),
              help="Where models are served [default: sagemaker].")
@click.option("--feature-store", type=click.Choice(catalog.FEATURE_STORES),
              help="Feature store [default: none].")
@click.option("--ci", type=click.Choice(catalog.CI_PROVIDERS),
              help="CI/CD provider [default: github].")
@click.option("--region", metavar="CODE", help="AWS region code [default: us-east-1].")
@click.option("--environments", metavar="LIST",
              help="Comma-separated environments, one Pulumi stack each "
                   "[default: dev,staging,prod].")
@click.option("--owner", help="Owner tag on every resource [default: ml-platform].")
@click.option("--cost-center", help="Cost-center tag on every resource [default: ml].")
@click.option("--blueprint", metavar="SRC",
              help="Another Copier blueprint: a folder or git URL [default: the bundled "
                   "ml-project].")
@click.option("--vcs-ref", metavar="REF", help="Git tag or commit of a --blueprint URL.")
@click.option("--data", "data_pairs", multiple=True, metavar="KEY=VALUE",
              help="Extra answer for the blueprint (repeatable).")
@click.option("--no-input", is_flag=True, help="Never ask; take defaults for what is not given.")
@click.option("--no-git", is_flag=True, help="Do not make the project a git repository.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output for people or for machines.")
def new(dest: Path, data_pairs: tuple[str, ...], no_input: bool, no_git: bool,
        blueprint: str | None, vcs_ref: str | None, output_format: str, **options: Any) -> None:
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
    from .project import create_project
    from .spec import validate_spec

    data = _parse_data(data_pairs)
    if not no_input and _stdin_is_tty():
        _ask(options)
    if options.get("name") is None:
        options["name"] = dest.expanduser().absolute().name
    if isinstance(options.get("environments"), str):
        options["environments"] = [e.strip() for e in options["environments"].split(",")]
    spec = validate_spec({k: v for k, v in options.items() if v is not None})
    result = create_project(dest, spec, blueprint=blueprint, data=data, git=not no_git,
                            vcs_ref=vcs_ref)
    if output_format == "json":
        import json

        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_result(result)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of mlscaffold.yaml (for editors and CI validation)."""
    import json

    from .spec import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2))


_PROJECT_ARGUMENT = click.argument(
    "project", type=click.Path(path_type=Path, file_okay=False), default=".", required=False)
_STACK_OPTION = click.option(
    "--stack", "-s", metavar="ENV", help="Environment (stack) [default: the first in the spec].")


def _preview(project: Path, stack: str | None) -> Any:
    from .infra import find_project, preview_stack
    from .spec import SPEC_FILENAME, load_spec

    root = find_project(project)
    stack = stack or load_spec(root / SPEC_FILENAME).environments[0]
    return preview_stack(root, stack)


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
    graph = _preview(project, stack)
    if output_format == "json":
        click.echo(graph.to_json())
        return
    from .diagram import key_inputs, short_type

    rows = [(short_type(r.type), "  " * depth + r.name,
             ", ".join(f"{k}={v}" for k, v in key_inputs(r).items()))
            for depth, r in graph.tree()]
    width_type = max((len(r[0]) for r in rows), default=4)
    width_name = max((len(r[1]) for r in rows), default=4)
    click.echo(f"{'TYPE':<{width_type}}  {'NAME':<{width_name}}  KEY INPUTS")
    for kind, name, inputs in rows:
        click.echo(f"{kind:<{width_type}}  {name:<{width_name}}  {inputs}".rstrip())
    custom = sum(1 for r in graph.resources if r.custom)
    click.echo(f"\n{graph.project}/{graph.stack}: {custom} resources in "
               f"{len(graph.resources) - custom} components (under mocks; nothing deployed)")


@cli.command()
@_PROJECT_ARGUMENT
@_STACK_OPTION
@click.option("--format", "output_format", type=click.Choice(["mermaid", "dot"]),
              default="mermaid", show_default=True)
def graph(project: Path, stack: str | None, output_format: str) -> None:
    """Print an architecture diagram of a stack: components and their main resources.

    Mermaid renders on GitHub and GitLab (paste it in a ```mermaid block); dot renders with
    Graphviz: `mlscaffold graph --format dot | dot -Tpng > platform.png`.
    """
    from .diagram import to_dot, to_mermaid

    resources = _preview(project, stack)
    click.echo(to_mermaid(resources) if output_format == "mermaid" else to_dot(resources), nl=False)


def main() -> None:
    """Console-script entry point."""
    cli.main()
