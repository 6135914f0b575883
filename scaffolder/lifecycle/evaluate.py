"""Test-set evaluation of an experiment, with its confusion matrix or residuals and a plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from .config import ProjectConfig
from .data import read_csv, split_label
from .errors import GateError
from .experiments import best_experiment, get_experiment, update_experiment
from .files import atomic_write_json, atomic_write_text, sha256_file, utc_now
from .metrics import compute_all, get_metric, outcome_of
from .model import SchemaMismatch, check_columns, load_bundle
from .plots import confusion_matrix_plot, regression_plot
from .schema import coerce_features
from .text import number, quiet, table


def evaluate(
    config: ProjectConfig,
    experiment_id: str | None = None,
    echo: Callable[[str], None] = quiet,
    check_gate: bool = True,
    warn: Callable[[str], None] = quiet,
    track: bool = True,
) -> dict:
    """Score an experiment (default: the best) on datasets/test.csv and apply the quality gate.

    Writes evaluation.json and confusion_matrix.csv/.png or residuals.csv/.png into the
    experiment directory. Without matplotlib (an image installs only the lifecycle runtime) the
    .png is skipped and `warn` says what to install.
    Raises GateError after writing when the metric misses mlscaffold.yaml's metric_threshold
    (unless `check_gate` is false: then the report's "gate" says so and gate_error() raises).
    If `track`, the test metrics (test_<metric>) and these files go to the experiment's MLflow
    run too (:func:`.tracking.log_evaluation`); a store that cannot be reached raises
    TrackingError after the files are written.
    """
    layout = config.layout
    metric = get_metric(config.metric, config.task)
    entry = (
        get_experiment(layout, experiment_id) if experiment_id else best_experiment(layout, metric)
    )
    directory = layout.experiments / entry["id"]
    bundle = load_bundle(directory)
    test_path = layout.dataset("test")
    frame = read_csv(test_path)
    data = split_label(frame, config.label, config.task, test_path)
    missing, _ = check_columns(bundle, data.features.columns)
    if missing:
        raise SchemaMismatch(missing, [])
    outcome = outcome_of(
        bundle.pipeline, coerce_features(data.features, bundle.features), data.labels, bundle.task
    )
    scores = compute_all(outcome)

    title = f"{config.name} {entry['id']} ({entry['family']}) on test"
    if outcome.classes is not None:
        details, written = _classification_details(outcome, directory, title, warn)
    else:
        details, written = _regression_details(outcome, directory, title, warn)
    value = scores.get(metric.name)
    gate = None
    if config.metric_threshold is not None:
        gate = {
            "metric": metric.name,
            "value": value,
            "threshold": config.metric_threshold,
            "higher_is_better": metric.higher_is_better,
            "passed": metric.passes(value, config.metric_threshold),
        }
    report = {
        "experiment": entry["id"],
        "evaluated_at": utc_now(),
        "data": {
            "path": str(test_path),
            "sha256": sha256_file(test_path),
            "rows": len(data.labels),
        },
        "metrics": scores,
        "gate": gate,
        **details,
    }
    written.insert(0, atomic_write_json(directory / "evaluation.json", report))
    update_experiment(layout, entry["id"], test=scores)

    echo(f"{entry['id']} ({entry['family']}) on {test_path} ({len(data.labels)} rows):")
    echo(
        table(
            ["metric", "test", "validation"],
            [
                [name, number(score), number(entry["validation"].get(name))]
                for name, score in scores.items()
            ],
        )
    )
    echo("wrote " + ", ".join(str(path) for path in written))
    if track:
        from .tracking import log_evaluation

        run_id = log_evaluation(config, entry["id"], scores, written, warn=warn)
        if run_id is not None:
            echo(f"logged the test metrics to MLflow run {run_id}")
    if gate is not None:
        if not gate["passed"]:
            if check_gate:
                raise gate_error(report)
        else:
            echo(f"quality gate passed: {_verdict(gate)}")
    return report


def _verdict(gate: dict) -> str:
    relation = ">=" if gate["higher_is_better"] else "<="
    return f"{gate['metric']}={number(gate['value'])}, required {relation} {gate['threshold']:g}"


def gate_error(report: dict) -> GateError:
    """The error of an evaluation report whose quality gate failed."""
    return GateError(f"quality gate failed for {report['experiment']}: {_verdict(report['gate'])}")


def _plotted(draw: Callable[[], Path], warn: Callable[[str], None]) -> list[Path]:
    """[the plot `draw` wrote], or [] with a warning when the plotting library is missing."""
    from ..packaging import install_hint, missing_library

    try:
        return [draw()]
    except ModuleNotFoundError as error:
        library = missing_library(error)
        if library is None:
            raise
        warn(f"plots skipped: {library} is not installed here (an image installs only the "
             f"lifecycle runtime); {install_hint()} draws them")
        return []


def _classification_details(outcome, directory: Path, title: str,
                            warn: Callable[[str], None]) -> tuple[dict, list[Path]]:
    classes = list(outcome.classes)
    matrix = confusion_matrix(outcome.y_true, outcome.y_pred, labels=classes)
    labels = [str(label) for label in classes]
    frame = pd.DataFrame(matrix, index=pd.Index(labels, name="actual \\ predicted"), columns=labels)
    written = [
        atomic_write_text(directory / "confusion_matrix.csv", frame.to_csv()),
        *_plotted(lambda: confusion_matrix_plot(matrix, classes, title,
                                                directory / "confusion_matrix.png"), warn),
    ]
    return {"classes": classes, "confusion_matrix": matrix.tolist()}, written


def _regression_details(outcome, directory: Path, title: str,
                        warn: Callable[[str], None]) -> tuple[dict, list[Path]]:
    actual, predicted = np.asarray(outcome.y_true, dtype=float), outcome.y_pred
    residuals = actual - predicted
    absolute = np.abs(residuals)
    summary = {
        "mean": float(residuals.mean()),
        "std": float(residuals.std()),
        "median_absolute": float(np.median(absolute)),
        "p05": float(np.percentile(residuals, 5)),
        "p95": float(np.percentile(residuals, 95)),
        "max_absolute": float(absolute.max()),
    }
    frame = pd.DataFrame({"actual": actual, "predicted": predicted, "residual": residuals})
    written = [
        atomic_write_text(directory / "residuals.csv", frame.to_csv(index=False)),
        *_plotted(lambda: regression_plot(actual, predicted, title,
                                          directory / "residuals.png"), warn),
    ]
    return {"residuals": summary}, written
