"""The facts the spec, the CLI and the tests all read: one table each, no pydantic here.

Kept import-light on purpose: the CLI builds its option choices from these tables
and ``mlscaffold --help`` must stay fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .stacks.regions import DEFAULT_REGION

__all__ = [
    "CI_PROVIDERS",
    "DEFAULT_ENVIRONMENTS",
    "ENVIRONMENT_MAX_COUNT",
    "ENVIRONMENT_PATTERN",
    "FEATURE_STORES",
    "LOWER_IS_BETTER",
    "METRIC_RANGES",
    "PROJECT_NAME_PATTERN",
    "RESERVED_PACKAGE_NAMES",
    "SERVING_PLATFORMS",
    "SPEC_DEFAULTS",
    "TASKS",
    "TaskInfo",
    "package_name_for",
]

# the built-in metrics whose lower values are better (errors, losses); every other is better
# higher. One direction per metric, whatever the task
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "rmse", "mae", "mape"})
# The values each built-in metric can take (None: unbounded): a quality gate outside them can
# never pass (or always passes), so the spec refuses it
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    **dict.fromkeys(("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc"),
                    (0.0, 1.0)),
    **dict.fromkeys(("log_loss", "rmse", "mae", "mape"), (0.0, None)),
    "r2": (None, 1.0),
}


# The quality gate a metric gets when the spec gives none. Errors and losses (rmse, mae, mape,
# log_loss) have none: their scale is the data's, so a fixed number would pass or block every
# model, and the spec asks for one.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "roc_auc": 0.75, "accuracy": 0.75, "balanced_accuracy": 0.7, "f1": 0.6, "precision": 0.6,
    "recall": 0.6, "r2": 0.6,
}


@dataclass(frozen=True)
class TaskInfo:
    """What mlscaffold knows about an ML task: its metrics and the default quality gate."""

    metrics: tuple[str, ...]
    default_metric: str

    @property
    def default_threshold(self) -> float:
        """The gate of the task's default metric."""
        return DEFAULT_THRESHOLDS[self.default_metric]

    @property
    def lower_is_better(self) -> frozenset[str]:
        """The task's metrics whose lower values are better (:data:`LOWER_IS_BETTER`)."""
        return LOWER_IS_BETTER.intersection(self.metrics)


TASKS: dict[str, TaskInfo] = {
    "binary-classification": TaskInfo(
        metrics=("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc",
                 "log_loss"),
        default_metric="roc_auc",
    ),
    "multiclass-classification": TaskInfo(
        metrics=("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc",
                 "log_loss"),
        default_metric="f1",
    ),
    "regression": TaskInfo(
        metrics=("rmse", "mae", "r2", "mape"),
        default_metric="r2",
    ),
}

# the spec's types of these choices; the tuples the CLI offers are read from them (and TaskName
# is tested equal to TASKS' keys)
TaskName = Literal["binary-classification", "multiclass-classification", "regression"]
ServingName = Literal["sagemaker", "kserve", "none"]
FeatureStoreName = Literal["sagemaker", "none"]
CiName = Literal["github", "gitlab", "none"]

SERVING_PLATFORMS: tuple[str, ...] = get_args(ServingName)
FEATURE_STORES: tuple[str, ...] = get_args(FeatureStoreName)
CI_PROVIDERS: tuple[str, ...] = get_args(CiName)

DEFAULT_ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")

# The spec's defaults, one place: ProjectSpec's fields, the CLI's prompts and its options'
# `[default: ...]` help read them, and copier.yml's question defaults are tested equal. The
# metric and its threshold default by task (TASKS); the name by the project's folder.
SPEC_DEFAULTS: dict[str, Any] = {
    "task": "binary-classification",
    "label": "label",
    "serving": "sagemaker",
    "feature_store": "none",
    "ci": "github",
    "region": DEFAULT_REGION,
    "environments": DEFAULT_ENVIRONMENTS,
    "owner": "ml-platform",
    "cost_center": "ml",
}
# project names start every cloud resource name: S3 buckets and ECR repositories take lower case
# only, KServe's InferenceService a DNS-1035 label, SageMaker no `_` or `.`; one rule that fits
# them all (the Python package is its snake_case form)
PROJECT_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# environment names become Pulumi stack names, resource name parts and tag values
ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
ENVIRONMENT_MAX_LENGTH = 16
# Environments per project: the blueprint renders one infra/Pulumi.<env>.yaml per slot, since
# Copier renders one file per template file (a test keeps the slots and this number equal)
ENVIRONMENT_MAX_COUNT = 8

# names a project's package must not take: it would shadow what the project imports
RESERVED_PACKAGE_NAMES: frozenset[str] = frozenset(
    {"sklearn", "pandas", "numpy", "joblib", "yaml", "matplotlib", "scipy", "pytest",
     "pulumi", "pulumi_aws", "pulumi_kubernetes", "mlscaffold", "src", "tests", "infra"}
)


def package_name_for(project_name: str) -> str:
    """The Python package name of a project: lower-case, runs of other characters become ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", project_name.lower()).strip("_")
