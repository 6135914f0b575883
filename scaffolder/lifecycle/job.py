"""`mlscaffold train` inside a training job: SageMaker's training contract, in the project's
own image.

SageMaker starts the image as ``IMAGE train`` (the image's entrypoint is ``mlscaffold``), with
the job's files under ``/opt/ml`` (AWS docs, "How Amazon SageMaker AI Provides Training
Information" and "How Amazon SageMaker AI Processes Training Output"):

- ``input/data/<channel>/``: each input channel's files (``train``, ``validation``; the CSV the
  command uploaded, content-addressed, or any single CSV file);
- ``input/config/hyperparameters.json``: the job's hyperparameters, all strings (``time``,
  ``metric``, ``seed``: the options of a local ``train``);
- ``model/``: what SageMaker uploads as ``model.tar.gz`` when the job completes: here the
  experiment's files, exactly those of a local run (model.joblib, model.json,
  experiment.json, leaderboard.json);
- ``output/data/``: other results, uploaded as ``output.tar.gz``: ``metrics.json``;
- ``output/failure``: why the job failed, the first 1 KiB of which SageMaker shows as the job's
  FailureReason; the process exits non-zero ("How Amazon SageMaker AI Signals Algorithm Success
  and Failure");
- ``checkpoints/``: synced to S3 by managed spot training (API reference, CheckpointConfig:
  the default LocalPath). A finished search is checkpointed before its model is written, so an
  interruption after it (while the model is written or uploaded) does not search again; an
  interruption during the search starts the search again, with the same seed.

A Kubernetes Job (``train --on eks``) lays out the same tree itself (an init container
downloads the channels and writes the hyperparameters), so one entrypoint serves both.
The tree's root is ``$MLSCAFFOLD_JOB_ROOT`` (default ``/opt/ml``), which tests point at a
temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ProjectConfig
from .errors import DataError, ProjectError
from .files import atomic_write_json, read_json, sha256_file, to_json
from .hooks import ProjectHooks
from .text import quiet

__all__ = ["CHANNELS", "JOB_ROOT_VARIABLE", "JobPaths", "job_paths", "run_training_job",
           "write_failure"]

JOB_ROOT_VARIABLE = "MLSCAFFOLD_JOB_ROOT"
DEFAULT_JOB_ROOT = "/opt/ml"
#: the input channels a job gets: the project's datasets/<split>.csv of the same name
CHANNELS = ("train", "validation")
#: the hyperparameters a job takes (the local options of `train`), as SageMaker passes them
HYPERPARAMETERS = ("time", "metric", "seed")
METRICS_FILE = "metrics.json"
CHECKPOINT = "search"  # checkpoints/<this>/: the finished search's experiment
# SageMaker keeps the first 1024 characters of the failure file as FailureReason
FAILURE_LIMIT = 1024


@dataclass(frozen=True)
class JobPaths:
    """The training job's tree (``/opt/ml`` in SageMaker)."""

    root: Path

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"


def job_paths(environ: Mapping[str, str] | None = None) -> JobPaths | None:
    """The job's tree when this process runs as a training job (its channels exist), else None:
    a project on a laptop has no ``/opt/ml/input/data``."""
    environ = os.environ if environ is None else environ
    paths = JobPaths(Path(environ.get(JOB_ROOT_VARIABLE) or DEFAULT_JOB_ROOT))
    return paths if (paths.root / "input" / "data").is_dir() else None


def read_hyperparameters(paths: JobPaths) -> dict[str, Any]:
    """``time`` (seconds, > 0), ``metric`` (or None) and ``seed`` from hyperparameters.json,
    whose values SageMaker passes as strings."""
    raw = read_json(paths.hyperparameters, {}) or {}
    if not isinstance(raw, dict):
        raise DataError(f"{paths.hyperparameters} must hold a JSON object")
    unknown = sorted(set(raw) - set(HYPERPARAMETERS))
    if unknown:
        from ..suggest import did_you_mean

        raise DataError(f"unknown hyperparameter(s) {', '.join(unknown)}"
                        f"{did_you_mean(unknown[0], HYPERPARAMETERS)}; a training job "
                        f"takes {', '.join(HYPERPARAMETERS)}")
    try:
        budget = float(raw.get("time", 60))
        seed = int(raw.get("seed", 42))
    except (TypeError, ValueError):
        raise DataError(f"hyperparameters time and seed must be numbers, got "
                        f"{raw.get('time')!r} and {raw.get('seed')!r}") from None
    if not budget > 0:
        raise DataError(f"hyperparameter time must be a positive number of seconds, got "
                        f"{raw.get('time')!r}")
    if not 0 <= seed <= 2**32 - 1:  # numpy's generators take seeds of 32 bits
        raise DataError(f"hyperparameter seed must be from 0 to 4294967295, got "
                        f"{raw.get('seed')!r}")
    return {"time": budget, "metric": raw.get("metric") or None, "seed": seed}


def channel_file(paths: JobPaths, channel: str) -> Path:
    """The CSV file of a channel: ``<channel>.csv``, else the channel's only CSV file."""
    directory = paths.channel(channel)
    if not directory.is_dir():
        raise DataError(f"the job has no input channel {channel!r} ({directory}); a training "
                        f"job takes the channels {', '.join(CHANNELS)}")
    named = directory / f"{channel}.csv"
    if named.is_file():
        return named
    found = sorted(p for p in directory.rglob("*.csv") if p.is_file())
    if len(found) != 1:
        raise DataError(f"input channel {channel!r} holds {len(found)} CSV files; it must hold "
                        f"{channel}.csv or exactly one CSV file")
    return found[0]


def _workspace(config: ProjectConfig, paths: JobPaths, scratch: Path) -> ProjectConfig:
    """A project root in `scratch` whose datasets are the channels' files: the experiment is
    written there as a local run writes it, whatever the image's own folders allow."""
    datasets = scratch / "datasets"
    datasets.mkdir(parents=True)
    for channel in CHANNELS:
        os.symlink(channel_file(paths, channel), datasets / f"{channel}.csv")
    return ProjectConfig(root=scratch, name=config.name, task=config.task, label=config.label,
                         metric=config.metric, metric_threshold=config.metric_threshold,
                         package=config.package)


def _checkpointed(paths: JobPaths, settings: dict[str, Any], data: dict[str, str]
                  ) -> Path | None:
    """The checkpointed experiment of an earlier attempt of this job, if it searched the same
    data with the same settings."""
    directory = paths.checkpoints / CHECKPOINT
    record = read_json(directory / "experiment.json")
    if not isinstance(record, dict):
        return None
    same_data = {split: item.get("sha256") for split, item in record.get("data", {}).items()
                 if isinstance(item, dict)} == data
    same_settings = (record.get("time_budget_seconds") == settings["time"]
                     and record.get("seed") == settings["seed"]
                     and (settings["metric"] is None or record.get("metric") == settings["metric"]))
    return directory if same_data and same_settings else None


def _copy_files(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir()):
        if item.is_file():
            shutil.copy2(item, destination / item.name)


def write_failure(paths: JobPaths, error: BaseException) -> None:
    message = str(error) if isinstance(error, ProjectError) else \
        f"{type(error).__name__}: {error}"
    paths.failure.parent.mkdir(parents=True, exist_ok=True)
    paths.failure.write_text(" ".join(message.split())[:FAILURE_LIMIT] + "\n", encoding="utf-8")


def run_training_job(config: ProjectConfig, paths: JobPaths, hooks: ProjectHooks | None = None,
                     echo: Callable[[str], None] = quiet) -> dict:
    """Train as a training job: channels in, the experiment's files out to ``model/``.

    Returns the experiment's index entry. Any failure is written to ``output/failure`` (one
    line) and raised again, so the process exits non-zero; ``model/`` then holds nothing.
    """
    from .train import train

    try:
        settings = read_hyperparameters(paths)
        data = {channel: sha256_file(channel_file(paths, channel)) for channel in CHANNELS}
        with tempfile.TemporaryDirectory(prefix="mlscaffold-job-") as scratch:
            checkpoint = _checkpointed(paths, settings, data)
            if checkpoint is not None:
                echo(f"resuming from the checkpointed search in {checkpoint}")
                experiment = checkpoint
            else:
                workspace = _workspace(config, paths, Path(scratch) / "project")
                # untracked here: the launcher logs the imported experiment to MLflow
                # (remote_train.record_remote_run); the job has no network to reach a store
                entry = train(workspace, budget=settings["time"], metric_name=settings["metric"],
                              seed=settings["seed"], echo=echo, hooks=hooks, track=False)
                experiment = workspace.layout.experiments / entry["id"]
                # before the model: an interruption from here on resumes instead of searching
                shutil.rmtree(paths.checkpoints / CHECKPOINT, ignore_errors=True)
                _copy_files(experiment, paths.checkpoints / CHECKPOINT)
            record = json.loads((experiment / "experiment.json").read_text("utf-8"))
            _copy_files(experiment, paths.model)
        atomic_write_json(paths.output_data / METRICS_FILE, {
            "metric": record["metric"], "score": record["score"],
            "validation": record["validation"]})
        echo(f"wrote {paths.model} ({', '.join(sorted(p.name for p in paths.model.iterdir()))})")
        # SageMaker's metric definitions can read these lines from the log
        echo("metrics: " + to_json(record["validation"]).replace("\n", " ").strip())
        return {key: record[key] for key in (
            "id", "created_at", "task", "metric", "score", "family", "params", "validation",
            "seed", "time_budget_seconds")}
    except BaseException as error:
        if not isinstance(error, (KeyboardInterrupt, SystemExit)):
            write_failure(paths, error)
        # nothing half-written for SageMaker to upload as a model
        if paths.model.is_dir():
            for item in paths.model.iterdir():
                if item.is_file():
                    item.unlink()
        raise
