"""The lifecycle commands (`mlscaffold train|evaluate|promote|serve|…`), run inside a project.

Thin: each command opens the project (found upward from the working directory by its
mlscaffold.yaml, or --project), calls mlscaffold.lifecycle and prints what it returns. Nothing
here or there imports Pulumi or Copier. Exit codes: 0 done, 1 a gate refused (quality gate,
promotion, drift found), 2 bad input.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import click

from .cli_paths import OutputFile
from .lifecycle.config import (
    DEFAULT_DRIFT_THRESHOLD,
    DEFAULT_MAX_BATCH_ROWS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    STAGE_ALIASES,
    STAGES,
    TRAIN_ON,
)

# `--to prod` is `--to production`: stages answer to their environments' names too
_STAGE = click.Choice([*STAGES, *STAGE_ALIASES])


def _stage(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    return STAGE_ALIASES.get(value, value)


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()  # progress shows at once in CI logs too


def _warn(line: str) -> None:
    click.echo(f"warning: {line}", err=True)


@contextlib.contextmanager
def _files_errors() -> Iterator[None]:
    """An unreadable or unwritable file, or a port in use: one line, exit 2."""
    from .lifecycle.errors import ProjectError

    try:
        yield
    except BrokenPipeError:  # the reader of our output went away (`| head`): Click exits quietly
        raise
    except OSError as error:
        raise ProjectError(str(error)) from None


# the commands that only read experiments need the team's metrics, not its model code (whose
# modules import scikit-learn's estimators, over a second)
_READS = ("metrics",)


def _open(project: Path | None, *, hooks: Collection[str] | None = None) -> Any:
    """The project with its hooks (all, or the modules named; `_READS` for the read commands)."""
    from .lifecycle.project import open_project

    opened = open_project(project, hooks=hooks)
    for warning in opened.warnings:
        _warn(warning)
    return opened


_project_option = click.option(
    "--project", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
    help="The project [default: the one whose mlscaffold.yaml is here or above].")


def _stack_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--stack and --outputs: act on a deployed stack's model registry too."""
    command = click.option(
        "--outputs", "outputs_source", metavar="FILE|-",
        help="With --stack: the stack's outputs as `pulumi stack output --json` prints them "
             "[default: run the Pulumi CLI].")(command)
    return click.option(
        "--stack", "-s", metavar="ENV",
        help="The deployed stack whose SageMaker Model Registry (model package group) is "
             "the record.")(command)


_format_option = click.option("--format", "output_format", type=click.Choice(["text", "json"]),
                              default="text", show_default=True, help="Output format.")


def _json(data: Any) -> None:
    from .lifecycle.files import to_json

    click.echo(to_json(data), nl=False)


def register(cli: click.Group) -> None:
    """Add the lifecycle commands to the `mlscaffold` group."""
    for command in (analyze, train, evaluate, list_command, promote, rollback, predict, drift,
                    baseline, serve, track):
        cli.add_command(command)


@click.command()
@_project_option
@click.option("--input", "input_path", type=click.Path(path_type=Path, dir_okay=False),
              metavar="CSV", help="Data to profile [default: datasets/train.csv].")
@_format_option
def analyze(project: Path | None, input_path: Path | None, output_format: str) -> None:
    """Profile a data set: column kinds, missing values, label balance, the preprocessing plan.

    Also writes experiments/analysis/<file>/report.html: a distribution plot per column and a
    correlation view.
    """
    from .lifecycle.analyze import analyze as run

    with _files_errors():
        run(_open(project, hooks=()).config, input_path,
            as_json=output_format == "json", echo=_echo, warn=_warn)


class _Seconds(click.ParamType):
    """A positive, finite number of seconds (FloatRange lets nan and inf through)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value} is not a positive number of seconds", param, ctx)
        return seconds


DEFAULT_TRAIN_SECONDS = 60.0


@click.command()
@_project_option
@click.option("--time", "budget", type=_Seconds(), metavar="SECONDS",
              help=f"Search budget [default: {DEFAULT_TRAIN_SECONDS:g}; none with --trials].")
@click.option("--trials", type=click.IntRange(min=1), metavar="N",
              help="Stop after N candidates: with the same --seed and data, the same N "
                   "candidates as any other run (reproduces it exactly without --time).")
@click.option("--metric", metavar="NAME", help="Metric to optimize [default: the spec's metric].")
# numpy's generators take seeds of 32 bits
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=42, show_default=True,
              help="Random seed.")
@click.option("--on", "where", type=click.Choice(TRAIN_ON), default=None,
              help="Where the search runs: here, a SageMaker training job or a Kubernetes Job "
                   "on the EKS GPU pool [default: the spec's train_on, else local].")
@click.option("--stack", metavar="ENV", help="The deployed stack a remote run uses (--on "
                                             "sagemaker|eks).")
@click.option("--outputs", metavar="JSON|-", help="`pulumi stack output --json` of the stack, "
                                                  "a file or - [default: asks the Pulumi CLI].")
@click.option("--image-tag", metavar="TAG", help="The project's image in the stack's repository "
                                                 "[default: the stack's serving.image_tag].")
@click.option("--dry-run", is_flag=True, help="--on eks: print the Job's manifest, apply "
                                              "nothing.")
@click.option("--data", "data", type=click.Choice(("upload", "feature-store")), default=None,
              metavar="SOURCE",
              help="A remote run's data: the project's CSVs (upload) or the latest "
                   "record per identifier in the stack's feature store (feature-store) "
                   "[default: the stack config's training.data, else upload].")
def train(project: Path | None, budget: float | None, trials: int | None, metric: str | None,
          seed: int, where: str | None, stack: str | None, outputs: str | None,
          image_tag: str | None, dry_run: bool, data: str | None) -> None:
    """Search models within a time budget and record the best as experiments/exp-NNN.

    Candidates come from the project's hooks (src/<package>/candidates.py and
    preprocessing.py) or the defaults. Up to 10,000 rows, each is scored by cross-validation on
    datasets/train.csv and validation.csv together and the chosen model is refitted on both;
    above, each is scored on validation.csv. An ensemble of the best is kept when it scores
    better. Ctrl-C keeps the best model so far as an experiment marked interrupted. The
    experiment is logged to MLflow: the spec's tracking_uri, or the project's store mlruns/.

    Inside a training job (the image started as `IMAGE train`, with /opt/ml/input/data), it
    follows SageMaker's training contract instead: channels in, the experiment's files to
    /opt/ml/model, a failure reason to /opt/ml/output/failure.
    """
    from .lifecycle.job import job_paths

    paths = job_paths()
    if paths is not None:
        _train_in_job(project, paths)
        return
    if budget is None and trials is None:
        budget = DEFAULT_TRAIN_SECONDS
    from .lifecycle.train import train as run

    opened = _open(project)
    where = where or getattr(opened.spec, "train_on", None) or "local"
    if where != "local":
        if trials is not None:
            from .lifecycle.errors import ProjectError

            raise ProjectError(f"--trials is for local runs, not --on {where}",
                               hint="give the remote run a budget with --time SECONDS")
        _train_remotely(opened, where, stack, outputs, image_tag, budget, metric, seed,
                        dry_run, data)
        return
    if dry_run or stack:
        from .lifecycle.errors import ProjectError

        raise ProjectError("--stack and --dry-run are for remote runs",
                           hint="add --on sagemaker or --on eks")
    if data:
        from .lifecycle.errors import ProjectError

        raise ProjectError(f"--data {data} is for remote runs (a local run reads datasets/)",
                           hint="add --on sagemaker or --on eks")
    with _files_errors():
        entry = run(opened.config, budget=budget, metric_name=metric, seed=seed, echo=_echo,
                    hooks=opened.hooks, warn=_warn, trials=trials)
    if entry["interrupted"]:
        _warn(f"interrupted: kept the best model so far as {entry['id']} (marked interrupted)")
        sys.exit(130)


def _train_remotely(opened: Any, where: str, stack: str | None, outputs: str | None,
                    image_tag: str | None, budget: float, metric: str | None, seed: int,
                    dry_run: bool, data: str | None = None) -> None:
    """`train --on sagemaker|eks`: the stack's outputs and config, then the remote run."""
    from .lifecycle.errors import ProjectError

    if not stack:
        raise ProjectError(f"--on {where} needs the deployed stack to run in",
                           hint=f"add --stack ENV (one of: {', '.join(opened.spec.environments)})")
    if where == "sagemaker" and dry_run:
        raise ProjectError("--dry-run prints a Kubernetes Job; it is for --on eks")
    if opened.spec.serving == "none":  # as the spec's train_on says: no Dockerfile, no image
        raise ProjectError(f"--on {where} runs the project's image, which serving: none does "
                           "not build", hint="train here (--on local), or make the project with "
                                             "serving sagemaker or kserve")
    from .infra import stack_platform_config
    from .outputs import read_stack_outputs

    root = opened.config.root
    platform = stack_platform_config(root, opened.spec, stack)
    stack_outputs = read_stack_outputs(root, stack, outputs)
    tag = image_tag or platform.serving.image_tag
    data = data or platform.training.data
    channels = None
    if data == "feature-store":
        from functools import partial

        from .feature_data import check_feature_store, feature_store_channels

        check_feature_store(opened.spec, stack)
        channels = partial(feature_store_channels, spec=opened.spec, outputs=stack_outputs,
                           stack=stack)
    if where == "eks":
        from .eks_job import train_on_eks

        with _files_errors():
            entry = train_on_eks(opened.config, platform, stack_outputs, stack, image_tag=tag,
                                 budget=budget, metric=metric, seed=seed, dry_run=dry_run,
                                 echo=_echo, warn=_warn, confirm_stop=_confirm_stop,
                                 channels=channels)
        if entry is not None:
            _echo(f"next: mlscaffold evaluate --experiment {entry['id']}")
        return
    import boto3

    from .remote_train import RemoteRun, run_on_sagemaker, training_target

    target = training_target(stack_outputs, stack)
    remote = RemoteRun(session=boto3.session.Session(region_name=target.region), echo=_echo,
                       confirm_stop=_confirm_stop, warn=_warn)
    with _files_errors():
        entry = run_on_sagemaker(opened.config, target, remote, image_tag=tag, budget=budget,
                                 metric=metric, seed=seed, channels=channels)
    _echo(f"next: mlscaffold evaluate --experiment {entry['id']}")


def _confirm_stop(question: str) -> bool:
    """Ctrl-C during a remote run: stop the job? (yes without a terminal to answer on)"""
    try:
        return click.confirm(question, default=True, err=True)
    except click.Abort:
        return True


def _train_in_job(project: Path | None, paths: Any) -> None:
    """`train` as a training job; hyperparameters.json, not options, sets time, metric, seed."""
    from .lifecycle.job import run_training_job

    try:
        opened = _open(project)
    except BaseException as error:  # an image without its project: the job says why
        from .lifecycle.job import write_failure

        write_failure(paths, error)
        raise
    with _files_errors():
        run_training_job(opened.config, paths, hooks=opened.hooks, echo=_echo)


@click.command()
@_project_option
@click.option("--experiment", metavar="exp-NNN", help="Experiment to evaluate [default: the best].")
@_format_option
def evaluate(project: Path | None, experiment: str | None, output_format: str) -> None:
    """Score an experiment on datasets/test.csv and apply the spec's quality gate (exit 1)."""
    from .lifecycle.evaluate import evaluate as run
    from .lifecycle.evaluate import gate_error

    as_json = output_format == "json"
    with _files_errors():
        report = run(_open(project).config, experiment, echo=(lambda _: None) if as_json else
                     _echo, check_gate=False, warn=_warn)
    if as_json:
        _json(report)
    if report["gate"] is not None and not report["gate"]["passed"]:
        raise gate_error(report)


@click.command("list")
@_project_option
@click.option("--metric", metavar="NAME", help="Metric to rank by [default: the spec's metric].")
@_format_option
def list_command(project: Path | None, metric: str | None, output_format: str) -> None:
    """List the experiments, best first, with their MLflow runs and promoted versions."""
    from .lifecycle.listing import list_experiments

    with _files_errors():
        list_experiments(_open(project, hooks=_READS).config, metric,
                         as_json=output_format == "json", echo=_echo, warn=_warn)


@click.command()
@_project_option
@click.argument("experiment", required=False, metavar="exp-NNN")
@click.option("--to", "--stage", "stage", type=_STAGE, default="staging", show_default=True,
              callback=_stage, help="Stage to promote to (prod: production).")
@click.option("--force", is_flag=True,
              help="Promote to production even if worse than its current model or below the "
                   "gate (staging takes any model, with a warning).")
@click.option("--rollback", "roll_back", is_flag=True,
              help="Make the stage's previous version current again (same as `rollback`).")
@_stack_options
@click.option("--image-tag", metavar="TAG",
              help="With --stack: the serving image the version runs, recorded with its digest "
                   "(it must be pushed to the stack's repository).")
def promote(project: Path | None, experiment: str | None, stage: str, force: bool,
            roll_back: bool, stack: str | None, outputs_source: str | None,
            image_tag: str | None) -> None:
    """Copy an experiment's model into models/<stage>/ and record it in models/registry.json.

    With --stack ENV, also register it in the stack's SageMaker Model Registry (its model
    package group): Approved for production (refused when worse than the approved version),
    PendingManualApproval for staging. `make deploy` deploys what the registry approves.
    """
    from .lifecycle.errors import ProjectError

    if image_tag and not stack:
        raise ProjectError("--image-tag records the serving image of a registered version; "
                           "give --stack ENV too")
    if roll_back:
        if experiment:
            raise ProjectError("--rollback restores the stage's previous version; do not name "
                               f"an experiment (got {experiment})")
        _rollback(project, stage, stack, outputs_source)
        return
    if not experiment:
        raise ProjectError("name the experiment to promote, e.g. `mlscaffold promote exp-001`",
                           hint="`mlscaffold list` shows them")
    from .lifecycle.experiments import get_experiment
    from .lifecycle.metrics import get_metric
    from .lifecycle.registry import promote as run
    from .lifecycle.text import number

    config = _open(project, hooks=_READS).config
    if stack:
        _promote_to_stack(config, experiment, stage, stack, outputs_source, image_tag, force)
        return
    metric = get_metric(config.metric, config.task)
    with _files_errors():
        candidate = get_experiment(config.layout, experiment)
        entry, created = run(config.layout, candidate, stage, metric, config.metric_threshold,
                             force=force)
    if not created:
        same = ("already is" if entry["experiment"] == candidate["id"] else
                f"holds the same model ({entry['experiment']}'s) as")
        click.echo(f"{candidate['id']} {same} {stage}'s current version, v{entry['version']}"
                   f" (sha256 {entry['sha256'][:12]}); nothing changed")
        return
    for reason in entry["forced_past"]:
        _warn(f"promoted despite: {reason}")
    if stage == "staging":  # staging takes any model to try; say what production will refuse
        from .lifecycle.registry import check_promotion

        for reason in check_promotion(candidate, None, metric, config.metric_threshold):
            _warn(f"{reason}: production will refuse it without --force")
    click.echo(f"promoted {candidate['id']} to {stage} as v{entry['version']} "
               f"({metric.name}={number(entry['metrics'].get(metric.name))}, "
               f"sha256 {entry['sha256'][:12]})")
    click.echo(f"wrote {config.layout.root / entry['path']} and {config.layout.registry}")
    # the serving image and CI build from the committed models/ (experiments/ is ignored), and
    # `update` wants a clean tree
    click.echo("commit models/ to keep this version: the serving image and CI build from it")


@click.command()
@_project_option
@click.option("--to", "--stage", "stage", type=_STAGE, default="staging", show_default=True,
              callback=_stage, help="Stage to roll back (prod: production).")
@_stack_options
def rollback(project: Path | None, stage: str, stack: str | None,
             outputs_source: str | None) -> None:
    """Make a stage's previous model version current again.

    With --stack ENV, in the stack's SageMaker Model Registry instead: the version it serves
    for the stage is rejected and the one before it (approved again) serves; then deploy.
    """
    _rollback(project, stage, stack, outputs_source)


def _rollback(project: Path | None, stage: str, stack: str | None = None,
              outputs_source: str | None = None) -> None:
    from .lifecycle.registry import rollback as run

    if stack:
        _rollback_stack(project, stage, stack, outputs_source)
        return
    with _files_errors():
        retired, restored = run(_open(project, hooks=()).config.layout, stage)
    click.echo(f"rolled back {stage}: v{retired['version']} ({retired['experiment']}) retired, "
               f"v{restored['version']} ({restored['experiment']}) is current again")


def _promote_to_stack(config: Any, experiment: str, stage: str, stack: str,
                      outputs_source: str | None, image_tag: str | None, force: bool) -> None:
    from .lifecycle.text import number
    from .model_registry import promote_to_stack

    with _files_errors():
        result = promote_to_stack(config, experiment, stage, stack,
                                  outputs_source=outputs_source, image_tag=image_tag,
                                  force=force)
    for note in result.notes:
        _warn(note)
    if result.local is not None:
        entry = result.local
        click.echo(f"promoted {entry['experiment']} to {stage} as v{entry['version']} "
                   f"(sha256 {entry['sha256'][:12]}); wrote {config.layout.registry}")
    version, group = result.version, result.target.group
    metric = version.metric or config.metric
    described = (f"v{version.version} of {group} ({version.status}; {metric}="
                 f"{number(version.metrics.get(metric))}; {version.model_key})")
    if result.action == "unchanged":
        click.echo(f"{stage} of stack {stack} is {described} already")
    else:
        where = "uploaded" if result.uploaded else "already in the artifact bucket"
        click.echo(f"{result.action} {version.experiment} for {stage} in stack {stack}: "
                   f"{described}; model {where}")


def _rollback_stack(project: Path | None, stage: str, stack: str,
                    outputs_source: str | None) -> None:
    from .model_registry import rollback_stack

    root = _open(project, hooks=()).config.root
    rejected, restored = rollback_stack(root, stack, stage, outputs_source=outputs_source)
    click.echo(f"rolled back {stage} of stack {stack}: {rejected.summary()}; "
               f"{restored.summary()} serves again")
    click.echo(f"deploy it: make deploy STACK={stack} STAGE={stage}")


@click.command()
@_project_option
@click.option("--input", "input_path", type=click.Path(path_type=Path, dir_okay=False),
              required=True, metavar="CSV", help="Rows to predict.")
@click.option("--output", "output_path", type=OutputFile(),
              required=True, metavar="CSV", help="Where the predictions go.")
@click.option("--model", "model_ref", default="production", show_default=True,
              metavar="production|staging|exp-NNN", help="Model to use.")
@click.option("--force", is_flag=True,
              help="Replace --output even if it is not an earlier predictions file.")
def predict(project: Path | None, input_path: Path, output_path: Path, model_ref: str,
            force: bool) -> None:
    """Batch predictions (and class probabilities) for every row of a CSV file.

    An existing --output is replaced only if it holds earlier predictions (or nothing)."""
    from .lifecycle.predict import predict_file

    with _files_errors():
        predict_file(_open(project).config, input_path, output_path, model_ref, echo=_echo,
                     warn=_warn, force=force)


@click.command()
@_project_option
@click.option("--input", "input_path", type=click.Path(path_type=Path, dir_okay=False),
              required=True, metavar="CSV", help="New data.")
@click.option("--reference", type=click.Path(path_type=Path, dir_okay=False), metavar="CSV",
              help="Reference data [default: datasets/train.csv].")
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_DRIFT_THRESHOLD, show_default=True, metavar="PSI",
              help="PSI above which a feature has drifted.")
@click.option("--report", type=OutputFile(), metavar="PATH",
              help="JSON report [default: experiments/drift-report.json]; replaces only an "
                   "earlier drift report.")
@_format_option
def drift(project: Path | None, input_path: Path, reference: Path | None, threshold: float,
          report: Path | None, output_format: str) -> None:
    """Compare new data with the training data, feature by feature; exit 1 on drift."""
    from .lifecycle.drift import detect_drift

    as_json = output_format == "json"
    with _files_errors():
        result = detect_drift(_open(project, hooks=()).config, input_path, reference,
                              threshold, report, echo=(lambda _: None) if as_json else _echo)
    for warning in result["warnings"]:
        _warn(warning)
    if as_json:
        _json(result)
    if result["drifted"]:
        sys.exit(1)


@click.command()
@_project_option
@click.option("--outputs", default="-", show_default=True, metavar="JSON|-",
              help="`pulumi stack output --json` of the stack, a file or - for stdin.")
@click.option("--dry-run", is_flag=True, help="Print the upload and job request; call no AWS API.")
@click.option("--force", is_flag=True, help="Remake it even if it describes the current data.")
def baseline(project: Path | None, outputs: str, dry_run: bool, force: bool) -> None:
    """SageMaker Model Monitor baseline of the training data, made in the stack's account."""
    from .lifecycle import baseline as core
    from .lifecycle.files import to_json

    config = _open(project, hooks=()).config
    source = "standard input" if outputs == "-" else outputs
    with _files_errors():
        text = sys.stdin.read() if outputs == "-" else Path(outputs).read_text("utf-8")
    target = core.load_target(text, f"the stack outputs on {source}")
    if dry_run:
        click.echo(to_json(core.describe_request(config, target)), nl=False)
        return
    with core.aws_errors():
        published = core.make_baseline(config, target, core.BaselineClient(target), force=force,
                                       say=_echo)
    for uri in published:
        click.echo(f"published {uri}")


def _env_default(*names: str, default: Any = None) -> Callable[[], Any]:
    return lambda: next((os.environ[name] for name in names if os.environ.get(name)), default)


def _env_port(*names: str, default: int) -> Callable[[], int]:
    """The port the first set variable of `names` gives, checked here: Click would blame
    --port for a variable's value."""

    def port() -> int:
        name = next((name for name in names if os.environ.get(name)), None)
        if name is None:
            return default
        value = os.environ[name].strip()
        if not value.isdigit() or int(value) > 65535:
            raise click.BadParameter(f"${name} is {os.environ[name]!r}, not a port number from "
                                     "0 to 65535; set it to one, or unset it", param_hint="--port")
        return int(value)

    return port


@click.command()
@_project_option
@click.option("--host", default=_env_default("SERVE_HOST", default="127.0.0.1"),
              help="Address to listen on ($SERVE_HOST; 0.0.0.0 in a container) "
                   "[default: 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535),
              default=_env_port("SAGEMAKER_BIND_TO_PORT", "SERVE_PORT", default=DEFAULT_PORT),
              help="Port ($SAGEMAKER_BIND_TO_PORT, $SERVE_PORT) [default: 8080].")
@click.option("--model", "model_ref", default="production", show_default=True,
              metavar="production|staging|exp-NNN", help="Model to serve.")
@click.option("--model-dir", type=click.Path(path_type=Path, file_okay=False),
              default=_env_default("MODEL_DIR"), metavar="DIR",
              help="Serve the model bundle in DIR instead of --model ($MODEL_DIR); needs no "
                   "project.")
@click.option("--model-name", default=_env_default("MODEL_NAME"), metavar="NAME",
              help="Model name in the KServe routes ($MODEL_NAME) [default: the project name].")
@click.option("--max-body-bytes", type=click.IntRange(min=1),
              default=_env_default("SERVE_MAX_BODY_BYTES", default=DEFAULT_MAX_BODY_BYTES),
              metavar="N", help="Largest request body ($SERVE_MAX_BODY_BYTES) [default: 6 MiB, "
                                "SageMaker's limit].")
@click.option("--max-batch-rows", type=click.IntRange(min=1), default=DEFAULT_MAX_BATCH_ROWS,
              show_default=True,
              metavar="N", help="Most rows predicted in one call when concurrent requests "
                                "are merged (1 turns merging off).")
@click.option("--no-fast-path", "fast_path", is_flag=True, flag_value=False, default=True,
              help="Predict with the scikit-learn pipeline only, not with its ONNX "
                   "compilation (ONNX Runtime).")
@click.option("--access-log", is_flag=True, help="Log every request.")
def serve(project: Path | None, host: str, port: int, model_ref: str, model_dir: Path | None,
          model_name: str | None, max_body_bytes: int, max_batch_rows: int, fast_path: bool,
          access_log: bool) -> None:
    """Serve a model over HTTP: SageMaker (/ping, /invocations), KServe v1 and v2.

    SageMaker starts the image as `IMAGE serve`, which runs this command; SIGTERM drains and
    exits 0.
    """
    import logging

    from .lifecycle.errors import ProjectError
    from .lifecycle.model import load_bundle, resolve_model_dir
    from .lifecycle.serving import run

    if model_dir is None:
        # the project's hooks put src/ on the import path: a pickled pipeline may use its code
        directory = resolve_model_dir(_open(project).config.root, model_ref)
    else:
        directory = model_dir
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bundle = load_bundle(directory)
    logging.getLogger("mlscaffold.serve").info("loaded the model in %s", directory)
    try:
        run(bundle, host, port, model_name, max_body_bytes, max_batch_rows=max_batch_rows,
            access_log=access_log, fast_path=fast_path)
    except OSError as error:  # the address is taken or not ours
        raise ProjectError(f"cannot listen on {host}:{port}: {error.strerror or error}; "
                           "choose another --port (or --host)") from None


@click.command()
@_project_option
@click.argument("experiments", nargs=-1, metavar="[exp-NNN]...")
def track(project: Path | None, experiments: tuple[str, ...]) -> None:
    """Log experiments to MLflow that are not there yet [default: every one].

    `train` logs each experiment itself; this logs those it could not (the tracking server was
    unreachable) or that predate the store, to the spec's tracking_uri or mlruns/.
    """
    from .lifecycle.experiments import read_index
    from .lifecycle.tracking import log_experiment, store_of, untracked

    config = _open(project).config
    with _files_errors():
        ids = list(experiments) or untracked(config, read_index(config.layout), warn=_warn)
        if ids is None:  # MLflow is not installed: the warning said so
            sys.exit(1)
        for experiment in ids:
            run_id = log_experiment(config, experiment, warn=_warn)
            if run_id is None:
                sys.exit(1)
            click.echo(f"{experiment}: MLflow run {run_id}")
    if not ids:
        click.echo(f"every experiment is tracked in {store_of(config).described}")
