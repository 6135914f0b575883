"""Experiment tracking in MLflow: every experiment of the project is also an MLflow run.

Where runs go (:func:`store_of`): the spec's ``tracking_uri`` (a SageMaker MLflow tracking
server's ARN, through AWS's sagemaker-mlflow plugin, or an http(s) MLflow server), else the
project's own store, ``mlruns/``: an SQLite database (``mlruns/mlflow.db``) and the runs'
artifacts (``mlruns/artifacts/``), with no server to run. SQLite, not MLflow's ``./mlruns``
file store: MLflow 3 keeps the file store in maintenance mode and refuses to open it unless
``MLFLOW_ALLOW_FILE_STORE`` is set (mlflow/mlflow#23634, #23637), and its own default store is
SQLite. mlflow-skinny reaches it with sqlalchemy and alembic (its README: what SQL-based
metadata storage needs), not the whole of ``mlflow``.

A run (:func:`log_experiment`) is made from what ``train`` wrote into experiments/exp-NNN (the
artifact layout stays; the run holds copies): its tags name the experiment
(``mlscaffold.experiment``), its params are the search settings and the chosen model's
configuration, its metrics the validation scores, its child runs the candidates (their
family, configuration and scores, best first, at most :data:`MAX_CANDIDATE_RUNS`), its
artifacts the experiment's files (experiment.json, leaderboard.json, the model card model.json
and the bundle model.joblib) and its model an MLflow scikit-learn model. The tag
``mlscaffold.logged`` is set last: a run without it was interrupted and is replaced the next
time the experiment is logged (``mlscaffold track``). ``evaluate`` adds the test metrics and
files to the run (:func:`log_evaluation`); ``list`` reads the run ids (:func:`runs_by_experiment`).

The store is written by one process at a time (a lock file in mlruns/, for SQLite); the ids are
reserved by experiments.py, so concurrent trains get distinct ids and distinct runs. A store
copied or moved with its project is made to name its new place (:func:`_relocate`). MLflow's
own usage telemetry stays off unless the environment sets MLFLOW_DISABLE_TELEMETRY.
MLflow is imported only here, inside the functions: without it (an image installs only the
lifecycle runtime) :func:`mlflow_or_none` warns and the command goes on untracked.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from . import store_template
from .config import ProjectConfig
from .errors import COMMAND, TrackingError
from .experiments import get_experiment, update_experiment
from .files import file_lock, read_json
from .text import quiet

__all__ = ["COMPLETE_TAG", "EXPERIMENT_TAG", "MAX_CANDIDATE_RUNS", "Store", "log_evaluation",
           "log_experiment", "mlflow_or_none", "runs_by_experiment", "store_of",
           "track_new_experiment", "untracked"]

EXPERIMENT_TAG = "mlscaffold.experiment"
COMPLETE_TAG = "mlscaffold.logged"
DATABASE = "mlflow.db"
#: candidates logged as child runs, best first (all of them are in leaderboard.json): each is
#: three writes to the store, and a 30 s search tries 50-90 candidates, so 50 of them made the
#: logging take about 1.7 s of a `train` (SQLite commits) where the best 10 take 0.4 s
MAX_CANDIDATE_RUNS = 10
PLUGIN = "sagemaker-mlflow"
#: how long the first request to a tracking server may take before it counts as unreachable
PROBE_TIMEOUT_SECONDS = 10
_BATCH = 100  # MLflow's log_batch takes at most 100 params (and 1000 metrics) per call


@dataclass(frozen=True)
class Store:
    """Where a project's runs go."""

    uri: str
    #: the MLflow experiment holding the project's runs: the project's name
    experiment: str
    #: the project's own store directory (mlruns/), None for a tracking server
    local: Path | None = None

    @property
    def artifact_uri(self) -> str | None:
        """Where the project's own store keeps artifacts; a server decides its own."""
        return (self.local / "artifacts").as_uri() if self.local else None

    @property
    def described(self) -> str:
        return f"the project's MLflow store {self.local / DATABASE}" if self.local \
            else f"the MLflow tracking server {self.uri}"


def store_of(config: ProjectConfig) -> Store:
    """The spec's tracking server, or the project's own store."""
    if config.tracking_uri:
        return Store(config.tracking_uri, config.name)
    local = config.layout.tracking_store
    return Store(f"sqlite:///{local / DATABASE}", config.name, local)


def mlflow_or_none(store: Store, warn: Callable[[str], None]) -> Any:
    """The mlflow module, or None with a warning when this installation lacks it."""
    from ..packaging import install_hint, missing_library

    # MLflow starts its usage telemetry when imported (a thread posting to MLflow's servers)
    # unless this is set; the user's own setting wins
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ModuleNotFoundError as error:
        library = missing_library(error)
        if library is None:
            raise
        warn(f"MLflow tracking skipped: {library} is not installed here (an image installs "
             f"only the lifecycle runtime); {install_hint()} brings it")
        return None
    return mlflow


# what logging an experiment imports: about 1.5 s of a `train`, spent while the search runs
_WARM_MODULES = ("mlflow", "mlflow.tracking", "mlflow.models", "mlflow.sklearn",
                 "mlflow.store.tracking.sqlalchemy_store")


def warm_up(store: Store | None = None) -> threading.Thread:
    """Do in a background thread what logging the experiment after the search would otherwise
    wait for; join the thread before logging. Failures are left to the logging itself, which
    reports them. (The search's own imports are done by then, so the two threads import
    disjoint modules.) Three things, each seconds in a whole-tool install:

    - import MLflow;
    - MLflow's map of installed modules to distributions: ``log_model`` checks the model's
      requirements against the environment with it, and builds it by reading the file list of
      every installed distribution (mlflow/utils/requirements_utils.py, a private function:
      if a later MLflow drops it, this step does nothing);
    - open the project's own store (`store`), which makes or migrates its SQLite tables the
      first time: MLflow keeps the opened store per URI (its store registry's lru_cache), so
      the logging reuses it. Under the store's lock, as every writer of it is; a tracking
      server is not contacted here (an unreachable one must fail the logging, not this)."""
    def prepare() -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        with contextlib.suppress(BaseException):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name in _WARM_MODULES:
                    importlib.import_module(name)
            # after the imports: importing mlflow sets its logger's level (to INFO)
            with _quiet_mlflow():
                _prepare_logging(store)

    thread = threading.Thread(target=prepare, name="mlflow-warm-up", daemon=True)
    thread.start()
    return thread


def _prepare_logging(store: Store | None) -> None:
    """The warm-up's second and third steps (:func:`warm_up`)."""
    from mlflow.utils import requirements_utils

    requirements_utils._init_modules_to_packages_map()
    if store is not None and store.local is not None:
        store.local.mkdir(parents=True, exist_ok=True)
        with file_lock(store.local / ".lock"):
            _relocate(store)
            _open_local(store)


def _open_local(store: Store) -> Any:
    """An MlflowClient on the project's own store, opened (made or migrated) now. A new store
    starts as a copy of the empty one kept on this machine, or becomes that copy when MLflow
    has to make it (store_template.py). Under the store's lock."""
    from mlflow.tracking import MlflowClient
    from mlflow.version import VERSION

    assert store.local is not None
    database = store.local / DATABASE
    made_here = not database.exists() and not store_template.seed(database, VERSION)
    client = MlflowClient(tracking_uri=store.uri)
    client.search_experiments(max_results=1)  # opens it now: MLflow opens a store lazily
    if made_here:
        store_template.remember(database, VERSION)
    return client


def _require_plugin(store: Store, what: str, then: str) -> None:
    """An ARN needs AWS's plugin, which MLflow finds by its entry points."""
    from importlib.metadata import PackageNotFoundError, distribution

    from .. import DISTRIBUTION, __version__

    try:
        distribution(PLUGIN)
    except PackageNotFoundError:
        raise TrackingError(
            f"{what}: tracking_uri {store.uri} is a SageMaker MLflow tracking server, which "
            f"MLflow reaches through AWS's {PLUGIN} plugin, not installed here",
            hint=f"pip install '{DISTRIBUTION}[{PLUGIN}]=={__version__}', then {then}") from None


# ------------------------------------------------------------------ a session with the store


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's INFO lines (database migrations) and warnings stay out of the command's
    output."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _global_uri(mlflow: Any, uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking URI set to `uri` for the block: the fluent API (the
    model's logging) reads it, and so does the sagemaker-mlflow plugin when it signs a
    request, whatever URI the client was made with (sagemaker_mlflow 0.5, auth_provider.py:
    ``set_arn(get_tracking_uri())``; AWS's docs connect with mlflow.set_tracking_uri(arn))."""
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _reason(error: BaseException) -> str:
    """The innermost cause of `error`, in one short line."""
    seen = error
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    text = " ".join(str(seen).split()) or type(seen).__name__
    if type(seen).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        text = "no AWS credentials to sign the requests with"
    return text if len(text) <= 200 else text[:197] + "..."


def _failed(store: Store) -> str:
    return "cannot be used" if store.local else "cannot be reached"


def _fix(store: Store, then: str) -> str:
    if store.local is not None:
        return (f"check that {store.local} is writable and not damaged (move it away to start "
                f"a new store), then {then}")
    if store.uri.startswith("arn:"):
        return ("check that the stack's tracking server is running (`pulumi stack output "
                "mlflow_tracking_server_arn` names it), that AWS credentials are set (`aws sso "
                "login`) and allow sagemaker-mlflow:* on it, and that the ARN in "
                f"mlscaffold.yaml is that one; then {then}")
    return ("check that the MLflow server runs at that URL, or remove tracking_uri from "
            f"mlscaffold.yaml to log to the project's own store (mlruns/); then {then}")


@contextlib.contextmanager
def _session(mlflow: Any, store: Store, what: str, then: str) -> Iterator[Any]:
    """An MlflowClient on `store`: the project's store locked against other processes, a
    server probed once without retries (so an unreachable one fails at once); any failure
    becomes one TrackingError naming the store and the fix."""
    from mlflow.tracking import MlflowClient

    if store.uri.startswith("arn:"):
        _require_plugin(store, what, then)
    lock = file_lock(store.local / ".lock") if store.local else contextlib.nullcontext()
    try:
        with _quiet_mlflow(), lock, _global_uri(mlflow, store.uri):
            if store.local:
                store.local.mkdir(parents=True, exist_ok=True)
                _relocate(store)
                _forget_artifact_locations()
                client = _open_local(store)
            else:
                client = MlflowClient(tracking_uri=store.uri)
                with _environment(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                                  MLFLOW_HTTP_REQUEST_TIMEOUT=str(PROBE_TIMEOUT_SECONDS)):
                    client.search_experiments(max_results=1)
            yield client
    except TrackingError:
        raise
    except (mlflow.exceptions.MlflowException, OSError) as error:
        raise TrackingError(f"{what}: {store.described} {_failed(store)} ({_reason(error)})",
                            hint=_fix(store, then)) from None
    except Exception as error:
        # the requests, SQLAlchemy and botocore errors under MLflow's calls, without importing
        # those libraries here
        if type(error).__module__.split(".")[0] not in ("requests", "urllib3", "sqlalchemy",
                                                        "sqlite3", "botocore",
                                                        "sagemaker_mlflow"):
            raise
        raise TrackingError(f"{what}: {store.described} {_failed(store)} ({_reason(error)})",
                            hint=_fix(store, then)) from None


def _experiment_id(client: Any, store: Store, *, create: bool = True) -> str | None:
    """The MLflow experiment of the project's runs, named after the project (made if missing
    and `create`)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(store.experiment)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    if not create:
        return None
    try:
        return client.create_experiment(store.experiment, artifact_location=store.artifact_uri,
                                        tags={"mlscaffold.project": store.experiment})
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # another process made it meanwhile (a tracking server takes no lock of ours)
        return client.get_experiment_by_name(store.experiment).experiment_id


def _experiment_ids(client: Any, store: Store) -> list[str]:
    found = _experiment_id(client, store, create=False)
    return [found] if found else []


def _forget_artifact_locations() -> None:
    """Drop MLflow's process-wide cache of artifact repositories, keyed by run id: a copy of
    the project's store has the same run ids with artifacts at another place."""
    from mlflow.tracking._tracking_service import utils

    cache = getattr(utils, "_artifact_repos_cache", None)  # private: gone in a later MLflow
    if cache is not None:
        cache.clear()


# the tables and columns where MLflow's SQL store keeps absolute artifact locations
_LOCATIONS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
              ("logged_models", "artifact_location"))


def _relocate(store: Store) -> None:
    """Make the project's own store, copied or moved with its project, name its new place.

    MLflow resolves a local artifact location to an absolute path once, when an experiment is
    made (mlflow/mlflow#7670), and keeps it in its experiments, runs and logged models tables:
    a store copied or moved with its project would go on reading and writing the old place
    (mlflow/mlflow#3144, open: no relative locations). Those paths are rewritten with SQLite
    itself before MLflow opens the store.
    """
    import sqlite3

    assert store.local is not None and store.artifact_uri is not None
    database = store.local / DATABASE
    if not database.is_file():
        return
    new = store.artifact_uri
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection, connection:
        row = connection.execute("SELECT artifact_location FROM experiments WHERE name = ?",
                                 (store.experiment,)).fetchone()
        old = row[0] if row else None
        if not old or old == new or not old.endswith(f"/{store.local.name}/artifacts"):
            return
        tables = {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in _LOCATIONS:
            if table in tables:
                connection.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (new, len(old) + 1, old, len(old) + 1, f"{old}/"))


def _runs(client: Any, experiment_ids: list[str], experiment: str | None = None) -> list[Any]:
    """The project's top-level runs (of one experiment, exp-NNN, if given), newest first."""
    if not experiment_ids:
        return []
    where = f"tags.`{EXPERIMENT_TAG}` = '{experiment}'" if experiment else \
        f"tags.`{EXPERIMENT_TAG}` LIKE 'exp-%'"
    found, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=where, max_results=1000,
                                  order_by=["attributes.start_time DESC"], page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _complete(run: Any) -> bool:
    return run.data.tags.get(COMPLETE_TAG) == "true"


# ------------------------------------------------------------------ what a run holds


def _millis(timestamp: str | None) -> int | None:
    if not timestamp:
        return None
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) \
        else str(value)
    return text[:6000]  # MLflow's limit of a param value


def _metrics(prefix: str, scores: dict | None, timestamp: int) -> list[Any]:
    from mlflow.entities import Metric

    return [Metric(f"{prefix}{name}", float(value), timestamp, 0)
            for name, value in (scores or {}).items()
            if isinstance(value, int | float) and value == value and abs(value) != float("inf")]


def _params(values: dict) -> list[Any]:
    from mlflow.entities import Param

    return [Param(key, _param_value(value)) for key, value in values.items()
            if value is not None]


def _log_batch(client: Any, run_id: str, params: list, metrics: list) -> None:
    for start in range(0, max(len(params), 1), _BATCH):
        client.log_batch(run_id, params=params[start:start + _BATCH],
                         metrics=metrics if start == 0 else [])


def _run_values(record: dict, leaderboard: list[dict]) -> tuple[dict, dict]:
    """(params, tags) of an experiment's run: the search settings and the chosen model."""
    candidates = record.get("candidates") or {}
    params = {
        "task": record.get("task"),
        "metric": record.get("metric"),
        "time_budget_seconds": record.get("time_budget_seconds"),
        "seed": record.get("seed"),
        "candidates_evaluated": candidates.get("evaluated", len(leaderboard)),
        "candidates_skipped_for_time": candidates.get("skipped_for_time"),
        "family": record.get("family"),
        **{f"model.{key}": value for key, value in (record.get("params") or {}).items()},
    }
    data = record.get("data") or {}
    tags = {f"mlscaffold.data.{split}.sha256": info.get("sha256")
            for split, info in data.items() if isinstance(info, dict)}
    return params, {key: value for key, value in tags.items() if value}


def _signature(bundle: Any) -> Any:
    """The model's input columns as MLflow sees them: numeric ones as double, the rest as
    strings; dropped columns are not inputs."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    columns = [ColSpec("double" if kind == "numeric" else "string", name)
               for name, kind in bundle.features.items() if kind != "dropped"]
    return ModelSignature(inputs=Schema(columns)) if columns else None


def _log_model(mlflow: Any, run_id: str, bundle: Any) -> None:
    """The experiment's pipeline as an MLflow scikit-learn model of the run."""
    import mlflow.sklearn

    from ..packaging import pinned, runtime_requirements

    with mlflow.start_run(run_id=run_id):  # in the session: the global URI is the store's
        # cloudpickle, not MLflow's default skops: skops is not installed with mlflow-skinny,
        # and the pipeline may hold the project's own transformers. The requirements are
        # given: MLflow would otherwise infer them in a subprocess.
        mlflow.sklearn.log_model(
            bundle.pipeline, name="model", serialization_format="cloudpickle",
            pip_requirements=[*runtime_requirements(), pinned()],
            signature=_signature(bundle))


# ------------------------------------------------------------------ public


def log_experiment(config: ProjectConfig, experiment_id: str, *,
                   warn: Callable[[str], None] = quiet) -> str | None:
    """Log an indexed experiment as an MLflow run (once: a complete run is kept) and note the
    run id in its index entry. Returns the run id, or None when MLflow is not installed.

    Raises TrackingError when the store cannot be reached; the experiment stays as it is.
    """
    from .model import load_bundle

    entry = get_experiment(config.layout, experiment_id)
    store = store_of(config)
    mlflow = mlflow_or_none(store, warn)
    if mlflow is None:
        return None
    directory = config.layout.experiments / experiment_id
    record = read_json(directory / "experiment.json") or entry
    leaderboard = read_json(directory / "leaderboard.json") or []
    bundle = load_bundle(directory)
    then = f"log it with `{COMMAND} track {experiment_id}`"
    with _session(mlflow, store, f"{experiment_id} is kept in {directory} but not tracked",
                  then) as client:
        experiment = _experiment_id(client, store)
        runs = _runs(client, _experiment_ids(client, store), experiment_id)
        done = next((run for run in runs if _complete(run)), None)
        if done is not None:
            run_id = done.info.run_id
        else:
            for run in runs:  # left incomplete by an interrupted attempt
                client.delete_run(run.info.run_id)
            run_id = _new_run(mlflow, client, store, experiment, config, record, leaderboard,
                              directory, bundle)
    update_experiment(config.layout, experiment_id, mlflow_run_id=run_id)
    return run_id


def track_new_experiment(config: ProjectConfig, entry: dict, *,
                         echo: Callable[[str], None] = quiet,
                         warn: Callable[[str], None] = quiet) -> str | None:
    """Log a just-recorded experiment (a local `train`, or a remote run's import) and say so;
    its run id, also set as the entry's ``mlflow_run_id``. None, with `warn`'s one line, when
    MLflow is not installed; a store that cannot be reached raises TrackingError naming
    `track`, and the experiment stays."""
    run_id = log_experiment(config, entry["id"], warn=warn)
    if run_id is not None:
        entry["mlflow_run_id"] = run_id
        echo(f"tracked as MLflow run {run_id} in {store_of(config).described}")
    return run_id


def _new_run(mlflow: Any, client: Any, store: Store, experiment: str, config: ProjectConfig,
             record: dict, leaderboard: list[dict], directory: Path, bundle: Any) -> str:
    from .. import __version__

    experiment_id = record["id"]
    started = _millis(record.get("created_at"))
    finished = _millis(record.get("finished_at")) or started
    params, data_tags = _run_values(record, leaderboard)
    run = client.create_run(experiment, start_time=started, run_name=experiment_id, tags={
        EXPERIMENT_TAG: experiment_id, "mlscaffold.project": config.name,
        "mlscaffold.version": __version__, **data_tags})
    run_id = run.info.run_id
    timings = {f"seconds_{name}": value
               for name, value in (record.get("timings_seconds") or {}).items()}
    _log_batch(client, run_id, _params(params),
               _metrics("validation_", record.get("validation"), finished or 0)
               + _metrics("", timings, finished or 0))
    for row in leaderboard[:MAX_CANDIDATE_RUNS]:
        child = client.create_run(experiment, start_time=started,
                                  run_name=f"{experiment_id} candidate {row.get('trial')}",
                                  tags={"mlflow.parentRunId": run_id,
                                        "mlscaffold.rank": str(row.get("rank")),
                                        **({"mlscaffold.error": str(row["error"])[:5000]}
                                           if row.get("error") else {})})
        _log_batch(client, child.info.run_id,
                   _params({"family": row.get("family"), **{
                       f"model.{key}": value for key, value in (row.get("params") or {}).items()}}),
                   _metrics("validation_", row.get("metrics"), finished or 0)
                   + _metrics("", {"seconds": row.get("seconds")}, finished or 0))
        client.set_terminated(child.info.run_id,
                              status="FAILED" if row.get("error") else "FINISHED",
                              end_time=finished)
    client.log_artifacts(run_id, str(directory))
    _log_model(mlflow, run_id, bundle)
    client.set_tag(run_id, COMPLETE_TAG, "true")
    client.set_terminated(run_id, end_time=finished)
    return run_id


def log_evaluation(config: ProjectConfig, experiment_id: str, scores: dict,
                   files: list[Path], *, warn: Callable[[str], None] = quiet) -> str | None:
    """Add test metrics (``test_<metric>``) and the evaluation's files (under evaluation/) to
    the experiment's run; None, with a warning, when it has none or MLflow is missing.

    Raises TrackingError when the store cannot be reached; the evaluation's files stay.
    """
    store = store_of(config)
    if store.local and not (store.local / DATABASE).is_file():
        warn(f"{experiment_id} has no MLflow run (the project's store is empty); "
             f"`{COMMAND} track {experiment_id}` logs it, then evaluate again")
        return None
    mlflow = mlflow_or_none(store, warn)
    if mlflow is None:
        return None
    import time

    then = f"run `{COMMAND} evaluate --experiment {experiment_id}` again"
    with _session(mlflow, store, f"the evaluation of {experiment_id} is kept in "
                  f"{config.layout.experiments / experiment_id} but not tracked",
                  then) as client:
        runs = [run for run in _runs(client, _experiment_ids(client, store), experiment_id)
                if _complete(run)]
        if not runs:
            warn(f"{experiment_id} has no MLflow run; `{COMMAND} track {experiment_id}` logs "
                 "it, then evaluate again")
            return None
        run = runs[0]
        client.log_batch(run.info.run_id,
                         metrics=_metrics("test_", scores, int(time.time() * 1000)))
        for path in files:
            client.log_artifact(run.info.run_id, str(path), "evaluation")
    return run.info.run_id


def runs_by_experiment(config: ProjectConfig, *,
                       warn: Callable[[str], None] = quiet) -> dict[str, str] | None:
    """{exp-NNN: run id} of the project's complete runs (the newest of each); None when
    tracking is unavailable here (the warning says why). Opens no store that does not exist."""
    store = store_of(config)
    if store.local and not (store.local / DATABASE).is_file():
        return {}
    mlflow = mlflow_or_none(store, warn)
    if mlflow is None:
        return None
    with _session(mlflow, store, "the experiments' MLflow runs cannot be listed",
                  f"run `{COMMAND} list` again") as client:
        found: dict[str, str] = {}
        for run in _runs(client, _experiment_ids(client, store)):
            if _complete(run):
                found.setdefault(run.data.tags[EXPERIMENT_TAG], run.info.run_id)
    return found


def untracked(config: ProjectConfig, experiments: list[dict], *,
              warn: Callable[[str], None] = quiet) -> list[str] | None:
    """The ids among `experiments` that have no complete run in the store."""
    runs = runs_by_experiment(config, warn=warn)
    if runs is None:
        return None
    return [item["id"] for item in experiments if item["id"] not in runs]
