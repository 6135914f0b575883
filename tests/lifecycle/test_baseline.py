"""The Model Monitor baseline command against moto's S3 and SageMaker (no AWS account).

moto serves S3 and SageMaker's CreateProcessingJob, DescribeProcessingJob and
StopProcessingJob: the job is started by the SageMaker Python SDK (sagemaker-core's
DefaultModelMonitor.suggest_baseline), whose request goes through the client the test wraps
(Analyzer records it and writes the analyzer's results). botocore's Stubber answers the S3
errors moto does not make (a forbidden HeadObject, SlowDown)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlscaffold.lifecycle import baseline
from mlscaffold.lifecycle.config import load_project

from .conftest import assert_error, run_cli


def load_config(project):
    return load_project(project)[0]

REGION = "us-east-1"
BUCKET = "demo-dev-artifacts"
ACCOUNT = "1" * 12  # a made-up account
OUTPUT = {
    "region": REGION,
    "bucket": BUCKET,
    "role_arn": f"arn:aws:iam::{ACCOUNT}:role/demo-dev-baseline",
    "image_uri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sagemaker-model-monitor-analyzer",
    "kms_key_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/data",
    "subnet_ids": ["subnet-a", "subnet-b"],
    "security_group_ids": ["sg-monitor"],
    "instance_type": "ml.m5.xlarge",
    "data_prefix": "monitoring/baseline-data",
    "runs_prefix": "monitoring/baseline-runs",
    "baseline_prefix": "monitoring/baseline",
}
PUBLISHED = ["monitoring/baseline/statistics.json", "monitoring/baseline/constraints.json"]


@pytest.fixture
def target():
    return baseline.BaselineTarget(**OUTPUT)


@pytest.fixture
def aws(monkeypatch):
    """moto's S3 and SageMaker, with the artifact bucket made."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket=BUCKET)
        yield session


class Analyzer:
    """Stands in for the analyzer container: on create_processing_job it writes results for the
    uploaded data set (its columns) where the job's output goes, as the real job would."""

    def __init__(self, client, write_results=True):
        self._sagemaker, self._s3 = client.sagemaker, client.s3
        self.write_results = write_results
        self.requests = []

    def __getattr__(self, name):
        return getattr(self._sagemaker, name)

    def create_processing_job(self, **request):
        self.requests.append(request)
        response = self._sagemaker.create_processing_job(**request)
        if self.write_results:
            source = request["ProcessingInputs"][0]["S3Input"]["S3Uri"].split("/", 3)[3]
            body = self._s3.get_object(Bucket=BUCKET, Key=f"{source}/{baseline.DATASET_FILE}")
            columns = next(csv.reader(io.StringIO(body["Body"].read().decode())))
            output = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
            prefix = output.split("/", 3)[3]
            for name in baseline.RESULT_FILES:
                document = {"version": 0.0, "features": [{"name": c} for c in columns]}
                self._s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}",
                                    Body=json.dumps(document).encode())
        return response


def _client(aws, target, write_results=True):
    client = baseline.BaselineClient(target, session=aws)
    client.sagemaker = Analyzer(client, write_results)
    return client


def _read(aws, key):
    return aws.client("s3").get_object(Bucket=BUCKET, Key=key)


def test_dataset_puts_the_label_first_under_a_header(project):
    config = load_config(project)
    rows = list(csv.reader(io.StringIO(baseline.baseline_dataset(config).decode())))
    with (project / "datasets" / "train.csv").open() as handle:
        original = list(csv.reader(handle))
    assert rows[0][0] == config.label
    assert sorted(rows[0]) == sorted(original[0])
    assert len(rows) == len(original)
    label_at = original[0].index(config.label)
    assert rows[1][0] == original[1][label_at]


def test_job_name_is_a_valid_sagemaker_name():
    name = baseline.job_name("my_project." + "x" * 80, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert len(name) <= 63
    assert re.fullmatch(r"my-project-x+-baseline-20260102-030405-[0-9a-f]{4}", name)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)


def test_the_sdks_request_is_isolated_encrypted_and_reads_a_header(project, aws, target,
                                                                    monkeypatch):
    from sagemaker.core.model_monitor.model_monitoring import DefaultModelMonitor

    called = []
    real = DefaultModelMonitor.suggest_baseline

    def suggest_baseline(self, **arguments):
        called.append((self.image_uri, arguments))
        return real(self, **arguments)

    monkeypatch.setattr(DefaultModelMonitor, "suggest_baseline", suggest_baseline)
    client = _client(aws, target)
    job = baseline.start_baseline(load_config(project), target, client)
    # the SDK started the job, on the stack's analyzer image, without waiting for it
    ((image, arguments),) = called
    assert image == OUTPUT["image_uri"] and arguments["wait"] is False
    assert arguments["job_name"] == job.name
    (request,) = client.sagemaker.requests
    assert request["ProcessingJobName"] == job.name
    assert request["ProcessingInputs"][0]["S3Input"]["S3Uri"] == \
        f"s3://{BUCKET}/{job.data_key.rsplit('/', 1)[0]}"
    assert request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == \
        f"s3://{BUCKET}/{job.runs_key}"
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": baseline.MAX_RUNTIME_SECONDS}
    assert request["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
    assert request["NetworkConfig"]["VpcConfig"]["SecurityGroupIds"] == ["sg-monitor"]
    assert {"Key": "managed-by", "Value": "mlscaffold"} in request["Tags"]
    assert json.loads(request["Environment"]["dataset_format"]) == {
        "csv": {"header": True, "output_columns_position": "START"}}
    assert request["Environment"]["dataset_source"] == baseline.CONTAINER_INPUT
    assert request["ProcessingInputs"][0]["S3Input"]["LocalPath"] == baseline.CONTAINER_INPUT
    assert request["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert request["NetworkConfig"]["VpcConfig"]["Subnets"] == OUTPUT["subnet_ids"]
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == OUTPUT["kms_key_arn"]
    cluster = request["ProcessingResources"]["ClusterConfig"]
    assert cluster["VolumeKmsKeyId"] == OUTPUT["kms_key_arn"]
    assert cluster["InstanceType"] == "ml.m5.xlarge"
    assert request["AppSpecification"]["ImageUri"] == OUTPUT["image_uri"]
    assert request["RoleArn"] == OUTPUT["role_arn"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        (json.dumps({"endpoint_name": "x"}), "has no Model Monitor"),
        (json.dumps({"drift_baseline": {**OUTPUT, "bucket": ""}}), "drift_baseline.bucket"),
        (json.dumps({"drift_baseline": {"region": REGION}}), "lacks bucket"),
    ],
)
def test_bad_stack_outputs_are_named(text, message):
    with pytest.raises(baseline.ProjectError, match=message):
        baseline.load_target(text)


def test_target_reads_all_outputs_or_the_one(target):
    assert baseline.load_target(json.dumps({"drift_baseline": OUTPUT, "vpc_id": "v"})) == target
    assert baseline.load_target(json.dumps(OUTPUT)) == target


def test_baseline_is_made_and_published(project, aws, target):
    config = load_config(project)
    client = _client(aws, target)
    lines = []
    published = baseline.make_baseline(config, target, client, say=lines.append, poll_seconds=0)
    assert published == [f"s3://{BUCKET}/{key}" for key in PUBLISHED]
    (request,) = client.sagemaker.requests
    source = request["ProcessingInputs"][0]["S3Input"]["S3Uri"].split("/", 3)[3]
    uploaded = _read(aws, f"{source}/{baseline.DATASET_FILE}")
    assert uploaded["ServerSideEncryption"] == "aws:kms"
    assert uploaded["Body"].read() == baseline.baseline_dataset(config)
    statistics = _read(aws, PUBLISHED[0])
    features = json.loads(statistics["Body"].read())["features"]
    assert features[0]["name"] == config.label
    assert statistics["Metadata"][baseline.SHA_METADATA] == client.published_sha256()
    assert any("Completed" in line for line in lines)


def test_a_current_baseline_is_not_remade(project, aws, target):
    config = load_config(project)
    client = _client(aws, target)
    baseline.make_baseline(config, target, client, poll_seconds=0)
    lines = []
    assert baseline.make_baseline(config, target, client, say=lines.append) == []
    assert "nothing to do" in lines[0]
    assert len(client.sagemaker.requests) == 1
    baseline.make_baseline(config, target, client, force=True, poll_seconds=0)
    assert len(client.sagemaker.requests) == 2


def test_a_job_without_results_leaves_the_baseline_alone(project, aws, target):
    config = load_config(project)
    baseline.make_baseline(config, target, _client(aws, target), poll_seconds=0)
    before = _read(aws, PUBLISHED[0])["Body"].read()
    (project / "datasets" / "train.csv").write_text(
        (project / "datasets" / "train.csv").read_text() + "\n")  # new data: a new digest
    with pytest.raises(baseline.BaselineError, match=r"without .*statistics\.json"):
        baseline.make_baseline(config, target, _client(aws, target, write_results=False),
                               force=True, poll_seconds=0)
    assert _read(aws, PUBLISHED[0])["Body"].read() == before


def test_a_stopped_job_is_an_error_and_publishes_nothing(project, aws, target):
    config = load_config(project)
    client = _client(aws, target)
    job = baseline.start_baseline(config, target, client)
    client.sagemaker.stop_processing_job(ProcessingJobName=job.name)
    description = baseline.wait_for_job(client, job, poll_seconds=0)
    with pytest.raises(baseline.BaselineError, match="stopped"):
        baseline.publish(client, job, description)
    assert not client.exists(PUBLISHED[0])


def test_waiting_gives_up_after_the_timeout(target):
    class Slow:
        def describe_processing_job(self, ProcessingJobName):
            return {"ProcessingJobStatus": "InProgress"}

    client = type("Client", (), {"sagemaker": Slow(), "target": target})()
    ticks = iter(range(0, 10_000, 100))
    job = baseline.BaselineJob("job", "sha", "data", "runs")
    with pytest.raises(baseline.BaselineError, match="still InProgress"):
        baseline.wait_for_job(client, job, timeout_seconds=250, clock=lambda: next(ticks),
                              sleep=lambda seconds: None)


def test_dry_run_prints_the_request_without_aws(project, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"drift_baseline": OUTPUT}))
    result = run_cli(project, "baseline", "--outputs", outputs, "--dry-run")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert plan["dataset"]["columns"][0] == load_config(project).label
    assert plan["processing_job"]["monitor"]["role"] == OUTPUT["role_arn"]
    assert plan["processing_job"]["suggest_baseline"]["wait"] is False
    assert plan["publishes_to"] == [f"s3://{BUCKET}/{key}" for key in PUBLISHED]


def test_a_stack_without_model_monitor_is_one_line(project, tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"vpc_id": "vpc-1"}))
    result = run_cli(project, "baseline", "--outputs", outputs)
    assert_error(result, 2, f"the stack outputs on {outputs}", "no Model Monitor")


def test_a_forbidden_head_is_not_taken_for_no_baseline(project, target):
    """HeadObject of a missing object: 404 with s3:ListBucket, 403 without (AWS HeadObject API
    reference); a 403 must stop the run with what to grant, not start a job as if none existed."""
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing")
    client = baseline.BaselineClient(target, session=session)
    key = f"{OUTPUT['baseline_prefix']}/statistics.json"
    with Stubber(client.s3) as s3, Stubber(client.sagemaker) as sagemaker:
        # a HEAD answer has no body: botocore names the error by its status code
        s3.add_client_error("head_object", service_error_code="404", service_message="Not Found",
                            http_status_code=404, expected_params={"Bucket": BUCKET, "Key": key})
        assert client.published_sha256() is None
        s3.add_client_error("head_object", service_error_code="403", service_message="Forbidden",
                            http_status_code=403, expected_params={"Bucket": BUCKET, "Key": key})
        with pytest.raises(baseline.BaselineError) as caught, baseline.aws_errors():
            baseline.make_baseline(load_config(project), target, client)
        s3.assert_no_pending_responses()
        sagemaker.assert_no_pending_responses()  # no job was started
    assert str(caught.value) == (
        f"AWS: HeadObject on s3://{BUCKET}/{key} was forbidden (403); the credentials need "
        "s3:GetObject on the bucket's objects and s3:ListBucket on the bucket (without it S3 "
        "answers 403 for an object that does not exist yet)")


def test_other_aws_errors_are_one_line(project, target):
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing")
    client = baseline.BaselineClient(target, session=session)
    with Stubber(client.s3) as s3:
        s3.add_client_error("head_object", service_error_code="SlowDown",
                            service_message="Please reduce your request rate.",
                            http_status_code=503)
        with pytest.raises(baseline.BaselineError) as caught, baseline.aws_errors():
            baseline.make_baseline(load_config(project), target, client)
    message = str(caught.value)
    assert message.startswith("AWS: An error occurred (SlowDown) when calling the HeadObject "
                              "operation")
    assert "check the credentials" in message and "\n" not in message
