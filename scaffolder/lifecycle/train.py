"""`train`: load the data, search for the best model within a time budget, record an experiment."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn

from .. import __version__
from .config import MODEL_CARD_FILE, ProjectConfig
from .data import check_classes, code_warnings, read_csv, shared_rows, split_label, text_columns
from .errors import COMMAND, DataError
from .experiments import pending_experiment, read_index, record_experiment
from .files import atomic_write_json, atomic_write_text, sha256_file, utc_now
from .hooks import ProjectHooks
from .metrics import (
    Metric,
    chance_warning,
    get_metric,
    positive_class_warning,
    positive_of,
    positive_text,
)
from .model import ModelBundle, save_bundle
from .report import model_card
from .schema import (
    Schema,
    infer_schema,
    parse_features,
    stray_warnings,
    text_warnings,
    used_columns,
)
from .search import SearchResult, Split, Trial, search
from .text import number, quiet

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class TrainingData:
    """The training and validation sets, ready for the search, and where they came from."""

    train: Split
    validation: Split
    features: dict[str, str]  # column -> numeric | categorical | date | dropped
    classes: list | None
    files: dict[str, dict]  # split -> path, sha256, rows, columns
    schema: Schema  # of the training set: column kinds, why columns are dropped, strays

    @property
    def strays(self) -> dict[str, dict]:
        """Numeric columns whose non-numbers read as missing (the decision the bundle keeps)."""
        return self.schema.strays


MIN_TRAIN_ROWS = 10  # labelled rows of train.csv


def load_training_data(
    config: ProjectConfig, echo: Callable[[str], None], warn: Callable[[str], None] = quiet
) -> TrainingData:
    """Read datasets/train.csv and validation.csv; infer the schema from the training set.

    A mostly numeric column's stray text ('?', '-') reads as missing; `warn` names each such
    column with its count, per file.
    """
    splits, files = {}, {}
    schema: Schema | None = None
    for split in SPLITS:
        path = config.layout.dataset(split)
        # validation.csv's text columns are read as train.csv's are (codes with leading zeros)
        frame = read_csv(path, given=False,
                         text=text_columns(schema.features) if schema is not None else ())
        data = split_label(frame, config.label, config.task, path)
        if schema is None:
            # first: on a row or two every column looks constant
            if len(data.labels) < MIN_TRAIN_ROWS:
                raise DataError(
                    f"{path} has {len(data.labels)} labelled row(s); training needs at least "
                    f"{MIN_TRAIN_ROWS}: add rows to it"
                )
            schema = infer_schema(frame, config.label)
        features = schema.features
        missing = [name for name in used_columns(features) if name not in data.features.columns]
        if missing:
            from ..suggest import did_you_mean  # a column of this file may be a renamed one

            extra = [str(name) for name in data.features.columns if name not in features]
            raise DataError(f"{path} lacks column(s) of the training data: " + ", ".join(
                f"{name}{did_you_mean(name, extra)}" for name in missing))
        if data.dropped_rows:
            echo(f"note: ignored {data.dropped_rows} row(s) of {split} without a label")
        source = path.relative_to(config.root).as_posix()
        unknown = [str(name) for name in data.features.columns if name not in features]
        if unknown:  # the schema is train.csv's: a column only here cannot count
            warn(f"{source} has column(s) that {files['train']['path']} lacks, which the model "
                 f"ignores: {', '.join(unknown)}; add them to both files or drop them")
        try:
            parsed = parse_features(data.features, features, schema.strays, schema.percents)
        except DataError as error:  # a column's values: say which file holds them
            raise DataError(f"{source}: {error.message}", hint=error.hint) from None
        for line in stray_warnings(source, parsed.strays):
            warn(line)
        if not splits:  # the training data's schema: its dates, comma numbers and codes, once
            for line in text_warnings(source, schema) + code_warnings(source, frame):
                warn(line)
        splits[split] = Split(parsed.frame, data.labels)
        files[split] = {
            "path": source,
            "sha256": sha256_file(path),
            "rows": len(frame),
            "columns": len(frame.columns),
        }
    # a validation row that is also a training row scores a model on what it learnt
    if repeated := shared_rows(splits["validation"].x, splits["validation"].y,
                               [(splits["train"].x, splits["train"].y)]):
        warn(f"{repeated} of {len(splits['validation'].y)} row(s) of {files['validation']['path']} "
             f"are also in {files['train']['path']} (the same features and label): validation "
             "scores, and the choice of model, are optimistic; remove them from one of the files")
    classes = None
    if config.is_classification:
        classes = np.unique(splits["train"].y).tolist()
        check_classes(classes, config.task, files["train"]["path"])
    assert schema is not None
    return TrainingData(splits["train"], splits["validation"], schema.features, classes, files,
                        schema)


def train(
    config: ProjectConfig,
    budget: float | None = 60.0,
    metric_name: str | None = None,
    seed: int = 42,
    echo: Callable[[str], None] = quiet,
    hooks: ProjectHooks | None = None,
    track: bool = True,
    warn: Callable[[str], None] = quiet,
    trials: int | None = None,
) -> dict:
    """Search for the best model and record it as a new experiment.

    The search ends after `budget` seconds (None: no time limit) or `trials` candidates,
    whichever comes first; with the same seed and data it tries the same candidates in the same
    order, so `trials` without a budget reproduces a run exactly. Returns the experiment's index
    entry. The experiment joins the index only once all its files are written. Ctrl-C during the
    search keeps the best model so far as an experiment whose entry says `"interrupted": true`;
    Ctrl-C before the first candidate is scored, or while the files are written, leaves nothing.
    Then, if `track`, the experiment is logged as an MLflow run (:mod:`.tracking`; the entry gets
    its ``mlflow_run_id``): a store that cannot be reached raises TrackingError, and the recorded
    experiment stays.
    """
    metric = get_metric(metric_name or config.metric, config.task)
    check_limits(budget, trials)
    read_index(config.layout)  # a damaged index would otherwise fail only after the search
    started_at, loading = utc_now(), time.perf_counter()
    data = load_training_data(config, echo, warn)
    positive = positive_of(data.classes, config.positive_class, data.files["train"]["path"]) \
        if config.task == "binary-classification" else None
    if positive is None and config.task == "binary-classification" and (
            line := positive_class_warning(data.train.y, metric.name)):
        warn(line)
    searching = time.perf_counter()

    with pending_experiment(config.layout) as (experiment_id, directory):
        limits = [f"{budget:g}s"] if budget is not None else []
        limits += [f"{trials} candidates"] if trials is not None else []
        echo(
            f"{experiment_id}: {config.task}, {len(data.train.y)} training rows, "
            f"{len(used_columns(data.features))} features; searching {' or '.join(limits)} for "
            f"the best {metric.name} ({metric.direction}) with {len(data.validation.y)} "
            f"validation rows"
        )

        def progress(so_far: list[Trial]) -> None:
            atomic_write_json(directory / "leaderboard.json", _leaderboard(so_far, metric))

        warming = None
        if track:
            from .tracking import store_of, warm_up

            warming = warm_up(store_of(config))
        result = search(
            data.train, data.validation, data.features, config.task, metric, budget, seed, echo,
            hooks, trials=trials, progress=progress, positive=positive,
        )
        saving = time.perf_counter()
        bundle = ModelBundle(
            pipeline=result.pipeline,
            task=config.task,
            label=config.label,
            features=data.features,
            classes=result.classes,
            metric=metric.name,
            metrics=result.metrics,
            name=config.name,
            strays=data.strays,
            percents=data.schema.percents,
        )
        save_bundle(bundle, directory)
        atomic_write_json(directory / "leaderboard.json", _leaderboard(result.trials, metric))
        done = time.perf_counter()
        timings = {
            "load": searching - loading,
            "search": saving - searching,
            "save": done - saving,
            "total": done - loading,
        }
        entry = {
            "id": experiment_id,
            "created_at": started_at,
            "task": config.task,
            "metric": metric.name,
            "score": result.score,
            "family": result.family,
            "params": result.params,
            "validation": result.metrics,
            "seed": seed,
            "time_budget_seconds": budget,
            "trials": trials,
            "interrupted": result.interrupted,
        }
        if positive is not None:  # f1, precision and recall above are of this class
            entry["positive_class"] = positive_text(positive)
        atomic_write_json(
            directory / "experiment.json", _experiment_record(entry, config, data, result, timings)
        )
        atomic_write_text(
            directory / MODEL_CARD_FILE,
            model_card(entry, config.name, config.label, data.schema, data.files, __version__,
                       selection=result.protocol["description"],
                       reason=result.protocol["choice"].get("reason")),
        )
        record_experiment(config.layout, entry)

    _report(result, metric, directory, timings["search"], echo)
    scored_on = np.concatenate([data.train.y, data.validation.y])  # what selection scored
    if line := chance_warning(metric.name, result.score, scored_on):
        warn(line)
    if track:
        from .tracking import track_new_experiment

        if warming is not None:
            warming.join()
        track_new_experiment(config, entry, echo=echo, warn=warn)
    echo(f"next: {COMMAND} evaluate --experiment {experiment_id}")
    return entry


def check_limits(budget: float | None, trials: int | None) -> None:
    """Refuse a time budget that is not a positive number of seconds, or trials below 1."""
    if budget is not None and not (isinstance(budget, (int, float)) and math.isfinite(budget)
                                   and budget > 0):
        raise DataError(f"--time must be a positive number of seconds, got {budget}")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int)
                               or trials < 1):
        raise DataError(f"--trials must be a whole number of candidates from 1, got {trials}")


def _leaderboard(trials: list[Trial], metric: Metric) -> list[dict]:
    """Fully scored candidates best first, then those stopped early, then those that failed."""

    def order(item: tuple[int, Trial]) -> tuple:
        number, trial = item
        group = 2 if trial.error else 1 if trial.pruned else 0
        return group, metric.sort_key(trial.partial_score if trial.pruned else trial.score), number

    ordered = sorted(enumerate(trials, start=1), key=order)
    return [
        {
            "rank": rank,
            "trial": number,
            "family": trial.family,
            "params": trial.params,
            "score": trial.score,
            "metrics": trial.metrics,
            "seconds": round(trial.seconds, 3),
            "error": trial.error,
            "folds": trial.views,
            "pruned": trial.pruned,
            "partial_score": trial.partial_score,
        }
        for rank, (number, trial) in enumerate(ordered, start=1)
    ]


def _experiment_record(
    entry: dict, config: ProjectConfig, data: TrainingData, result: SearchResult, timings: dict
) -> dict:
    """Everything needed to understand and reproduce the run (experiment.json)."""
    return {
        **entry,
        "finished_at": utc_now(),
        "project": config.name,
        "label": config.label,
        "features": data.features,
        "strays": data.strays,
        "percents": data.schema.percents,
        "classes": result.classes,
        "data": data.files,
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "joblib": joblib.__version__,
        },
        "timings_seconds": {name: round(value, 3) for name, value in timings.items()},
        "selection": result.protocol,
        "best_single": {"family": result.best.family, "params": result.best.params,
                        "score": result.best.score},
        "ensemble": result.ensemble,
        "candidates": {
            "evaluated": len(result.trials),
            "pruned": sum(trial.pruned for trial in result.trials),
            "failed": sum(trial.error is not None for trial in result.trials),
            "stopped_by": result.stopped_by,
        },
    }


def _report(
    result: SearchResult,
    metric: Metric,
    directory: Path,
    seconds: float,
    echo: Callable[[str], None],
) -> None:
    chosen = result.family
    if result.ensemble:
        families = sorted({member["family"] for member in result.ensemble["members"]})
        chosen = f"ensemble of {len(result.ensemble['members'])} ({', '.join(families)})"
    how = "stopped by Ctrl-C after" if result.interrupted else "from"
    echo(
        f"best: {chosen} {metric.name}={number(result.score)} "
        f"({how} {len(result.trials)} candidates in {seconds:.1f}s)"
    )
    scored_on = ("cross-validation" if result.protocol["method"] == "cross-validation"
                 else "validation")
    echo(f"{scored_on}: " + ", ".join(f"{k}={number(v)}" for k, v in result.metrics.items()))
    echo(f"wrote {directory} (model.joblib, model.json, experiment.json, leaderboard.json, "
         f"{MODEL_CARD_FILE})")
