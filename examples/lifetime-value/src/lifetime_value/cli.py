"""Command line: `python -m <package> COMMAND`; main(argv) returns the exit code.

Exit codes: 0 success, 1 a gate refused (quality gate, promotion, drift found),
2 bad input or usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .analyze import analyze
from .config import STAGES, ProjectConfig, find_project_root, load_config
from .drift import DEFAULT_THRESHOLD, detect_drift
from .errors import COMMAND, ProjectError
from .evaluate import evaluate
from .experiments import get_experiment
from .files import to_json
from .listing import list_experiments
from .metrics import get_metric
from .predict import predict_file
from .registry import promote, rollback
from .serve import add_serve_arguments, run_serve
from .text import number, say
from .train import train


def _config(args: argparse.Namespace) -> ProjectConfig:
    """The project named by --project, else the one around the working directory."""
    return load_config(Path(args.project) if "project" in args else find_project_root())


def _analyze(args: argparse.Namespace) -> int:
    analyze(_config(args), args.input, as_json=args.json)
    return 0


def _train(args: argparse.Namespace) -> int:
    train(_config(args), budget=args.time, metric_name=args.metric, seed=args.seed)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    evaluate(_config(args), args.experiment)
    return 0


def _list(args: argparse.Namespace) -> int:
    list_experiments(_config(args), args.metric, as_json=args.json)
    return 0


def _promote(args: argparse.Namespace) -> int:
    config = _config(args)
    layout = config.layout
    if args.rollback:
        if args.experiment:
            raise ProjectError(
                "--rollback restores the previous version; do not name an experiment"
            )
        retired, restored = rollback(layout, args.to)
        print(
            f"rolled back {args.to}: v{retired['version']} ({retired['experiment']}) retired, "
            f"v{restored['version']} ({restored['experiment']}) is current again"
        )
        return 0
    if not args.experiment:
        raise ProjectError(
            f"name the experiment to promote, e.g. exp-001; `{COMMAND} list` shows them"
        )
    metric = get_metric(config.metric, config.task)
    candidate = get_experiment(layout, args.experiment)
    entry = promote(layout, candidate, args.to, metric, config.metric_threshold, force=args.force)
    for reason in entry["forced_past"]:
        print(f"warning: promoted despite: {reason}", file=sys.stderr)
    print(
        f"promoted {candidate['id']} to {args.to} as v{entry['version']} "
        f"({metric.name}={number(entry['metrics'].get(metric.name))}, "
        f"sha256 {entry['sha256'][:12]})"
    )
    print(f"wrote {layout.root / entry['path']} and {layout.registry}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    predict_file(_config(args), args.input, args.output, args.model)
    return 0


def _drift(args: argparse.Namespace) -> int:
    report = detect_drift(_config(args), args.input, args.reference, args.threshold, args.report)
    return 1 if report["drifted"] else 0


def _baseline(args: argparse.Namespace) -> int:
    from . import baseline  # boto3 is imported only by this command

    config = _config(args)
    source = "standard input" if args.outputs == "-" else args.outputs
    text = sys.stdin.read() if args.outputs == "-" else Path(args.outputs).read_text("utf-8")
    target = baseline.load_target(text, f"the stack outputs on {source}")
    if args.dry_run:
        print(to_json(baseline.describe_request(config, target)), end="")
        return 0
    with baseline.aws_errors():
        published = baseline.make_baseline(
            config, target, baseline.BaselineClient(target), force=args.force, say=say
        )
    for uri in published:
        print(f"published {uri}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    return run_serve(args)  # needs no mlscaffold.yaml when given --model-dir


def build_parser() -> argparse.ArgumentParser:
    project = argparse.ArgumentParser(add_help=False)
    project.add_argument(
        "--project",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="project directory (default: the one holding mlscaffold.yaml above the current one)",
    )
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        parents=[project],
        description="Train, evaluate, promote and serve this project's model.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[project], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    sub = command("analyze", _analyze, "profile a data set and suggest preprocessing")
    sub.add_argument(
        "--input", type=Path, metavar="CSV", help="data to profile (default: datasets/train.csv)"
    )
    sub.add_argument("--json", action="store_true", help="print the report as JSON")

    sub = command("train", _train, "search models within a time budget; record an experiment")
    sub.add_argument(
        "--time", type=float, default=60.0, metavar="SECONDS", help="search budget (default: 60)"
    )
    sub.add_argument(
        "--metric", metavar="NAME", help="metric to optimize (default: metric in mlscaffold.yaml)"
    )
    sub.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")

    sub = command(
        "evaluate", _evaluate, "score an experiment on datasets/test.csv; apply the quality gate"
    )
    sub.add_argument(
        "--experiment", metavar="exp-NNN", help="experiment to evaluate (default: the best)"
    )

    sub = command("list", _list, "list experiments ranked by a metric")
    sub.add_argument(
        "--metric", metavar="NAME", help="metric to rank by (default: metric in mlscaffold.yaml)"
    )
    sub.add_argument("--json", action="store_true", help="print JSON")

    sub = command(
        "promote", _promote, "copy an experiment's model into models/<stage>/, or roll back"
    )
    sub.add_argument("experiment", nargs="?", metavar="exp-NNN", help="experiment to promote")
    sub.add_argument("--to", choices=STAGES, default="staging", help="stage (default: staging)")
    sub.add_argument(
        "--force",
        action="store_true",
        help="promote even if worse than production or below threshold",
    )
    sub.add_argument(
        "--rollback", action="store_true", help="make the stage's previous version current again"
    )

    sub = command("predict", _predict, "batch predictions from a CSV file")
    sub.add_argument("--input", type=Path, required=True, metavar="CSV")
    sub.add_argument("--output", type=Path, required=True, metavar="CSV")
    sub.add_argument(
        "--model",
        default="production",
        metavar="production|staging|exp-NNN",
        help="model to use (default: production)",
    )

    sub = command("drift", _drift, "compare new data with the training data; exit 1 on drift")
    sub.add_argument("--input", type=Path, required=True, metavar="CSV", help="new data")
    sub.add_argument(
        "--reference", type=Path, metavar="CSV", help="reference data (default: datasets/train.csv)"
    )
    sub.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        metavar="PSI",
        help=f"PSI above which a feature has drifted (default: {DEFAULT_THRESHOLD})",
    )
    sub.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="JSON report path (default: experiments/drift-report.json)",
    )

    sub = command(
        "baseline",
        _baseline,
        "SageMaker Model Monitor baseline of the training data, made in the stack's account",
    )
    sub.add_argument(
        "--outputs",
        default="-",
        metavar="JSON|-",
        help="file holding `pulumi stack output --json` of the stack (default: - reads stdin)",
    )
    sub.add_argument(
        "--dry-run", action="store_true", help="print the upload and job request; call no AWS API"
    )
    sub.add_argument(
        "--force", action="store_true", help="remake it even if it describes the current data"
    )

    sub = command("serve", _serve, "serve the model over HTTP (SageMaker and KServe protocols)")
    add_serve_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.handler(args)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # unreadable or unwritable files, a port in use
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
