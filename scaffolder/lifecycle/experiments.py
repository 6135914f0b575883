"""Experiment directories and the experiment index (experiments/index.json).

A run reserves its id by creating its directory with os.mkdir (atomic, so concurrent runs never
share an id), writes its files there, and only becomes an experiment when it is added to the
index at the end. A run that fails removes its directory (Ctrl-C during the search is not a
failure: train keeps the best model so far, marked interrupted); a killed one leaves a directory
that the index ignores.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from .config import Layout
from .errors import COMMAND, DataError, NotFoundError
from .files import atomic_write_json, file_lock, read_json
from .metrics import Metric

_ID_PATTERN = re.compile(r"^exp-(\d{3,})$")


def format_id(number: int) -> str:
    return f"exp-{number:03d}"


def reserve_experiment(layout: Layout) -> tuple[str, Path]:
    """Create the next free experiments/exp-NNN directory and return its id and path: after
    every experiment here and every one models/registry.json names (experiments/ is not
    committed, so a fresh clone would otherwise train a second exp-001)."""
    layout.experiments.mkdir(parents=True, exist_ok=True)
    taken = [
        int(match.group(1))
        for match in map(_ID_PATTERN.match, [*os.listdir(layout.experiments),
                                             *_promoted_ids(layout)])
        if match
    ]
    number = max(taken, default=0) + 1
    while True:
        path = layout.experiments / format_id(number)
        try:
            os.mkdir(path)
        except FileExistsError:
            number += 1
            continue
        return format_id(number), path


def _promoted_ids(layout: Layout) -> list[str]:
    """The experiment ids models/registry.json records (none when it is absent or unreadable:
    the registry's own commands report that)."""
    from .registry import read_registry

    try:
        return [str(version.get("experiment")) for state in read_registry(layout)[
            "stages"].values() for version in state.get("versions", [])]
    except (DataError, AttributeError, TypeError, OSError):
        return []


@contextlib.contextmanager
def pending_experiment(layout: Layout) -> Iterator[tuple[str, Path]]:
    """Reserve an experiment directory and remove it again if the block does not complete."""
    experiment_id, path = reserve_experiment(layout)
    try:
        yield experiment_id, path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def read_index(layout: Layout) -> list[dict]:
    """Indexed experiments, oldest first; a DataError when the index is not one mlscaffold
    writes."""
    index = read_json(layout.experiment_index) or {}
    experiments = index.get("experiments", []) if isinstance(index, dict) else None
    if not isinstance(experiments, list) or not all(isinstance(e, dict) for e in experiments):
        raise DataError(f"{layout.experiment_index} is not an experiment index (an object whose "
                        '"experiments" is a list of objects); restore it from a backup')
    return experiments


def record_experiment(layout: Layout, entry: dict) -> None:
    """Add or replace (by id) an experiment in the index, under the index lock."""
    with _locked_index(layout) as experiments:
        experiments[:] = [item for item in experiments if item["id"] != entry["id"]] + [entry]
        experiments.sort(key=lambda item: _number(item["id"]))


def update_experiment(layout: Layout, experiment_id: str, **changes) -> None:
    """Merge `changes` into an indexed experiment's entry."""
    with _locked_index(layout) as experiments:
        entry = next((item for item in experiments if item["id"] == experiment_id), None)
        if entry is None:
            raise unknown_experiment(experiment_id, experiments)
        entry.update(changes)


def get_experiment(layout: Layout, experiment_id: str) -> dict:
    """The index entry of an experiment."""
    experiments = read_index(layout)
    for item in experiments:
        if item["id"] == experiment_id:
            return item
    raise unknown_experiment(experiment_id, experiments)


def experiment_dir(layout: Layout, experiment_id: str) -> Path:
    """Directory of an indexed experiment."""
    get_experiment(layout, experiment_id)
    return layout.experiments / experiment_id


def ranked(experiments: list[dict], metric: Metric) -> list[dict]:
    """Experiments best first by their validation value of `metric` (missing values last)."""
    return sorted(
        experiments,
        key=lambda item: (
            metric.sort_key(item["validation"].get(metric.name)),
            _number(item["id"]),
        ),
    )


def best_experiment(layout: Layout, metric: Metric) -> dict:
    """The indexed experiment with the best validation `metric`."""
    experiments = read_index(layout)
    if not experiments:
        raise NotFoundError(f"no experiments yet; run `{COMMAND} train` first")
    return ranked(experiments, metric)[0]


@contextlib.contextmanager
def _locked_index(layout: Layout) -> Iterator[list[dict]]:
    with file_lock(layout.experiments / ".index.lock"):
        experiments = read_index(layout)
        yield experiments
        atomic_write_json(layout.experiment_index, {"experiments": experiments})


def _number(experiment_id: str) -> int:
    match = _ID_PATTERN.match(experiment_id)
    return int(match.group(1)) if match else 0


def unknown_experiment(experiment_id: str, experiments: list[dict]) -> NotFoundError:
    """Refuse `experiment_id`, offering the experiment of the same number (``exp-1``, ``7``:
    ids are exp- and three digits); ids of other numbers are not typos of each other."""
    from ..suggest import offer

    numbers = re.findall(r"\d+", experiment_id)
    same = [item["id"] for item in experiments
            if len(numbers) == 1 and _number(item["id"]) == int(numbers[0])]
    return NotFoundError(f"unknown experiment {experiment_id!r}{offer(next(iter(same), None))}; "
                         f"run `{COMMAND} list` to see the experiments")
