"""A first look at a data set: column types, missing values, the label, and a preprocessing plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .config import ProjectConfig
from .data import read_csv, require_label
from .files import to_json
from .schema import (
    CATEGORICAL,
    CONSTANT,
    ID_LIKE,
    NUMERIC,
    NUMERIC_SHARE,
    Schema,
    infer_schema,
    stray_warnings,
)
from .text import quiet, table

IMBALANCE_WARNING_SHARE = 0.1  # warn when a class has fewer rows than this share


def analyze(
    config: ProjectConfig,
    input_path: Path | None = None,
    as_json: bool = False,
    echo: Callable[[str], None] = quiet,
) -> dict:
    """Profile a CSV (default datasets/train.csv) against the project's task and label."""
    path = Path(input_path or config.layout.dataset("train"))
    frame = read_csv(path)
    require_label(frame, config.label, path)
    schema = infer_schema(frame, config.label)
    labels = frame[config.label]
    report = {
        "path": str(path),
        "rows": len(frame),
        "columns": len(frame.columns),
        "task": config.task,
        "label": _label_summary(labels, config.task),
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
    report["warnings"] = stray_warnings(path, schema.strays) + _warnings(report)
    echo(to_json(report).rstrip() if as_json else _render(report))
    return report


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
    return plan


def _label_summary(labels: pd.Series, task: str) -> dict:
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
    if rare:
        found.append(
            f"imbalanced label: class(es) {', '.join(rare)} "
            f"under {IMBALANCE_WARNING_SHARE:.0%} of rows; "
            "consider balanced_accuracy, f1 or roc_auc rather than accuracy"
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
    else:
        lines.append(
            "  " + ", ".join(f"{key}={value:.4g}" for key, value in label["distribution"].items())
        )
    lines += ["", "suggested preprocessing:", *(f"  - {step}" for step in report["plan"])]
    if report["warnings"]:
        lines += ["", "warnings:", *(f"  ! {warning}" for warning in report["warnings"])]
    return "\n".join(lines)
