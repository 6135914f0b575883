"""Serving under mocks: the SageMaker endpoint, the KServe predictor's role, and the
InferenceService manifest (the in-cluster program applies it: test_workloads.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pulumi
import pulumi_aws as aws
import pytest

from mlscaffold.graph import GraphResource, ResourceGraph
from mlscaffold.stacks.config import SUPPORTED_KUBERNETES_VERSIONS, StackConfigError
from mlscaffold.stacks.model_keys import STAND_IN_MODEL_KEY, deployed_version
from mlscaffold.stacks.serving import (
    VARIANT_NAME,
    Serving,
    ServingArgs,
    deployable_model_key,
    inference_service_manifest,
)

from .conftest import SAGEMAKER_TRUST, assert_network_interfaces_in_vpc

MODEL_KEY = f"models/{'ab' * 32}/model.tar.gz"
MODEL_URL = f"s3://demo-dev-artifacts/{MODEL_KEY}"
REPOSITORY_ARN = "arn:aws:ecr:us-east-1:123456789012:repository/demo-dev-serving"
OUTPUTS = ("endpoint_name", "endpoint_arn", "execution_role_arn", "security_group_ids",
           "predictor_role_arn", "model_url", "image_uri", "model_key", "deployment")
# predictor fields of the InferenceService that are not part of a pod spec
EXTENSION_FIELDS = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget")


def _trust_policy(namespace: str, service_account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/mock"},
        "Condition": {"StringEquals": {
            "mock:sub": f"system:serviceaccount:{namespace}:{service_account}"}}}]})


def _args(config, key_arn: Any = "arn:aws:kms:us-east-1:123456789012:key/mock",
          **changes: Any) -> ServingArgs:
    values: dict[str, Any] = {
        "config": config.serving, "monitoring": config.monitoring, "prefix": config.prefix,
        "tags": config.tags, "kms_key_arn": key_arn, "model_name": "demo",
        "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-dev-serving:0.1.0",
        "model_data_bucket": "demo-dev-artifacts", "model_data_key": MODEL_KEY,
        "repository_arn": REPOSITORY_ARN,
        "capture_bucket_name": "demo-dev-capture",
        "private_subnet_ids": ["subnet-a", "subnet-b"], "vpc_id": "vpc-1",
        "vpc_cidr": "10.0.0.0/16", "s3_prefix_list_id": "pl-s3",
        "gpu_node_group": config.cluster.gpu_pools[0],
        "irsa_trust_policy": _trust_policy,
    }
    values.update(changes)
    return ServingArgs(**values)


@pytest.fixture
def serving_graph(config_for, run_mocked):
    def build(platform: str = "sagemaker", environment: str = "dev",
              overrides: dict | None = None) -> ResourceGraph:
        config = config_for(environment, overrides, serving=platform)

        def program() -> None:
            key = aws.kms.Key("data-key")
            serving = Serving("serving", _args(config, key.arn))
            pulumi.export("serving", {name: getattr(serving, name) for name in OUTPUTS
                                      if getattr(serving, name) is not None})

        return run_mocked(program, stack=environment)

    return build


def _one(graph: ResourceGraph, type_: str) -> GraphResource:
    (resource,) = graph.of_type(type_)
    return resource


def _statements(policy: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]}


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


# ---------------------------------------------------------------------------- SageMaker


def test_sagemaker_component_shape(serving_graph):
    graph = serving_graph()
    component = _one(graph, "mlscaffold:stacks:Serving")
    children = [r for r in graph.resources if r.urn != component.urn and r.name != "data-key"]
    assert children and all(r.parent == component.urn for r in children)
    outputs = graph.outputs["serving"]
    assert outputs["endpoint_name"] == "demo-dev"
    assert set(outputs) == {"endpoint_name", "endpoint_arn", "execution_role_arn",
                            "security_group_ids", "model_key", "deployment"}
    assert all(outputs.values())
    assert outputs["security_group_ids"] == ["serving-sg-id"]
    assert outputs["model_key"] == MODEL_KEY
    # what `mlscaffold endpoint prepare|verify|cleanup` read (the stack output `endpoint`)
    assert outputs["deployment"] == {
        "name": "demo-dev", "config_name": "serving-config",
        "model_name": "serving-model", "model_key": MODEL_KEY, "variant": VARIANT_NAME,
        "rollback_alarms": ["demo-dev-rollback-5xx", "demo-dev-rollback-latency-p99"],
        "model_name_base": "serving-model", "config_name_base": "serving-config"}


def test_model_versions_are_retained_and_named_per_version(serving_graph):
    """A replaced model or endpoint configuration may still be in use after an alarm
    rollback (hashicorp/terraform-provider-aws#48997): Pulumi keeps them in AWS. Their names
    are left to Pulumi's auto-naming, so each replacement gets a new one."""
    graph = serving_graph()
    retained = {r.type for r in graph.resources if r.options.get("retain_on_delete")}
    assert retained == {"aws:sagemaker/model:Model",
                        "aws:sagemaker/endpointConfiguration:EndpointConfiguration"}
    for type_ in retained:
        assert "name" not in _one(graph, type_).inputs
    endpoint = _one(graph, "aws:sagemaker/endpoint:Endpoint")
    assert not endpoint.options and endpoint.inputs["name"] == "demo-dev"


def test_sagemaker_names_must_fit_with_the_auto_name_suffix(config_for, run_mocked):
    config = config_for("dev")
    fits = run_mocked(lambda: Serving("a" * 40 + "-serving", _args(config)))  # 40+8+7+8 = 63
    assert _one(fits, "aws:sagemaker/endpointConfiguration:EndpointConfiguration").name == (
        "a" * 40 + "-serving-config")
    with pytest.raises(ValueError) as caught:
        Serving("a" * 41 + "-serving", _args(config))
    assert str(caught.value) == (
        f"SageMaker names of {'a' * 41 + '-serving'!r} would be too long: "
        f"{'a' * 41 + '-serving-config'!r} plus Pulumi's 8-character suffix exceeds "
        "63 characters; shorten the project or environment name")


def test_the_model_key_is_required_to_deploy_and_stood_in_for_a_preview(config_for,
                                                                        run_mocked):
    config = config_for("dev", {"serving": {"model_key": MODEL_KEY}})
    missing = config_for("staging")
    assert deployable_model_key(config.serving, "dev") == MODEL_KEY

    def program() -> None:
        pulumi.export("key", deployable_model_key(missing.serving, "staging"))

    assert run_mocked(program, preview=True).outputs["key"] == STAND_IN_MODEL_KEY
    with pytest.raises(StackConfigError) as caught:
        run_mocked(program)
    assert str(caught.value) == (
        "stack config platform.serving.model_key: not set, and serving.platform sagemaker "
        "needs the model version to serve; `make deploy STACK=staging` sets it to the version "
        "the stack's model registry serves (EXP=exp-NNN registers one first); by hand, "
        "`mlscaffold model served --stack staging --stage STAGE` prints the key to set with "
        "`pulumi config set --path platform.serving.model_key KEY`")


def test_model_is_network_isolated_in_the_vpc(serving_graph):
    graph = serving_graph()
    model = _one(graph, "aws:sagemaker/model:Model").inputs
    assert model["enableNetworkIsolation"] is True
    assert model["vpcConfig"]["subnets"] == ["subnet-a", "subnet-b"]
    (group_id,) = model["vpcConfig"]["securityGroupIds"]
    assert group_id == "serving-sg-id"
    container = model["primaryContainer"]
    assert container["modelDataUrl"] == MODEL_URL
    assert container["image"].endswith(":0.1.0")
    assert not any(key.startswith("SAGEMAKER_") for key in container["environment"])

    group = _one(graph, "aws:ec2/securityGroup:SecurityGroup").inputs
    assert not group.get("ingress")
    assert {(e["fromPort"], e["toPort"]) for e in group["egress"]} == {(443, 443)}
    assert [e.get("cidrBlocks") for e in group["egress"]] == [["10.0.0.0/16"], None]
    assert group["egress"][1]["prefixListIds"] == ["pl-s3"]


def test_endpoint_configuration_encrypts_and_captures(serving_graph):
    config = _one(serving_graph(), "aws:sagemaker/endpointConfiguration:"
                                   "EndpointConfiguration").inputs
    assert config["kmsKeyArn"].startswith("arn:aws:kms:")
    (variant,) = config["productionVariants"]
    assert variant["variantName"] == VARIANT_NAME
    assert (variant["instanceType"], variant["initialInstanceCount"]) == ("ml.t2.medium", 1)
    capture = config["dataCaptureConfig"]
    assert capture["enableCapture"] is True
    assert capture["initialSamplingPercentage"] == 20
    assert capture["destinationS3Uri"] == "s3://demo-dev-capture/data-capture"
    assert capture["kmsKeyId"].startswith("arn:aws:kms:")
    assert [o["captureMode"] for o in capture["captureOptions"]] == ["Input", "Output"]


def test_no_volume_key_on_instances_with_local_nvme(serving_graph):
    graph = serving_graph(overrides={"serving": {"instance_type": "ml.g5.xlarge"}})
    config = _one(graph, "aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs
    assert "kmsKeyArn" not in config
    assert config["dataCaptureConfig"]["kmsKeyId"].startswith("arn:aws:kms:")


@pytest.mark.parametrize(("environment", "routing", "bounds"), [
    ("dev", "ALL_AT_ONCE", (1, 2)), ("prod", "CANARY", (2, 6))])
def test_blue_green_rollback_and_autoscaling(serving_graph, config_for, environment, routing,
                                             bounds):
    graph = serving_graph(environment=environment)
    prefix = f"demo-{environment}"
    endpoint = _one(graph, "aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["name"] == prefix
    deployment = endpoint.inputs["deploymentConfig"]
    policy = deployment["blueGreenUpdatePolicy"]
    traffic = policy["trafficRoutingConfiguration"]
    assert traffic["type"] == routing
    assert traffic["waitIntervalInSeconds"] > 0 and policy["terminationWaitInSeconds"] > 0
    if routing == "CANARY":
        assert traffic["canarySize"] == {"type": "INSTANCE_COUNT", "value": 1}

    alarms = {a.inputs["name"]: a for a in graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert {a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"]} == set(
        alarms) == {f"{prefix}-rollback-5xx", f"{prefix}-rollback-latency-p99"}
    # alarms name the endpoint without depending on it: no cycle
    assert all(endpoint.urn not in a.dependencies for a in alarms.values())
    assert all(a.urn in endpoint.dependencies for a in alarms.values())
    monitoring = config_for(environment).monitoring
    latency = alarms[f"{prefix}-rollback-latency-p99"].inputs
    assert (latency["metricName"], latency["extendedStatistic"]) == ("ModelLatency", "p99")
    assert latency["threshold"] == monitoring.latency_p99_ms * 1000
    assert latency["dimensions"] == {"EndpointName": prefix, "VariantName": VARIANT_NAME}
    errors = alarms[f"{prefix}-rollback-5xx"].inputs
    assert errors["threshold"] == monitoring.error_rate_5xx
    assert {q["metric"]["metricName"] for q in errors["metricQueries"] if q.get("metric")} == {
        "Invocation5XXErrors", "Invocations"}

    target = _one(graph, "aws:appautoscaling/target:Target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == bounds
    assert target["resourceId"] == f"endpoint/{prefix}/variant/{VARIANT_NAME}"
    assert target["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    scaling = _one(graph, "aws:appautoscaling/policy:Policy").inputs
    assert scaling["policyType"] == "TargetTrackingScaling"
    tracking = scaling["targetTrackingScalingPolicyConfiguration"]
    serving = config_for(environment).serving
    assert tracking["targetValue"] == serving.target_invocations_per_instance
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance")


def test_execution_role_is_least_privilege(serving_graph):
    graph = serving_graph()
    # only this account's SageMaker resources may use the role (confused deputy)
    (trust,) = json.loads(_one(graph, "aws:iam/role:Role").inputs["assumeRolePolicy"])[
        "Statement"]
    assert trust == SAGEMAKER_TRUST
    policy = _one(graph, "aws:iam/rolePolicy:RolePolicy").inputs["policy"]
    statements = _statements(policy)
    # every version under models/: a replaced instance still loads its own during an update
    assert statements["ModelArtifacts"]["Resource"] == "arn:aws:s3:::demo-dev-artifacts/models/*"
    assert statements["DataCapture"]["Resource"] == "arn:aws:s3:::demo-dev-capture/data-capture/*"
    assert statements["ImagePull"]["Resource"] == REPOSITORY_ARN
    assert_network_interfaces_in_vpc(policy, "vpc-1")
    for statement in statements.values():
        assert "*" not in _as_list(statement["Action"])
        assert not any(a.endswith(":*") for a in _as_list(statement["Action"]))

    logs = _one(graph, "aws:cloudwatch/logGroup:LogGroup").inputs
    assert logs["name"] == "/aws/sagemaker/Endpoints/demo-dev"
    assert logs["retentionInDays"] == 30 and logs["kmsKeyId"].startswith("arn:aws:kms:")


def test_given_security_groups_are_used(config_for, run_mocked):
    config = config_for("dev")
    graph = run_mocked(lambda: Serving("serving", _args(
        config, security_group_ids=["sg-given"], vpc_cidr=None, s3_prefix_list_id=None)))
    assert not graph.of_type("aws:ec2/securityGroup:SecurityGroup")
    model = _one(graph, "aws:sagemaker/model:Model").inputs
    assert model["vpcConfig"]["securityGroupIds"] == ["sg-given"]


def test_missing_inputs_are_refused(config_for):
    config = config_for("dev")
    with pytest.raises(ValueError, match="needs repository_arn, vpc_cidr"):
        Serving("serving", _args(config, repository_arn=None, vpc_cidr=None))
    # the execution role manages network interfaces in this VPC only
    with pytest.raises(ValueError, match=r"needs vpc_id$"):
        Serving("serving", _args(config, vpc_id=None, security_group_ids=["sg-given"]))
    with pytest.raises(ValueError, match="platform is 'none'"):
        Serving("serving", _args(config_for("dev", serving="none")))
    with pytest.raises(ValueError, match="needs irsa_trust_policy"):
        Serving("serving", _args(config_for("dev", serving="kserve"), irsa_trust_policy=None))


# ---------------------------------------------------------------------------- KServe


def test_kserve_needs_only_the_predictor_role_from_aws(serving_graph):
    graph = serving_graph("kserve")
    component = _one(graph, "mlscaffold:stacks:Serving")
    children = [r for r in graph.resources if r.urn != component.urn and r.name != "data-key"]
    assert all(r.parent == component.urn for r in children)
    assert {r.type for r in children} == {"aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"}
    (trust,) = json.loads(_one(graph, "aws:iam/role:Role").inputs["assumeRolePolicy"])[
        "Statement"]
    assert trust["Condition"]["StringEquals"]["mock:sub"] == (
        "system:serviceaccount:ml-serving:demo-predictor")
    statements = _statements(_one(graph, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert statements["ModelArtifacts"]["Resource"] == "arn:aws:s3:::demo-dev-artifacts/models/*"
    assert statements["ModelListing"]["Condition"] == {"StringLike": {"s3:prefix": "models/*"}}
    assert graph.outputs["serving"] == {
        "predictor_role_arn": "arn:aws:iam::123456789012:role/serving-predictor-role",
        "model_url": MODEL_URL, "model_key": MODEL_KEY,
        "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-dev-serving:0.1.0"}


def _deployment(manifest: dict) -> dict:
    """An apps/v1 Deployment with the InferenceService's pod template (what RawDeployment
    creates), for the upstream schemas: the InferenceService CRD is not among them."""
    pod = {k: v for k, v in copy.deepcopy(manifest["spec"]["predictor"]).items()
           if k not in EXTENSION_FIELDS}
    labels = {"app": manifest["metadata"]["name"]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": manifest["metadata"]["name"],
                         "namespace": manifest["metadata"]["namespace"]},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


@pytest.mark.parametrize("gpus", [1, 0])
def test_pod_template_is_valid_kubernetes(config_for, gpus):
    config = config_for("prod", {"serving": {"gpus": gpus}}, serving="kserve")
    manifest = inference_service_manifest(
        "demo", "ml-serving", "registry/demo:0.1.0", config.serving,
        storage_uri=MODEL_URL, service_account_name="demo-predictor",
        gpu_node_group=config.cluster.gpu_pools[0])
    for version in SUPPORTED_KUBERNETES_VERSIONS:
        kubernetes_validate.validate(_deployment(manifest), f"{version}.0", strict=True)
    predictor = manifest["spec"]["predictor"]
    assert ("tolerations" in predictor) is bool(gpus)
    assert ("nvidia.com/gpu" in predictor["containers"][0]["resources"]["limits"]) is bool(gpus)
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)


def test_manifest_refuses_what_cannot_run(config_for):
    config = config_for("prod", serving="kserve").serving
    common = {"storage_uri": MODEL_URL, "service_account_name": "demo-predictor"}
    with pytest.raises(ValueError, match=r"no GPU pool was given; pass one of cluster\.gpu_pools"):
        inference_service_manifest("demo", "ml-serving", "image", config, **common)
    with pytest.raises(ValueError, match="must be lower-case"):
        inference_service_manifest("Demo_Model", "ml-serving", "image",
                                   config.model_copy(update={"gpus": 0}), **common)
    with pytest.raises(ValueError, match="min_replicas must be at least 1"):
        inference_service_manifest("demo", "ml-serving", "image",
                                   config.model_copy(update={"gpus": 0, "min_replicas": 0}),
                                   **common)


# ---------------------------------------------------------------------------- progressive delivery

CHALLENGER_KEY = f"models/{'cd' * 32}/model.tar.gz"


def test_standard_and_serverless_inference_services(config_for):
    """Standard: an HPA on CPU; Serverless: Knative's autoscaler (no scaleMetric: KServe
    refuses cpu with it), a cluster-local Knative Service, the canary share when given."""
    def manifest(mode: str, **kwargs: Any) -> dict[str, Any]:
        config = config_for("dev", {"serving": {"kserve_mode": mode}}, serving="kserve")
        return inference_service_manifest(
            "demo", "ml-serving", "registry/demo:0.1.0", config.serving, storage_uri=MODEL_URL,
            service_account_name="demo-predictor", **kwargs)

    standard, serverless = manifest("standard"), manifest("serverless")
    assert standard["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "serving.kserve.io/autoscalerClass": "hpa"}
    assert standard["metadata"]["labels"] == {"app.kubernetes.io/name": "demo",
                                              "app.kubernetes.io/component": "model"}
    assert (standard["spec"]["predictor"]["scaleMetric"],
            standard["spec"]["predictor"]["scaleTarget"]) == ("cpu", 70)
    assert serverless["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Serverless"}
    assert serverless["metadata"]["labels"] == {
        "app.kubernetes.io/name": "demo", "app.kubernetes.io/component": "model",
        "networking.knative.dev/visibility": "cluster-local"}
    predictor = serverless["spec"]["predictor"]
    assert not {"scaleMetric", "scaleTarget", "canaryTrafficPercent"} & set(predictor)
    assert {k: v for k, v in standard["spec"]["predictor"].items()
            if k not in ("scaleMetric", "scaleTarget")} == predictor
    assert manifest("serverless", canary_traffic_percent=10)["spec"]["predictor"][
        "canaryTrafficPercent"] == 10
    # Standard mode has no canary share to give
    assert "canaryTrafficPercent" not in manifest(
        "standard", canary_traffic_percent=10)["spec"]["predictor"]


def test_serverless_scales_to_zero_when_asked(config_for):
    config = config_for("dev", {"serving": {"kserve_mode": "serverless", "min_replicas": 0}},
                        serving="kserve")
    manifest = inference_service_manifest(
        "demo", "ml-serving", "image", config.serving, storage_uri=MODEL_URL,
        service_account_name="demo-predictor")
    assert manifest["spec"]["predictor"]["minReplicas"] == 0


KEY = f"models/{'ab' * 32}/model.tar.gz"


@pytest.mark.parametrize(("serving", "version", "percent"), [
    ({"kserve_mode": "serverless", "rollout": {"strategy": "canary", "canary_percent": 20}},
     (KEY, "1.4.0"), 20),
    # a decision about this very version: promoted (all the traffic) or rolled back (none)
    ({"kserve_mode": "serverless", "rollout": {"strategy": "canary", "canary_decision": {
        "outcome": "promote", "model_key": KEY, "image_tag": "1.4.0"}}}, (KEY, "1.4.0"), 100),
    ({"kserve_mode": "serverless", "rollout": {"strategy": "canary", "canary_decision": {
        "outcome": "rollback", "model_key": KEY, "image_tag": "1.4.0"}}}, (KEY, "1.4.0"), 0),
    # a decision about another version (another image of the same model too) opens a canary
    ({"kserve_mode": "serverless", "rollout": {"strategy": "canary", "canary_decision": {
        "outcome": "rollback", "model_key": KEY, "image_tag": "1.4.0"}}}, (KEY, "1.4.1"), 10),
    ({"kserve_mode": "serverless", "rollout": {"strategy": "canary", "canary_decision": {
        "outcome": "promote", "model_key": CHALLENGER_KEY, "image_tag": "1.4.0"}}},
     (KEY, "1.4.0"), 10),
    # no canary: KServe moves all the traffic to the new revision once it is ready
    ({"kserve_mode": "serverless", "rollout": {"strategy": "all-at-once"}}, (KEY, "1.4.0"),
     None),
    ({"kserve_mode": "standard"}, (KEY, "1.4.0"), None),
])
def test_canary_traffic_percent(config_for, serving, version, percent):
    config = config_for("prod", {"serving": serving}, serving="kserve").serving
    assert config.canary_traffic_percent(*version) == percent


def test_the_deployed_version_from_the_cluster_output():
    assert deployed_version(f"s3://demo-dev-artifacts-1a2b/{KEY}",
                            "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-dev:1.4.0") == (
        KEY, "1.4.0")


@pytest.mark.parametrize(("rollout", "traffic"), [
    ({"strategy": "canary", "canary_percent": 20, "wait_seconds": 900},
     {"type": "CANARY", "waitIntervalInSeconds": 900,
      "canarySize": {"type": "CAPACITY_PERCENT", "value": 20}}),
    ({"strategy": "linear", "linear_step_percent": 25, "wait_seconds": 300},
     {"type": "LINEAR", "waitIntervalInSeconds": 300,
      "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 25}}),
    ({"strategy": "all-at-once", "wait_seconds": 120},
     {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 120}),
])
def test_rollout_strategies_shift_traffic_as_configured(serving_graph, rollout, traffic):
    graph = serving_graph(environment="prod", overrides={"serving": {"rollout": {
        **rollout, "termination_wait_seconds": 60, "max_seconds": 7200}}})
    deployment = _one(graph, "aws:sagemaker/endpoint:Endpoint").inputs["deploymentConfig"]
    assert deployment["blueGreenUpdatePolicy"] == {
        "trafficRoutingConfiguration": traffic, "terminationWaitInSeconds": 60,
        "maximumExecutionTimeoutInSeconds": 7200}
    assert len(deployment["autoRollbackConfiguration"]["alarms"]) == 2


def test_an_ab_test_adds_a_weighted_challenger_variant_watched_by_its_own_alarms(serving_graph):
    graph = serving_graph(environment="prod", overrides={"serving": {"ab_test": {
        "challenger_model_key": CHALLENGER_KEY, "challenger_weight": 20,
        "challenger_instance_count": 2}}})
    variants = _one(graph, "aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs[
        "productionVariants"]
    assert [(v["variantName"], v["initialVariantWeight"], v["initialInstanceCount"])
            for v in variants] == [("primary", 80, 2), ("challenger", 20, 2)]
    models = {m.name: m for m in graph.of_type("aws:sagemaker/model:Model")}
    assert set(models) == {"serving-model", "serving-challenger"}
    assert models["serving-challenger"].inputs["primaryContainer"]["modelDataUrl"] == (
        f"s3://demo-dev-artifacts/{CHALLENGER_KEY}")
    assert models["serving-challenger"].options.get("retain_on_delete")
    assert [v["modelName"] for v in variants] == ["serving-model", "serving-challenger"]
    # each variant is watched: an update rolls back when either one's alarms fire
    alarms = {a.inputs["name"]: a.inputs for a in
              graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms) == {"demo-prod-rollback-5xx", "demo-prod-rollback-latency-p99",
                           "demo-prod-challenger-rollback-5xx",
                           "demo-prod-challenger-rollback-latency-p99"}
    assert alarms["demo-prod-challenger-rollback-latency-p99"]["dimensions"] == {
        "EndpointName": "demo-prod", "VariantName": "challenger"}
    assert alarms["demo-prod-challenger-rollback-5xx"]["alarmDescription"] == (
        "5xx rate (%) of the endpoint's challenger variant; rolls back deployments")
    endpoint = _one(graph, "aws:sagemaker/endpoint:Endpoint").inputs
    assert {a["alarmName"] for a in endpoint["deploymentConfig"]["autoRollbackConfiguration"][
        "alarms"]} == set(alarms)
    # the challenger does not autoscale; `mlscaffold endpoint cleanup` finds its old models
    assert _one(graph, "aws:appautoscaling/target:Target").inputs["resourceId"] == (
        "endpoint/demo-prod/variant/primary")
    deployment = graph.outputs["serving"]["deployment"]
    assert deployment["challenger"] == {"variant": "challenger", "model_key": CHALLENGER_KEY,
                                        "weight": 20, "model_name_base": "serving-challenger"}
    assert deployment["rollback_alarms"] == [
        "demo-prod-rollback-5xx", "demo-prod-rollback-latency-p99",
        "demo-prod-challenger-rollback-5xx", "demo-prod-challenger-rollback-latency-p99"]


def test_sagemaker_names_of_an_ab_test_must_fit_too(config_for):
    config = config_for("dev", {"serving": {"ab_test": {"challenger_model_key": CHALLENGER_KEY}}})
    name = "a" * 37 + "-serving"  # fits without a challenger (-config), not with it
    with pytest.raises(ValueError) as caught:
        Serving(name, _args(config))
    assert str(caught.value) == (
        f"SageMaker names of {name!r} would be too long: {name + '-challenger'!r} plus "
        "Pulumi's 8-character suffix exceeds 63 characters; shorten the project or "
        "environment name")


@pytest.mark.parametrize(("platform", "environment", "serving", "message"), [
    ("kserve", "prod", {"rollout": {"strategy": "canary", "canary_percent": 20}},
     "rollout.strategy canary: no released KServe sends part of the traffic to a new version "
     "in the Standard (RawDeployment) mode mlscaffold runs (v0.20.0's spec.canary runs it at "
     "its own address with no share of the traffic; canaryTrafficPercent needs Knative): use "
     "auto or all-at-once, set serving.kserve_mode: serverless, or serve with sagemaker"),
    ("kserve", "dev", {"kserve_mode": "serverless", "rollout": {"strategy": "linear"}},
     "rollout.strategy linear: KServe's Serverless mode sends one share of the traffic to a new "
     "version (canaryTrafficPercent), which you then promote or roll back, never linear steps: "
     "use canary, auto or all-at-once, or serve with sagemaker"),
    ("kserve", "prod", {"kserve_mode": "serverless",
                        "ab_test": {"challenger_model_key": CHALLENGER_KEY}},
     "ab_test: KServe's Serverless mode splits traffic only between the newest version and the "
     "last one promoted (canaryTrafficPercent), never between two versions named by key: use "
     "rollout.strategy canary, or serve with sagemaker"),
    ("kserve", "dev", {"kserve_mode": "serverless", "client_namespaces": ["apps"]},
     "client_namespaces: in KServe's Serverless mode every request reaches the predictor "
     "through Knative's gateway, so a NetworkPolicy cannot limit callers by namespace: remove "
     "client_namespaces, or set serving.kserve_mode: standard"),
    ("sagemaker", "dev", {"kserve_mode": "serverless"},
     "kserve_mode serverless applies to KServe serving, and serving.platform is sagemaker: "
     "remove kserve_mode, or change serving to kserve in mlscaffold.yaml"),
    ("kserve", "dev", {"kserve_mode": "serverless", "rollout": {
        "strategy": "canary", "canary_decision": {"outcome": "promote", "image_tag": "1.0",
                                                  "model_key": "models/latest.tar.gz"}}},
     "'models/latest.tar.gz' is not a model key; keys are models/<sha256 of the model's "
     "files>/model.tar.gz (the stack output model_key)"),
    ("kserve", "dev", {"rollout": {"strategy": "linear"}},
     "rollout.strategy linear: no released KServe sends part of the traffic to a new version "
     "in the Standard (RawDeployment) mode mlscaffold runs (v0.20.0's spec.canary runs it at "
     "its own address with no share of the traffic; canaryTrafficPercent needs Knative): use "
     "auto or all-at-once, or serve with sagemaker"),
    ("kserve", "prod", {"ab_test": {"challenger_model_key": CHALLENGER_KEY}},
     "ab_test: no released KServe weights requests between two model versions in the Standard "
     "(RawDeployment) mode mlscaffold runs (v0.20.0's spec.canary gives the second version its "
     "own address and no share of the traffic): remove ab_test, or serve with sagemaker"),
    ("sagemaker", "dev", {"rollout": {"strategy": "linear"}},
     "rollout.strategy linear shifts traffic to part of the new fleet first, which needs at "
     "least 2 instances, and min_instances is 1: raise min_instances (and "
     "initial_instance_count) to 2, or use all-at-once"),
    ("sagemaker", "prod", {"rollout": {"strategy": "canary"},
                           "ab_test": {"challenger_model_key": CHALLENGER_KEY}},
     "rollout.strategy canary shifts each variant's traffic to part of its new fleet first, "
     "and the challenger has 1 instance: raise ab_test.challenger_instance_count to 2, or use "
     "all-at-once"),
    ("sagemaker", "prod", {"model_key": CHALLENGER_KEY,
                           "ab_test": {"challenger_model_key": CHALLENGER_KEY}},
     "ab_test.challenger_model_key is the model the primary variant serves (model_key); give "
     "the other version's key"),
    ("sagemaker", "prod", {"rollout": {"strategy": "linear", "linear_step_percent": 10,
                                       "wait_seconds": 600}},
     "max_seconds 3600 does not exceed the update's waits (10 x wait_seconds 600 + "
     "termination_wait_seconds 300 = 6300); raise max_seconds or shorten the waits"),
    ("sagemaker", "prod", {"ab_test": {"challenger_model_key": "models/latest.tar.gz"}},
     "'models/latest.tar.gz' is not a model key; keys are models/<sha256 of the model's "
     "files>/model.tar.gz, as `mlscaffold status` lists them"),
])
def test_what_a_mode_cannot_do_is_one_line_naming_the_setting(config_for, platform, environment,
                                                              serving, message):
    with pytest.raises(StackConfigError) as caught:
        config_for(environment, {"serving": serving}, serving=platform)
    assert str(caught.value).split(": ", 1)[1] == message
    assert caught.value.key.startswith("platform.serving")
