"""Experiment tracking in MLflow: the project's own store (mlruns/) round trip, concurrent
trains, a tracking server that cannot be reached, the SageMaker plugin's route for ARNs, and a
store that moved with its project."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
from mlflow.tracking import MlflowClient

from mlscaffold.lifecycle.tracking import COMPLETE_TAG, EXPERIMENT_TAG, MAX_CANDIDATE_RUNS

from .conftest import (
    PATIENCE_SECONDS,
    QUICK_TRAIN_SECONDS,
    assert_error,
    copy_project,
    python_m,
    run_cli,
    set_config,
)

# nothing listens on port 1 of the loopback: connections are refused at once
UNREACHABLE = "http://127.0.0.1:1"
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/lc-binary-dev"


def client_of(project) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")


def parent_runs(project) -> dict[str, object]:
    """{exp-NNN: run} of the project's complete top-level runs."""
    client = client_of(project)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string=f"tags.`{EXPERIMENT_TAG}` LIKE 'exp-%'")
    return {run.data.tags[EXPERIMENT_TAG]: run for run in runs
            if run.data.tags.get(COMPLETE_TAG) == "true"}


def listed(project) -> dict[str, str | None]:
    result = run_cli(project, "list", "--format", "json")
    assert result.code == 0, result.err
    return {row["id"]: row["mlflow_run_id"] for row in json.loads(result.out)["experiments"]}


def index_entry(project, experiment: str) -> dict:
    index = json.loads((project / "experiments" / "index.json").read_text())
    return next(entry for entry in index["experiments"] if entry["id"] == experiment)


def test_train_logs_the_experiment_and_list_and_evaluate_read_the_store(project):
    result = run_cli(project, "train", "--time", QUICK_TRAIN_SECONDS)
    assert result.code == 0, result.err
    runs = parent_runs(project)
    assert list(runs) == ["exp-001"]
    run = runs["exp-001"]
    assert f"tracked as MLflow run {run.info.run_id}" in result.out
    client = client_of(project)
    assert client.get_experiment(run.info.experiment_id).name == "lc-binary"
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith((project / "mlruns" / "artifacts").as_uri())

    entry = index_entry(project, "exp-001")
    record = json.loads((project / "experiments" / "exp-001" / "experiment.json").read_text())
    assert entry["mlflow_run_id"] == run.info.run_id
    # the search settings and the chosen model's configuration
    params = run.data.params
    assert params["task"] == "binary-classification"
    assert params["metric"] == "roc_auc"
    assert params["seed"] == "42"
    assert float(params["time_budget_seconds"]) == QUICK_TRAIN_SECONDS
    assert params["family"] == entry["family"]
    assert {key.removeprefix("model.") for key in params if key.startswith("model.")} == set(
        entry["params"])
    assert run.data.metrics["validation_roc_auc"] == pytest.approx(entry["validation"]["roc_auc"])
    assert run.data.tags["mlscaffold.data.train.sha256"] == record["data"]["train"]["sha256"]
    # every candidate's configuration and scores, as child runs
    leaderboard = json.loads((project / "experiments" / "exp-001" / "leaderboard.json")
                             .read_text())
    children = client.search_runs([run.info.experiment_id], filter_string=(
        f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"))
    assert len(children) == min(len(leaderboard), MAX_CANDIDATE_RUNS) > 0
    best = next(child for child in children if child.data.tags["mlscaffold.rank"] == "1")
    assert best.data.params["family"] == leaderboard[0]["family"]
    assert best.data.metrics["validation_roc_auc"] == pytest.approx(leaderboard[0]["score"])
    # the experiment's files, and the model as an MLflow model that predicts like the bundle
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
        "experiment.json", "leaderboard.json", "model.json", "model.joblib"}
    (model,) = client.search_logged_models([run.info.experiment_id],
                                           filter_string=f"source_run_id = '{run.info.run_id}'")
    import mlflow.sklearn
    import pandas as pd

    from mlscaffold.lifecycle.model import load_bundle

    rows = pd.read_csv(project / "datasets" / "test.csv").drop(columns=["label"]).head(20)
    bundle = load_bundle(project / "experiments" / "exp-001")
    logged = mlflow.sklearn.load_model(model.artifact_location)
    from mlscaffold.lifecycle.schema import coerce_features

    features = coerce_features(rows, bundle.features)
    assert list(logged.predict(features)) == list(bundle.pipeline.predict(features))

    assert listed(project) == {"exp-001": run.info.run_id}
    text = run_cli(project, "list")
    assert run.info.run_id in text.out

    evaluated = run_cli(project, "evaluate")
    assert evaluated.code == 0, evaluated.err
    assert f"logged the test metrics to MLflow run {run.info.run_id}" in evaluated.out
    report = json.loads((project / "experiments" / "exp-001" / "evaluation.json").read_text())
    after = client.get_run(run.info.run_id)
    assert after.data.metrics["test_roc_auc"] == pytest.approx(report["metrics"]["roc_auc"])
    assert {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")} >= {
        "evaluation/evaluation.json", "evaluation/confusion_matrix.csv"}


def test_concurrent_trains_get_distinct_experiments_and_runs(project):
    """Two `train` processes at once: two experiments with their own ids, folders and seeds
    (the index is written under a lock), and two MLflow runs."""
    processes = [python_m("train", "--project", project, "--time", "1", "--seed", seed,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for seed in (1, 2)]
    outputs = [process.communicate(timeout=PATIENCE_SECONDS) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    index = json.loads((project / "experiments" / "index.json").read_text())
    assert sorted(entry["id"] for entry in index["experiments"]) == ["exp-001", "exp-002"]
    assert sorted(entry["seed"] for entry in index["experiments"]) == [1, 2]
    assert sorted(path.name for path in (project / "experiments").glob("exp-*")) == [
        "exp-001", "exp-002"]
    runs = parent_runs(project)
    assert sorted(runs) == ["exp-001", "exp-002"]
    assert sorted(run.data.params["seed"] for run in runs.values()) == ["1", "2"]
    assert listed(project) == {experiment: run.info.run_id for experiment, run in runs.items()}
    assert len({run.info.run_id for run in runs.values()}) == 2


def test_an_unreachable_tracking_server_fails_in_one_line_and_keeps_the_experiment(project):
    set_config(project, tracking_uri=UNREACHABLE)
    result = run_cli(project, "train", "--time", 1)
    assert_error(result, 1, f"the MLflow tracking server {UNREACHABLE} cannot be reached",
                 "exp-001 is kept in", "remove tracking_uri from mlscaffold.yaml",
                 "`mlscaffold track exp-001`")
    assert index_entry(project, "exp-001")["id"] == "exp-001"
    assert (project / "experiments" / "exp-001" / "model.joblib").is_file()
    assert "mlflow_run_id" not in index_entry(project, "exp-001")

    listing = run_cli(project, "list")
    assert listing.code == 0
    assert listing.err.startswith("warning: the experiments' MLflow runs cannot be listed")
    assert UNREACHABLE in listing.err
    assert_error(run_cli(project, "evaluate"), 1, "the evaluation of exp-001 is kept in",
                 UNREACHABLE)
    assert (project / "experiments" / "exp-001" / "evaluation.json").is_file()

    # the fix the message names: back to the project's store, then `track`
    set_config(project, tracking_uri=None)
    tracked = run_cli(project, "track")
    assert tracked.code == 0, tracked.err
    run_id = parent_runs(project)["exp-001"].info.run_id
    assert tracked.out == f"exp-001: MLflow run {run_id}\n"
    again = run_cli(project, "track")
    assert again.out.startswith("every experiment is tracked in the project's MLflow store")


def test_an_interrupted_run_is_replaced_when_the_experiment_is_logged_again(trained_copy):
    client = client_of(trained_copy)
    (complete,) = parent_runs(trained_copy).values()
    client.delete_tag(complete.info.run_id, COMPLETE_TAG)  # as if logging had stopped midway
    assert listed(trained_copy) == {"exp-001": None}
    result = run_cli(trained_copy, "track", "exp-001")
    assert result.code == 0, result.err
    (replacement,) = parent_runs(trained_copy).values()
    assert replacement.info.run_id != complete.info.run_id
    assert client.get_run(complete.info.run_id).info.lifecycle_stage == "deleted"


def test_a_store_copied_with_its_project_names_the_copy(trained_copy, tmp_path):
    """MLflow keeps absolute artifact paths: the copy's store is made to name the copy, and
    nothing is read or written in the original any more."""
    moved = copy_project(trained_copy, tmp_path / "elsewhere" / trained_copy.name)
    result = run_cli(moved, "train", "--time", 1)
    assert result.code == 0, result.err
    runs = parent_runs(moved)
    assert sorted(runs) == ["exp-001", "exp-002"]
    inside = (moved / "mlruns" / "artifacts").as_uri()
    assert all(run.info.artifact_uri.startswith(f"{inside}/") for run in runs.values())
    client = client_of(moved)
    (experiment,) = [e for e in client.search_experiments() if e.name == "lc-binary"]
    assert experiment.artifact_location == inside
    (model,) = client.search_logged_models([experiment.experiment_id], filter_string=(
        f"source_run_id = '{runs['exp-001'].info.run_id}'"))
    assert model.artifact_location.startswith(f"{inside}/")
    assert listed(moved) == {key: run.info.run_id for key, run in runs.items()}
    evaluated = run_cli(moved, "evaluate", "--experiment", "exp-001")
    assert evaluated.code == 0, evaluated.err
    assert evaluated.err == ""
    assert (moved / "mlruns" / "artifacts" / runs["exp-001"].info.run_id / "artifacts" /
            "evaluation" / "evaluation.json").is_file()


def test_without_mlflow_train_warns_and_records_the_experiment(project, monkeypatch):
    """An image installs only the lifecycle runtime: no MLflow, the experiment untracked."""
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` fails as if missing
    result = run_cli(project, "train", "--time", 1)
    assert result.code == 0, result.err
    assert result.err.startswith("warning: MLflow tracking skipped: mlflow-skinny is not "
                                 "installed here")
    assert index_entry(project, "exp-001")["id"] == "exp-001"
    assert not (project / "mlruns").exists()


def test_an_arn_without_the_sagemaker_plugin_names_the_extra(project):
    set_config(project, tracking_uri=ARN)
    assert_error(run_cli(project, "train", "--time", 1), 1,
                 "exp-001 is kept in", f"tracking_uri {ARN} is a SageMaker MLflow tracking server",
                 "pip install 'mlscaffold-kit[sagemaker-mlflow]==",
                 "then log it with `mlscaffold track exp-001`")
    assert index_entry(project, "exp-001")["id"] == "exp-001"


# A stand-in for AWS's sagemaker-mlflow: the same entry points (a tracking store and a request
# auth provider for the arn scheme); like the real auth provider it reads the process-wide
# tracking URI, and it sends the requests to a URL that refuses them.
FAKE_PLUGIN = {
    "fake_sagemaker_mlflow.py": """
        import os
        from mlflow.store.tracking.rest_store import RestStore
        from mlflow.tracking.request_auth.abstract_request_auth_provider import (
            RequestAuthProvider)
        from mlflow.utils.rest_utils import MlflowHostCreds

        class Store(RestStore):
            def __init__(self, store_uri, artifact_uri):
                assert store_uri.startswith("arn:aws:sagemaker:"), store_uri
                super().__init__(lambda: MlflowHostCreds(os.environ["FAKE_ENDPOINT"],
                                                         auth="arn"))

        class Auth(RequestAuthProvider):
            def get_name(self):
                return "arn"

            def get_auth(self):
                # sagemaker_mlflow.auth_provider.AuthProvider parses get_tracking_uri()
                from mlflow import get_tracking_uri

                uri = get_tracking_uri()
                assert uri.startswith("arn:aws:sagemaker:"), uri
                open(os.environ["FAKE_SEEN"], "a").write(uri + "\\n")
                return None
    """,
    "sagemaker_mlflow-0.5.0.dist-info/METADATA": """
        Metadata-Version: 2.1
        Name: sagemaker-mlflow
        Version: 0.5.0
    """,
    "sagemaker_mlflow-0.5.0.dist-info/entry_points.txt": """
        [mlflow.tracking_store]
        arn = fake_sagemaker_mlflow:Store

        [mlflow.request_auth_provider]
        arn = fake_sagemaker_mlflow:Auth
    """,
}


def test_an_arn_goes_through_the_sagemaker_plugin(project, tmp_path):
    plugin = tmp_path / "plugin"
    for name, text in FAKE_PLUGIN.items():
        (plugin / name).parent.mkdir(parents=True, exist_ok=True)
        (plugin / name).write_text(textwrap.dedent(text).lstrip())
    seen = tmp_path / "seen.txt"
    set_config(project, tracking_uri=ARN)
    process = python_m("train", "--project", project, "--time", 1, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env={
                           "PYTHONPATH": os.pathsep.join([str(plugin), *sys.path]),
                           "FAKE_ENDPOINT": UNREACHABLE, "FAKE_SEEN": str(seen)})
    _, err = process.communicate(timeout=PATIENCE_SECONDS)
    assert process.returncode == 1, err
    assert err.startswith(f"error: exp-001 is kept in {project / 'experiments' / 'exp-001'} but "
                          f"not tracked: the MLflow tracking server {ARN} cannot be reached "), err
    assert err.count("\n") == 1, err
    assert "aws sso login" in err and "mlscaffold track exp-001" in err
    assert seen.read_text().splitlines() == [ARN]


def test_mlflow_telemetry_is_off_unless_the_environment_says_otherwise(monkeypatch):
    from mlscaffold.lifecycle.tracking import Store, mlflow_or_none

    store = Store("sqlite:///unused.db", "demo")
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    assert mlflow_or_none(store, print) is not None
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    mlflow_or_none(store, print)
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"


def test_a_new_store_starts_as_a_copy_of_the_empty_one_kept_on_this_machine(tmp_path,
                                                                              monkeypatch):
    """The first store MLflow makes is kept as the template; the next project's store is a
    copy MLflow does not migrate, whose Default experiment names its own folder; a store with
    runs in it is never kept."""
    import sqlite3

    import mlflow.store.db.utils as db_utils
    from mlflow.version import VERSION

    from mlscaffold.lifecycle import store_template, tracking

    monkeypatch.setenv(store_template.CACHE_ENV, str(tmp_path / "cache"))
    template = store_template.template_path(VERSION)
    first = tracking.Store(f"sqlite:///{tmp_path / 'a' / 'mlruns' / 'mlflow.db'}", "a",
                           tmp_path / "a" / "mlruns")
    first.local.mkdir(parents=True)
    tracking._open_local(first)
    assert template.is_file()
    with contextlib.closing(sqlite3.connect(template)) as kept:
        assert store_template.is_empty_store(kept)

    def migrate(engine):
        raise AssertionError("a copy of the kept store was migrated")

    monkeypatch.setattr(db_utils, "_initialize_tables", migrate)
    second = tracking.Store(f"sqlite:///{tmp_path / 'b' / 'mlruns' / 'mlflow.db'}", "b",
                            tmp_path / "b" / "mlruns")
    second.local.mkdir(parents=True)
    client = tracking._open_local(second)
    experiment = tracking._experiment_id(client, second)
    client.create_run(experiment)
    assert client.get_experiment("0").artifact_location == str(second.local / "0")
    assert not list(second.local.glob(".*partial"))
    # a store holding a run is not an empty one: it is never kept
    template.unlink()
    assert not store_template.remember(second.local / tracking.DATABASE, VERSION)
    assert not template.exists()
