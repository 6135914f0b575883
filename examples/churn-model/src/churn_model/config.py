"""Project configuration (mlscaffold.yaml) and the on-disk layout of a project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ConfigError
from .metrics import DEFAULT_METRIC, TASKS, get_metric

CONFIG_FILE = "mlscaffold.yaml"
STAGES = ("staging", "production")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Layout:
    """Where a project keeps its data, experiments and promoted models."""

    root: Path

    def dataset(self, split: str) -> Path:
        return self.root / "datasets" / f"{split}.csv"

    @property
    def experiments(self) -> Path:
        return self.root / "experiments"

    @property
    def experiment_index(self) -> Path:
        return self.experiments / "index.json"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def registry(self) -> Path:
        return self.models / "registry.json"

    def stage(self, stage: str) -> Path:
        return self.models / stage


@dataclass(frozen=True)
class ProjectConfig:
    """The settings of mlscaffold.yaml this package uses (other keys are ignored)."""

    root: Path
    name: str
    task: str
    label: str
    metric: str
    metric_threshold: float | None

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"


def find_project_root(start: Path | None = None) -> Path:
    """Walk up from `start` (default: the working directory) to the directory of mlscaffold.yaml."""
    here = Path(start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / CONFIG_FILE).is_file():
            return directory
    raise ConfigError(
        f"no {CONFIG_FILE} found in {here} or its parents; "
        "run inside a project or pass --project DIR"
    )


def load_config(root: Path) -> ProjectConfig:
    """Read and validate mlscaffold.yaml in `root`."""
    path = Path(root) / CONFIG_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings")

    task = raw.get("task")
    if task not in TASKS:
        raise ConfigError(f"{CONFIG_FILE}: task must be one of {', '.join(TASKS)}, got {task!r}")
    label = raw.get("label")
    if not isinstance(label, str) or not label:
        raise ConfigError(f"{CONFIG_FILE}: label must name the label column")
    metric = raw.get("metric") or DEFAULT_METRIC[task]
    get_metric(metric, task)  # raises if unknown or not valid for the task
    threshold = raw.get("metric_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float))
    ):
        raise ConfigError(f"{CONFIG_FILE}: metric_threshold must be a number, got {threshold!r}")
    return ProjectConfig(
        root=Path(root).resolve(),
        name=str(raw.get("name") or Path(root).resolve().name),
        task=task,
        label=label,
        metric=metric,
        metric_threshold=None if threshold is None else float(threshold),
    )
