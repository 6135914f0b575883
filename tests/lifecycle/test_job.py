"""`mlscaffold train` under SageMaker's training contract: a temporary /opt/ml-style tree
($MLSCAFFOLD_JOB_ROOT), the channels in, the experiment's files and metrics out, a failure
reason and a non-zero exit on failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlscaffold.lifecycle.job import JOB_ROOT_VARIABLE, job_paths
from mlscaffold.lifecycle.model import load_bundle

from .conftest import assert_error, run_cli

EXPERIMENT_FILES = {"model.joblib", "model.json", "experiment.json", "leaderboard.json",
                    "model_card.md"}


def job_tree(root: Path, project: Path, hyperparameters: dict | None = None,
             channels: tuple[str, ...] = ("train", "validation")) -> Path:
    """The tree SageMaker lays out: input/data/<channel>/, input/config/hyperparameters.json."""
    for channel in channels:
        directory = root / "input" / "data" / channel
        directory.mkdir(parents=True)
        # the content-addressed upload keeps the split's file name
        shutil.copy(project / "datasets" / f"{channel}.csv", directory / f"{channel}.csv")
    config = root / "input" / "config"
    config.mkdir(parents=True)
    values = {"time": "2", "seed": "7"} if hyperparameters is None else hyperparameters
    (config / "hyperparameters.json").write_text(json.dumps(values))
    (root / "model").mkdir()
    (root / "output").mkdir()
    return root


@pytest.fixture
def job_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "opt-ml"
    monkeypatch.setenv(JOB_ROOT_VARIABLE, str(root))
    return root


def test_a_job_writes_the_experiments_files_and_metrics(project, job_root):
    job_tree(job_root, project)
    result = run_cli(project, "train")
    assert result.code == 0, result.err
    assert {p.name for p in (job_root / "model").iterdir()} == EXPERIMENT_FILES
    record = json.loads((job_root / "model" / "experiment.json").read_text())
    assert record["seed"] == 7 and record["time_budget_seconds"] == 2.0
    # the same data record as a local run: the split's path in the project and its digest
    assert record["data"]["train"]["path"] == "datasets/train.csv"
    assert record["data"]["train"]["sha256"] == __import__("hashlib").sha256(
        (project / "datasets" / "train.csv").read_bytes()).hexdigest()
    metrics = json.loads((job_root / "output" / "data" / "metrics.json").read_text())
    assert metrics["validation"] == record["validation"]
    assert not (job_root / "output" / "failure").exists()
    assert load_bundle(job_root / "model").task == "binary-classification"
    # the project itself is left alone: no experiment in it
    assert not (project / "experiments" / "index.json").exists()
    assert "metrics: {" in result.out


def test_a_checkpointed_search_is_not_run_again(project, job_root):
    job_tree(job_root, project)
    assert run_cli(project, "train").code == 0
    first = (job_root / "model" / "model.joblib").read_bytes()
    assert {p.name for p in (job_root / "checkpoints" / "search").iterdir()} == EXPERIMENT_FILES
    for item in (job_root / "model").iterdir():  # a spot interruption before the upload
        item.unlink()
    result = run_cli(project, "train")
    assert result.code == 0, result.err
    assert "resuming from the checkpointed search" in result.out
    assert (job_root / "model" / "model.joblib").read_bytes() == first


def test_other_settings_search_again(project, job_root):
    job_tree(job_root, project)
    assert run_cli(project, "train").code == 0
    (job_root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"time": "2", "seed": "8"}))
    result = run_cli(project, "train")
    assert result.code == 0 and "resuming" not in result.out


@pytest.mark.parametrize(("hyperparameters", "channels", "fragment"), [
    ({"time": "2"}, ("train",), "the job has no input channel 'validation'"),
    ({"time": "soon"}, ("train", "validation"), "hyperparameters time and seed must be numbers"),
    ({"time": "2", "epochs": "3"}, ("train", "validation"),
     "unknown hyperparameter(s) epochs; a training job takes time, metric, seed"),
    ({"time": "2", "metric": "nonsense"}, ("train", "validation"), "nonsense"),
    ({"time": "2", "seed": "-1"}, ("train", "validation"),
     "hyperparameter seed must be from 0 to 4294967295, got '-1'"),
])
def test_a_failed_job_says_why_and_writes_no_model(project, job_root, hyperparameters, channels,
                                                   fragment):
    job_tree(job_root, project, hyperparameters, channels)
    result = run_cli(project, "train")
    assert_error(result, 2, fragment)
    failure = (job_root / "output" / "failure").read_text()
    assert fragment in failure and failure.count("\n") == 1
    assert list((job_root / "model").iterdir()) == []


def test_a_channel_with_several_csv_files_is_refused(project, job_root):
    job_tree(job_root, project)
    shutil.copy(project / "datasets" / "test.csv", job_root / "input" / "data" / "train")
    (job_root / "input" / "data" / "train" / "train.csv").rename(
        job_root / "input" / "data" / "train" / "part-1.csv")
    result = run_cli(project, "train")
    assert_error(result, 2, "input channel 'train' holds 2 CSV files")


def test_without_channels_train_runs_locally(tmp_path):
    assert job_paths({JOB_ROOT_VARIABLE: str(tmp_path)}) is None
    (tmp_path / "input" / "data").mkdir(parents=True)
    assert job_paths({JOB_ROOT_VARIABLE: str(tmp_path)}).root == tmp_path


def test_the_docs_describe_the_contract_the_code_follows():
    """docs/lifecycle.md's table and runtime rule are the code's: every path, channel and
    hyperparameter, the job root variable and the runtime factor and overhead."""
    from mlscaffold.lifecycle import job
    from mlscaffold.remote_train import RUNTIME_FACTOR, RUNTIME_OVERHEAD_SECONDS

    text = (Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md").read_text()
    section = text.split("## Training on the platform", 1)[1].split("\n## ", 1)[0]
    paths = job.JobPaths(Path("/r"))
    for path in (paths.hyperparameters, paths.output_data / job.METRICS_FILE, paths.failure,
                 paths.checkpoints / job.CHECKPOINT, *(paths.channel(c) for c in job.CHANNELS)):
        assert f"`{path.relative_to('/r').as_posix()}" in section, path
    assert ", ".join(f"`{name}`" for name in job.HYPERPARAMETERS) in section
    assert f"`${job.JOB_ROOT_VARIABLE}`" in section and job.DEFAULT_JOB_ROOT in section
    assert f"{RUNTIME_FACTOR} x `--time` + {RUNTIME_OVERHEAD_SECONDS} seconds" in section
