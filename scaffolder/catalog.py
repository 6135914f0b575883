"""The facts the spec, the CLI and the tests all read: one table each, no pydantic here.

Kept import-light on purpose: the CLI builds its option choices from these tables
and ``mlscaffold --help`` must stay fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AWS_REGION_PATTERN",
    "CI_PROVIDERS",
    "DEFAULT_ENVIRONMENTS",
    "ENVIRONMENT_PATTERN",
    "FEATURE_STORES",
    "RESERVED_PACKAGE_NAMES",
    "SERVING_PLATFORMS",
    "TASKS",
    "TaskInfo",
    "package_name_for",
]


@dataclass(frozen=True)
class TaskInfo:
    """What mlscaffold knows about an ML task: its metrics and the default quality gate."""

    metrics: tuple[str, ...]
    default_metric: str
    default_threshold: float
    lower_is_better: frozenset[str] = frozenset()


TASKS: dict[str, TaskInfo] = {
    "binary-classification": TaskInfo(
        metrics=("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc",
                 "log_loss"),
        default_metric="roc_auc",
        default_threshold=0.75,
        lower_is_better=frozenset({"log_loss"}),
    ),
    "multiclass-classification": TaskInfo(
        metrics=("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc",
                 "log_loss"),
        default_metric="f1",
        default_threshold=0.6,
        lower_is_better=frozenset({"log_loss"}),
    ),
    "regression": TaskInfo(
        metrics=("rmse", "mae", "r2", "mape"),
        default_metric="r2",
        default_threshold=0.6,
        lower_is_better=frozenset({"rmse", "mae", "mape"}),
    ),
}

TaskName = Literal["binary-classification", "multiclass-classification", "regression"]
ServingName = Literal["sagemaker", "kserve", "none"]
FeatureStoreName = Literal["sagemaker", "none"]
CiName = Literal["github", "gitlab", "none"]

SERVING_PLATFORMS: tuple[str, ...] = ("sagemaker", "kserve", "none")
FEATURE_STORES: tuple[str, ...] = ("sagemaker", "none")
CI_PROVIDERS: tuple[str, ...] = ("github", "gitlab", "none")

DEFAULT_ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
# environment names become Pulumi stack names, resource name parts and tag values
ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
ENVIRONMENT_MAX_LENGTH = 16

# partition prefix, geography, number: us-east-1, eu-central-2, ap-southeast-5, us-gov-west-1
AWS_REGION_PATTERN = re.compile(
    r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov|-iso|-isob)?-"
    r"(north|south|east|west|central|northeast|southeast|northwest|southwest)-\d{1,2}$"
)

# names a project's package must not take: it would shadow what the project imports
RESERVED_PACKAGE_NAMES: frozenset[str] = frozenset(
    {"sklearn", "pandas", "numpy", "joblib", "yaml", "matplotlib", "scipy", "pytest",
     "pulumi", "pulumi_aws", "pulumi_kubernetes", "mlscaffold", "src", "tests", "infra"}
)


def package_name_for(project_name: str) -> str:
    """The Python package name of a project: lower-case, runs of other characters become ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", project_name.lower()).strip("_")
