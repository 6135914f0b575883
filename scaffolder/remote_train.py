"""`mlscaffold train --on sagemaker`: the project's search as a SageMaker training job, started
through the SageMaker Python SDK v3 (``sagemaker-core``'s ``TrainingJob`` resource).

1. The stack output ``training`` (``pulumi stack output --json``) names the bucket, the role,
   the key and the image repository; the stack config names the image tag the deploy pushed.
2. ``datasets/train.csv`` and ``validation.csv`` are uploaded to
   ``training/data/<sha256>/<split>.csv``, once per content (:mod:`.stacks.training_layout`).
3. A training job runs the project's own image (``IMAGE train``: SageMaker's training contract,
   :mod:`.lifecycle.job`) network-isolated, on managed spot capacity with checkpoints under
   ``training/jobs/<job>/checkpoints`` when the stack says so, for at most
   :func:`max_runtime_seconds` of ``--time``; its status and log lines are printed as they come.
   Ctrl-C asks whether to stop it.
4. Its ``model.tar.gz`` (the experiment's files) becomes ``experiments/exp-NNN``, as a local run
   writes it, with the job recorded in experiment.json, and is logged to MLflow as a local run
   is (:func:`record_remote_run`). A job that fails or stops leaves nothing local: the
   experiment is reserved only once the model is downloaded and checked.

boto3 and the SDK are imported here only, when a command asks for a remote run.
"""

from __future__ import annotations

import math
import re
import secrets
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .aws import aws_errors, error_code
from .errors import MlscaffoldError, UsageError
from .lifecycle.config import MODEL_CARD_FILE
from .lifecycle.text import quiet
from .outputs import require_output
from .stacks.training_layout import TRAINING_LOG_GROUP, data_key

__all__ = ["EXPERIMENT_FILES", "OPTIONAL_EXPERIMENT_FILES", "RemoteRun", "TrainingTarget",
           "max_runtime_seconds", "record_remote_run", "run_on_sagemaker",
           "training_job_request", "training_target"]

CHANNELS = ("train", "validation")
# the search's budget is exceeded by at most one misestimated fit (lifecycle.search); loading
# the data, saving the model and the upload take the rest
RUNTIME_FACTOR = 1.25
RUNTIME_OVERHEAD_SECONDS = 600
POLL_SECONDS = 15.0
TERMINAL = ("Completed", "Failed", "Stopped")
EXPERIMENT_FILES = ("model.joblib", "model.json", "experiment.json", "leaderboard.json")
#: written by the job as by a local run, copied when there (an image of an mlscaffold before
#: it wrote the model card has none)
OPTIONAL_EXPERIMENT_FILES = (MODEL_CARD_FILE,)
_PERMISSIONS = ("the launcher policy of the stack (output training.launcher_policy_arn): "
                "sagemaker:CreateTrainingJob, DescribeTrainingJob and StopTrainingJob, "
                "iam:PassRole of the training role, s3:PutObject and GetObject under training/, "
                "logs:GetLogEvents, ecr:DescribeImages")


@dataclass(frozen=True)
class TrainingTarget:
    """Where and as whom a stack's training jobs run: the stack output ``training``."""

    stack: str
    region: str
    bucket: str
    role_arn: str
    kms_key_arn: str
    repository_url: str
    data_prefix: str
    jobs_prefix: str
    job_name_prefix: str
    instance_type: str
    spot: bool
    spot_wait_seconds: int
    volume_size_gb: int
    eks: Mapping[str, Any] | None = None

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key.strip('/')}"


def training_target(outputs: Mapping[str, Any], stack: str) -> TrainingTarget:
    """The training settings of `stack` from its outputs; a stack without them (deployed by an
    older mlscaffold, or not at all) is a usage error naming the fix."""
    settings = require_output(dict(outputs), "training", stack,
                              "describes where its training jobs run")
    try:
        return TrainingTarget(
            stack=stack, region=str(settings["region"]), bucket=str(settings["bucket"]),
            role_arn=str(settings["role_arn"]), kms_key_arn=str(settings["kms_key_arn"]),
            repository_url=str(settings["repository_url"]),
            data_prefix=str(settings["data_prefix"]), jobs_prefix=str(settings["jobs_prefix"]),
            job_name_prefix=str(settings["job_name_prefix"]),
            instance_type=str(settings["instance_type"]), spot=bool(settings["spot"]),
            spot_wait_seconds=int(settings["spot_wait_seconds"]),
            volume_size_gb=int(settings["volume_size_gb"]), eks=settings.get("eks") or None)
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"stack {stack}'s output 'training' lacks {error}",
                         hint="deploy the stack with this mlscaffold version first "
                              "(make deploy STACK=...)") from None


def max_runtime_seconds(budget: float) -> int:
    """The job's MaxRuntimeInSeconds for a search of `budget` seconds."""
    return math.ceil(budget * RUNTIME_FACTOR) + RUNTIME_OVERHEAD_SECONDS


def job_name(target: TrainingTarget, now: datetime | None = None) -> str:
    """``<project>-<env>-<YYYYmmdd-HHMMSS>-<4 hex digits>``: the launcher policy's jobs."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{target.job_name_prefix}-{stamp}-{secrets.token_hex(2)}"


def training_job_request(target: TrainingTarget, name: str, image: str,
                         channels: Mapping[str, str], budget: float, metric: str | None,
                         seed: int, tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateTrainingJob request (API names) of a run; `channels` maps a channel to the
    key of its uploaded file."""
    runtime = max_runtime_seconds(budget)
    hyperparameters = {"time": f"{budget:g}", "seed": str(seed)}
    if metric:
        hyperparameters["metric"] = metric
    jobs = f"{target.jobs_prefix.strip('/')}/{name}"
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": target.role_arn,
        # the image's entrypoint is `mlscaffold`; SageMaker passes `train` (AWS docs, "How
        # Amazon SageMaker AI Runs Your Training Image")
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{
            "ChannelName": channel,
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": target.uri(key),
                "S3DataDistributionType": "FullyReplicated"}},
            "ContentType": "text/csv", "InputMode": "File",
        } for channel, key in channels.items()],
        "OutputDataConfig": {"S3OutputPath": target.uri(f"{jobs}/output"),
                             "KmsKeyId": target.kms_key_arn},
        "ResourceConfig": {"InstanceType": target.instance_type, "InstanceCount": 1,
                           "VolumeSizeInGB": target.volume_size_gb,
                           "VolumeKmsKeyId": target.kms_key_arn},
        "StoppingCondition": {"MaxRuntimeInSeconds": runtime},
        # the container needs no network: SageMaker brings the channels and takes the model
        "EnableNetworkIsolation": True,
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }
    if target.spot:
        # MaxWaitTimeInSeconds: the runtime plus the wait for spot capacity (API reference,
        # StoppingCondition); checkpoints let an interrupted job resume
        request["EnableManagedSpotTraining"] = True
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = runtime + target.spot_wait_seconds
        request["CheckpointConfig"] = {"S3Uri": target.uri(f"{jobs}/checkpoints")}
    return request


def _sdk_arguments(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as sagemaker-core's TrainingJob.create takes it (its shapes)."""
    from sagemaker.core.resources import Tag
    from sagemaker.core.shapes import (
        AlgorithmSpecification,
        Channel,
        CheckpointConfig,
        DataSource,
        OutputDataConfig,
        ResourceConfig,
        S3DataSource,
        StoppingCondition,
    )

    spec, output = request["AlgorithmSpecification"], request["OutputDataConfig"]
    resources, stopping = request["ResourceConfig"], request["StoppingCondition"]
    arguments: dict[str, Any] = {
        "training_job_name": request["TrainingJobName"],
        "role_arn": request["RoleArn"],
        "algorithm_specification": AlgorithmSpecification(
            training_image=spec["TrainingImage"],
            training_input_mode=spec["TrainingInputMode"]),
        "hyper_parameters": dict(request["HyperParameters"]),
        "input_data_config": [Channel(
            channel_name=c["ChannelName"], content_type=c["ContentType"],
            input_mode=c["InputMode"], data_source=DataSource(s3_data_source=S3DataSource(
                s3_data_type=c["DataSource"]["S3DataSource"]["S3DataType"],
                s3_uri=c["DataSource"]["S3DataSource"]["S3Uri"],
                s3_data_distribution_type=c["DataSource"]["S3DataSource"][
                    "S3DataDistributionType"])))
            for c in request["InputDataConfig"]],
        "output_data_config": OutputDataConfig(s3_output_path=output["S3OutputPath"],
                                               kms_key_id=output["KmsKeyId"]),
        "resource_config": ResourceConfig(
            instance_type=resources["InstanceType"], instance_count=resources["InstanceCount"],
            volume_size_in_gb=resources["VolumeSizeInGB"],
            volume_kms_key_id=resources["VolumeKmsKeyId"]),
        "stopping_condition": StoppingCondition(
            max_runtime_in_seconds=stopping["MaxRuntimeInSeconds"],
            **({"max_wait_time_in_seconds": stopping["MaxWaitTimeInSeconds"]}
               if "MaxWaitTimeInSeconds" in stopping else {})),
        "enable_network_isolation": request["EnableNetworkIsolation"],
        "tags": [Tag(key=t["Key"], value=t["Value"]) for t in request["Tags"]],
    }
    if request.get("EnableManagedSpotTraining"):
        arguments["enable_managed_spot_training"] = True
        arguments["checkpoint_config"] = CheckpointConfig(
            s3_uri=request["CheckpointConfig"]["S3Uri"])
    return arguments


@dataclass
class RemoteRun:
    """What a remote run needs from outside: AWS clients, and how to talk to the user."""

    session: Any  # a boto3 Session in the target's region
    echo: Callable[[str], None]
    #: asked on Ctrl-C whether to stop the job (True: stop it)
    confirm_stop: Callable[[str], bool]
    sleep: Callable[[float], None] = time.sleep
    poll_seconds: float = POLL_SECONDS
    #: one-line warnings (MLflow not installed here)
    warn: Callable[[str], None] = quiet

    def client(self, service: str) -> Any:
        return self.session.client(service)


def _check_credentials(run: RemoteRun, target: TrainingTarget) -> None:
    with aws_errors(f"start a training job in stack {target.stack}'s account",
                    "sts:GetCallerIdentity"):
        run.client("sts").get_caller_identity()


def check_image(run: RemoteRun, target: TrainingTarget, tag: str) -> str:
    """The image URI, once ECR says it exists; an image not pushed is a usage error."""
    repository = target.repository_url.split("/", 1)[1]
    image = f"{target.repository_url}:{tag}"
    from botocore.exceptions import ClientError

    with aws_errors(f"look up the image {image}", _PERMISSIONS):
        try:
            run.client("ecr").describe_images(repositoryName=repository,
                                              imageIds=[{"imageTag": tag}])
        except ClientError as error:
            if error_code(error) not in ("ImageNotFoundException", "RepositoryNotFoundException"):
                raise
            raise UsageError(f"the image {image} has not been pushed, so the training job "
                             "has nothing to run",
                             hint=f"build and push it: `make image push STACK={target.stack} "
                                  f"IMAGE_TAG={tag}`") from None
    return image


def upload_datasets(run: RemoteRun, target: TrainingTarget, root: Path
                    ) -> dict[str, str]:
    """Upload datasets/<channel>.csv content-addressed (once per content); channel -> key."""
    paths = {}
    for channel in CHANNELS:
        path = root / "datasets" / f"{channel}.csv"
        if not path.is_file():
            raise UsageError(f"{path} does not exist; a training run uploads it",
                             hint="add the split (`mlscaffold new` makes sample data)")
        paths[channel] = path
    return upload_files(run, target, paths)


def upload_files(run: RemoteRun, target: TrainingTarget, paths: Mapping[str, Path]
                 ) -> dict[str, str]:
    """Upload each channel's file to ``training/data/<sha256>/<channel>.csv`` (once per
    content), encrypted with the platform key; channel -> key."""
    from botocore.exceptions import ClientError

    from .lifecycle.files import sha256_file

    s3 = run.client("s3")
    keys = {}
    for channel, path in paths.items():
        key = data_key(sha256_file(path), channel)
        with aws_errors(f"upload {path.name} to {target.uri(key)}", _PERMISSIONS):
            try:
                s3.head_object(Bucket=target.bucket, Key=key)
                run.echo(f"{channel}: {target.uri(key)} (already uploaded)")
            except ClientError as error:
                if error_code(error) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                s3.upload_file(str(path), target.bucket, key, ExtraArgs={
                    "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": target.kms_key_arn})
                run.echo(f"{channel}: uploaded {path.name} to {target.uri(key)}")
        keys[channel] = key
    return keys


class _Logs:
    """The job's CloudWatch log lines, each printed once."""

    def __init__(self, run: RemoteRun, name: str) -> None:
        self._logs, self._name, self._echo = run.client("logs"), name, run.echo
        self._tokens: dict[str, str | None] = {}

    def print_new(self) -> None:
        from botocore.exceptions import ClientError

        try:
            streams = self._logs.describe_log_streams(
                logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{self._name}/"
            ).get("logStreams", [])
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":  # no line logged yet
                return
            raise
        for stream in streams:
            name = stream["logStreamName"]
            while True:
                arguments = {"logGroupName": TRAINING_LOG_GROUP, "logStreamName": name,
                             "startFromHead": True}
                if self._tokens.get(name):
                    arguments["nextToken"] = self._tokens[name]
                page = self._logs.get_log_events(**arguments)
                for event in page.get("events", []):
                    self._echo(f"  | {event['message'].rstrip()}")
                token = page.get("nextForwardToken")
                if token == self._tokens.get(name) or not page.get("events"):
                    self._tokens[name] = token
                    break
                self._tokens[name] = token


def _follow(run: RemoteRun, job: Any, name: str) -> dict[str, Any]:
    """Print status changes and log lines until the job ends; its last description."""
    logs = _Logs(run, name)
    shown: tuple[str, str] | None = None
    while True:
        job.refresh()
        status, secondary = str(job.training_job_status), str(job.secondary_status)
        if (status, secondary) != shown:
            run.echo(f"{name}: {status} ({secondary})")
            shown = (status, secondary)
        logs.print_new()
        if status in TERMINAL:
            return run.client("sagemaker").describe_training_job(TrainingJobName=name)
        run.sleep(run.poll_seconds)


def _stop(run: RemoteRun, job: Any, name: str) -> None:
    run.echo(f"stopping {name}…")
    job.stop()
    while True:
        job.refresh()
        if str(job.training_job_status) in TERMINAL:
            run.echo(f"{name}: {job.training_job_status}")
            return
        run.sleep(run.poll_seconds)


def _download_model(run: RemoteRun, uri: str, destination: Path) -> None:
    """Download a job's model.tar.gz and unpack its experiment files into `destination`."""
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if not match:
        raise MlscaffoldError(f"the job's model artifacts are not an S3 URI: {uri!r}")
    archive = destination / "model.tar.gz"
    with aws_errors(f"download {uri}", _PERMISSIONS):
        run.client("s3").download_file(match.group(1), match.group(2), str(archive))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(destination / "files", filter="data")
    except (tarfile.TarError, OSError) as error:
        raise MlscaffoldError(f"{uri} is not a readable model archive ({error})") from None
    missing = [f for f in EXPERIMENT_FILES if not (destination / "files" / f).is_file()]
    if missing:
        raise MlscaffoldError(f"{uri} lacks {', '.join(missing)}: the image did not write an "
                              "experiment", hint="rebuild and push the image with this "
                                                 "mlscaffold version")


def import_experiment(config: Any, files: Path, remote: Mapping[str, Any]) -> dict:
    """Make the files a run wrote an experiment of the project (a new exp-NNN); its index
    entry."""
    from .lifecycle.experiments import pending_experiment, record_experiment
    from .lifecycle.files import atomic_write_json, read_json

    record = read_json(files / "experiment.json")
    with pending_experiment(config.layout) as (experiment_id, directory):
        for name in (*EXPERIMENT_FILES, *OPTIONAL_EXPERIMENT_FILES):
            if name != "experiment.json" and (files / name).is_file():
                shutil.copy2(files / name, directory / name)
        record = {**record, "id": experiment_id, "remote": dict(remote)}
        atomic_write_json(directory / "experiment.json", record)
        card = directory / MODEL_CARD_FILE
        if card.is_file() and remote.get("data"):
            card.write_text(card_with_source(card.read_text("utf-8"), remote["data"]), "utf-8")
        entry = {key: record[key] for key in (
            "id", "created_at", "task", "metric", "score", "family", "params", "validation",
            "seed", "time_budget_seconds")}
        record_experiment(config.layout, entry)
    return entry


def card_with_source(card: str, data: Mapping[str, Any]) -> str:
    """The model card with a row naming where a feature-store run's data came from, after
    the data rows of its first table."""
    rows = data.get("rows") or {}
    row = (f"| data source | feature group `{data.get('feature_group')}` (table "
           f"`{data.get('table')}`), Athena query `{data.get('query_execution_id')}`: "
           + ", ".join(f"{count} {split}" for split, count in rows.items()) + " records |")
    head, sep, tail = card.partition("\n\n## ")
    return f"{head}\n{row}{sep}{tail}" if sep else f"{card.rstrip()}\n{row}\n"


def record_remote_run(config: Any, files: Path, remote: Mapping[str, Any], *,
                      echo: Callable[[str], None], warn: Callable[[str], None]) -> dict:
    """Import a remote run's files as a new experiment and log it to MLflow as `train` logs a
    local run (:func:`.lifecycle.tracking.track_new_experiment`: a warning without MLflow,
    TrackingError naming `track` when the store cannot be reached, the experiment kept);
    its index entry."""
    from .lifecycle.tracking import track_new_experiment

    entry = import_experiment(config, files, remote)
    echo(f"wrote {config.layout.experiments / entry['id']} from the job's model "
         f"({entry['metric']}={entry['score']:.4g})")
    track_new_experiment(config, entry, echo=echo, warn=warn)
    return entry


#: a run's channels: (channel -> uploaded key, the remote record's ``data`` or None)
ChannelSource = Callable[[RemoteRun, TrainingTarget], tuple[dict[str, str], dict | None]]


def run_on_sagemaker(config: Any, target: TrainingTarget, run: RemoteRun, *, image_tag: str,
                     budget: float, metric: str | None, seed: int,
                     name: str | None = None, channels: ChannelSource | None = None) -> dict:
    """Train `config`'s project as a SageMaker training job and import its model as a new
    experiment; its index entry. A job that fails or is stopped raises MlscaffoldError and
    leaves the project as it was. `channels` makes the channels (default: upload the
    project's datasets/train.csv and validation.csv; :mod:`.feature_data` queries the feature
    store)."""
    from sagemaker.core.resources import TrainingJob

    if budget <= 0:
        raise UsageError(f"--time must be a positive number of seconds, got {budget:g}")
    _check_credentials(run, target)
    image = check_image(run, target, image_tag)
    keys, data = (channels(run, target) if channels is not None
                  else (upload_datasets(run, target, config.root), None))
    name = name or job_name(target)
    request = training_job_request(target, name, image, keys, budget, metric, seed,
                                   {"project": config.name, "managed-by": "mlscaffold"})
    with aws_errors(f"start training job {name}", _PERMISSIONS):
        job = TrainingJob.create(**_sdk_arguments(request), session=run.session,
                                 region=target.region)
    run.echo(f"started training job {name} ({target.instance_type}"
             f"{', spot' if target.spot else ''}, at most "
             f"{request['StoppingCondition']['MaxRuntimeInSeconds']} s)")
    with aws_errors(f"follow training job {name}", _PERMISSIONS):
        try:
            described = _follow(run, job, name)
        except KeyboardInterrupt:
            if run.confirm_stop(f"stop training job {name}?"):
                _stop(run, job, name)
                raise MlscaffoldError(f"training job {name} was stopped; nothing was recorded"
                                      ) from None
            raise MlscaffoldError(
                f"stopped following training job {name}, which keeps running",
                hint=f"aws sagemaker describe-training-job --training-job-name {name} "
                     f"--region {target.region}") from None
    status = described["TrainingJobStatus"]
    if status != "Completed":
        reason = described.get("FailureReason") or "no reason given"
        raise MlscaffoldError(
            f"training job {name} {status.lower()}: {reason}; nothing was recorded",
            hint=f"its log: CloudWatch log group {TRAINING_LOG_GROUP}, streams {name}/*")
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    with tempfile.TemporaryDirectory(prefix="mlscaffold-model-") as scratch:
        _download_model(run, uri, Path(scratch))
        return record_remote_run(config, Path(scratch) / "files", {
            "on": "sagemaker", "stack": target.stack, "region": target.region,
            "training_job": name, "image": image, "model_artifacts": uri,
            "billable_seconds": described.get("BillableTimeInSeconds"),
            **({"data": data} if data else {})},
            echo=run.echo, warn=run.warn)
