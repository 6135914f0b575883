"""The project spec: one pydantic model validated once, from which everything else is derived.

``mlscaffold new`` builds it from the CLI, writes it into the project as ``mlscaffold.yaml``,
and derives the blueprint's answers from it (later also the stack and policy config).
"""

from __future__ import annotations

import keyword
import math
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from . import catalog
from .catalog import CiName, FeatureStoreName, ServingName, TaskName
from .errors import SpecError, describe_yaml_error
from .lifecycle.config import TRAIN_ON
from .stacks.feature_schema import FeatureDeclarations
from .suggest import did_you_mean, model_at, unknown_key_message, value_message

__all__ = [
    "SPEC_FILENAME",
    "ProjectSpec",
    "answers_drift",
    "check_column",
    "check_environments",
    "check_project_name",
    "check_region",
    "check_tracking_uri",
    "load_spec",
    "spec_error_from",
    "spec_json_schema",
    "validate_spec",
]

SPEC_FILENAME = "mlscaffold.yaml"
SPEC_VERSION = 1
# the fields' defaults: the catalog's one table, which the CLI's help and prompts read too
_DEFAULT = catalog.SPEC_DEFAULTS


def _name_max() -> int:
    """The longest project name: with a one-letter environment, "<name>-<env>" (which starts
    every resource name) must still fit STACK_PREFIX_MAX."""
    from .stacks.constants import STACK_PREFIX_MAX

    return STACK_PREFIX_MAX - 2


def check_project_name(name: str) -> str:
    if len(name) > _name_max():
        raise ValueError(
            f"project name {name!r} is {len(name)} characters long; AWS resource names start "
            f"with '<name>-<environment>', which must fit in {_name_max() + 2} characters "
            f"(SageMaker's name limit, less what mlscaffold appends), so use a name of at most "
            f"{_name_max()} characters")
    if not catalog.PROJECT_NAME_PATTERN.match(name):
        suggestion = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        example = suggestion if catalog.PROJECT_NAME_PATTERN.match(suggestion) else "churn-model"
        raise ValueError(
            f"project name {name!r} cannot name AWS resources (S3 and ECR take lower case, "
            f"SageMaker and KServe no '_' or '.'); use lower-case letters, digits and single "
            f"dashes, starting with a letter, e.g. {example}")
    package = catalog.package_name_for(name)
    if not package or not package.isidentifier() or package[0].isdigit():
        raise ValueError(
            f"project name {name!r} does not make a Python package name (got {package!r}); "
            "use letters, digits and dashes, starting with a letter, e.g. churn-model"
        )
    if keyword.iskeyword(package):
        raise ValueError(f"project name {name!r} makes the package {package!r}, a Python keyword; "
                         "choose another name, e.g. my-" + name)
    if package in sys.stdlib_module_names or package in catalog.RESERVED_PACKAGE_NAMES:
        raise ValueError(f"project name {name!r} makes the package {package!r}, which would shadow "
                         "a module the project imports; choose another name, e.g. my-" + name)
    return name


def check_region(region: str) -> str:
    """`region` if mlscaffold knows it (the one region table), else ValueError naming them."""
    from .stacks.regions import check_region as known_region

    return known_region(region)


def check_environments(names: list[str]) -> list[str]:
    if not names:
        raise ValueError("at least one environment is needed, e.g. dev,staging,prod")
    if len(names) > catalog.ENVIRONMENT_MAX_COUNT:
        raise ValueError(f"{len(names)} environments are listed; a project has at most "
                         f"{catalog.ENVIRONMENT_MAX_COUNT}, e.g. dev,staging,prod")
    for name in names:
        too_long = len(name) > catalog.ENVIRONMENT_MAX_LENGTH
        if too_long or not catalog.ENVIRONMENT_PATTERN.match(name):
            raise ValueError(
                f"environment name {name!r} is not valid; use lower-case letters, digits and "
                f"single dashes, starting with a letter, at most {catalog.ENVIRONMENT_MAX_LENGTH} "
                "characters, e.g. dev,staging,prod"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"environment {', '.join(map(repr, duplicates))} is listed more than "
                         "once; list each environment once, e.g. dev,staging,prod")
    return names


def check_column(name: str) -> str:
    if not name.strip() or any(ch in name for ch in ',"\n\r') or name != name.strip():
        raise ValueError(f"label column {name!r} is not a usable CSV column name; use a plain "
                         "name without commas, quotes or surrounding spaces, e.g. label")
    return name


# where SageMaker's MLflow plugin (sagemaker-mlflow) sends an ARN's requests: the partitions it
# knows and the two resource types it serves (tracking servers and MLflow apps)
_TRACKING_ARN = re.compile(r"^arn:aws(-us-gov)?:sagemaker:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:"
                           r"(mlflow-tracking-server|mlflow-app)/[A-Za-z0-9](-*[A-Za-z0-9]){0,255}$")
_TRACKING_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?$")


def check_tracking_uri(uri: str) -> str:
    """An MLflow tracking URI the project may log to: a SageMaker MLflow ARN or an http(s) URL."""
    if _TRACKING_ARN.match(uri) or _TRACKING_URL.match(uri):
        return uri
    raise ValueError(
        f"{uri!r} is not a tracking server mlscaffold logs to; give the ARN of a SageMaker MLflow "
        "tracking server (arn:aws:sagemaker:REGION:ACCOUNT:mlflow-tracking-server/NAME, the "
        "stack output mlflow_tracking_server_arn) or the http(s):// URL of an MLflow server, "
        "or leave tracking_uri out to log to the project's own store (mlruns/)")


def _name_schema(schema: dict[str, Any]) -> None:
    schema.update(pattern=catalog.PROJECT_NAME_PATTERN.pattern, minLength=1, maxLength=_name_max())


def _region_schema(schema: dict[str, Any]) -> None:
    from .stacks.regions import REGIONS

    schema["enum"] = list(REGIONS)


# the JSON Schema states what the validators check, where JSON Schema can say it (the
# validators, not pydantic's constraints, check the values: their messages name the fix)
ProjectName = Annotated[str, AfterValidator(check_project_name),
                        Field(json_schema_extra=_name_schema)]
Region = Annotated[str, AfterValidator(check_region), Field(json_schema_extra=_region_schema)]
Environments = Annotated[list[str], AfterValidator(check_environments), Field(json_schema_extra={
    "items": {"type": "string", "pattern": catalog.ENVIRONMENT_PATTERN.pattern,
              "maxLength": catalog.ENVIRONMENT_MAX_LENGTH},
    "minItems": 1, "maxItems": catalog.ENVIRONMENT_MAX_COUNT, "uniqueItems": True})]
ColumnName = Annotated[str, AfterValidator(check_column)]
TrackingUri = Annotated[str, AfterValidator(check_tracking_uri), WithJsonSchema({
    "type": "string", "pattern": f"({_TRACKING_ARN.pattern})|({_TRACKING_URL.pattern})"})]


def check_tag_value(value: str) -> str:
    """An AWS tag value every service the stacks tag takes (the characters AWS allows
    everywhere, at most 128)."""
    if not _TAG_VALUE.match(value) or len(value) > _TAG_VALUE_MAX:
        raise ValueError(
            f"{value!r} is not a tag value AWS takes on every resource; use at most "
            f"{_TAG_VALUE_MAX} letters, digits, spaces and _ . : / = + @ -, e.g. ml-platform")
    return value


_TAG_VALUE = re.compile(r"^[\w .:/=+@-]+$")
_TAG_VALUE_MAX = 128
TagValue = Annotated[str, AfterValidator(check_tag_value), Field(json_schema_extra={
    "pattern": _TAG_VALUE.pattern, "minLength": 1, "maxLength": _TAG_VALUE_MAX})]


def _optional_by_task(schema: dict[str, Any]) -> None:
    # metric and metric_threshold default by task (ProjectSpec._task_defaults): a spec may
    # leave them out, though the model holds them always
    schema["required"] = [key for key in schema.get("required", [])
                          if key not in ("metric", "metric_threshold")]


def _installed_version() -> str:
    from . import __version__

    return __version__


class ProjectSpec(BaseModel):
    """An ML project as mlscaffold makes it: its ML task, platform choices and ownership."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_optional_by_task)

    version: int = Field(SPEC_VERSION, description="Spec format version.")
    mlscaffold_version: str = Field(
        default_factory=_installed_version, pattern=r"^\d+\.\d+\.\d+([.+-][0-9A-Za-z.+-]+)?$",
        description="The mlscaffold version that made the project (or last updated it); its "
                    "lifecycle commands and infra/ run on that version.")
    name: ProjectName = Field(description="Project name (kebab-case); the package is its "
                                          "snake_case form.")
    task: TaskName = Field(_DEFAULT["task"], description="The ML task.")
    label: ColumnName = Field(_DEFAULT["label"], description="The label column of the datasets.")
    # metric and threshold default by task (filled in before validation)
    metric: str = Field(description="Metric that selects and gates models.")
    metric_threshold: float = Field(
        description="Quality gate: a model must reach this metric to be promoted."
    )
    serving: ServingName = Field(_DEFAULT["serving"], description="Where models are served.")
    feature_store: FeatureStoreName = Field(_DEFAULT["feature_store"], description="Feature store.")
    ci: CiName = Field(_DEFAULT["ci"], description="CI/CD provider.")
    region: Region = Field(_DEFAULT["region"], description="AWS region code.")
    environments: Environments = Field(
        default_factory=lambda: list(_DEFAULT["environments"]),
        description="Deployment environments, one Pulumi stack each.",
    )
    owner: TagValue = Field(_DEFAULT["owner"], description="Owner tag on every resource.")
    cost_center: TagValue = Field(_DEFAULT["cost_center"],
                                  description="Cost-center tag on every resource.")
    train_on: Literal[TRAIN_ON] = Field(  # type: ignore[valid-type]
        "local", description="Where `mlscaffold train` runs when --on is not given: local, "
                             "sagemaker (a training job) or eks (a Job on the GPU pool).")
    policy_config: str | None = Field(
        None, pattern=r"^[\w./-]+\.(ya?ml|json)$",
        description="The organisation's policy file, relative to the project (check, CI).")
    features: FeatureDeclarations | None = Field(
        None, description="Feature types, record identifier and event time of the feature "
                          "group (feature_store: sagemaker only); what is not declared is "
                          "inferred from datasets/train.csv (`mlscaffold features schema`).")
    tracking_uri: TrackingUri | None = Field(
        None, description="The MLflow tracking server that train, evaluate and list use: a "
                          "SageMaker MLflow tracking server's ARN (the stack output "
                          "mlflow_tracking_server_arn) or an http(s) URL; unset: the project's "
                          "own store, mlruns/ (no server).")
    positive_class: str | None = Field(
        None, min_length=1,
        description="binary-classification: the label value f1, precision and recall score "
                    "(e.g. fraud); unset: the value that sorts last (1 of 0 and 1, yes of no "
                    "and yes).")

    @field_validator("positive_class", mode="before")
    @classmethod
    def _label_value_as_text(cls, value: Any) -> Any:
        # a YAML 1 or true is the label value pandas reads as 1 or True: compared as text
        return str(value) if isinstance(value, bool | int | float) else value

    @field_validator("positive_class")
    @classmethod
    def _binary_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        task = info.data.get("task")
        if value is not None and task != "binary-classification":
            raise ValueError(f"{value!r} names the positive class of a binary label, and the "
                             f"task is {task}; remove positive_class")
        return value

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            task = data.get("task", _DEFAULT["task"])
            info = catalog.TASKS.get(task) if isinstance(task, str) else None
            if info is not None:
                data = dict(data)
                if data.get("metric") in (None, ""):
                    data["metric"] = info.default_metric
                if data.get("metric_threshold") is None:  # None: _a_gate_of_its_own says why
                    data["metric_threshold"] = catalog.DEFAULT_THRESHOLDS.get(
                        data["metric"], None if data["metric"] in info.metrics
                        else info.default_threshold)
        return data

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != SPEC_VERSION:
            raise ValueError(f"spec version {version} is not supported; this mlscaffold reads "
                             f"version {SPEC_VERSION}")
        return version

    @model_validator(mode="after")
    def _names_fit_aws(self) -> ProjectSpec:
        from .stacks.constants import S3_RESERVED_PREFIXES, STACK_PREFIX_MAX

        for environment in self.environments:
            start = f"{self.name}-{environment}-"  # every bucket's name starts so
            reserved = next((p for p in S3_RESERVED_PREFIXES if start.startswith(p)), None)
            if reserved is None:
                continue
            if f"{self.name}-".startswith(reserved):
                raise ValueError(
                    f"project name {self.name!r} makes S3 bucket names starting with "
                    f"{reserved!r} ({start}artifacts-…), a prefix AWS reserves; choose "
                    f"another name, e.g. my-{self.name}")
            raise ValueError(
                f"project name {self.name!r} with environment {environment!r} makes S3 bucket "
                f"names starting with {reserved!r} ({start}artifacts-…), a prefix AWS "
                "reserves; choose another project or environment name")
        longest = max(self.environments, key=len)
        if len(f"{self.name}-{longest}") > STACK_PREFIX_MAX:
            room = STACK_PREFIX_MAX - len(longest) - 1
            raise ValueError(
                f"project name {self.name!r} with environment {longest!r} makes resource "
                f"names AWS rejects ('{self.name}-{longest}' is over {STACK_PREFIX_MAX} "
                f"characters); use a project name of at most {room} characters or a shorter "
                "environment name")
        return self

    @field_validator("metric_threshold", mode="before")
    @classmethod
    def _a_gate_of_its_own(cls, threshold: Any, info: ValidationInfo) -> Any:
        metric = info.data.get("metric")
        if threshold is None and metric is not None:
            raise ValueError(f"metric {metric} has no default quality gate, as its scale is the "
                             f"data's; give the {metric} a model must reach to be promoted")
        return threshold

    @field_validator("metric_threshold")
    @classmethod
    def _threshold_in_metric_range(cls, threshold: float, info: ValidationInfo) -> float:
        metric = info.data.get("metric")
        if not math.isfinite(threshold):  # nan passes no gate, inf (rmse) every one
            raise ValueError(f"metric_threshold {threshold} is not a number a gate can compare "
                             f"with; give {metric} a finite threshold")
        low, high = catalog.METRIC_RANGES.get(metric, (None, None))
        if (low is not None and threshold < low) or (high is not None and threshold > high):
            span = f"at least {low:g}" if high is None else (
                f"at most {high:g}" if low is None else f"between {low:g} and {high:g}")
            raise ValueError(f"metric_threshold {threshold:g} is outside what {metric} can be "
                             f"({span}), so the gate would never decide; choose a threshold "
                             "in that range")
        return threshold

    @field_validator("metric")
    @classmethod
    def _metric_fits_task(cls, metric: str, info: ValidationInfo) -> str:
        task = info.data.get("task")
        if task in catalog.TASKS and metric not in catalog.TASKS[task].metrics:
            known = catalog.TASKS[task].metrics
            raise ValueError(f"metric {metric!r} does not fit task {task}"
                             f"{did_you_mean(metric, known)}; choose one of: {', '.join(known)}")
        return metric

    @field_validator("train_on")
    @classmethod
    def _remote_training_needs_the_image(cls, train_on: str, info: ValidationInfo) -> str:
        # a remote run runs the project's image (Dockerfile), which serving: none leaves out
        if train_on != "local" and info.data.get("serving") == "none":
            raise ValueError(f"{train_on!r} runs the project's image, which serving: none "
                             "does not build; choose serving sagemaker or kserve, or "
                             "train_on: local")
        return train_on

    @field_validator("features")
    @classmethod
    def _features_need_the_store(cls, features: FeatureDeclarations | None,
                                 info: ValidationInfo) -> FeatureDeclarations | None:
        if features is None:
            return None
        store = info.data.get("feature_store")
        if store is not None and store != "sagemaker":
            raise ValueError(f"the section is read only with feature_store: sagemaker (this "
                             f"spec has {store}); set feature_store: sagemaker or remove it")
        label = info.data.get("label")
        for key in ("record_identifier", "event_time"):
            if label is not None and getattr(features, key) == label:
                raise ValueError(f"{key} is the label column {label!r}; the label is a "
                                 "feature, declare another column")
        return features

    @property
    def package(self) -> str:
        """The project's Python package name."""
        return catalog.package_name_for(self.name)

    def blueprint_answers(self) -> dict[str, Any]:
        """The answers the ml-project blueprint takes (its copier.yml questions)."""
        # `features` and `positive_class` describe the data and `tracking_uri` where runs are
        # logged, not the rendered files: no blueprint question. What the spec implies is
        # derived from these by mlscaffold.answers.blueprint_data.
        answers = self.model_dump(mode="json",
                                  exclude={"version", "name", "features", "tracking_uri",
                                           "positive_class"})
        from .packaging import DISTRIBUTION, runtime_requirements

        return {"project_name": self.name, "package_name": self.package,
                "mlscaffold_distribution": DISTRIBUTION,
                "runtime_requirements": list(runtime_requirements()),
                **answers, "policy_config": self.policy_config or ""}

    def to_yaml(self) -> str:
        """The spec as the project's ``mlscaffold.yaml``."""
        import yaml

        header = (
            "# The project's spec, read by the project's code, its infra/ and mlscaffold.\n"
            "# JSON Schema: `mlscaffold schema`.\n"
        )
        data = self.model_dump(mode="json", exclude_none=True)
        if data.get("train_on") == "local":  # the default, as the blueprint writes it
            del data["train_on"]
        return header + yaml.safe_dump(data, sort_keys=False)


def spec_error_from(error: ValidationError, *, source: str | None = None) -> SpecError:
    """Turn pydantic's first error into a one-line :class:`SpecError` naming the field.

    The field is the key's path up to any list index: ``environments``, or
    ``features.types.age`` inside a section.
    """
    first = error.errors(include_url=False)[0]
    keys: list[str] = []
    for part in first["loc"]:
        if isinstance(part, int):
            break
        keys.append(str(part))
    field = ".".join(keys) or "spec"
    message = value_message(first)
    if first["type"] == "extra_forbidden":
        message = unknown_key_message(ProjectSpec, tuple(keys), shown=field)
    elif first["type"] == "model_type" and (section := model_at(ProjectSpec, keys)) is not None:
        message = f"must be a mapping with the keys {', '.join(section.model_fields)}"
    elif first["type"] == "dict_type":
        message = "must be a mapping of names to values"
    elif first["type"] == "missing":
        message = "this key is required; add it"
    return SpecError(field, first.get("input"), message, source=source)


def validate_spec(values: dict[str, Any]) -> ProjectSpec:
    """Validate raw values into a spec, raising :class:`SpecError` on the first problem."""
    try:
        return ProjectSpec.model_validate(values)
    except ValidationError as error:
        raise spec_error_from(error) from None


def load_spec(path: Path) -> ProjectSpec:
    """Read and validate an ``mlscaffold.yaml``."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError("spec", str(path), f"{path} does not exist",
                        hint="run the command inside a project made by `mlscaffold new`") from None
    except yaml.YAMLError as error:
        raise SpecError("spec", str(path),
                        f"{path} is not valid YAML: {describe_yaml_error(error)}") from None
    if not isinstance(raw, dict):
        raise SpecError("spec", str(path), f"{path} must hold a mapping of spec keys")
    try:
        return ProjectSpec.model_validate(raw)
    except ValidationError as error:
        raise spec_error_from(error, source=str(path)) from None


ANSWERS_FILENAME = ".copier-answers.yml"


def answers_drift(root: Path, spec: ProjectSpec) -> str | None:
    """What the project's Copier answers say differently from its spec, or None.

    The spec is the one source: `new` and `update` derive the answers from it, so the two differ
    either because the spec changed since the last render (`mlscaffold update` re-renders) or
    because an answer was changed through Copier (which the spec, the stacks and the lifecycle
    never see).
    """
    import yaml

    path = Path(root) / ANSWERS_FILENAME
    try:
        recorded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # not made by Copier, or its answers file is gone: nothing to compare
    if not isinstance(recorded, dict):
        return None
    derived = spec.blueprint_answers()
    for key, value in recorded.items():
        if key.startswith("_") or key not in derived or derived[key] == value:
            continue
        spec_key = "name" if key == "project_name" else key
        return (f"{ANSWERS_FILENAME} (the last render) has {key}: {value!r} but {SPEC_FILENAME} "
                f"has {spec_key}: {derived[key]!r}; the spec is the one source: if you changed "
                f"{SPEC_FILENAME}, run `mlscaffold update` to re-render what depends on it; if "
                f"the answer was changed through Copier, set it in {SPEC_FILENAME} instead")
    return None


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``mlscaffold.yaml``."""
    schema = ProjectSpec.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "mlscaffold project spec", **schema}
