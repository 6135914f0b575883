"""The SageMaker Model Registry as a deployed stack's registry of record: ``mlscaffold promote
EXP --to STAGE --stack ENV``, ``mlscaffold rollback --stack ENV``, ``mlscaffold model served``
and ``mlscaffold status``.

Every stack has a model package group (stack output ``model_package_group``, made by
:mod:`mlscaffold.stacks.registry`). A promotion with ``--stack`` registers the experiment's
model there as a model package version that carries its metrics, its lineage (git commit, the
data's SHA-256, the experiment, the serving image's digest) and its content-addressed artifact
key (:mod:`mlscaffold.stacks.model_keys`), uploaded once to the stack's artifact bucket.

The approval status follows the stage (:data:`STAGE_STATUS`): a production promotion registers
an ``Approved`` version; a staging one a ``PendingManualApproval`` candidate, which a production
promotion of the same model, or a reviewer in SageMaker Studio, approves. What a stack serves
for a stage is read from the group, never from a file (:meth:`ModelRegistry.served`):

- production: the newest ``Approved`` version;
- staging: the newest version that is not ``Rejected``.

``rollback`` rejects the served version, after approving again the one before it, which is
then served; ``make deploy`` deploys what :func:`served_version` names. The project's own
registry (``models/registry.json``, :mod:`mlscaffold.lifecycle.registry`) is unchanged by all
this except through ``promote``: the local promotion happens first, and is undone when the
registration fails, so that a failed command leaves neither a half-registered version nor a
local one.

boto3 is imported only when a client is made (:func:`mlscaffold.aws.aws_client`).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .aws import aws_client, aws_errors, error_code
from .errors import MlscaffoldError, UsageError
from .outputs import read_stack_outputs, require_output

if TYPE_CHECKING:
    from .lifecycle.config import ProjectConfig

__all__ = [
    "APPROVED",
    "PENDING",
    "REJECTED",
    "STAGE_STATUS",
    "EndpointVariant",
    "ModelRegistry",
    "RegisteredVersion",
    "Registration",
    "RegistryTarget",
    "StackStatus",
    "promote_to_stack",
    "registry_target",
    "rollback_stack",
    "served_version",
    "stack_status",
]

APPROVED = "Approved"
PENDING = "PendingManualApproval"
REJECTED = "Rejected"
# the approval status a promotion to each stage registers (or leaves) a version with
STAGE_STATUS = {"production": APPROVED, "staging": PENDING}

# CustomerMetadataProperties of a version mlscaffold registers (API reference, ModelPackage:
# at most 50 entries; keys up to 128 and values up to 256 characters of letters, digits,
# spaces and _.:/=+-@)
_STAGE = "mlscaffold:stage"
_EXPERIMENT = "mlscaffold:experiment"
_MODEL_KEY = "mlscaffold:model-key"
_METRIC = "mlscaffold:metric"
_GIT = "mlscaffold:git-commit"
_IMAGE_TAG = "mlscaffold:image-tag"
_IMAGE_DIGEST = "mlscaffold:image-digest"
_DATA = "mlscaffold:data-sha256:"  # + split
_VALIDATION = "metric:validation:"  # + metric name
_TEST = "metric:test:"
_MAX_METADATA = 50
_MAX_VALUE = 256
_UNSAFE = re.compile(r"[^\w\s.:/=+\-@]")
# the Task of a model package (CreateModelPackage); every other task is a classification
_TASKS = {"regression": "REGRESSION"}

_READ = ("sagemaker:DescribeModelPackageGroup, ListModelPackages and DescribeModelPackage on "
         "the model package group")
_WRITE = (f"{_READ}; sagemaker:CreateModelPackage, UpdateModelPackage and DeleteModelPackage; "
          "ecr:DescribeImages on the serving image repository; s3:GetObject, s3:ListBucket, "
          "s3:PutObject and s3:GetEncryptionConfiguration on the artifact bucket, "
          "kms:GenerateDataKey on its key")
_STATUS = (f"{_READ}; sagemaker:DescribeEndpoint, DescribeEndpointConfig and DescribeModel "
           "on the stack's endpoint")


# ---------------------------------------------------------------------------- the stack


@dataclass(frozen=True)
class RegistryTarget:
    """A deployed stack's model registry: its group, artifact bucket and image repository,
    from the stack's outputs, in the stack's region."""

    stack: str
    region: str
    group: str
    bucket: str
    repository_url: str | None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    stage: str = "staging"
    """The stage the stack deploys: production for a production environment (the one rule of
    :func:`mlscaffold.stacks.config.environment_profiles`, as CI's deploy order), else
    staging."""
    serving: str = "none"
    """The stack's serving platform (``serving.platform`` of its config): sagemaker, kserve or
    none."""
    canary_percent: int | None = None
    """KServe Serverless canary: the canaryTrafficPercent the stack gives the version it
    deploys (None: no canary)."""


def registry_target(project: Path, stack: str, outputs_source: str | None = None
                    ) -> RegistryTarget:
    """The registry of `project`'s `stack`: its outputs (`outputs_source`: a JSON file, ``-``,
    or the Pulumi CLI) in its region (``aws:region`` of ``infra/Pulumi.<stack>.yaml``)."""
    from .canary import deployed_urls
    from .infra import find_project, stack_config, stack_platform_config
    from .spec import SPEC_FILENAME, load_spec
    from .stacks.model_keys import deployed_version

    root = find_project(project)
    spec = load_spec(root / SPEC_FILENAME)
    region = stack_config(root, spec, stack).get("aws:region", spec.region)
    platform = stack_platform_config(root, spec, stack)
    outputs = read_stack_outputs(root, stack, outputs_source)
    group = str(require_output(outputs, "model_package_group", stack,
                               "is its SageMaker Model Registry (a model package group)"))
    bucket = str(require_output(outputs, "artifact_bucket", stack, "holds the model versions"))
    repository = outputs.get("repository_url")
    canary = None
    urls = deployed_urls(outputs) if platform.serving.kserve_canary else None
    if urls is not None:
        canary = platform.serving.canary_traffic_percent(*deployed_version(*urls))
    return RegistryTarget(stack, region, group, bucket, str(repository) if repository else None,
                          outputs, "production" if platform.production else "staging",
                          platform.serving.platform, canary)


# ---------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class RegisteredVersion:
    """One model package version of a group, as DescribeModelPackage returns it."""

    arn: str
    version: int
    status: str
    created: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    approval_description: str | None = None
    image: str | None = None
    model_url: str | None = None

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> RegisteredVersion:
        containers = (described.get("InferenceSpecification") or {}).get("Containers") or [{}]
        created = described.get("CreationTime")
        return cls(
            arn=str(described["ModelPackageArn"]),
            version=int(described.get("ModelPackageVersion") or 0),
            status=str(described.get("ModelApprovalStatus") or PENDING),
            created=created.isoformat() if hasattr(created, "isoformat") else str(created or ""),
            metadata=dict(described.get("CustomerMetadataProperties") or {}),
            approval_description=described.get("ApprovalDescription"),
            image=containers[0].get("Image"), model_url=containers[0].get("ModelDataUrl"))

    @property
    def stage(self) -> str | None:
        """The stage it was registered for (None: registered outside mlscaffold)."""
        return self.metadata.get(_STAGE)

    @property
    def experiment(self) -> str | None:
        return self.metadata.get(_EXPERIMENT)

    @property
    def model_key(self) -> str | None:
        """The artifact's content-addressed key in the stack's bucket, if it has one."""
        from .stacks.model_keys import MODEL_KEY_PATTERN

        key = self.metadata.get(_MODEL_KEY)
        if key is None and self.model_url and self.model_url.startswith("s3://"):
            key = self.model_url[len("s3://"):].partition("/")[2]
        return key if key and MODEL_KEY_PATTERN.match(key) else None

    @property
    def image_tag(self) -> str | None:
        return self.metadata.get(_IMAGE_TAG)

    @property
    def image_digest(self) -> str | None:
        return self.metadata.get(_IMAGE_DIGEST)

    @property
    def git_commit(self) -> str | None:
        return self.metadata.get(_GIT)

    @property
    def metric(self) -> str | None:
        """The metric the project ranks by (the one the production gate compares)."""
        return self.metadata.get(_METRIC)

    @property
    def metrics(self) -> dict[str, float]:
        """Validation metrics."""
        return _numbers(self.metadata, _VALIDATION)

    @property
    def test_metrics(self) -> dict[str, float]:
        return _numbers(self.metadata, _TEST)

    @property
    def data_sha256(self) -> dict[str, str]:
        return {key[len(_DATA):]: value for key, value in self.metadata.items()
                if key.startswith(_DATA)}

    def summary(self) -> str:
        """``v4 Approved (exp-007, roc_auc=0.9100)``."""
        from .lifecycle.text import number

        details = [self.experiment or "registered outside mlscaffold"]
        if self.metric and self.metric in self.metrics:
            details.append(f"{self.metric}={number(self.metrics[self.metric])}")
        return f"v{self.version} {self.status} ({', '.join(details)})"

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "status": self.status, "arn": self.arn,
                "created": self.created, "stage": self.stage, "experiment": self.experiment,
                "model_key": self.model_key, "model_url": self.model_url, "image": self.image,
                "image_tag": self.image_tag, "image_digest": self.image_digest,
                "git_commit": self.git_commit, "data_sha256": self.data_sha256,
                "metric": self.metric, "metrics": self.metrics,
                "test_metrics": self.test_metrics,
                "approval_description": self.approval_description}


def _numbers(metadata: Mapping[str, str], prefix: str) -> dict[str, float]:
    values = {}
    for key, value in metadata.items():
        if key.startswith(prefix):
            try:
                values[key[len(prefix):]] = float(value)
            except ValueError:
                continue
    return values


def _serves(stage: str, status: str) -> bool:
    """Whether a version of `status` may be what a stack serves for `stage`."""
    return status == APPROVED if stage == "production" else status != REJECTED


class ModelRegistry:
    """A stack's model package group through a SageMaker client: its versions, newest first,
    described on demand."""

    def __init__(self, target: RegistryTarget, sagemaker: Any) -> None:
        self.target = target
        self.client = sagemaker
        self._summaries: list[dict[str, Any]] | None = None
        self._described: dict[str, RegisteredVersion] = {}

    def check(self) -> None:
        """The group exists (and the credentials may read it); a usage error otherwise."""
        from botocore.exceptions import ClientError

        try:
            self.client.describe_model_package_group(ModelPackageGroupName=self.target.group)
        except ClientError as error:
            message = str(error.response.get("Error", {}).get("Message", ""))
            if error_code(error) == "ValidationException" and "does not exist" in message:
                raise UsageError(
                    f"stack {self.target.stack} has no model package group "
                    f"{self.target.group} in {self.target.region}",
                    hint=f"deploy the stack first (make deploy STACK={self.target.stack})"
                ) from None
            raise

    def summaries(self) -> list[dict[str, Any]]:
        """Every version of the group (ListModelPackages), newest first."""
        if self._summaries is None:
            pages = self.client.get_paginator("list_model_packages").paginate(
                ModelPackageGroupName=self.target.group, ModelPackageType="Versioned")
            items = [dict(item) for page in pages for item in page.get(
                "ModelPackageSummaryList", [])]
            self._summaries = sorted(items, key=lambda item: int(
                item.get("ModelPackageVersion") or 0), reverse=True)
        return self._summaries

    def describe(self, arn: str) -> RegisteredVersion:
        if arn not in self._described:
            self._described[arn] = RegisteredVersion.from_description(
                self.client.describe_model_package(ModelPackageName=arn))
        return self._described[arn]

    def forget(self) -> None:
        """Read the group again on the next call (after a change)."""
        self._summaries = None
        self._described.clear()

    def versions(self, limit: int | None = None) -> list[RegisteredVersion]:
        return [self.describe(str(item["ModelPackageArn"]))
                for item in self.summaries()[:limit]]

    def _eligible(self, stage: str) -> Iterator[dict[str, Any]]:
        return (item for item in self.summaries()
                if _serves(stage, str(item.get("ModelApprovalStatus"))))

    def served(self, stage: str) -> RegisteredVersion | None:
        """What the stack serves for `stage`: production the newest Approved version, staging
        the newest one not Rejected."""
        item = next(self._eligible(stage), None)
        return None if item is None else self.describe(str(item["ModelPackageArn"]))

    def previous(self, stage: str, current: RegisteredVersion) -> RegisteredVersion | None:
        """The version `stage` served before `current`: the next older one eligible."""
        item = next((item for item in self._eligible(stage)
                     if int(item.get("ModelPackageVersion") or 0) < current.version), None)
        return None if item is None else self.describe(str(item["ModelPackageArn"]))

    def newest_with_key(self, key: str, status: str) -> RegisteredVersion | None:
        """The newest version of `status` whose artifact is `key`."""
        for item in self.summaries():
            if item.get("ModelApprovalStatus") == status:
                version = self.describe(str(item["ModelPackageArn"]))
                if version.model_key == key:
                    return version
        return None


# ---------------------------------------------------------------------------- promote


@dataclass(frozen=True)
class Registration:
    """What ``promote --stack`` did: in the stack's registry (``action``) and locally
    (``local``: the registry entry promoted now, None when the stage's current local version
    already was that experiment)."""

    version: RegisteredVersion
    action: Literal["registered", "approved", "unchanged"]
    stage: str
    target: RegistryTarget
    local: dict | None
    uploaded: bool
    notes: tuple[str, ...] = ()


def _clients(target: RegistryTarget, clients: Mapping[str, Any] | None) -> dict[str, Any]:
    given = dict(clients or {})
    return {name: given.get(name) or aws_client(name, target.region)
            for name in ("sagemaker", "s3", "ecr")}


def _image_digest(ecr: Any, target: RegistryTarget, tag: str) -> tuple[str, str]:
    """(image URI pinned by digest, digest) of the serving image `tag` in the stack's
    repository; a usage error when it was not pushed."""
    from botocore.exceptions import ClientError

    if not target.repository_url:
        raise UsageError(f"stack {target.stack} has no output 'repository_url', which holds "
                         "the serving image",
                         hint="deploy the stack with this mlscaffold version first "
                              f"(make deploy STACK={target.stack})")
    registry, _, repository = target.repository_url.partition("/")
    try:
        images = ecr.describe_images(repositoryName=repository,
                                     imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as error:
        if error_code(error) not in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise
        images = []
    if not images:
        raise UsageError(f"the serving image {target.repository_url}:{tag} is not pushed",
                         hint=f"push it first: make push STACK={target.stack} IMAGE_TAG={tag}")
    digest = str(images[0]["imageDigest"])
    return f"{registry}/{repository}@{digest}", digest


def _git_commit(root: Path) -> str | None:
    """The checkout's commit (``git rev-parse HEAD``), else CI's (GITHUB_SHA, CI_COMMIT_SHA)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=30, check=False)
        if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", done.stdout.strip()):
            return done.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or None


def _value(value: object) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return _UNSAFE.sub("_", text)[:_MAX_VALUE]


def _metadata(entries: Mapping[str, object], metrics: Mapping[str, object],
              test_metrics: Mapping[str, object]) -> dict[str, str]:
    """The version's metadata properties: `entries`, then as many metrics as fit."""
    metadata = {key: _value(value) for key, value in entries.items()
                if value not in (None, "")}
    for prefix, values in ((_VALIDATION, metrics), (_TEST, test_metrics)):
        for name, value in values.items():
            if len(metadata) >= _MAX_METADATA:
                return metadata
            if isinstance(value, int | float):
                metadata[f"{prefix}{name}"[:128]] = _value(float(value))
    return metadata


def _experiment_files(config: ProjectConfig, experiment: str) -> list[tuple[str, Path]]:
    """The files a promotion copies from the experiment (what the promoted folder holds)."""
    from .lifecycle.errors import NotFoundError
    from .lifecycle.registry import ARTIFACTS

    folder = config.layout.experiments / experiment
    missing = [name for name in ARTIFACTS if not (folder / name).is_file()]
    if missing:
        raise NotFoundError(f"{folder} lacks {', '.join(missing)}; was the experiment "
                            "completed?")
    return [(name, folder / name) for name in ARTIFACTS]


@contextmanager
def _undone_on_failure(undo: list[Callable[[], str | None]]) -> Iterator[None]:
    """Run `undo` (newest first) when the block fails; an undo that fails too is added to the
    error with what to do by hand."""
    try:
        yield
    except BaseException as error:
        problems = [problem for step in reversed(undo) if (problem := _attempt(step))]
        if problems and isinstance(error, MlscaffoldError):
            raise MlscaffoldError(f"{error.message}; and {'; '.join(problems)}",
                                  hint=error.hint) from None
        raise


def _attempt(step: Callable[[], str | None]) -> str | None:
    try:
        return step()
    except Exception as error:  # the original error matters most; say what is left over
        return f"cleaning up failed too ({' '.join(str(error).split())})"


def promote_to_stack(config: ProjectConfig, experiment: str, stage: str, stack: str, *,
                     outputs_source: str | None = None, image_tag: str | None = None,
                     force: bool = False, clients: Mapping[str, Any] | None = None
                     ) -> Registration:
    """Promote `experiment` to `stage` locally and register it in `stack`'s model package
    group with the stage's approval status (:data:`STAGE_STATUS`).

    In order: the group is read (credentials, a deployed stack) and, for production, the
    candidate is compared with the approved version the stack serves (GateError unless
    `force`, as the local gate); the experiment is promoted locally (unless it is already the
    stage's current version); its model is uploaded once to the artifact bucket; and a
    version is created (Pending) and approved for production, or a pending version of the
    same model is approved. When a step after the local promotion fails, what this call made
    is undone: the created version is deleted and the local promotion withdrawn.
    `clients` may give the ``sagemaker``, ``s3`` and ``ecr`` clients (tests).
    """
    from .lifecycle import registry as local
    from .lifecycle.experiments import get_experiment
    from .lifecycle.files import read_json
    from .lifecycle.metrics import get_metric
    from .model import ModelVersion, files_digest, model_digest, publish_version
    from .stacks.model_keys import model_key

    if stage not in STAGE_STATUS:
        from .suggest import did_you_mean

        raise UsageError(f"unknown stage {stage!r}{did_you_mean(stage, STAGE_STATUS)}",
                         hint=f"use one of {', '.join(STAGE_STATUS)}")
    layout = config.layout
    candidate = get_experiment(layout, experiment)
    metric = get_metric(config.metric, config.task)
    key = model_key(files_digest(_experiment_files(config, experiment)))
    target = registry_target(config.root, stack, outputs_source)
    aws = _clients(target, clients)
    registry = ModelRegistry(target, aws["sagemaker"])
    notes: list[str] = []
    status = STAGE_STATUS[stage]

    with aws_errors(f"read model package group {target.group}", _READ):
        registry.check()
        served = registry.served(stage)
        image = _image_digest(aws["ecr"], target, image_tag) if image_tag else None
        # a staging candidate of this model (and image) newer than the approved version:
        # production approves it rather than registering it again
        pending = registry.newest_with_key(key, PENDING) if stage == "production" else None
    if pending is not None and ((image is not None and pending.image_digest != image[1])
                                or (served is not None and pending.version < served.version)):
        pending = None
    # the stage's version is this model already (and this image, when one is given)
    unchanged = served is not None and served.model_key == key and (
        image is None or served.image_digest == image[1])
    if stage == "production" and served is not None and served.model_key != key:
        from .lifecycle.text import number

        value, approved = candidate["validation"].get(metric.name), served.metrics.get(metric.name)
        if approved is None:
            notes.append(f"v{served.version} has no {metric.name} (registered outside "
                         "mlscaffold): the candidate was not compared with it")
        elif metric.is_better(approved, value):
            reason = (f"{candidate['id']} {metric.name}={number(value)} is worse than "
                      f"v{served.version} ({served.experiment or 'registered outside mlscaffold'})"
                      f", the approved version of stack {stack}, {metric.name}="
                      f"{number(approved)}")
            if not force:
                from .lifecycle.errors import GateError

                raise GateError(f"refusing to register: {reason} (use --force to override)")
            notes.append(f"registered despite: {reason}")

    entry, created = local.promote(layout, candidate, stage, metric, config.metric_threshold,
                                   force=force)  # the stage's current experiment: unchanged
    promoted = entry if created else None
    undo: list[Callable[[], str | None]] = []
    if created:
        undo.append(lambda: local.withdraw(layout, stage, entry["version"]))

    with _undone_on_failure(undo), aws_errors(
            f"register {candidate['id']} in model package group {target.group}", _WRITE):
        folder = config.root / entry["path"]
        version = ModelVersion(stage, int(entry["version"]), folder, model_digest(folder))
        if version.key != key:
            raise MlscaffoldError(f"{folder} does not hold the files of {candidate['id']}",
                                  hint=f"promote it again: mlscaffold promote {experiment} "
                                       f"--to {stage}")
        if unchanged:
            assert served is not None
            return Registration(served, "unchanged", stage, target, promoted, False,
                                tuple(notes))
        uploaded = publish_version(version, target.bucket, aws["s3"]).uploaded
        approval = (f"approved by `mlscaffold promote {candidate['id']} --to {stage}` "
                    f"({metric.name}={_value(candidate['validation'].get(metric.name))})")
        if pending is not None:
            aws["sagemaker"].update_model_package(
                ModelPackageArn=pending.arn, ModelApprovalStatus=APPROVED,
                ApprovalDescription=approval)
            registry.forget()
            return Registration(registry.describe(pending.arn), "approved", stage, target,
                                promoted, uploaded, tuple(notes))
        record = read_json(layout.experiments / candidate["id"] / "experiment.json") or {}
        entries = {
            _STAGE: stage, _EXPERIMENT: candidate["id"], _MODEL_KEY: key, _METRIC: metric.name,
            _GIT: _git_commit(config.root),
            _IMAGE_TAG: image_tag, _IMAGE_DIGEST: image[1] if image else None,
            **{f"{_DATA}{split}": item.get("sha256")
               for split, item in sorted((record.get("data") or {}).items())
               if isinstance(item, dict)}}
        request: dict[str, Any] = {
            "ModelPackageGroupName": target.group,
            "ModelPackageDescription": _value(
                f"{candidate['id']} of {config.name}, promoted to {stage}")[:1024],
            "ModelApprovalStatus": PENDING,
            "CustomerMetadataProperties": _metadata(entries, candidate["validation"],
                                                    candidate.get("test") or {}),
            "Task": _TASKS.get(config.task, "CLASSIFICATION"),
            "ClientToken": uuid.uuid4().hex,
        }
        if image is not None:
            request["InferenceSpecification"] = {
                "Containers": [{"Image": image[0],
                                "ModelDataUrl": f"s3://{target.bucket}/{key}"}],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["application/json"]}
        arn = str(aws["sagemaker"].create_model_package(**request)["ModelPackageArn"])
        undo.append(lambda: _delete(aws["sagemaker"], arn))
        if status == APPROVED:
            aws["sagemaker"].update_model_package(
                ModelPackageArn=arn, ModelApprovalStatus=APPROVED, ApprovalDescription=approval)
        registry.forget()
        registered = registry.describe(arn)
    return Registration(registered, "registered", stage, target, promoted, uploaded,
                        tuple(notes))


def _delete(sagemaker: Any, arn: str) -> str | None:
    """Delete the version `arn` made; None when done, else what is left and how to delete it."""
    try:
        sagemaker.delete_model_package(ModelPackageName=arn)
    except Exception as error:  # botocore's errors; the registration's error is reported
        code = error_code(error) or type(error).__name__
        return (f"deleting the half-registered version failed ({code}): delete it with `aws "
                f"sagemaker delete-model-package --model-package-name {arn}`")
    return None


# ---------------------------------------------------------------------------- rollback


def rollback_stack(project: Path, stack: str, stage: str, *, outputs_source: str | None = None,
                   sagemaker: Any = None) -> tuple[RegisteredVersion, RegisteredVersion]:
    """Reject the version `stack` serves for `stage` and serve the one before it again (for
    production it is approved again first, so that the stack always has an approved
    version); returns (rejected, restored). Deploy afterwards to move serving to it."""
    target = registry_target(project, stack, outputs_source)
    registry = ModelRegistry(target, sagemaker or aws_client("sagemaker", target.region))
    with aws_errors(f"roll back {stage} in model package group {target.group}",
                    f"{_READ}; sagemaker:UpdateModelPackage"):
        registry.check()
        current = registry.served(stage)
        if current is None:
            raise UsageError(f"nothing to roll back: model package group {target.group} has no "
                             f"{stage} version",
                             hint=f"register one: mlscaffold promote exp-NNN --to {stage} "
                                  f"--stack {stack}")
        previous = registry.previous(stage, current)
        if previous is None:
            raise UsageError(f"nothing to roll back to: v{current.version} is the only {stage} "
                             f"version of {target.group}",
                             hint=f"register another: mlscaffold promote exp-NNN --to {stage} "
                                  f"--stack {stack}")
        if stage == "production":
            registry.client.update_model_package(
                ModelPackageArn=previous.arn, ModelApprovalStatus=APPROVED,
                ApprovalDescription=f"approved again by `mlscaffold rollback` from "
                                    f"v{current.version}")
        registry.client.update_model_package(
            ModelPackageArn=current.arn, ModelApprovalStatus=REJECTED,
            ApprovalDescription=f"rolled back by `mlscaffold rollback`: v{previous.version} "
                                f"serves {stage} again")
        registry.forget()
        return registry.describe(current.arn), registry.describe(previous.arn)


# ---------------------------------------------------------------------------- served, status


def served_version(project: Path, stack: str, stage: str, *, outputs_source: str | None = None,
                   sagemaker: Any = None) -> RegisteredVersion:
    """The version `stack` serves for `stage` (what ``make deploy`` deploys); a usage error
    naming the command that registers one when there is none."""
    target = registry_target(project, stack, outputs_source)
    registry = ModelRegistry(target, sagemaker or aws_client("sagemaker", target.region))
    with aws_errors(f"read model package group {target.group}", _READ):
        registry.check()
        version = registry.served(stage)
    register = (f"mlscaffold promote exp-NNN --to {stage} --stack {stack}, or make deploy "
                f"STACK={stack} STAGE={stage} EXP=exp-NNN")
    if version is None:
        wanted = "approved" if stage == "production" else "registered (and not rejected)"
        raise UsageError(f"model package group {target.group} of stack {stack} has no {wanted} "
                         f"{stage} version to deploy", hint=f"register one: {register}")
    expected = f"s3://{target.bucket}/{version.model_key}"
    if version.model_key is None or (version.model_url and version.model_url != expected):
        raise UsageError(f"v{version.version} of {target.group} holds "
                         f"{version.model_url or 'no model artifact'}, not a model version of "
                         f"the artifact bucket {target.bucket} (models/<sha256>/model.tar.gz)",
                         hint=f"register the model with mlscaffold: {register}")
    return version


def deploy_shell(version: RegisteredVersion) -> str:
    """``model_key=``, ``image_tag=`` and ``version=`` lines for a POSIX shell's eval."""
    return (f"model_key={shlex.quote(version.model_key or '')}\n"
            f"image_tag={shlex.quote(version.image_tag or '')}\n"
            f"version={version.version}\n")


@dataclass(frozen=True)
class EndpointVariant:
    """A production variant of the stack's SageMaker endpoint and the model it serves."""

    name: str
    weight: float | None
    model_url: str | None
    version: int | None  # the registered version with that artifact, if any


@dataclass(frozen=True)
class StackStatus:
    """What ``mlscaffold status`` shows: the served versions, the newest versions, and what
    serving runs."""

    target: RegistryTarget
    served: Mapping[str, RegisteredVersion | None]
    versions: tuple[RegisteredVersion, ...]
    serving: str  # sagemaker, kserve or none (what the stack's outputs show)
    endpoint: str | None = None
    endpoint_status: str | None = None
    variants: tuple[EndpointVariant, ...] = ()
    deployed_key: str | None = None  # the stack output model_key (KServe, SageMaker)

    def in_sync(self, stage: str) -> bool | None:
        """Whether serving runs the version served for `stage` (None: nothing to compare)."""
        version = self.served.get(stage)
        if version is None or self.serving == "none":
            return None
        keys = ({_key_of(variant.model_url) for variant in self.variants} if self.variants
                else {self.deployed_key})
        return version.model_key in keys

    def as_dict(self) -> dict[str, Any]:
        return {"stack": self.target.stack, "region": self.target.region,
                "model_package_group": self.target.group,
                "served": {stage: v.as_dict() if v else None for stage, v in self.served.items()},
                "versions": [v.as_dict() for v in self.versions],
                "serving": self.serving, "endpoint": self.endpoint,
                "endpoint_status": self.endpoint_status,
                "variants": [{"name": v.name, "weight": v.weight, "model_url": v.model_url,
                              "version": v.version} for v in self.variants],
                "deployed_model_key": self.deployed_key,
                "canary_percent": self.target.canary_percent}


def _key_of(url: str | None) -> str | None:
    return url[len("s3://"):].partition("/")[2] if url and url.startswith("s3://") else None


def stack_status(project: Path, stack: str, *, outputs_source: str | None = None,
                 limit: int = 10, sagemaker: Any = None) -> StackStatus:
    """The registry of `stack` and what its serving runs: the version served for each stage,
    the `limit` newest versions, and (SageMaker) the endpoint's variants and their models, or
    (KServe) the model key the stack deployed."""
    target = registry_target(project, stack, outputs_source)
    client = sagemaker or aws_client("sagemaker", target.region)
    registry = ModelRegistry(target, client)
    outputs = target.outputs
    endpoint = outputs.get("endpoint") if isinstance(outputs.get("endpoint"), dict) else None
    serving = target.serving
    with aws_errors(f"read the registry and serving of stack {stack}", _STATUS):
        registry.check()
        served = {stage: registry.served(stage) for stage in STAGE_STATUS}
        versions = tuple(registry.versions(limit))
        by_key = {v.model_key: v.version for v in versions if v.model_key}
        variants: list[EndpointVariant] = []
        status = None
        if endpoint is not None:
            from .endpoint import _describe

            described = _describe(client, str(endpoint["name"]))
            status = None if described is None else str(described.get("EndpointStatus"))
            if described is not None:
                weights = {str(v.get("VariantName")): v.get("CurrentWeight")
                           for v in described.get("ProductionVariants") or []}
                config = client.describe_endpoint_config(
                    EndpointConfigName=described["EndpointConfigName"])
                for variant in config.get("ProductionVariants") or []:
                    model = client.describe_model(ModelName=variant["ModelName"])
                    url = (model.get("PrimaryContainer") or {}).get("ModelDataUrl")
                    name = str(variant["VariantName"])
                    weight = weights.get(name)
                    if weight is None:
                        weight = variant.get("InitialVariantWeight")
                    variants.append(EndpointVariant(
                        name, None if weight is None else float(weight), url,
                        by_key.get(_key_of(url))))
    return StackStatus(target, served, versions, serving,
                       str(endpoint["name"]) if endpoint else None, status, tuple(variants),
                       str(outputs["model_key"]) if outputs.get("model_key") else None)
