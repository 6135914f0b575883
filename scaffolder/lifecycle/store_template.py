"""A project's new MLflow store, copied from an empty one that this machine has made before.

MLflow makes an SQLite store by running every migration of its schema from the first (alembic,
dozens of steps): 1.5-2 s of CPU and a commit per step, paid by the first `train` of every
project. An empty store made by one MLflow version is the same for every project but for the
artifact location of its `Default` experiment, so the first one made here is kept in
mlscaffold's cache folder, per MLflow version, and a later project's store starts as a copy of
it. MLflow then finds its schema current and migrates nothing.

The cache folder is ``$MLSCAFFOLD_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlscaffold``, else
``~/.cache/mlscaffold``. The cache is an optimisation only: where it cannot be read or written
(a read-only home in an image) MLflow makes the store as before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from pathlib import Path

CACHE_ENV = "MLSCAFFOLD_CACHE_DIR"
#: the experiment every MLflow store is made with, and its id
DEFAULT_EXPERIMENT = (0, "Default")
# the rows a store is made with (besides alembic's version and SQLite's own tables): the
# Default experiment, and the default workspace of MLflow 3's workspaces
_MADE_WITH = {"experiments": ("SELECT experiment_id, name FROM experiments",
                              [DEFAULT_EXPERIMENT]),
              "workspaces": ("SELECT name FROM workspaces", [("default",)])}
_BOOKKEEPING = {"alembic_version", "sqlite_sequence"}


def cache_dir() -> Path:
    """mlscaffold's cache folder on this machine (it may not exist yet)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlscaffold"


def template_path(mlflow_version: str) -> Path:
    return cache_dir() / f"mlflow-{mlflow_version}-empty-store.db"


def seed(database: Path, mlflow_version: str) -> bool:
    """Make `database` (which must not exist) a copy of the kept empty store; False when there
    is none or it cannot be copied (MLflow then makes the store itself).

    The copy's `Default` experiment is made now, with its artifacts under the store's folder
    (MLflow puts them under ./mlruns of the directory it runs in)."""
    template = template_path(mlflow_version)
    if database.exists() or not template.is_file():
        return False
    partial = database.with_name(f".{database.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(template, partial)
        with contextlib.closing(sqlite3.connect(partial)) as connection, connection:
            now = int(time.time() * 1000)
            connection.execute("UPDATE experiments SET artifact_location = ?, "
                               "creation_time = ?, last_update_time = ? "
                               "WHERE experiment_id = ?",
                               (str(database.parent / str(DEFAULT_EXPERIMENT[0])), now, now,
                                DEFAULT_EXPERIMENT[0]))
        os.replace(partial, database)
    except (OSError, sqlite3.Error):
        partial.unlink(missing_ok=True)
        return False
    return True


def remember(database: Path, mlflow_version: str) -> bool:
    """Keep a copy of `database`, a store MLflow has just made, as the template for later
    projects, unless one is kept already or the store holds more than an empty one does.
    True when a template was written."""
    template = template_path(mlflow_version)
    if template.exists() or not database.is_file():
        return False
    partial = template.with_name(f".{template.name}.{os.getpid()}.partial")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as source, \
                contextlib.closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)  # a consistent copy, whatever MLflow's connection holds
            empty = is_empty_store(copy)
        if not empty:
            partial.unlink(missing_ok=True)
            return False
        os.replace(partial, template)  # whole or not at all, for every process
    except (OSError, sqlite3.Error):
        partial.unlink(missing_ok=True)
        return False
    return True


def is_empty_store(connection: sqlite3.Connection) -> bool:
    """An MLflow store with its schema and the rows it is made with, and nothing else."""
    tables = {name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "alembic_version" not in tables or "experiments" not in tables:
        return False
    for table in tables - _BOOKKEEPING:
        if table in _MADE_WITH:
            query, rows = _MADE_WITH[table]
            if [tuple(row) for row in connection.execute(query)] != rows:
                return False
        elif connection.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():
            return False
    return True
