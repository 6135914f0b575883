"""A first look at a data set: column types, missing values, the label, a preprocessing plan, and
a report.html with a distribution plot per column and a correlation view."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .config import ProjectConfig
from .data import code_warnings, read_csv, require_label
from .files import atomic_write_json, temporary_directory, to_json
from .metrics import positive_class_warning, positive_of, positive_text
from .plots import Drawer, correlation_plot, distribution_plot
from .report import Section, input_rows, write_html_report
from .schema import (
    CATEGORICAL,
    CONSTANT,
    DATE,
    ID_LIKE,
    NUMERIC,
    NUMERIC_SHARE,
    Schema,
    infer_schema,
    parse_features,
    stray_warnings,
    text_warnings,
)
from .text import quiet, table

IMBALANCE_WARNING_SHARE = 0.1  # warn when a class has fewer rows than this share


def analyze(
    config: ProjectConfig,
    input_path: Path | None = None,
    as_json: bool = False,
    echo: Callable[[str], None] = quiet,
    warn: Callable[[str], None] = quiet,
) -> dict:
    """Profile a CSV (default datasets/train.csv) against the project's task and label.

    Writes experiments/analysis/<file stem>/: analysis.json (the returned report), a
    distribution plot per used column and of the label, a correlation heatmap of the numeric
    columns, and report.html showing them. Without matplotlib the plots are skipped and `warn`
    says once what to install.
    """
    path = Path(input_path or config.layout.dataset("train"))
    frame = read_csv(path, given=input_path is not None)
    require_label(frame, config.label, path)
    schema = infer_schema(frame, config.label)
    labels = frame[config.label]
    report = {
        "path": str(path),
        "rows": len(frame),
        "columns": len(frame.columns),
        "task": config.task,
        "label": _label_summary(labels, config, path),
        "features": [
            {
                "name": c.name,
                "kind": c.kind,
                "dtype": c.dtype,
                "missing": c.missing,
                "unique": c.unique,
                "note": c.note,
                "strays": schema.strays.get(c.name),
            }
            for c in schema.columns
        ],
        "plan": preprocessing_plan(schema),
    }
    report["warnings"] = (stray_warnings(path, schema.strays) + text_warnings(path, schema)
                          + code_warnings(path, frame) + _warnings(report))
    if "positive_class" in report["label"] and not report["label"]["positive_class_set"] and (
            line := positive_class_warning(labels.dropna(), config.metric)):
        report["warnings"].append(line)
    directory = config.layout.analysis(path.stem)
    directory.parent.mkdir(parents=True, exist_ok=True)
    # written whole or not at all: in a new directory, which then replaces the old one
    staging = temporary_directory(directory.parent, f".{directory.name}-")
    try:
        written = _write_report(report, frame, schema, config, staging, warn)
        old = None
        if directory.exists():
            old = directory.rename(temporary_directory(directory.parent, f".{directory.name}-old-")
                                   / directory.name)
        staging.rename(directory)
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report["report"] = str(directory / written.name)
    echo(to_json(report).rstrip() if as_json else _render(report))
    return report


MAX_COLUMN_PLOTS = 60  # distribution plots drawn at most (the first used columns)


def _file_name(index: int, column: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in column)
    return f"column-{index:02d}-{safe}.png"


def _write_report(report: dict, frame: pd.DataFrame, schema: Schema, config: ProjectConfig,
                  directory: Path, warn: Callable[[str], None]) -> Path:
    """Plots, analysis.json and report.html in `directory`, a new empty one."""
    path = Path(report["path"])
    draw = Drawer(warn)
    parsed = parse_features(frame, schema.features, schema.strays, schema.percents).frame
    label = frame[config.label]
    label_kind = NUMERIC if config.task == "regression" else CATEGORICAL
    if label_kind == NUMERIC:
        label = pd.to_numeric(label, errors="coerce")
    images = []
    if draw(distribution_plot, label, label_kind, config.label, directory / "label.png"):
        images.append(("label.png", f"label {config.label}"))
    for index, column in enumerate(list(parsed.columns)[:MAX_COLUMN_PLOTS], start=1):
        kind, name = schema.features[column], _file_name(index, column)
        if draw(distribution_plot, parsed[column], kind, column, directory / name):
            images.append((name, f"{column} ({kind})"))
    numbers = parsed[schema.names(NUMERIC)]
    if config.task == "regression":
        numbers = numbers.assign(**{config.label: label})
    elif config.task == "binary-classification" and label.nunique() == 2:
        positive = report["label"].get("positive_class")
        numbers = numbers.assign(**{config.label: (label.astype(str) == positive).astype(float)})
    correlation = []
    title = f"Spearman correlation: {path.name}"
    if numbers.shape[1] >= 2 and draw(correlation_plot, numbers, title,
                                      directory / "correlation.png"):
        correlation.append(("correlation.png", "Spearman correlation"))
    atomic_write_json(directory / "analysis.json", report)
    notes = [draw.skipped] if draw.skipped else []
    sections = [
        Section("Warnings", notes=report["warnings"] or ["none"]),
        Section("Columns", headers=["column", "kind", "how it is read", "missing", "unique"],
                rows=[[name, kind, reading, c.missing, c.unique] for (name, kind, reading), c
                      in zip(input_rows(schema), schema.columns, strict=True)]),
        Section("Suggested preprocessing", paragraphs=report["plan"]),
        Section("Distributions", images=images, notes=list(notes),
                paragraphs=[] if len(parsed.columns) <= MAX_COLUMN_PLOTS else
                [f"the first {MAX_COLUMN_PLOTS} of {len(parsed.columns)} columns"]),
        Section("Correlation", images=correlation, notes=list(notes), paragraphs=[
            "Spearman rank correlation of the numeric columns"
            + (" and the label" if config.label in numbers.columns else "")
            + (" (fewer than two: nothing to show)." if numbers.shape[1] < 2 else ".")]),
        Section("Files", links=[("analysis.json", "analysis.json")]),
    ]
    subtitle = (f"{report['path']}: {report['rows']} rows, {report['columns']} columns, "
                f"task {report['task']}, label {config.label}")
    return write_html_report(directory, f"Analysis of {path.name}", subtitle, sections)


def preprocessing_plan(schema: Schema) -> list[str]:
    """What training will do with each kind of column, in words."""
    plan = []
    for kind in (ID_LIKE, CONSTANT):
        for column in schema.columns:
            if column.kind == kind:
                plan.append(f"drop {column.name} ({kind}: {column.note})")
    numeric, categorical = schema.names(NUMERIC), schema.names(CATEGORICAL)
    if schema.strays:
        plan.append(
            f"read text as missing in mostly numeric column(s) (at least {NUMERIC_SHARE:.0%} of "
            f"their values are numbers): {', '.join(schema.strays)}"
        )
    if numeric:
        plan.append(
            f"numeric ({len(numeric)}): impute missing with the median, then standard-scale: "
            + ", ".join(numeric)
        )
    if categorical:
        plan.append(
            f"categorical ({len(categorical)}): impute missing with the most frequent value, "
            "then one-hot "
            f"encode (unseen categories ignored): {', '.join(categorical)}"
        )
    dates = schema.names(DATE)
    if dates:
        plan.append(
            f"date ({len(dates)}): read as numbers (days since 1970, month, weekday, day of "
            "the month, hour), impute missing with the median, then standard-scale: "
            + ", ".join(dates)
        )
    return plan


def _label_summary(labels: pd.Series, config: ProjectConfig, path: Path) -> dict:
    task = config.task
    summary = {"name": labels.name, "missing": int(labels.isna().sum())}
    present = labels.dropna()
    if task == "regression":
        values = pd.to_numeric(present, errors="coerce")
        summary["non_numeric"] = int(values.isna().sum())
        stats = values.describe(percentiles=[0.05, 0.25, 0.5, 0.75, 0.95])
        summary["distribution"] = {
            key: float(value) for key, value in stats.items() if key != "count"
        }
        summary["distribution"]["skew"] = float(values.skew())
    else:
        counts = present.value_counts()
        summary["classes"] = {
            str(name): {"rows": int(count), "share": round(count / len(present), 4)}
            for name, count in counts.items()
        }
        if task == "binary-classification" and len(counts) == 2:
            # mlscaffold.yaml's, else the value that sorts last, as scikit-learn's classes_
            # (np.unique) order them
            classes = np.unique(present.to_numpy())
            configured = positive_of(classes, config.positive_class, str(path))
            summary["positive_class"] = positive_text(
                classes[-1] if configured is None else configured)
            summary["positive_class_set"] = configured is not None
    return summary


def _warnings(report: dict) -> list[str]:
    label, task = report["label"], report["task"]
    found = []
    if label["missing"]:
        found.append(f"{label['missing']} row(s) have no label and will be ignored in training")
    if task == "regression":
        if label["non_numeric"]:
            found.append(
                f"{label['non_numeric']} label value(s) are not numbers; "
                "regression needs numeric labels"
            )
        return found
    classes = label["classes"]
    expected = "exactly 2" if task == "binary-classification" else "at least 3"
    if (task == "binary-classification") != (len(classes) == 2) or len(classes) < 2:
        found.append(f"{task} needs {expected} classes, found {len(classes)}")
    rare = [name for name, facts in classes.items() if facts["share"] < IMBALANCE_WARNING_SHARE]
    positive = label.get("positive_class")
    if rare:
        consider = "balanced_accuracy, f1 or roc_auc rather than accuracy"
        if positive is not None and positive not in rare:  # f1 would score the common class
            consider = (f"balanced_accuracy or roc_auc rather than accuracy (f1 scores the "
                        f"positive class, {positive!r}, the larger one)")
        found.append(
            f"imbalanced label: class(es) {', '.join(rare)} "
            f"under {IMBALANCE_WARNING_SHARE:.0%} of rows; consider {consider}"
        )
    return found


def _render(report: dict) -> str:
    rows, columns = report["rows"], report["columns"]
    lines = [f"{report['path']}: {rows} rows, {columns} columns, task {report['task']}", ""]
    lines.append(
        table(
            ["column", "kind", "dtype", "missing", "unique", "note"],
            [
                [
                    f["name"],
                    f["kind"],
                    f["dtype"],
                    f"{f['missing']} ({f['missing'] / report['rows']:.1%})",
                    f["unique"],
                    f["note"],
                ]
                for f in report["features"]
            ],
        )
    )
    label = report["label"]
    lines += ["", f"label {label['name']!r} ({label['missing']} missing):"]
    if "classes" in label:
        lines.append(
            table(
                ["class", "rows", "share"],
                [
                    [name, facts["rows"], f"{facts['share']:.1%}"]
                    for name, facts in label["classes"].items()
                ],
            )
        )
        if "positive_class" in label:
            lines.append(f"  positive class (f1, precision and recall score it): "
                         f"{label['positive_class']!r}, " + (
                             "positive_class of mlscaffold.yaml" if label["positive_class_set"]
                             else "the value that sorts last"))
    else:
        lines.append(
            "  " + ", ".join(f"{key}={value:.4g}" for key, value in label["distribution"].items())
        )
    lines += ["", "suggested preprocessing:", *(f"  - {step}" for step in report["plan"])]
    if report["warnings"]:
        lines += ["", "warnings:", *(f"  ! {warning}" for warning in report["warnings"])]
    lines += ["", f"wrote {report['report']} (plots of every column and a correlation view)"]
    return "\n".join(lines)
