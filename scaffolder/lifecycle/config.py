"""The project a lifecycle command runs in: its spec (mlscaffold.yaml) and its on-disk layout.

The spec is validated by the same model as ``check`` and ``preview`` (scaffolder/spec.py), so a
key those reject is rejected here too. A project made by another mlscaffold release is refused
before validation: its keys may mean something else to this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from ..spec import ProjectSpec

CONFIG_FILE = "mlscaffold.yaml"
STAGES = ("staging", "production")
# stages by the names of the environments that serve them (`prod` serves `production`)
STAGE_ALIASES = {"prod": "production"}
#: where `train` runs (`--on`, the spec's train_on)
TRAIN_ON = ("local", "sagemaker", "eks")
SPLITS = ("train", "validation", "test")
#: an experiment's model card (lifecycle.report writes it), named here for the light modules
MODEL_CARD_FILE = "model_card.md"
# defaults the command line shows without importing the modules that use them
DEFAULT_DRIFT_THRESHOLD = 0.2  # PSI above which a feature has drifted
DEFAULT_PORT = 8080  # SageMaker's serving contract
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints take at most 6 MB
DEFAULT_MAX_BATCH_ROWS = 256


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

    def analysis(self, name: str) -> Path:
        """Where `analyze` writes the report and plots of data set `name` (its file's stem)."""
        return self.experiments / "analysis" / name

    @property
    def tracking_store(self) -> Path:
        """The project's own MLflow store (mlflow.db and the runs' artifacts), used when the
        spec names no tracking server."""
        return self.root / "mlruns"

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
    """A project's root and the spec settings the lifecycle reads."""

    root: Path
    name: str
    task: str
    label: str
    metric: str
    metric_threshold: float | None
    package: str = ""  # the team's hook package in src/ ('' for a bare model directory)
    tracking_uri: str | None = None  # the spec's MLflow tracking server; None: mlruns/
    positive_class: str | None = None  # binary: the label value f1 & co. score; None: the last

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    @classmethod
    def from_spec(cls, root: Path, spec: ProjectSpec) -> ProjectConfig:
        return cls(root=Path(root).resolve(), name=spec.name, task=spec.task, label=spec.label,
                   metric=spec.metric, metric_threshold=spec.metric_threshold,
                   package=spec.package, tracking_uri=spec.tracking_uri,
                   positive_class=spec.positive_class)


def find_project_root(start: Path | None = None) -> Path:
    """Walk up from `start` (default: the working directory) to the directory of mlscaffold.yaml."""
    here = Path(start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / CONFIG_FILE).is_file():
            return directory
    raise ConfigError(f"no {CONFIG_FILE} in {here} or any folder above it",
                      hint="run the command inside a project (`mlscaffold new` makes one) "
                           "or pass --project DIR")


THIN_PROJECTS_SINCE = (0, 2)  # the series whose lifecycle is mlscaffold's own


def check_made_by(raw: dict, path: Path, installed: str) -> None:
    """Refuse a spec written by an mlscaffold release this one cannot run (another minor)."""
    made_by = raw.get("mlscaffold_version")
    if made_by is not None and (not isinstance(made_by, str) or _series(made_by) is None):
        raise ConfigError(f"{path}: mlscaffold_version must be a version like {installed}, "
                          f"got {made_by!r}", hint="restore it from git")
    if made_by is None or _series(made_by) < THIN_PROJECTS_SINCE:
        # 0.1 was another distribution's name on PyPI: nothing to install, the code is there
        said = "has no mlscaffold_version" if made_by is None else f"has mlscaffold_version " \
                                                                   f"{made_by}"
        raise ConfigError(
            f"{path} {said}: it was made by mlscaffold 0.1, whose projects carry their own "
            f"lifecycle code (python -m <package>)",
            hint=f"keep using that code, or make a new project with mlscaffold {installed} and "
                 "move datasets/, experiments/ and models/ into it")
    if _series(made_by) == _series(installed):
        return
    from .. import DISTRIBUTION

    if _series(made_by) > _series(installed):
        raise ConfigError(
            f"{path} was made by mlscaffold {made_by}, newer than this mlscaffold {installed}",
            hint=f"install that version: pip install '{DISTRIBUTION}=={made_by}'")
    raise ConfigError(
        f"{path} was made by mlscaffold {made_by}; this is mlscaffold {installed}",
        hint=f"install the version that made it (pip install '{DISTRIBUTION}=={made_by}'), or "
             f"bring the project to {installed} with `mlscaffold update`")


def _series(version: str) -> tuple[int, int] | None:
    """(major, minor): releases of one series run each other's projects."""
    from ..packaging import release_of

    release = release_of(version)
    return None if release is None else release[:2]


def load_project(root: Path | None = None) -> tuple[ProjectConfig, ProjectSpec]:
    """The project at `root` (default: found upward from the working directory), validated."""
    import yaml

    from .. import __version__
    from ..errors import describe_yaml_error
    from ..spec import ProjectSpec, spec_error_from

    # absolute, so messages name the same path as `mlscaffold check` does
    root = find_project_root() if root is None else Path(root).resolve()
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{root} holds no {CONFIG_FILE}",
                          hint="pass the project's folder to --project")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {describe_yaml_error(error)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of spec keys")
    check_made_by(raw, path, __version__)
    from pydantic import ValidationError

    try:
        spec = ProjectSpec.model_validate(raw)
    except ValidationError as error:
        raise spec_error_from(error, source=str(path)) from None
    return ProjectConfig.from_spec(root, spec), spec
