"""`--format json` of analyze, list, evaluate and drift is JSON (and only JSON) on stdout; the
exit codes of a failed gate or found drift are the same in both formats."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlscaffold.lifecycle.metrics import METRICS

from .conftest import read_spec, run_cli, set_config


def as_json(result) -> dict:
    return json.loads(result.out)


def test_analyze_json(project):
    result = run_cli(project, "analyze", "--format", "json")
    assert result.code == 0, result.err
    report = as_json(result)
    assert report["task"] == "binary-classification" and report["rows"] > 0
    assert report["label"]["name"] == read_spec(project)["label"]
    assert {feature["kind"] for feature in report["features"]} >= {"numeric", "categorical"}
    assert report["plan"]


def test_list_json(rendered, trained):
    empty = run_cli(rendered("binary-classification"), "list", "--format", "json")
    assert empty.code == 0, empty.err
    assert as_json(empty)["experiments"] == []
    result = run_cli(trained("binary-classification"), "list", "--format", "json")
    assert result.code == 0, result.err
    listed = as_json(result)
    assert listed["metric"] == read_spec(trained("binary-classification"))["metric"]
    (row,) = listed["experiments"]
    assert row["id"] == "exp-001" and row["best"] is True and row["stages"] == []


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_evaluate_below_the_gate_exits_1(trained_copy, output_format):
    metric = METRICS[read_spec(trained_copy)["metric"]]
    set_config(trained_copy, metric_threshold=1.0 if metric.higher_is_better else 0.0)
    result = run_cli(trained_copy, "evaluate", "--format", output_format)
    assert result.code == 1, result.out + result.err
    assert result.err.startswith("error: quality gate failed for exp-001: ")
    assert result.err.count("\n") == 1
    if output_format == "json":
        report = as_json(result)
        assert report["gate"]["passed"] is False and report["experiment"] == "exp-001"
        assert metric.name in report["metrics"]
    else:
        assert "quality gate passed" not in result.out


def test_evaluate_json_passing_the_gate(trained_copy):
    metric = METRICS[read_spec(trained_copy)["metric"]]
    set_config(trained_copy, metric_threshold=0.0 if metric.higher_is_better else 1e9)
    result = run_cli(trained_copy, "evaluate", "--format", "json")
    assert (result.code, result.err) == (0, "")
    assert as_json(result)["gate"]["passed"] is True


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_drift_exits_1_on_drifted_data(rendered, tmp_path, output_format):
    project = rendered("regression")
    frame = pd.read_csv(project / "datasets" / "test.csv")
    numeric = frame.select_dtypes("number").columns.drop(read_spec(project)["label"])
    frame[numeric[0]] = frame[numeric[0]] * 10 + 1000
    shifted = tmp_path / "shifted.csv"
    frame.to_csv(shifted, index=False)
    report = tmp_path / "report.json"
    result = run_cli(project, "drift", "--input", shifted, "--report", report,
                     "--format", output_format)
    assert result.code == 1, result.out + result.err
    assert json.loads(report.read_text())["drifted"] == [numeric[0]]
    if output_format == "json":
        assert as_json(result)["drifted"] == [numeric[0]]
    else:
        assert f"1 feature(s) over PSI 0.2: {numeric[0]}" in result.out


def test_drift_json_without_drift(rendered, tmp_path):
    project = rendered("regression")
    result = run_cli(project, "drift", "--input", project / "datasets" / "test.csv",
                     "--report", tmp_path / "report.json", "--format", "json")
    assert (result.code, result.err) == (0, "")
    assert as_json(result)["drifted"] == []
