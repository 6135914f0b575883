"""`mlscaffold endpoint prepare|verify|cleanup` against moto's SageMaker, Application Auto
Scaling and CloudWatch (botocore's Stubber where moto lacks a status), with the outputs a
deployed stack exports."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from mlscaffold.endpoint import (
    SCALABLE_DIMENSION,
    Preparation,
    cleanup_endpoint,
    endpoint_target,
    prepare_update,
    verify_endpoint,
)
from mlscaffold.errors import MlscaffoldError, UsageError
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

REGION = "us-east-1"
NAME = "shop-dev"
BUCKET = "shop-dev-artifacts-0123"
REPOSITORY = f"{DEFAULT_ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/shop-dev-serving"
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/shop-dev-serving-execution-role"
ALARMS = [f"{NAME}-rollback-5xx", f"{NAME}-rollback-latency-p99"]
RESOURCE_ID = f"endpoint/{NAME}/variant/primary"


def key(n: int) -> str:
    return f"models/{n:064x}/model.tar.gz"


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "shop", "serving": "sagemaker"})
    return create_project(tmp_path_factory.mktemp("p") / "shop", spec, git=False).path


@pytest.fixture
def project(made, tmp_path) -> Path:
    return shutil.copytree(made, tmp_path / "shop")


def _set_serving(project: Path, **values) -> None:
    path = project / "infra" / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["shop:platform"]["serving"].update(values)
    path.write_text(yaml.safe_dump(document))


class Account:
    """moto's SageMaker with versions deployed the way the stack deploys them."""

    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.autoscaling = boto3.client("application-autoscaling", region_name=REGION)
        self.cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        self.backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
        self.versions = 0

    def version(self, model_key: str, image_tag: str = "abc123",
                instance_type: str = "ml.t2.medium", count: int = 1) -> tuple[str, str]:
        """A model and endpoint config with auto-generated names, one minute apart."""
        self.versions += 1
        suffix = f"{self.versions:07x}"
        model, config = f"shop-dev-serving-model-{suffix}", f"shop-dev-serving-config-{suffix}"
        self.sagemaker.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": f"{REPOSITORY}:{image_tag}", "ModelDataUrl": f"s3://{BUCKET}/{model_key}"})
        self.sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "primary", "ModelName": model, "InstanceType": instance_type,
            "InitialInstanceCount": count, "InitialVariantWeight": 1.0}])
        self.backend.endpoint_configs[config].creation_time = datetime.datetime(
            2026, 12, 1, 12, self.versions)
        return model, config

    def serve(self, config: str) -> None:
        """The endpoint on `config` (created, or switched as UpdateEndpoint would)."""
        if NAME in self.backend.endpoints:
            self.backend.endpoints[NAME].endpoint_config_name = config
        else:
            self.sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=config)
            self.autoscaling.register_scalable_target(
                ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID,
                ScalableDimension=SCALABLE_DIMENSION, MinCapacity=1, MaxCapacity=2)

    def scale(self, count: int) -> None:
        self.sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=NAME, DesiredWeightsAndCapacities=[
                {"VariantName": "primary", "DesiredInstanceCount": count}])

    def targets(self) -> list[str]:
        return [t["ResourceId"] for t in self.autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker")["ScalableTargets"]]

    def configs(self) -> set[str]:
        return {c["EndpointConfigName"] for c in self.sagemaker.list_endpoint_configs(
            MaxResults=100)["EndpointConfigs"]}

    def models(self) -> set[str]:
        return {m["ModelName"] for m in self.sagemaker.list_models(MaxResults=100)["Models"]}


@pytest.fixture
def account():
    with mock_aws():
        yield Account()


def outputs(config: str, model: str, model_key: str) -> dict:
    """What `pulumi stack output --json` prints after the stack deployed `config`."""
    return {"artifact_bucket": BUCKET, "repository_url": REPOSITORY, "endpoint_name": NAME,
            "model_key": model_key,
            "endpoint": {"name": NAME, "config_name": config, "model_name": model,
                         "model_key": model_key, "variant": "primary", "rollback_alarms": ALARMS,
                         "config_name_base": "shop-dev-serving-config",
                         "model_name_base": "shop-dev-serving-model"}}


def _target(deployed: dict):
    return endpoint_target(deployed, "dev", REGION)


def _write(project: Path, deployed: dict) -> str:
    path = project / "outputs.json"
    path.write_text(json.dumps(deployed))
    return str(path)


# ---------------------------------------------------------------- verify


def test_verify_passes_on_the_deployed_config(project, account, run_cli):
    model, config = account.version(key(1))
    account.serve(config)
    result = verify_endpoint(_target(outputs(config, model, key(1))),
                             sagemaker=account.sagemaker)
    assert (result.endpoint, result.config_name, result.polls) == (NAME, config, 0)
    cli = run_cli(["endpoint", "verify", str(project), "--stack", "dev", "--outputs",
                   _write(project, outputs(config, model, key(1)))])
    assert cli.exit_code == 0, cli.stderr
    assert cli.stdout == (f"endpoint {NAME} is InService on endpoint config {config}, serving "
                          f"{key(1)}\n")


def test_verify_fails_on_a_rolled_back_update_naming_alarms_and_model(project, account,
                                                                     run_cli):
    """The provider reported success; the endpoint runs the old config (#48997)."""
    _, old = account.version(key(1))
    new_model, new = account.version(key(2))
    account.serve(old)
    for alarm in ALARMS:
        account.cloudwatch.put_metric_alarm(
            AlarmName=alarm, MetricName="ModelLatency", Namespace="AWS/SageMaker",
            Statistic="Average", Period=60, EvaluationPeriods=2, Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold")
    account.cloudwatch.set_alarm_state(AlarmName=ALARMS[0], StateValue="ALARM",
                                       StateReason="5xx rate above 5%")
    account.cloudwatch.set_alarm_state(AlarmName=ALARMS[1], StateValue="OK",
                                       StateReason="back to normal")
    deployed = outputs(new, new_model, key(2))
    with pytest.raises(MlscaffoldError) as caught:
        verify_endpoint(_target(deployed), sagemaker=account.sagemaker,
                        cloudwatch=account.cloudwatch)
    expected = (
        f"endpoint {NAME} rolled back to endpoint config {old} (rollback alarms: "
        f"{ALARMS[0]} ALARM, {ALARMS[1]} OK); the new model {key(2)} "
        f"(endpoint config {new}) did not deploy; see the alarms in CloudWatch and the "
        f"endpoint's logs in /aws/sagemaker/Endpoints/{NAME}; fix the model or restore the "
        "previous one (make rollback STAGE=...), then deploy again (docs/deploy.md, A new "
        "model in production)")
    assert str(caught.value) == expected
    cli = run_cli(["endpoint", "verify", str(project), "--stack", "dev", "--outputs",
                   _write(project, deployed)])
    assert (cli.exit_code, cli.stderr) == (1, f"error: {expected}\n")


def _described(status: str, config: str = "cfg-1", **extra) -> dict:
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    return {"EndpointName": NAME, "EndpointArn": f"arn:aws:sagemaker:{REGION}:"
            f"{DEFAULT_ACCOUNT_ID}:endpoint/{NAME}", "EndpointConfigName": config,
            "EndpointStatus": status, "CreationTime": now, "LastModifiedTime": now, **extra}


def test_verify_waits_while_the_endpoint_updates():
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x",
                          aws_secret_access_key="x")
    slept: list[float] = []
    with Stubber(client) as stubber:
        for status in ("Updating", "RollingBack", "InService"):
            stubber.add_response("describe_endpoint", _described(status),
                                 {"EndpointName": NAME})
        result = verify_endpoint(_target(outputs("cfg-1", "m-1", key(1))), sagemaker=client,
                                 sleep=slept.append, poll_seconds=30)
        stubber.assert_no_pending_responses()
    assert result.polls == 2 and slept == [30, 30]


@pytest.mark.parametrize(("described", "message"), [
    (_described("Failed", FailureReason="container exited"),
     f"endpoint {NAME} is Failed on endpoint config cfg-1 (container exited); see its events "
     f"and the logs in /aws/sagemaker/Endpoints/{NAME}; run `mlscaffold endpoint verify "
     "--stack dev` again once it settles"),
    (_described("Updating"),
     f"endpoint {NAME} is Updating on endpoint config cfg-1 after 1 minutes; see its events "
     f"and the logs in /aws/sagemaker/Endpoints/{NAME}; run `mlscaffold endpoint verify "
     "--stack dev` again once it settles"),
])
def test_verify_reports_an_endpoint_that_is_not_in_service(described, message):
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stubber:
        for _ in range(3):
            stubber.add_response("describe_endpoint", described, {"EndpointName": NAME})
        with pytest.raises(MlscaffoldError) as caught:
            verify_endpoint(_target(outputs("cfg-1", "m-1", key(1))), sagemaker=client,
                            sleep=lambda _: None, poll_seconds=30, wait_seconds=60)
    assert str(caught.value) == message


def test_verify_reports_a_missing_endpoint(account):
    with pytest.raises(MlscaffoldError) as caught:
        verify_endpoint(_target(outputs("cfg-1", "m-1", key(1))), sagemaker=account.sagemaker)
    assert str(caught.value) == (
        f"endpoint {NAME} does not exist, though stack dev deployed it; deploy again: the "
        "deploy refreshes the stack's record and creates it")


def test_an_old_stack_without_the_endpoint_output_is_a_usage_error():
    with pytest.raises(UsageError) as caught:
        endpoint_target({"endpoint_name": NAME}, "dev", REGION)
    assert str(caught.value) == (
        "stack dev has no output 'endpoint', which describes its SageMaker endpoint (serving: "
        "sagemaker); deploy the stack with this mlscaffold version first (make deploy "
        "STACK=...)")


# ---------------------------------------------------------------- cleanup


def test_cleanup_deletes_unused_versions_and_keeps_the_previous_one(project, account, run_cli):
    versions = [account.version(key(n)) for n in (1, 2, 3, 4)]
    for _, config in versions:
        account.serve(config)
    # another stack's version: never touched
    account.sagemaker.create_model(ModelName="shop-prod-serving-model-1234abc",
                                   ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "image"})
    account.sagemaker.create_endpoint_config(
        EndpointConfigName="shop-prod-serving-config-1234abc", ProductionVariants=[{
            "VariantName": "primary", "ModelName": "shop-prod-serving-model-1234abc",
            "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 2}])
    model, config = versions[-1]
    result = cleanup_endpoint(_target(outputs(config, model, key(4))),
                              sagemaker=account.sagemaker)
    assert result.kept_configs == (versions[2][1], config)
    assert result.deleted_configs == (versions[1][1], versions[0][1])
    assert result.kept_models == (versions[2][0], model)
    assert set(result.deleted_models) == {versions[0][0], versions[1][0]}
    assert account.configs() == {versions[2][1], config, "shop-prod-serving-config-1234abc"}
    assert account.models() == {versions[2][0], model, "shop-prod-serving-model-1234abc"}

    again = run_cli(["endpoint", "cleanup", str(project), "--stack", "dev", "--outputs",
                     _write(project, outputs(config, model, key(4))), "--keep-previous", "0"])
    assert again.exit_code == 0, again.stderr
    assert "shop-prod-serving-config-1234abc" in account.configs()
    assert again.stdout == (f"deleted endpoint config {versions[2][1]}\n"
                            f"deleted model {versions[2][0]}\n"
                            f"kept endpoint configs: {config}; models: {model}\n")


def test_cleanup_after_a_rollback_keeps_what_runs_and_what_was_deployed(account):
    versions = [account.version(key(n)) for n in (1, 2, 3)]
    account.serve(versions[1][1])  # the update to version 3 rolled back to version 2
    result = cleanup_endpoint(_target(outputs(versions[2][1], versions[2][0], key(3))),
                              sagemaker=account.sagemaker, keep_previous=0)
    assert result.kept_configs == (versions[1][1], versions[2][1])
    assert result.deleted_configs == (versions[0][1],)


def test_cleanup_deletes_nothing_while_the_endpoint_updates(account):
    versions = [account.version(key(n)) for n in (1, 2)]
    account.serve(versions[1][1])
    account.backend.endpoints[NAME].endpoint_status = "Updating"
    with pytest.raises(MlscaffoldError) as caught:
        cleanup_endpoint(_target(outputs(versions[1][1], versions[1][0], key(2))),
                         sagemaker=account.sagemaker, keep_previous=0)
    assert str(caught.value) == (
        f"endpoint {NAME} is Updating: cleanup deletes nothing while an endpoint may still need "
        "an old version; run it again once the endpoint is InService (`mlscaffold endpoint "
        "verify` waits for that)")
    assert len(account.configs()) == 2 and len(account.models()) == 2


# ---------------------------------------------------------------- prepare


def _prepare(project: Path, deployed: dict, account: Account, model_key: str,
             image_tag: str = "abc123") -> Preparation:
    return prepare_update(project, "dev", model_key=model_key, image_tag=image_tag,
                          outputs_source=_write(project, deployed), sagemaker=account.sagemaker,
                          autoscaling=account.autoscaling, sleep=lambda _: None)


def test_prepare_a_first_deployment_has_nothing_to_do(project, account):
    bootstrap = {"artifact_bucket": BUCKET, "repository_url": REPOSITORY}
    assert _prepare(project, bootstrap, account, key(1)) == Preparation(
        False, None, ("stack dev has no SageMaker endpoint (yet): nothing to prepare",))


def test_prepare_keeps_the_running_count_when_nothing_changes(project, account):
    """Autoscaling moved the fleet to 2: an unchanged deploy must not make a new config."""
    model, config = account.version(key(1))
    account.serve(config)
    account.scale(2)
    preparation = _prepare(project, outputs(config, model, key(1)), account, key(1))
    assert preparation == Preparation(False, 1, ())
    assert preparation.shell() == "refresh=\ninstance_count=1\n"
    assert account.targets() == [RESOURCE_ID]


@pytest.mark.parametrize(("scaled", "bounds", "expected"), [
    (2, None, 2), (1, None, 1),
    (5, {"min_instances": 2, "max_instances": 4, "initial_instance_count": 2}, 4),
    (1, {"min_instances": 2, "max_instances": 4, "initial_instance_count": 2}, 2)])
def test_a_new_model_starts_at_the_fleets_size_within_the_bounds(project, account, scaled,
                                                                 bounds, expected):
    if bounds:
        _set_serving(project, **bounds)
    model, config = account.version(key(1))
    account.serve(config)
    account.scale(scaled)
    preparation = _prepare(project, outputs(config, model, key(1)), account, key(2))
    assert (preparation.refresh, preparation.instance_count) == (False, expected)
    low, high = (bounds["min_instances"], bounds["max_instances"]) if bounds else (1, 2)
    assert preparation.notes == (
        f"the new endpoint configuration starts with {expected} instance"
        f"{'s' if expected != 1 else ''} (now {scaled}, bounds [{low}, {high}])",)
    # a new image is a new configuration too
    assert _prepare(project, outputs(config, model, key(1)), account, key(1),
                    image_tag="def456").instance_count == expected


def test_an_instance_type_change_leaves_autoscaling_first(project, account, run_cli):
    """SageMaker refuses to change the instance type of a variant that autoscales: the
    target is deregistered, and pulumi up refreshes to register it again."""
    model, config = account.version(key(1))
    account.serve(config)
    account.scale(2)
    account.autoscaling.put_scaling_policy(
        PolicyName=f"{NAME}-invocations", ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID,
        ScalableDimension=SCALABLE_DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 200.0, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    _set_serving(project, instance_type="ml.m5.large")
    cli = run_cli(["endpoint", "prepare", str(project), "--stack", "dev", "--model-key",
                   key(1), "--image-tag", "abc123", "--outputs",
                   _write(project, outputs(config, model, key(1)))])
    assert cli.exit_code == 0, cli.stderr
    assert cli.stdout == "refresh=--refresh\ninstance_count=2\n"
    assert cli.stderr == (
        f"endpoint: the instance type changes from ml.t2.medium to ml.m5.large: deregistered "
        f"{RESOURCE_ID} from autoscaling (SageMaker refuses the update otherwise); pulumi up "
        "registers it again after the update\n"
        "endpoint: the new endpoint configuration starts with 2 instances (now 2, bounds "
        "[1, 2])\n")
    assert account.targets() == []
    assert account.autoscaling.describe_scaling_policies(
        ServiceNamespace="sagemaker")["ScalingPolicies"] == []


def test_prepare_refreshes_after_a_rollback_or_a_lost_target(project, account):
    _, old = account.version(key(1))
    new_model, new = account.version(key(2))
    account.serve(old)  # the update to `new` rolled back
    preparation = _prepare(project, outputs(new, new_model, key(2)), account, key(2))
    assert preparation.refresh and preparation.notes[0] == (
        f"endpoint {NAME} runs endpoint config {old}, the stack recorded {new} (a rolled-back "
        "update): refreshing the stack's record first")
    account.serve(new)
    account.autoscaling.deregister_scalable_target(  # a deploy stopped after `prepare`
        ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID,
        ScalableDimension=SCALABLE_DIMENSION)
    preparation = _prepare(project, outputs(new, new_model, key(2)), account, key(2))
    assert preparation.refresh and preparation.notes == (
        f"{RESOURCE_ID} is not registered for autoscaling: refreshing so that pulumi up "
        "registers it again",)


def test_prepare_refreshes_when_the_endpoint_is_gone(project, account):
    preparation = _prepare(project, outputs("cfg", "model", key(1)), account, key(1))
    assert preparation == Preparation(True, None, (
        f"endpoint {NAME} is in the stack but not in AWS: refreshing the stack's record "
        "first",))


def test_prepare_refuses_a_failed_endpoint_and_a_bad_key(project, account):
    model, config = account.version(key(1))
    account.serve(config)
    account.backend.endpoints[NAME].endpoint_status = "Failed"
    account.backend.endpoints[NAME].failure_reason = "image not found"
    with pytest.raises(MlscaffoldError) as caught:
        _prepare(project, outputs(config, model, key(1)), account, key(1))
    assert str(caught.value) == (
        f"endpoint {NAME} is Failed (image not found), so it cannot be updated now; see its "
        f"reason and the logs in /aws/sagemaker/Endpoints/{NAME}; delete it (`aws sagemaker "
        f"delete-endpoint --endpoint-name {NAME}`) and deploy again")
    with pytest.raises(UsageError, match=r"--model-key 'models/production/model.tar.gz' is "
                                         r"not a model key"):
        _prepare(project, outputs(config, model, key(1)), account,
                 "models/production/model.tar.gz")


def test_cleanup_of_an_ab_test_keeps_the_challenger_in_use_and_deletes_old_ones(account):
    """An A/B endpoint: its configs hold a primary and a challenger variant; challenger models
    that no kept config uses go as well."""
    def version(n: int) -> tuple[str, str]:
        model, config = account.version(key(n))
        challenger = f"shop-dev-serving-challenger-{n:07x}"
        account.sagemaker.create_model(ModelName=challenger, ExecutionRoleArn=ROLE,
                                       PrimaryContainer={"Image": f"{REPOSITORY}:abc123"})
        account.backend.endpoint_configs[config].production_variants.append({
            "VariantName": "challenger", "ModelName": challenger,
            "InstanceType": "ml.t2.medium", "InitialInstanceCount": 1,
            "InitialVariantWeight": 10.0})
        return (model, challenger), config

    versions = [version(n) for n in (1, 2, 3)]
    for _, config in versions:
        account.serve(config)
    (model, challenger), config = versions[-1]
    deployed = outputs(config, model, key(3))
    deployed["endpoint"]["challenger"] = {"variant": "challenger", "model_key": key(9),
                                          "weight": 10,
                                          "model_name_base": "shop-dev-serving-challenger"}
    result = cleanup_endpoint(_target(deployed), sagemaker=account.sagemaker, keep_previous=0)
    assert result.deleted_configs == (versions[1][1], versions[0][1])
    assert set(result.deleted_models) == {versions[0][0][0], versions[1][0][0],
                                          versions[0][0][1], versions[1][0][1]}
    assert result.kept_models == (challenger, model)
    assert account.models() == {model, challenger}
