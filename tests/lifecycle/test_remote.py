"""`mlscaffold train --on sagemaker|eks`, offline.

moto plays S3, STS, ECR, CloudWatch Logs and SageMaker's CreateTrainingJob and
DescribeTrainingJob (through sagemaker-core's TrainingJob). moto's training jobs complete at once
and never fail or stop, and it has no StopTrainingJob: botocore's Stubber answers a
DescribeTrainingJob that failed, and the stop on Ctrl-C is recorded by a stand-in for
TrainingJob.stop. SageMaker's own upload of the model is played by running the image's training
contract (lifecycle.job) locally and putting its model.tar.gz where SageMaker writes it.
For EKS, the tunnel and kubectl are stand-ins; the Job's upload of the model is played by
putting the job's files under its S3 prefix. The imported experiment is logged to the project's
own MLflow store (mlruns/), as a local run is.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import sys
import tarfile
import time
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from kubernetes_validate import validate
from moto import mock_aws

import mlscaffold.remote_train as remote_train
from mlscaffold.lifecycle.config import ProjectConfig
from mlscaffold.lifecycle.job import JobPaths, run_training_job
from mlscaffold.lifecycle.tracking import COMPLETE_TAG, EXPERIMENT_TAG
from mlscaffold.stacks.config import GPU_TOLERATION

from ..tools.environments import without_aws_credentials
from .conftest import assert_error, run_cli, set_config

REGION = "us-east-1"
BUCKET = "lc-binary-dev-artifacts"
REPOSITORY = "lc-binary-dev-serving"
ACCOUNT = "123456789012"
REPOSITORY_URL = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}"
JOB = "lc-binary-dev-20261202-120000-abcd"
# nothing listens on port 1 of the loopback: connections are refused at once
UNREACHABLE = "http://127.0.0.1:1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234"
TRAINING = {"region": REGION, "bucket": BUCKET,
            "role_arn": f"arn:aws:iam::{ACCOUNT}:role/lc-binary-dev-training-role",
            "kms_key_arn": KEY, "repository_url": REPOSITORY_URL,
            "data_prefix": "training/data", "jobs_prefix": "training/jobs",
            "job_name_prefix": "lc-binary-dev", "instance_type": "ml.m5.large", "spot": True,
            "spot_wait_seconds": 3600, "volume_size_gb": 30,
            "launcher_policy_arn": f"arn:aws:iam::{ACCOUNT}:policy/launcher", "eks": None}
CLUSTER = {"name": "lc-binary-dev-eks", "endpoint": "https://ABC.gr7.us-east-1.eks.amazonaws.com",
           "certificate_authority": "Y2E=", "relay_instance_id": "i-0123456789abcdef0",
           "region": REGION, "tunnel_port": 9443}


def write_outputs(tmp_path: Path, **outputs) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket=BUCKET)
        session.client("ecr").create_repository(repositoryName=REPOSITORY)
        monkeypatch.setattr(remote_train, "job_name", lambda target, now=None: JOB)
        yield session


def push_image(session, tag: str = "0.1.0") -> None:
    manifest = {"schemaVersion": 2, "mediaType":
                "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + "1" * 64, "size": 1,
                           "mediaType": "application/vnd.docker.container.image.v1+json"},
                "layers": []}
    session.client("ecr").put_image(repositoryName=REPOSITORY, imageTag=tag,
                                    imageManifest=json.dumps(manifest))


@pytest.fixture(scope="module")
def trained_by_the_image(rendered, tmp_path_factory) -> Path:
    """The model/ folder of the image's training contract on the binary project's data (trained
    once for the module: every test that needs one gets a copy)."""
    project = rendered("binary-classification")
    paths = JobPaths(tmp_path_factory.mktemp("opt-ml"))
    for channel in ("train", "validation"):
        (paths.channel(channel)).mkdir(parents=True)
        shutil.copy(project / "datasets" / f"{channel}.csv", paths.channel(channel))
    paths.hyperparameters.parent.mkdir(parents=True)
    paths.hyperparameters.write_text(json.dumps({"time": "5", "seed": "42"}))
    config = ProjectConfig(root=project, name="lc-binary", task="binary-classification",
                           label="label", metric="roc_auc", metric_threshold=0.75)
    run_training_job(config, paths)
    return paths.model


@pytest.fixture
def image_model(trained_by_the_image, tmp_path) -> Path:
    """A copy of the model folder the image's training wrote."""
    return shutil.copytree(trained_by_the_image, tmp_path / "image-model")


def sagemaker_writes_the_model(session, model: Path) -> None:
    """What SageMaker does with the image's `model` folder: model.tar.gz to
    <S3OutputPath>/<job>/output/model.tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for item in sorted(model.iterdir()):
            tar.add(item, arcname=item.name)
    session.client("s3").put_object(
        Bucket=BUCKET, Key=f"training/jobs/{JOB}/output/{JOB}/output/model.tar.gz",
        Body=buffer.getvalue())


def log_line(session, message: str) -> None:
    logs = session.client("logs")
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs",
                           logStreamName=f"{JOB}/algo-1-1700000000")
    logs.put_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                        logStreamName=f"{JOB}/algo-1-1700000000",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": message}])


def mlflow_runs(project: Path) -> dict[str, object]:
    """{exp-NNN: run} of the complete top-level runs in the project's own store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string=f"tags.`{EXPERIMENT_TAG}` LIKE 'exp-%'")
    return {run.data.tags[EXPERIMENT_TAG]: run for run in runs
            if run.data.tags.get(COMPLETE_TAG) == "true"}


def assert_tracked_like_a_local_run(project: Path, out: str) -> None:
    """exp-001 is an MLflow run, noted in the index, named by `list`, as `train` leaves one."""
    runs = mlflow_runs(project)
    assert list(runs) == ["exp-001"]
    run_id = runs["exp-001"].info.run_id
    assert f"tracked as MLflow run {run_id} in the project's MLflow store" in out
    index = json.loads((project / "experiments" / "index.json").read_text())["experiments"]
    assert index[0]["mlflow_run_id"] == run_id
    listed = run_cli(project, "list", "--format", "json")
    assert json.loads(listed.out)["experiments"][0]["mlflow_run_id"] == run_id
    assert runs["exp-001"].data.metrics["validation_roc_auc"] == index[0]["validation"]["roc_auc"]


def train_remotely(project: Path, outputs: Path, *args):
    return run_cli(project, "train", "--on", "sagemaker", "--stack", "dev", "--outputs",
                   outputs, "--time", "5", *args)


# ------------------------------------------------------------------ SageMaker


def test_a_sagemaker_run_becomes_a_local_experiment(aws, project, tmp_path, image_model):
    push_image(aws)
    sagemaker_writes_the_model(aws, image_model)
    log_line(aws, "best: random_forest roc_auc=0.9")
    result = train_remotely(project, write_outputs(tmp_path, training=TRAINING))
    assert result.code == 0, result.err
    assert "  | best: random_forest roc_auc=0.9" in result.out
    assert f"started training job {JOB} (ml.m5.large, spot, at most 607 s)" in result.out
    experiment = project / "experiments" / "exp-001"
    # the same files as a local run's, the model card too
    assert {p.name for p in experiment.iterdir()} == {*remote_train.EXPERIMENT_FILES,
                                                       "model_card.md"}
    assert (experiment / "model_card.md").read_text().startswith("# ")
    assert_tracked_like_a_local_run(project, result.out)
    record = json.loads((experiment / "experiment.json").read_text())
    assert record["id"] == "exp-001"
    assert record["remote"]["training_job"] == JOB
    assert record["remote"]["image"] == f"{REPOSITORY_URL}:0.1.0"
    index = json.loads((project / "experiments" / "index.json").read_text())["experiments"]
    assert [e["id"] for e in index] == ["exp-001"] and index[0]["seed"] == 42
    listed = run_cli(project, "list")
    assert listed.code == 0 and "exp-001" in listed.out

    job = aws.client("sagemaker").describe_training_job(TrainingJobName=JOB)
    runtime = math.ceil(5 * 1.25) + 600
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": runtime,
                                        "MaxWaitTimeInSeconds": runtime + 3600}
    assert job["EnableManagedSpotTraining"] is True and job["EnableNetworkIsolation"] is True
    assert job["CheckpointConfig"]["S3Uri"] == \
        f"s3://{BUCKET}/training/jobs/{JOB}/checkpoints"
    assert job["AlgorithmSpecification"]["TrainingImage"] == f"{REPOSITORY_URL}:0.1.0"
    assert job["HyperParameters"] == {"time": "5", "seed": "42"}
    assert job["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/training/jobs/{JOB}/output",
                                       "KmsKeyId": KEY}
    # the channels are the project's files, content-addressed
    s3 = aws.client("s3")
    for channel in job["InputDataConfig"]:
        key = channel["DataSource"]["S3DataSource"]["S3Uri"].removeprefix(f"s3://{BUCKET}/")
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == (project / "datasets" / f"{channel['ChannelName']}.csv").read_bytes()
        assert key.startswith("training/data/") and key.endswith(f"/{channel['ChannelName']}.csv")


def test_an_unreachable_tracking_server_keeps_the_remote_experiment(aws, project, tmp_path,
                                                                   image_model):
    """As after a local train: one line naming `track`, exit 1, the experiment recorded."""
    push_image(aws)
    sagemaker_writes_the_model(aws, image_model)
    set_config(project, tracking_uri=UNREACHABLE)
    result = train_remotely(project, write_outputs(tmp_path, training=TRAINING))
    assert_error(result, 1, f"the MLflow tracking server {UNREACHABLE} cannot be reached",
                 "exp-001 is kept in", "`mlscaffold track exp-001`")
    assert (project / "experiments" / "exp-001" / "model.joblib").is_file()
    index = json.loads((project / "experiments" / "index.json").read_text())["experiments"]
    assert [e["id"] for e in index] == ["exp-001"] and "mlflow_run_id" not in index[0]


def test_without_mlflow_the_remote_experiment_is_recorded_with_a_warning(
        aws, project, tmp_path, monkeypatch, image_model):
    push_image(aws)
    sagemaker_writes_the_model(aws, image_model)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` fails as if missing
    result = train_remotely(project, write_outputs(tmp_path, training=TRAINING))
    assert result.code == 0, result.err
    assert result.err.startswith("warning: MLflow tracking skipped: mlflow-skinny is not "
                                 "installed here")
    assert (project / "experiments" / "exp-001" / "model.joblib").is_file()
    assert not (project / "mlruns").exists()


def test_an_older_image_without_the_model_card_still_imports(aws, project, tmp_path,
                                                            image_model):
    push_image(aws)
    (image_model / "model_card.md").unlink()
    sagemaker_writes_the_model(aws, image_model)
    result = train_remotely(project, write_outputs(tmp_path, training=TRAINING))
    assert result.code == 0, result.err
    assert {p.name for p in (project / "experiments" / "exp-001").iterdir()} == \
        set(remote_train.EXPERIMENT_FILES)


def test_data_is_uploaded_once_per_content(aws, project, tmp_path, image_model):
    push_image(aws)
    sagemaker_writes_the_model(aws, image_model)
    outputs = write_outputs(tmp_path, training=TRAINING)
    assert train_remotely(project, outputs).code == 0
    second = train_remotely(project, outputs)
    assert second.code == 0, second.err
    assert second.out.count("(already uploaded)") == 2
    assert (project / "experiments" / "exp-002").is_dir()


def test_on_demand_training_has_no_spot_settings():
    target = remote_train.training_target({"training": {**TRAINING, "spot": False}}, "dev")
    request = remote_train.training_job_request(target, JOB, "image:1", {"train": "k"}, 60.0,
                                                "roc_auc", 1, {})
    assert "EnableManagedSpotTraining" not in request and "CheckpointConfig" not in request
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 675}
    assert request["HyperParameters"] == {"time": "60", "seed": "1", "metric": "roc_auc"}


def test_an_image_not_pushed(aws, project, tmp_path):
    result = train_remotely(project, write_outputs(tmp_path, training=TRAINING))
    assert_error(result, 2, f"the image {REPOSITORY_URL}:0.1.0 has not been pushed",
                 "make image push STACK=dev IMAGE_TAG=0.1.0")
    assert not (project / "experiments" / "index.json").exists()


def test_no_credentials(project, tmp_path, monkeypatch):
    without_aws_credentials(monkeypatch, tmp_path)
    result = train_remotely(project, write_outputs(tmp_path, training=TRAINING))
    assert_error(result, 2, "no usable AWS credentials", "aws sso login")


def test_no_deployed_stack(project, tmp_path):
    result = train_remotely(project, write_outputs(tmp_path, vpc_id="vpc-1"))
    assert_error(result, 2, "stack dev has no output 'training'", "make deploy STACK=...")
    assert_error(run_cli(project, "train", "--on", "sagemaker"), 2,
                 "--on sagemaker needs the deployed stack", "--stack ENV")


@pytest.mark.parametrize("where", ["sagemaker", "eks"])
def test_a_project_without_an_image_cannot_train_remotely(project, tmp_path, where):
    set_config(project, serving="none")
    result = run_cli(project, "train", "--on", where, "--stack", "dev", "--outputs",
                     str(write_outputs(tmp_path, training=TRAINING)))
    assert_error(result, 2, f"--on {where} runs the project's image, which serving: none does "
                            "not build", "train here (--on local)")
    assert not list((project / "experiments").glob("exp-*"))


def test_a_failed_job_records_nothing(aws, project, tmp_path, monkeypatch):
    push_image(aws)
    client = aws.client("sagemaker")
    stubber = Stubber(client)
    stubber.add_response("describe_training_job", {
        "TrainingJobName": JOB, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
        f"training-job/{JOB}", "TrainingJobStatus": "Failed", "SecondaryStatus": "Failed",
        "FailureReason": "AlgorithmError: input channel 'validation' holds 2 CSV files",
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "AlgorithmSpecification": {"TrainingInputMode": "File"}, "ResourceConfig": {
            "VolumeSizeInGB": 30}, "StoppingCondition": {}, "CreationTime": "2026-12-02"},
        {"TrainingJobName": JOB})
    stubber.activate()
    real = remote_train.RemoteRun.client
    monkeypatch.setattr(remote_train.RemoteRun, "client", lambda self, service: client
                        if service == "sagemaker" else real(self, service))
    result = train_remotely(project, write_outputs(tmp_path, training=TRAINING))
    assert_error(result, 1, f"training job {JOB} failed: AlgorithmError: input channel "
                            "'validation' holds 2 CSV files; nothing was recorded",
                 "/aws/sagemaker/TrainingJobs")
    assert not (project / "experiments" / "index.json").exists()
    assert not list((project / "experiments").glob("exp-*"))


def test_ctrl_c_offers_to_stop_the_job(aws, project, tmp_path, monkeypatch):
    from sagemaker.core.resources import TrainingJob

    push_image(aws)
    calls = {"refresh": 0, "stop": 0}
    real_refresh = TrainingJob.refresh

    def refresh(self):
        calls["refresh"] += 1
        if calls["refresh"] == 1:
            raise KeyboardInterrupt
        return real_refresh(self)

    monkeypatch.setattr(TrainingJob, "refresh", refresh)
    # moto has no StopTrainingJob: the stop is recorded
    monkeypatch.setattr(TrainingJob, "stop", lambda self: calls.__setitem__("stop", 1))
    from click.testing import CliRunner

    from mlscaffold.cli import cli

    result = CliRunner().invoke(cli, [
        "train", "--project", str(project), "--on", "sagemaker", "--stack", "dev", "--outputs",
        str(write_outputs(tmp_path, training=TRAINING)), "--time", "5"], input="y\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"stop training job {JOB}? [Y/n]: y",
        f"error: training job {JOB} was stopped; nothing was recorded"]
    assert f"stopping {JOB}" in result.stdout
    assert calls["stop"] == 1
    assert not list((project / "experiments").glob("exp-*"))


def test_keep_running_leaves_the_job(aws, project, tmp_path, monkeypatch):
    from sagemaker.core.resources import TrainingJob

    from mlscaffold.errors import MlscaffoldError

    push_image(aws)
    monkeypatch.setattr(TrainingJob, "refresh", lambda self: (_ for _ in ()).throw(
        KeyboardInterrupt))
    stopped = []
    monkeypatch.setattr(TrainingJob, "stop", lambda self: stopped.append(True))
    target = remote_train.training_target({"training": TRAINING}, "dev")
    run = remote_train.RemoteRun(session=aws, echo=lambda _: None,
                                 confirm_stop=lambda _: False)
    config = ProjectConfig(root=project, name="lc-binary", task="binary-classification",
                           label="label", metric="roc_auc", metric_threshold=0.75)
    with pytest.raises(MlscaffoldError, match="keeps running") as raised:
        remote_train.run_on_sagemaker(config, target, run, image_tag="0.1.0", budget=5,
                                      metric=None, seed=1)
    assert f"--training-job-name {JOB}" in str(raised.value) and not stopped


# ------------------------------------------------------------------ EKS


def eks_outputs(tmp_path: Path) -> Path:
    return write_outputs(tmp_path, cluster=CLUSTER, training={
        **TRAINING, "eks": {"namespace": "ml-training", "service_account": "trainer"}})


def test_the_eks_job_manifest(project, tmp_path):
    from mlscaffold.policies.registry import RULES
    from mlscaffold.policies.rule import Subject
    from mlscaffold.stacks.config import platform_config
    from mlscaffold.stacks.karpenter import node_pool
    from mlscaffold.stacks.workloads import training_network_policies

    result = run_cli(project, "train", "--on", "eks", "--stack", "dev", "--outputs",
                     eks_outputs(tmp_path), "--time", "30", "--dry-run")
    assert result.code == 0, result.err
    manifest = yaml.safe_load(result.out)
    validate(manifest, "1.34.0", strict=True)
    pod = manifest["spec"]["template"]["spec"]
    assert manifest["metadata"]["namespace"] == "ml-training"
    assert pod["serviceAccountName"] == "trainer"
    assert [c["name"] for c in pod["initContainers"]] == ["fetch", "train"]
    train = pod["initContainers"][1]
    assert train["image"] == f"{REPOSITORY_URL}:0.1.0" and train["args"] == ["train"]
    assert train["resources"]["limits"] == {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"}
    assert pod["tolerations"] == [GPU_TOLERATION]
    fetch = pod["initContainers"][0]["args"][0]
    assert "/opt/ml/input/data/train/train.csv" in fetch and "training/data/" in fetch
    assert f"s3://{BUCKET}/training/jobs/" in pod["containers"][0]["args"][0]

    # our rules, against the stack's own node pools and the namespace's policies
    spec = yaml.safe_load((project / "mlscaffold.yaml").read_text())
    config = platform_config(spec, "dev")
    job = Subject("kubernetes:batch/v1:Job", "train", "urn:job", manifest)
    pools = [Subject("kubernetes:karpenter.sh/v1:NodePool", p.name, f"urn:{p.name}",
                     node_pool(p)) for p in config.cluster.pools]
    policies = [Subject("kubernetes:networking.k8s.io/v1:NetworkPolicy",
                        m["metadata"]["name"], f"urn:{m['metadata']['name']}", m)
                for m in training_network_policies("ml-training", vpc_cidr="10.0.0.0/16")]
    for name, rule in RULES.items():
        if rule.stack and name in ("gpu-workload-schedulable", "k8s-network-policy"):
            found = list(rule.check([job, *pools, *policies], rule.defaults("dev")))
            assert found == [], name
        elif not rule.stack and job.type in rule.resource_types:
            assert list(rule.check(job, rule.defaults("dev"))) == [], name
    # without the toleration the schedulability rule sees the pod stay Pending
    del manifest["spec"]["template"]["spec"]["tolerations"]
    unschedulable = Subject("kubernetes:batch/v1:Job", "train", "urn:job", manifest)
    rule = RULES["gpu-workload-schedulable"]
    assert list(rule.check([unschedulable, *pools], rule.defaults("dev")))


def test_eks_on_a_stack_without_a_cluster(project, tmp_path):
    result = run_cli(project, "train", "--on", "eks", "--stack", "dev", "--outputs",
                     write_outputs(tmp_path, training=TRAINING), "--dry-run")
    assert_error(result, 2, "stack dev has no EKS cluster",
                 "platform.cluster.enabled: true in infra/Pulumi.dev.yaml",
                 "make deploy STACK=dev")


def test_the_spec_chooses_where_train_runs(project, tmp_path):
    from .conftest import set_config

    set_config(project, train_on="eks")
    result = run_cli(project, "train", "--stack", "dev", "--outputs",
                     eks_outputs(tmp_path), "--dry-run")
    assert result.code == 0, result.err
    assert yaml.safe_load(result.out)["kind"] == "Job"
    local = run_cli(project, "train", "--on", "local", "--dry-run")
    assert_error(local, 2, "--stack and --dry-run are for remote runs")


def test_the_eks_download_maps_aws_errors_to_one_line(aws, tmp_path):
    """botocore's Stubber answers the download's HeadObject with AccessDenied (moto allows
    everything)."""
    import mlscaffold.eks_job as eks_job
    from mlscaffold.errors import MlscaffoldError

    client = aws.client("s3")
    stubber = Stubber(client)
    stubber.add_client_error("head_object", service_error_code="AccessDenied",
                             service_message="Access Denied", http_status_code=403)
    stubber.activate()
    run = remote_train.RemoteRun(session=aws, echo=lambda _: None, confirm_stop=lambda _: True)
    run.client = lambda service: client  # type: ignore[method-assign]
    target = remote_train.training_target({"training": TRAINING}, "dev")
    with pytest.raises(MlscaffoldError) as raised:
        eks_job._download_model(run, target, f"training/jobs/{JOB}/output/model", tmp_path)
    assert str(raised.value).startswith(
        f"AWS denied HeadObject: cannot download s3://{BUCKET}/training/jobs/{JOB}/output/"
        "model/model.joblib")
    assert "s3:PutObject and GetObject under training/" in raised.value.hint
