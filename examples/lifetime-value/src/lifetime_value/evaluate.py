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
from .text import number, table


def evaluate(
    config: ProjectConfig, experiment_id: str | None = None, echo: Callable[[str], None] = print
) -> dict:
    """Score an experiment (default: the best) on datasets/test.csv and apply the quality gate.

    Writes evaluation.json and confusion_matrix.csv/.png or residuals.csv/.png into the
    experiment directory.
    Raises GateError after writing when the metric misses mlscaffold.yaml's metric_threshold.
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
        details, written = _classification_details(outcome, directory, title)
    else:
        details, written = _regression_details(outcome, directory, title)
    value = scores.get(metric.name)
    gate = None
    if config.metric_threshold is not None:
        gate = {
            "metric": metric.name,
            "value": value,
            "threshold": config.metric_threshold,
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
    if gate is not None:
        relation = ">=" if metric.higher_is_better else "<="
        verdict = f"{metric.name}={number(value)}, required {relation} {config.metric_threshold:g}"
        if not gate["passed"]:
            raise GateError(f"quality gate failed for {entry['id']}: {verdict}")
        echo(f"quality gate passed: {verdict}")
    return report


def _classification_details(outcome, directory: Path, title: str) -> tuple[dict, list[Path]]:
    classes = list(outcome.classes)
    matrix = confusion_matrix(outcome.y_true, outcome.y_pred, labels=classes)
    labels = [str(label) for label in classes]
    frame = pd.DataFrame(matrix, index=pd.Index(labels, name="actual \\ predicted"), columns=labels)
    written = [
        atomic_write_text(directory / "confusion_matrix.csv", frame.to_csv()),
        confusion_matrix_plot(matrix, classes, title, directory / "confusion_matrix.png"),
    ]
    return {"classes": classes, "confusion_matrix": matrix.tolist()}, written


def _regression_details(outcome, directory: Path, title: str) -> tuple[dict, list[Path]]:
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
        regression_plot(actual, predicted, title, directory / "residuals.png"),
    ]
    return {"residuals": summary}, written
