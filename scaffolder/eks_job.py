"""`mlscaffold train --on eks`: the project's search as a Kubernetes Job on the EKS GPU pool.

The Job's pod runs the project's own image with the same entrypoint as a SageMaker training job
(``IMAGE train``, :mod:`.lifecycle.job`), on the same tree: an init container (the AWS CLI)
downloads the uploaded data sets into ``/opt/ml/input/data/<channel>/`` and writes the
hyperparameters, the ``train`` init container searches and writes ``/opt/ml/model``, and the
last container copies the model's files to ``training/jobs/<job>/output/model/`` in the
artifact bucket, whence they become ``experiments/exp-NNN`` as a local run writes it, logged to
MLflow as a local run is.

The pod runs in the ``ml-training`` namespace (restricted Pod Security, deny-by-default
NetworkPolicies: the in-cluster program's) as the ``trainer`` service account, which EKS Pod
Identity gives the training role (the base stack's association); it tolerates the GPU taint and
selects the first GPU pool's labels, as ``gpu-workload-schedulable`` checks; its resources come
from the stack config's ``training`` section. The Kubernetes API is reached through `mlscaffold
tunnel` with ``kubectl`` (the Kubernetes Python client would add some 126 MB to the tool).
While the Job runs, its steps and the ``train`` log are printed and Ctrl-C offers to delete it
(:mod:`.eks_follow`).
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .aws import aws_errors, error_code
from .eks_follow import (
    delete_command,
    find_kubectl,
    follow_command,
    follow_job,
    interrupted,
)
from .errors import MlscaffoldError, UsageError
from .lifecycle.text import quiet
from .remote_train import (
    _PERMISSIONS,
    CHANNELS,
    EXPERIMENT_FILES,
    OPTIONAL_EXPERIMENT_FILES,
    ChannelSource,
    TrainingTarget,
    job_name,
    max_runtime_seconds,
    training_target,
)
from .stacks.constants import GPU_RESOURCE
from .stacks.training_layout import TRAINING_NAMESPACE, TRAINING_SERVICE_ACCOUNT, data_key

__all__ = ["AWS_CLI_IMAGE", "job_manifest", "train_on_eks"]

#: the AWS CLI's image for the data steps: v2 at or above 2.15.0, the first with EKS Pod
#: Identity credentials (AWS docs, "Use pod identity with the AWS SDK")
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.50"
JOB_ROOT = "/opt/ml"
RUN_AS_USER = 10001  # the image's app user
RUN_LABEL = "mlscaffold.io/training-run"  # what the namespace's egress policy selects
# a failed pod is not retried: the search would start again from nothing
BACKOFF_LIMIT = 0
KEEP_FINISHED_SECONDS = 24 * 3600
_STEP_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"},
                   "limits": {"cpu": "500m", "memory": "512Mi"}}


def _container(name: str, image: str, resources: Mapping[str, Any],
               **fields: Any) -> dict[str, Any]:
    """A container as the restricted Pod Security profile and our k8s rules want it."""
    return {
        "name": name, "image": image, **fields,
        "resources": dict(resources),
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "job", "mountPath": JOB_ROOT},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }


def job_manifest(name: str, *, project: str, prefix: str, image: str, target: TrainingTarget,
                 channels: Mapping[str, str], budget: float, metric: str | None, seed: int,
                 training: Any, gpu_labels: Mapping[str, str],
                 gpu_toleration: Mapping[str, str]) -> dict[str, Any]:
    """The batch/v1 Job of a run; `channels` maps a channel to its uploaded key, `training` is
    the stack config's TrainingConfig."""
    hyperparameters = {"time": f"{budget:g}", "seed": str(seed)}
    if metric:
        hyperparameters["metric"] = metric
    fetch = ["set -eu", f"mkdir -p {JOB_ROOT}/input/config"]
    for channel, key in channels.items():
        fetch.append(f"aws s3 cp --only-show-errors {shlex.quote(target.uri(key))} "
                     f"{JOB_ROOT}/input/data/{channel}/{channel}.csv")
    fetch.append(f'printf %s "$HYPERPARAMETERS" > {JOB_ROOT}/input/config/hyperparameters.json')
    output = target.uri(f"{target.jobs_prefix.strip('/')}/{name}/output/model")
    upload = ["set -eu", f"aws s3 cp --only-show-errors --recursive {JOB_ROOT}/model "
              f"{shlex.quote(output)} --sse aws:kms --sse-kms-key-id "
              f"{shlex.quote(target.kms_key_arn)}"]
    aws_env = [{"name": "HOME", "value": "/tmp"},  # the AWS CLI's cache, on the writable /tmp
               {"name": "AWS_REGION", "value": target.region}]
    limits: dict[str, str] = {"cpu": training.cpu, "memory": training.memory}
    if training.gpus:
        limits[GPU_RESOURCE] = str(training.gpus)
    train = _container(
        "train", image, {"requests": {"cpu": training.cpu, "memory": training.memory},
                         "limits": limits},
        args=["train"], env=[{"name": "MLSCAFFOLD_JOB_ROOT", "value": JOB_ROOT}])
    labels = {"app.kubernetes.io/name": project, "app.kubernetes.io/component": "training",
              "app.kubernetes.io/part-of": prefix, RUN_LABEL: name}
    pod: dict[str, Any] = {
        "serviceAccountName": TRAINING_SERVICE_ACCOUNT,
        # EKS Pod Identity projects its own token; the pod needs no Kubernetes API token
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER,
                            "runAsGroup": RUN_AS_USER, "fsGroup": RUN_AS_USER,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [
            _container("fetch", AWS_CLI_IMAGE, _STEP_RESOURCES, command=["sh", "-c"],
                       args=["\n".join(fetch)],
                       env=[*aws_env, {"name": "HYPERPARAMETERS",
                                       "value": json.dumps(hyperparameters)}]),
            train,
        ],
        "containers": [_container("upload", AWS_CLI_IMAGE, _STEP_RESOURCES,
                                  command=["sh", "-c"], args=["\n".join(upload)], env=aws_env)],
        "volumes": [{"name": "job", "emptyDir": {"sizeLimit": f"{training.volume_size_gb}Gi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    if training.gpus:
        pod["tolerations"] = [dict(gpu_toleration)]
        pod["nodeSelector"] = dict(gpu_labels)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": TRAINING_NAMESPACE, "labels": labels},
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            # the pod's time: the search's, plus a GPU node from Karpenter and the image pull
            "activeDeadlineSeconds": max_runtime_seconds(budget) + 1800,
            "ttlSecondsAfterFinished": KEEP_FINISHED_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def _eks_target(outputs: Mapping[str, Any], stack: str) -> TrainingTarget:
    """The stack's training settings, with a cluster; one without is a usage error."""
    if not outputs.get("cluster"):
        raise UsageError(f"stack {stack} has no EKS cluster, so --on eks has nowhere to run",
                         hint=f"set platform.cluster.enabled: true in infra/Pulumi.{stack}.yaml "
                              f"and deploy it (make deploy STACK={stack}), or train --on "
                              "sagemaker")
    target = training_target(outputs, stack)
    if not target.eks:
        raise UsageError(f"stack {stack}'s output 'training' has no eks settings",
                         hint=f"deploy the stack with this mlscaffold version first (make "
                              f"deploy STACK={stack})")
    return target


def train_on_eks(config: Any, platform: Any, outputs: Mapping[str, Any], stack: str, *,
                 image_tag: str, budget: float, metric: str | None, seed: int,
                 dry_run: bool, echo: Callable[[str], None],
                 warn: Callable[[str], None] = quiet,
                 confirm_stop: Callable[[str], bool] = lambda _: True,
                 sleep: Callable[[float], None] | None = None,
                 poll_seconds: float | None = None,
                 channels: ChannelSource | None = None) -> dict | None:
    """Print (`dry_run`) or run the Job of a run, saying its steps and streaming its train
    log (:mod:`.eks_follow`); a run's model becomes a new experiment, logged to MLflow as
    `train` logs a local one (a warning without MLflow, TrackingError naming `track` when the
    store cannot be reached). `channels` makes the channels (default: upload the project's
    CSVs; :mod:`.feature_data` queries the feature store). A Job that fails raises
    MlscaffoldError; Ctrl-C asks `confirm_stop` whether to delete the Job and raises
    JobInterrupted (exit 130) either way; both leave the project as it was."""
    import yaml

    from .lifecycle.files import sha256_file
    from .stacks.config import GPU_TOLERATION

    target = _eks_target(outputs, stack)
    name = job_name(target)
    if channels is not None and dry_run:
        raise UsageError("--dry-run with --data feature-store: the Job's channels are the "
                         "query's results, known only once it runs",
                         hint="drop --dry-run, or print the manifest with --data upload")
    missing = [c for c in CHANNELS if not config.layout.dataset(c).is_file()]
    if missing and channels is None:
        raise UsageError(f"{config.layout.dataset(missing[0])} does not exist; a training run "
                         "uploads it")
    keys = {c: data_key(sha256_file(config.layout.dataset(c)), c) for c in CHANNELS
            } if channels is None else {}
    image = f"{target.repository_url}:{image_tag}"

    def manifest_of(keys: Mapping[str, str]) -> dict[str, Any]:
        return job_manifest(
            name, project=config.name, prefix=platform.prefix, image=image, target=target,
            channels=keys, budget=budget, metric=metric, seed=seed, training=platform.training,
            gpu_labels=platform.cluster.gpu_pools[0].labels, gpu_toleration=GPU_TOLERATION)

    manifest = manifest_of(keys)
    if dry_run:
        echo(yaml.safe_dump(manifest, sort_keys=False).rstrip("\n"))
        return None
    import boto3

    from .remote_train import RemoteRun, check_image, record_remote_run, upload_datasets
    from .tunnel import open_tunnel, tunnel_kubeconfig, tunnel_target

    run = RemoteRun(session=boto3.session.Session(region_name=target.region), echo=echo,
                    confirm_stop=confirm_stop, warn=warn)
    check_image(run, target, image_tag)
    data = None
    if channels is None:
        upload_datasets(run, target, config.root)
    else:
        keys, data = channels(run, target)
        manifest = manifest_of(keys)
    prefix = f"{target.jobs_prefix.strip('/')}/{name}/output/model"
    with tempfile.TemporaryDirectory(prefix="mlscaffold-eks-") as scratch, \
            open_tunnel(tunnel_target(outputs, stack)):
        kubeconfig = Path(scratch) / "kubeconfig"
        kubeconfig.write_text(tunnel_kubeconfig(outputs["cluster"]), "utf-8")
        kubectl = find_kubectl(kubeconfig)
        kubectl.run("apply", "-f", "-", stdin=json.dumps(manifest))
        echo(f"started Job {TRAINING_NAMESPACE}/{name} on the {platform.cluster.gpu_pools[0].name}"
             f" pool (at most {manifest['spec']['activeDeadlineSeconds']} s)")
        try:
            outcome = follow_job(kubectl, name, pod_label=RUN_LABEL,
                                 upload_uri=target.uri(prefix), echo=echo, sleep=sleep,
                                 poll_seconds=poll_seconds)
        except KeyboardInterrupt:
            raise interrupted(kubectl, name, confirm=confirm_stop, echo=echo) from None
        except MlscaffoldError as error:  # the tunnel or the API went away: the Job did not
            raise MlscaffoldError(
                f"lost track of Job {TRAINING_NAMESPACE}/{name}, which may still be running "
                f"({error.message}); nothing was recorded here",
                hint=f"through `mlscaffold tunnel`, follow it: {follow_command(name)}; delete "
                     f"it: {delete_command(name)}") from None
    if outcome.condition != "Complete":
        step, how = outcome.failed_step() or ("train", "")
        raise MlscaffoldError(
            f"Job {TRAINING_NAMESPACE}/{name} failed ({outcome.reason or 'no reason'}: "
            f"{outcome.message or 'no message'}){f'; {how}' if how else ''}; nothing was "
            "recorded",
            hint=f"its log, through `mlscaffold tunnel`: kubectl -n {TRAINING_NAMESPACE} logs "
                 f"job/{name} -c {step}")
    with tempfile.TemporaryDirectory(prefix="mlscaffold-model-") as scratch:
        files = Path(scratch)
        _download_model(run, target, prefix, files)
        return record_remote_run(config, files, {"on": "eks", "stack": stack, "job": name,
                                                 "image": image,
                                                 "model_artifacts": target.uri(prefix),
                                                 **({"data": data} if data else {})},
                                 echo=echo, warn=warn)


def _download_model(run: Any, target: TrainingTarget, prefix: str, files: Path) -> None:
    """The experiment's files the Job uploaded under `prefix` into `files` (the optional ones
    when there); AWS's errors as one line, a missing file naming the fix."""
    from botocore.exceptions import ClientError

    s3 = run.client("s3")
    for file in (*EXPERIMENT_FILES, *OPTIONAL_EXPERIMENT_FILES):
        uri = target.uri(f"{prefix}/{file}")
        with aws_errors(f"download {uri}", _PERMISSIONS):
            try:
                s3.download_file(target.bucket, f"{prefix}/{file}", str(files / file))
            except ClientError as error:
                if error_code(error) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                if file in EXPERIMENT_FILES:
                    raise MlscaffoldError(
                        f"{uri} does not exist: the Job's image did not write an experiment",
                        hint="rebuild and push the image with this mlscaffold version") from None
