"""Test-set evaluation of an experiment: metrics, the quality gate, plots and a report.html."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from .config import ProjectConfig
from .data import LabelledData, read_csv, shared_rows, split_label, text_columns
from .errors import DataError, GateError
from .experiments import best_experiment, get_experiment, update_experiment
from .files import atomic_write_json, atomic_write_text, sha256_file, utc_now
from .metrics import Metric, compute_all, get_metric, outcome_of, positive_of, why_undefined
from .model import SchemaMismatch, check_columns, load_bundle, parse_input
from .plots import (
    Drawer,
    calibration_plot,
    confusion_matrix_plot,
    importance_plot,
    precision_recall_plot,
    predicted_vs_actual_plot,
    residuals_plot,
    roc_plot,
)
from .report import Section, write_html_report
from .schema import stray_warnings
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

    Writes into the experiment directory evaluation.json, importance.csv (permutation importance
    of each input column) and, for a classifier, confusion_matrix.csv and the confusion matrix,
    ROC, precision-recall and calibration plots; for a regressor residuals.csv and the predicted
    vs actual and residual plots; both get an importance plot; report.html shows them all.
    Without matplotlib (an image installs only the lifecycle runtime) the .png files are skipped,
    `warn` says once what to install, and the report says so too.
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
    frame = read_csv(test_path, given=False, text=text_columns(bundle.features))
    data = split_label(frame, config.label, config.task, test_path)
    source = test_path.relative_to(config.root).as_posix()
    if data.dropped_rows:
        warn(f"ignored {data.dropped_rows} row(s) of test without a label")
    if bundle.classes is not None:
        data = _among_classes(data, bundle.classes, source, warn)
    missing, _ = check_columns(bundle, data.features.columns)
    if missing:
        raise SchemaMismatch(missing, [])
    parsed = parse_input(bundle, data.features)
    for line in stray_warnings(source, parsed.strays):
        warn(line)
    if leaked := shared_rows(parsed.frame, data.labels, _training_rows(config, bundle)):
        warn(f"{leaked} of {len(data.labels)} row(s) of {source} are also in the training data "
             "(datasets/train.csv or validation.csv: the same features and label): the test "
             "scores are optimistic; remove them from one side")
    positive = (positive_of(bundle.classes, config.positive_class, source)
                if bundle.task == "binary-classification" else None)
    outcome = outcome_of(bundle.pipeline, parsed.frame, data.labels, bundle.task, positive)
    scores = compute_all(outcome)
    # n/a alone gives no clue: say why (a class without test rows, for roc_auc)
    undefined = {name: why_undefined(name, outcome, source)
                 for name, score in scores.items() if score is None}

    title = f"{config.name} {entry['id']} ({entry['family']}) on test"
    draw = Drawer(warn)
    if outcome.classes is not None:
        details, written = _classification_details(outcome, directory, title, draw)
    else:
        details, written = _regression_details(outcome, directory, title, draw)
    importance = permutation_importances(
        bundle.pipeline, parsed.frame, data.labels, bundle.task, metric, entry.get("seed", 42),
        positive,
    )
    if importance is not None:
        details["importance"] = {"metric": metric.name, "columns": importance}
        drops = pd.DataFrame(importance).rename(columns={"mean": f"mean_drop_in_{metric.name}"})
        written.append(atomic_write_text(directory / "importance.csv", drops.to_csv(index=False)))
        written += draw(lambda: importance_plot(importance, metric.name, title,
                                                directory / "importance.png"))
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
        if metric.name in undefined:
            gate["undefined"] = undefined[metric.name]
    report = {
        "experiment": entry["id"],
        "evaluated_at": utc_now(),
        "data": {
            "path": str(test_path),
            "sha256": sha256_file(test_path),
            "rows": len(data.labels),
        },
        "metrics": scores,
        "undefined": undefined,
        "gate": gate,
        **details,
    }
    written.insert(0, atomic_write_json(directory / "evaluation.json", report))
    written.append(_write_report(report, entry, bundle.strays, parsed.strays, title, directory,
                                 [path.name for path in written], draw.skipped))
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
    for reason in undefined.values():
        warn(reason)
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


def _training_rows(config: ProjectConfig, bundle) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """The labelled rows of datasets/train.csv and validation.csv as `bundle` reads them, for
    finding test rows among them; a file missing, or no longer readable by the model (changed
    since training), is left out: the check is advice, the evaluation goes on without it."""
    found = []
    for split in ("train", "validation"):
        path = config.layout.dataset(split)
        if not path.is_file():
            continue
        try:
            data = split_label(read_csv(path, given=False, text=text_columns(bundle.features)),
                               config.label, config.task, path)
            if not check_columns(bundle, data.features.columns)[0]:
                found.append((parse_input(bundle, data.features).frame, data.labels))
        except DataError:
            continue
    return found


def _verdict(gate: dict) -> str:
    relation = ">=" if gate["higher_is_better"] else "<="
    why = f" ({gate['undefined']})" if gate.get("undefined") else ""
    return (f"{gate['metric']}={number(gate['value'])}, required {relation} "
            f"{gate['threshold']:g}{why}")


def _among_classes(data: LabelledData, classes: list, source: str,
                   warn: Callable[[str], None]) -> LabelledData:
    """The rows of `data` labelled with one of the model's classes, their labels as the model's
    (a label read as text '1' is the class 1); a DataError when no row is, a warning naming the
    rows left out otherwise."""
    by_text = {str(name): name for name in classes}
    text = pd.Series(data.labels, dtype=object).map(str)
    known = text.isin(by_text).to_numpy()
    unknown = text[~known].value_counts(sort=False)
    shown = ", ".join(repr(value) for value in unknown.index[:5])
    shown += ", ..." if len(unknown) > 5 else ""
    if not known.any():
        raise DataError(
            f"{source}: label values {shown} are not classes of the model "
            f"({', '.join(map(repr, classes))}); label the test rows as the training rows are, "
            "or train a model on labels written this way"
        )
    if not known.all():
        warn(f"ignored {int((~known).sum())} row(s) of test whose label is not a class of the "
             f"model: {shown}")
    labels = np.array([by_text[value] for value in text[known]])
    return LabelledData(data.features[known], labels, data.dropped_rows)


def gate_error(report: dict) -> GateError:
    """The error of an evaluation report whose quality gate failed."""
    return GateError(f"quality gate failed for {report['experiment']}: {_verdict(report['gate'])}")


IMPORTANCE_REPEATS = 5
IMPORTANCE_MAX_ROWS = 2000  # rows permutation importance scores on (a random sample above this)


def permutation_importances(pipeline, frame: pd.DataFrame, labels: np.ndarray, task: str,
                            metric: Metric, seed: int, positive: object = None
                            ) -> list[dict] | None:
    """Per input column, how much `metric` gets worse when the column's values are shuffled
    (mean and standard deviation over IMPORTANCE_REPEATS shuffles), largest first; None when
    the metric is undefined on these rows (e.g. a single class)."""
    from sklearn.inspection import permutation_importance

    def score(estimator, features, truth) -> float:
        value = metric.compute(outcome_of(estimator, features, truth, task, positive))
        return value if metric.higher_is_better else -value

    rows = len(frame)
    try:
        result = permutation_importance(
            pipeline, frame, labels, scoring=score, n_repeats=IMPORTANCE_REPEATS,
            random_state=seed, max_samples=min(rows, IMPORTANCE_MAX_ROWS),
        )
    except ValueError:
        return None
    found = [
        {"feature": name, "mean": float(mean), "std": float(std)}
        for name, mean, std in zip(frame.columns, result.importances_mean,
                                   result.importances_std, strict=True)
    ]
    if not all(np.isfinite(row["mean"]) for row in found):
        return None
    return sorted(found, key=lambda row: -row["mean"])


def _classification_details(outcome, directory: Path, title: str,
                            draw: Drawer) -> tuple[dict, list[Path]]:
    classes = list(outcome.classes)
    matrix = confusion_matrix(outcome.y_true, outcome.y_pred, labels=classes)
    # the curves of a binary model are the positive class's: the plots draw the last column
    order = ([1 - outcome.positive_column, outcome.positive_column] if outcome.binary
             else list(range(len(classes))))
    labels = [str(label) for label in classes]
    frame = pd.DataFrame(matrix, index=pd.Index(labels, name="actual \\ predicted"), columns=labels)
    y_true, probabilities = outcome.y_true, outcome.probabilities[:, order]
    curves = [classes[index] for index in order]
    written = [
        atomic_write_text(directory / "confusion_matrix.csv", frame.to_csv()),
        *draw(lambda: confusion_matrix_plot(matrix, classes, title,
                                            directory / "confusion_matrix.png")),
        *draw(lambda: roc_plot(y_true, probabilities, curves, title, directory / "roc.png")),
        *draw(lambda: precision_recall_plot(y_true, probabilities, curves, title,
                                            directory / "precision_recall.png")),
        *draw(lambda: calibration_plot(y_true, probabilities, curves, title,
                                       directory / "calibration.png")),
    ]
    return {"classes": classes, "confusion_matrix": matrix.tolist()}, written


def _regression_details(outcome, directory: Path, title: str,
                        draw: Drawer) -> tuple[dict, list[Path]]:
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
        *draw(lambda: predicted_vs_actual_plot(actual, predicted, title,
                                               directory / "predicted_vs_actual.png")),
        *draw(lambda: residuals_plot(actual, predicted, title, directory / "residuals.png")),
    ]
    return {"residuals": summary}, written


PLOT_CAPTIONS = {  # the plots evaluate may draw, and their captions in report.html
    "confusion_matrix.png": "confusion matrix (rows: actual, columns: predicted)",
    "roc.png": "ROC curve",
    "precision_recall.png": "precision-recall curve",
    "calibration.png": "calibration (reliability) of the predicted probabilities",
    "predicted_vs_actual.png": "predicted vs actual",
    "residuals.png": "residuals",
    "importance.png": "permutation importance",
}
_OTHER_FILES = ("model_card.md", "experiment.json", "leaderboard.json", "model.json")


def _write_report(report: dict, entry: dict, decided: dict, found: dict, title: str,
                  directory: Path, written: list[str], skipped: str) -> Path:
    """report.html of the evaluation, beside the files it links."""
    gate = report["gate"]
    verdict = "no quality gate set (metric_threshold)" if gate is None else (
        ("passed: " if gate["passed"] else "FAILED: ") + _verdict(gate))
    sections = [
        Section("Summary", paragraphs=[
            f"{entry['family']} {json.dumps(entry.get('params', {}), sort_keys=True)}, selected "
            f"by {entry['metric']} on the validation set; scored on {report['data']['rows']} "
            f"rows of {report['data']['path']}.", f"Quality gate: {verdict}."]),
        Section("Metrics", headers=["metric", "test", "validation"], rows=[
            [name, number(value), number(entry["validation"].get(name))]
            for name, value in report["metrics"].items()]),
        Section("Plots", images=[(name, PLOT_CAPTIONS[name]) for name in written
                                 if name in PLOT_CAPTIONS and name != "importance.png"],
                notes=[skipped] if skipped else []),
    ]
    importance = report.get("importance")
    if importance is not None:
        sections.append(Section(
            "Permutation importance",
            paragraphs=[f"How much {importance['metric']} gets worse on the test rows when a "
                        "column's values are shuffled (mean and spread over "
                        f"{IMPORTANCE_REPEATS} shuffles). Correlated columns share their "
                        "importance: each looks less important than the pair is."],
            headers=["column", "mean drop", "std"],
            rows=[[row["feature"], f"{row['mean']:.4f}", f"{row['std']:.4f}"]
                  for row in importance["columns"]],
            images=[("importance.png", PLOT_CAPTIONS["importance.png"])]
            if "importance.png" in written else []))
    if decided:
        sections.append(Section(
            "Data decisions",
            paragraphs=["Mostly numeric columns whose text values this model reads as missing "
                        "(decided on the training data; see model_card.md)."],
            headers=["column", "strays in training", "strays in the test data"],
            rows=[[name, facts["count"], found.get(name, {}).get("count", 0)]
                  for name, facts in decided.items()]))
    links = [(name, name) for name in written if not name.endswith(".png")]
    links += [(name, name) for name in _OTHER_FILES if (directory / name).is_file()]
    sections.append(Section("Files", links=links))
    return write_html_report(directory, title, f"evaluated {report['evaluated_at']}", sections)
