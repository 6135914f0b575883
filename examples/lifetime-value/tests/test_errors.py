"""Bad inputs get one clear line on stderr, the right exit code and no traceback."""

import json

import pandas as pd
import pytest
from conftest import run_cli, set_config

from lifetime_value import train as train_module
from lifetime_value.metrics import METRICS


def assert_error(result, code, *fragments):
    assert result.code == code, result.out + result.err
    assert result.err.startswith("error: ")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err


def test_analyze_without_the_label_column_names_it_and_the_columns_found(project, config, tmp_path):
    data = pd.read_csv(project / "datasets" / "train.csv").drop(columns=[config["label"]])
    path = tmp_path / "unlabelled.csv"
    data.to_csv(path, index=False)
    result = run_cli(project, "analyze", "--input", path)
    assert_error(result, 2, f"label column {config['label']!r} not found", data.columns[0])


def test_analyze_reports_kinds_and_plan(project):
    result = run_cli(project, "analyze", "--json")
    assert result.code == 0, result.err
    assert '"plan"' in result.out and '"features"' in result.out


@pytest.mark.parametrize(
    "command", [["evaluate", "--experiment", "exp-999"], ["promote", "exp-999"]]
)
def test_unknown_experiment_says_how_to_list_them(trained_project, command):
    assert_error(run_cli(trained_project, *command), 2, "unknown experiment 'exp-999'", "list")


def test_predict_with_a_missing_column_names_it(trained_project, config, tmp_path):
    model = json.loads((trained_project / "experiments" / "exp-001" / "model.json").read_text())
    features = [name for name, kind in model["features"].items() if kind != "dropped"]
    data = pd.read_csv(trained_project / "datasets" / "test.csv").drop(columns=[features[0]])
    path = tmp_path / "incomplete.csv"
    data.to_csv(path, index=False)
    result = run_cli(
        trained_project,
        "predict",
        "--input",
        path,
        "--output",
        tmp_path / "out.csv",
        "--model",
        "exp-001",
    )
    assert_error(result, 2, "missing column(s)", features[0])
    assert not (tmp_path / "out.csv").exists()


def test_predict_before_any_promotion_says_to_promote(trained_project, tmp_path):
    result = run_cli(
        trained_project,
        "predict",
        "--input",
        trained_project / "datasets" / "test.csv",
        "--output",
        tmp_path / "out.csv",
    )
    assert_error(result, 2, "no model promoted to production", "promote")


def test_unknown_metric_lists_the_valid_ones(project, config):
    assert_error(
        run_cli(project, "train", "--metric", "nope"), 2, "unknown metric 'nope'", config["metric"]
    )


def test_metric_of_another_task_is_refused(project, config):
    other = next(m for m in METRICS.values() if config["task"] not in m.tasks)
    assert_error(
        run_cli(project, "list", "--metric", other.name),
        2,
        f"metric {other.name!r} does not apply to {config['task']}",
    )
    assert_error(run_cli(project, "train", "--metric", other.name), 2, "does not apply")


def test_non_positive_time_budget_is_refused(project):
    assert_error(run_cli(project, "train", "--time", "0"), 2, "--time")


def test_rollback_without_history_is_refused(trained_copy):
    assert_error(
        run_cli(trained_copy, "promote", "--rollback", "--to", "production"),
        2,
        "nothing to roll back",
    )


def test_quality_gate_blocks_evaluate_and_promotion(trained_copy, config):
    metric = METRICS[config["metric"]]
    unreachable = 1e9 if metric.higher_is_better else -1e9
    set_config(trained_copy, metric_threshold=unreachable)
    assert_error(run_cli(trained_copy, "evaluate"), 1, "quality gate failed")
    assert (trained_copy / "experiments" / "exp-001" / "evaluation.json").is_file()
    assert_error(run_cli(trained_copy, "promote", "exp-001", "--to", "production"), 1, "threshold")
    forced = run_cli(trained_copy, "promote", "exp-001", "--to", "production", "--force")
    assert forced.code == 0 and "promoted despite" in forced.err


def test_interrupted_training_leaves_no_experiment(trained_copy, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "search", interrupt)
    index_before = (trained_copy / "experiments" / "index.json").read_text()
    result = run_cli(trained_copy, "train", "--time", "1")
    assert result.code == 130
    assert (trained_copy / "experiments" / "index.json").read_text() == index_before
    assert not (trained_copy / "experiments" / "exp-002").exists()


def test_missing_config_is_reported(tmp_path):
    result = run_cli(tmp_path, "list")
    assert_error(result, 2, "mlscaffold.yaml")
