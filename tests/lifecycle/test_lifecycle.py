"""The whole model lifecycle through the CLI, once per task: analyze, train, list, evaluate,
promote to staging and production, refuse a worse model, force it, roll back, predict and watch
for drift."""

from __future__ import annotations

import csv
import json
import random

import pandas as pd
import pytest

from mlscaffold.lifecycle.metrics import get_metric

from .conftest import QUICK_TRAIN_SECONDS, TASKS, read_spec, run_cli, set_config


def shuffle_labels(path, label, seed=7):
    """Break the link between features and label, so a model trained on it is worse."""
    frame = pd.read_csv(path)
    labels = frame[label].tolist()
    random.Random(seed).shuffle(labels)
    frame[label] = labels
    frame.to_csv(path, index=False)


def shift_features(source, destination):
    """The same rows with every numeric feature moved far from the training distribution."""
    frame = pd.read_csv(source)
    for column in frame.select_dtypes("number").columns:
        frame[column] = frame[column] * 3 + frame[column].std() * 5
    frame.to_csv(destination, index=False)


def read_json(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("task", TASKS)
def test_lifecycle(task, make_project, tmp_path):
    project = make_project(task)
    spec = read_spec(project)
    metric = get_metric(spec["metric"], task)
    # the model quality of the sample data is not under test here; the gate has its own tests
    set_config(project, metric_threshold=0.0 if metric.higher_is_better else 1e9)
    is_classifier = task != "regression"

    analyzed = run_cli(project, "analyze")
    assert analyzed.code == 0, analyzed.err
    assert f"task {task}" in analyzed.out and "suggested preprocessing:" in analyzed.out

    trained = run_cli(project, "train", "--time", QUICK_TRAIN_SECONDS)
    assert trained.code == 0, trained.err
    assert "exp-001" in trained.out and "best: " in trained.out
    experiment = project / "experiments" / "exp-001"
    record = read_json(experiment / "experiment.json")
    assert record["task"] == task and record["metric"] == metric.name
    assert set(record["data"]) == {"train", "validation"}
    assert all(len(facts["sha256"]) == 64 for facts in record["data"].values())
    assert record["seed"] == 42 and record["versions"]["scikit-learn"]
    assert metric.name in record["validation"] and record["score"] is not None
    assert read_json(experiment / "leaderboard.json")[0]["rank"] == 1
    index = read_json(project / "experiments" / "index.json")["experiments"]
    assert [entry["id"] for entry in index] == ["exp-001"]

    listed = run_cli(project, "list")
    assert listed.code == 0, listed.err
    assert "* " in listed.out and "exp-001" in listed.out

    evaluated = run_cli(project, "evaluate")
    assert evaluated.code == 0, evaluated.err
    assert "quality gate passed" in evaluated.out
    evaluation = read_json(experiment / "evaluation.json")
    assert evaluation["experiment"] == "exp-001" and metric.name in evaluation["metrics"]
    plot = "confusion_matrix" if is_classifier else "residuals"
    assert (experiment / f"{plot}.csv").is_file()
    assert (experiment / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    for stage in ("staging", "production"):
        promoted = run_cli(project, "promote", "exp-001", "--to", stage)
        assert promoted.code == 0, promoted.err
        assert promoted.out.startswith(f"promoted exp-001 to {stage} as v1 ")
        assert promoted.out.endswith("commit models/ to keep this version: the serving image "
                                     "and CI build from it\n")
        assert (project / "models" / stage / "v1" / "model.joblib").is_file()
    registry = read_json(project / "models" / "registry.json")
    assert registry["stages"]["production"]["current"] == 1
    assert len(registry["stages"]["production"]["versions"][0]["sha256"]) == 64

    # a second, worse model: trained on shuffled labels (two candidates are enough for that)
    shuffle_labels(project / "datasets" / "train.csv", spec["label"])
    retrained = run_cli(project, "train", "--trials", 2)
    assert retrained.code == 0, retrained.err
    refused = run_cli(project, "promote", "exp-002", "--to", "production")
    assert refused.code == 1, refused.out + refused.err
    first, second = (
        read_json(project / "experiments" / name / "experiment.json")["validation"][metric.name]
        for name in ("exp-001", "exp-002")
    )
    assert "worse than production" in refused.err and "--force" in refused.err
    assert f"{first:.4f}" in refused.err and f"{second:.4f}" in refused.err
    forced = run_cli(project, "promote", "exp-002", "--to", "production", "--force")
    assert forced.code == 0, forced.err
    assert forced.err.startswith("warning: promoted despite: exp-002 ")
    assert read_json(project / "models" / "registry.json")["stages"]["production"]["current"] == 2

    rolled_back = run_cli(project, "rollback", "--to", "production")
    assert rolled_back.code == 0, rolled_back.err
    assert rolled_back.out == ("rolled back production: v2 (exp-002) retired, v1 (exp-001) is "
                               "current again\n")
    production = read_json(project / "models" / "registry.json")["stages"]["production"]
    assert production["current"] == 1 and production["history"] == [1]
    assert (project / "models" / "production" / "v2").is_dir()  # kept, retrievable
    again = run_cli(project, "promote", "exp-001", "--to", "production")
    assert again.code == 0, again.err
    assert again.out.startswith("exp-001 already is production's current version, v1 (sha256 ")
    assert read_json(project / "models" / "registry.json")["stages"]["production"] == production
    assert not (project / "models" / "production" / "v3").exists()
    rows = json.loads(run_cli(project, "list", "--format", "json").out)["experiments"]
    stages = {row["id"]: row["stages"] for row in rows}
    assert stages == {"exp-001": ["staging v1 (current)", "production v1 (current)"],
                      "exp-002": ["production v2"]}

    test_csv = project / "datasets" / "test.csv"
    output = tmp_path / "predictions.csv"
    predicted = run_cli(project, "predict", "--input", test_csv, "--output", output)
    assert predicted.code == 0, predicted.err
    assert str(project.resolve() / "models" / "production" / "v1") in predicted.out
    with test_csv.open() as source, output.open() as result:
        assert len(list(csv.reader(result))) == len(list(csv.reader(source)))
    predictions = pd.read_csv(output)
    assert "prediction" in predictions.columns
    probability_columns = [c for c in predictions.columns if c.startswith("probability_")]
    if is_classifier:
        assert len(probability_columns) == len(evaluation["classes"])
        assert predictions[probability_columns].sum(axis=1).round(6).eq(1).all()
    else:
        assert not probability_columns

    stable = run_cli(project, "drift", "--input", test_csv)
    assert stable.code == 0, stable.out + stable.err
    assert read_json(project / "experiments" / "drift-report.json")["drifted"] == []
    shifted_csv = tmp_path / "shifted.csv"
    shift_features(test_csv, shifted_csv)
    report = tmp_path / "drift.json"
    drifted = run_cli(project, "drift", "--input", shifted_csv, "--report", report)
    assert drifted.code == 1, drifted.out + drifted.err
    assert read_json(report)["drifted"]
