"""SageMaker Model Monitor baseline: the statistics and constraints the endpoint's data-quality
schedule compares captured requests with.

SageMaker computes the baseline itself, with the same analyzer image the schedule runs, so the
two always agree on the format:

1. the baseline data set is the training data with the label moved to the first column (the
   analyzer reads the endpoint's output as the first column of captured data) and the feature
   columns in training order, under a header row;
2. it is uploaded, KMS-encrypted, under ``<data prefix>/<job>/`` of the artifact bucket;
3. a network-isolated processing job in the platform's VPC writes ``statistics.json`` and
   ``constraints.json`` under ``<runs prefix>/<job>/``. The job is the SageMaker Python SDK's
   (sagemaker-core's ``DefaultModelMonitor.suggest_baseline``, started without waiting), with
   the stack's role, analyzer image, KMS key (volume and output), subnets and security groups,
   network isolation and a maximum runtime; the SDK is imported by ``baseline`` only (it adds
   some 3.4 s to the command's start, measured with ``python -X importtime``);
4. when the job has completed and both files are there, they are copied to the baseline prefix
   the schedule reads. A failed or stopped job leaves the current baseline as it was.

The bucket, role, image, key, subnets and prefixes come from the stack output
``drift_baseline`` (``pulumi stack output --json``), which the platform's Monitoring component
exports; nothing about the account is written in this project.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from .config import ProjectConfig
from .data import read_csv, require_label
from .errors import NotFoundError, ProjectError

STACK_OUTPUT = "drift_baseline"
# where the analyzer container reads its input and writes its results (fixed by the image)
CONTAINER_INPUT = "/opt/ml/processing/input/baseline_dataset_input"
CONTAINER_OUTPUT = "/opt/ml/processing/output"
RESULT_FILES = ("statistics.json", "constraints.json")
DATASET_FILE = "baseline.csv"
MAX_RUNTIME_SECONDS = 1800
PROVISIONING_SECONDS = 900  # allowance for instance start-up beyond the job's own runtime
SHA_METADATA = "dataset-sha256"  # metadata key on the published files: the data they describe
_TERMINAL = {"Completed", "Failed", "Stopped"}


class BaselineError(ProjectError):
    """The baseline could not be made (exit code 1); the published baseline is unchanged."""

    exit_code = 1


@dataclass(frozen=True)
class BaselineTarget:
    """Where and as whom the baseline job runs: the stack output ``drift_baseline``."""

    region: str
    bucket: str
    role_arn: str
    image_uri: str
    kms_key_arn: str
    subnet_ids: list[str]
    security_group_ids: list[str]
    instance_type: str
    data_prefix: str
    runs_prefix: str
    baseline_prefix: str

    def uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/" + "/".join(part.strip("/") for part in parts)


# each field of the target and the JSON type its value must have (annotations are strings here)
_TARGET_FIELDS = {
    field.name: list if field.type.startswith("list") else str
    for field in fields(BaselineTarget)
}


@dataclass(frozen=True)
class BaselineJob:
    """A started baseline job and the S3 locations it reads and writes."""

    name: str
    dataset_sha256: str
    data_key: str  # the uploaded data set
    runs_key: str  # prefix the job writes its results under


def load_target(text: str, source: str = "the stack outputs") -> BaselineTarget:
    """The target from ``pulumi stack output --json`` (all outputs, or ``drift_baseline``)."""
    if not text.strip():
        raise ProjectError(
            f"{source} are empty; pipe in `pulumi stack output --json --stack STACK` "
            "(run from infra/ after the stack is deployed)"
        )
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ProjectError(
            f"{source} are not JSON ({exc}); pass `pulumi stack output --json`"
        ) from None
    if not isinstance(document, dict):
        raise ProjectError(f"{source} must be a JSON object like `pulumi stack output --json`")
    if STACK_OUTPUT in document:
        document = document[STACK_OUTPUT]
    elif not set(_TARGET_FIELDS) & set(document):
        raise NotFoundError(
            f"{source} have no {STACK_OUTPUT!r}: the stack has no Model Monitor (serving is not "
            "sagemaker, or serving.data_capture_percent is 0 in its Pulumi.<stack>.yaml)"
        )
    if not isinstance(document, dict):
        raise ProjectError(f"{STACK_OUTPUT} in {source} must be an object, got {document!r}")
    missing = [name for name in _TARGET_FIELDS if name not in document]
    if missing:
        raise ProjectError(
            f"{STACK_OUTPUT} in {source} lacks {', '.join(missing)}; redeploy the stack with the "
            "current mlscaffold so it exports them"
        )
    for name, kind in _TARGET_FIELDS.items():
        value = document[name]
        if not isinstance(value, kind) or not value:
            raise ProjectError(
                f"{STACK_OUTPUT}.{name} in {source} must be a non-empty {kind.__name__}, "
                f"got {value!r}"
            )
    return BaselineTarget(**{name: document[name] for name in _TARGET_FIELDS})


def baseline_frame(config: ProjectConfig) -> pd.DataFrame:
    """The training data as the analyzer wants it: label first, then the features."""
    path = config.layout.dataset("train")
    frame = read_csv(path, given=False)
    require_label(frame, config.label, path)
    return frame[[config.label, *(column for column in frame.columns if column != config.label)]]


def baseline_dataset(config: ProjectConfig, frame: pd.DataFrame | None = None) -> bytes:
    """The baseline data set (`frame`, default: baseline_frame) as CSV under a header row."""
    frame = baseline_frame(config) if frame is None else frame
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def job_name(project: str, now: datetime | None = None) -> str:
    """A unique processing-job name: letters, digits and hyphens, at most 63 characters."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", project).strip("-")[:32].strip("-") or "model"
    return f"{slug}-baseline-{stamp}-{secrets.token_hex(2)}"


def sdk_arguments(target: BaselineTarget, name: str, data_folder: str, runs_key: str,
                  tags: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The SDK's arguments of a data-quality baseline job (plain values, as --dry-run prints
    them): ``monitor`` for DefaultModelMonitor (its network as NetworkConfig's arguments, the
    analyzer image the stack's), ``suggest_baseline`` for the call."""
    return {
        "monitor": {
            "role": target.role_arn,
            "image_uri": target.image_uri,
            "instance_count": 1,
            "instance_type": target.instance_type,
            "volume_size_in_gb": 20,
            "volume_kms_key": target.kms_key_arn,
            "output_kms_key": target.kms_key_arn,
            "max_runtime_in_seconds": MAX_RUNTIME_SECONDS,
            "tags": [{"Key": key, "Value": value} for key, value in tags.items()],
            "network_config": {"enable_network_isolation": True,
                               "encrypt_inter_container_traffic": True,
                               "subnets": list(target.subnet_ids),
                               "security_group_ids": list(target.security_group_ids)},
        },
        "suggest_baseline": {
            "baseline_dataset": target.uri(data_folder),
            # the analyzer reads the first column as the model's output (label first)
            "dataset_format": {"csv": {"header": True, "output_columns_position": "START"}},
            "output_s3_uri": target.uri(runs_key),
            "job_name": name,
            "wait": False,
            "logs": False,
        },
    }


class BaselineClient:
    """The S3 and SageMaker calls of a baseline, in the target's region (boto3)."""

    def __init__(self, target: BaselineTarget, session: Any = None):
        if session is None:
            # without boto3 (an image has the lifecycle runtime only) the CLI says what to
            # install (mlscaffold.packaging.missing_library)
            import boto3

            session = boto3.Session(region_name=target.region)
        self.target = target
        self.session = session
        self.s3 = session.client("s3", region_name=target.region)
        self.sagemaker = session.client("sagemaker", region_name=target.region)

    def suggest_baseline(self, arguments: Mapping[str, Mapping[str, Any]]) -> None:
        """Start the job with the SageMaker Python SDK (imported here only: `baseline` alone
        pays for it); its CreateProcessingJob goes through ``self.sagemaker``."""
        from sagemaker.core.helper.session_helper import Session
        from sagemaker.core.model_monitor.model_monitoring import DefaultModelMonitor
        from sagemaker.core.network import NetworkConfig

        monitor_arguments = dict(arguments["monitor"])
        image_uri = monitor_arguments.pop("image_uri")
        network = NetworkConfig(**monitor_arguments.pop("network_config"))
        session = Session(boto_session=self.session, sagemaker_client=self.sagemaker)
        monitor = DefaultModelMonitor(**monitor_arguments, network_config=network,
                                      sagemaker_session=session)
        # DefaultModelMonitor picks the analyzer of its own region table; the schedule runs
        # the stack's (output drift_baseline.image_uri), so the baseline must too
        monitor.image_uri = image_uri
        monitor.suggest_baseline(**arguments["suggest_baseline"])

    def head(self, key: str) -> dict | None:
        """The object's metadata response, None if it does not exist (other errors raise)."""
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=self.target.bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            if code in ("403", "AccessDenied", "Forbidden"):
                # AWS HeadObject reference: for an object that does not exist, S3 answers 404
                # only to callers with s3:ListBucket on the bucket, 403 to the others
                raise BaselineError(
                    f"AWS: HeadObject on {self.target.uri(key)} was forbidden (403); the "
                    "credentials need s3:GetObject on the bucket's objects and s3:ListBucket on "
                    "the bucket (without it S3 answers 403 for an object that does not exist yet)"
                ) from None
            raise

    def published_sha256(self) -> str | None:
        """The data-set digest the published baseline was made from, None if there is none."""
        head = self.head(f"{self.target.baseline_prefix.strip('/')}/{RESULT_FILES[0]}")
        return None if head is None else head.get("Metadata", {}).get(SHA_METADATA)

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        self.s3.put_object(Bucket=self.target.bucket, Key=key, Body=body, Metadata=dict(metadata),
                           ServerSideEncryption="aws:kms", SSEKMSKeyId=self.target.kms_key_arn)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def copy(self, source_key: str, key: str, metadata: Mapping[str, str]) -> None:
        self.s3.copy_object(
            Bucket=self.target.bucket, Key=key,
            CopySource={"Bucket": self.target.bucket, "Key": source_key},
            Metadata=dict(metadata), MetadataDirective="REPLACE",
            ServerSideEncryption="aws:kms", SSEKMSKeyId=self.target.kms_key_arn)


def plan_job(config: ProjectConfig, target: BaselineTarget, dataset: bytes,
             now: datetime | None = None) -> tuple[BaselineJob, dict[str, dict[str, Any]]]:
    """The job that would analyze `dataset`, and its SDK arguments (:func:`sdk_arguments`)."""
    name = job_name(config.name, now)
    data_folder = f"{target.data_prefix.strip('/')}/{name}"
    job = BaselineJob(name=name, dataset_sha256=hashlib.sha256(dataset).hexdigest(),
                      data_key=f"{data_folder}/{DATASET_FILE}",
                      runs_key=f"{target.runs_prefix.strip('/')}/{name}")
    arguments = sdk_arguments(target, name, data_folder, job.runs_key,
                              {"project": config.name, "managed-by": "mlscaffold"})
    return job, arguments


def start_baseline(config: ProjectConfig, target: BaselineTarget, client: BaselineClient,
                   dataset: bytes | None = None, now: datetime | None = None) -> BaselineJob:
    """Upload the baseline data set and start the processing job that analyzes it."""
    dataset = baseline_dataset(config) if dataset is None else dataset
    job, arguments = plan_job(config, target, dataset, now)
    client.put(job.data_key, dataset, {SHA_METADATA: job.dataset_sha256})
    client.suggest_baseline(arguments)
    return job


def wait_for_job(client: BaselineClient, job: BaselineJob,
                 on_status: Callable[[str, float], None] = lambda status, seconds: None,
                 poll_seconds: float = 20.0,
                 timeout_seconds: float = MAX_RUNTIME_SECONDS + PROVISIONING_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll the job until it ends; report each new status. Returns the last description."""
    started = clock()
    last = None
    while True:
        description = client.sagemaker.describe_processing_job(ProcessingJobName=job.name)
        status = description["ProcessingJobStatus"]
        if status != last:
            on_status(status, clock() - started)
            last = status
        if status in _TERMINAL:
            return description
        if clock() - started > timeout_seconds:
            raise BaselineError(
                f"baseline job {job.name} still {status} after {timeout_seconds:.0f} s; it keeps "
                f"running: `aws sagemaker describe-processing-job --processing-job-name {job.name}`"
            )
        sleep(poll_seconds)


def publish(client: BaselineClient, job: BaselineJob, description: Mapping[str, Any]) -> list[str]:
    """Copy a completed job's results to the baseline prefix; returns their S3 URIs."""
    status = description.get("ProcessingJobStatus")
    if status != "Completed":
        reason = (description.get("FailureReason") or description.get("ExitMessage")
                  or "no reason given")
        raise BaselineError(
            f"baseline job {job.name} {str(status).lower()}: {reason}; the current baseline is "
            "unchanged (logs: CloudWatch log group /aws/sagemaker/ProcessingJobs)"
        )
    results = [f"{job.runs_key}/{file}" for file in RESULT_FILES]
    absent = [key for key in results if not client.exists(key)]
    if absent:
        raise BaselineError(
            f"baseline job {job.name} completed without {', '.join(absent)}; the current "
            "baseline is unchanged"
        )
    target = client.target
    published = []
    for key, file in zip(results, RESULT_FILES, strict=True):
        destination = f"{target.baseline_prefix.strip('/')}/{file}"
        client.copy(key, destination, {SHA_METADATA: job.dataset_sha256, "job": job.name})
        published.append(target.uri(destination))
    return published


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Turn boto3's errors (no credentials, access denied...) into one-line BaselineErrors."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise BaselineError(
            f"AWS: {exc}; check the credentials (aws sts get-caller-identity) and that they may "
            "use the artifact bucket, SageMaker processing jobs and iam:PassRole on the "
            "baseline role"
        ) from None


def make_baseline(config: ProjectConfig, target: BaselineTarget, client: BaselineClient,
                  force: bool = False, say: Callable[[str], None] = lambda line: None,
                  **wait_options: Any) -> list[str]:
    """Baseline from the training data unless the published one already describes it.

    Returns the URIs of the published files ([] when the baseline was already current).
    """
    dataset = baseline_dataset(config)
    digest = hashlib.sha256(dataset).hexdigest()
    if not force and client.published_sha256() == digest:
        say(f"the baseline in {target.uri(target.baseline_prefix)} already describes "
            f"datasets/train.csv (sha256 {digest[:12]}); nothing to do (--force remakes it)")
        return []
    job = start_baseline(config, target, client, dataset)
    say(f"started processing job {job.name} ({target.instance_type}) on "
        f"{target.uri(job.data_key)}")

    def report(status: str, seconds: float) -> None:
        say(f"  {seconds:6.0f} s  {status}")

    description = wait_for_job(client, job, on_status=report, **wait_options)
    return publish(client, job, description)


def describe_request(config: ProjectConfig, target: BaselineTarget) -> dict[str, Any]:
    """What a run would upload and request, without calling AWS (for --dry-run)."""
    frame = baseline_frame(config)
    job, arguments = plan_job(config, target, baseline_dataset(config, frame))
    return {
        "dataset": {"uri": target.uri(job.data_key), "sha256": job.dataset_sha256,
                    "rows": len(frame), "columns": [str(c) for c in frame.columns]},
        "processing_job": arguments,
        "publishes_to": [target.uri(target.baseline_prefix, file) for file in RESULT_FILES],
    }
