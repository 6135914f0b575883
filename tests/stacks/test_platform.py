"""The whole platform: every serving x feature-store x environment combination builds under
mocks with the expected resources, wired, tagged and valid for Kubernetes."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import kubernetes_validate
import pulumi
import pytest

from mlscaffold.graph import (
    MOCK_ACCOUNT_ID,
    ResourceGraph,
    merge_graphs,
    run_under_mocks,
    stack_reference_name,
)
from mlscaffold.sample_data import write_sample_datasets
from mlscaffold.stacks import ClusterWorkloads, ClusterWorkloadsArgs, MlPlatform, MlPlatformArgs
from mlscaffold.stacks.config import (
    CLOUDWATCH_OBSERVABILITY_ADDON,
    PlatformConfig,
    StackConfigError,
)
from mlscaffold.stacks.model_keys import STAND_IN_MODEL_KEY

from ..policies.conftest import check
from .conftest import SAGEMAKER_TRUST, assert_network_interfaces_in_vpc, make_config

BUCKET = "aws:s3/bucket:Bucket"
LOGGING = "aws:s3/bucketLogging:BucketLogging"

COMBINATIONS = list(itertools.product(("sagemaker", "kserve", "none"), ("sagemaker", "none"),
                                      ("dev", "staging", "prod")))
ALWAYS = {
    "mlscaffold:stacks:MlPlatform", "mlscaffold:stacks:Network",
    "mlscaffold:stacks:ModelRegistry", "mlscaffold:stacks:Monitoring",
    "aws:ec2/vpc:Vpc", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:ec2/flowLog:FlowLog",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup", "aws:ecr/repository:Repository",
    "aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:sns/topic:Topic",
    "aws:cloudwatch/dashboard:Dashboard",
    "mlscaffold:stacks:AuditTrail", "aws:cloudtrail/trail:Trail",
    "aws:s3/bucketLogging:BucketLogging",
}
# the cluster, what only its nodes need, and what runs inside it: only where something runs
# on it (KServe serving, or cluster.enabled for training)
CLUSTER = {
    "mlscaffold:stacks:GpuCluster", "mlscaffold:stacks:ApiRelay", "aws:eks/cluster:Cluster",
    "aws:eks/addon:Addon", "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "aws:eks/nodeGroup:NodeGroup",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/instance:Instance", "aws:ec2/natGateway:NatGateway",
    "aws:ec2/internetGateway:InternetGateway",
    "mlscaffold:stacks:Karpenter", "aws:sqs/queue:Queue", "aws:cloudwatch/eventRule:EventRule",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "mlscaffold:stacks:ClusterWorkloads", "kubernetes:helm.sh/v3:Release",
    "kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
}
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
# the cluster's GPU and CPU alarms come from the CloudWatch Observability add-on, except with
# KServe, whose Prometheus watches the GPUs
NODE_ALARMS = {"aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/logGroup:LogGroup"}


def cloudwatch_addons(graph: ResourceGraph) -> list:
    return [a for a in graph.of_type("aws:eks/addon:Addon")
            if a.inputs["addonName"] == CLOUDWATCH_OBSERVABILITY_ADDON]
BY_SERVING = {
    "sagemaker": {"mlscaffold:stacks:Serving", "aws:sagemaker/model:Model",
                  "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                  "aws:sagemaker/endpoint:Endpoint", "aws:appautoscaling/policy:Policy",
                  "aws:sagemaker/monitoringSchedule:MonitoringSchedule"},
    "kserve": {"mlscaffold:stacks:Serving", *CLUSTER,
               "kubernetes:serving.kserve.io/v1beta1:InferenceService",
               "kubernetes:core/v1:Namespace"},
    "none": set(),
}
FEATURE_STORE = {"mlscaffold:stacks:FeatureStore", "aws:sagemaker/featureGroup:FeatureGroup",
                 "aws:glue/catalogDatabase:CatalogDatabase",
                 # `train --data feature-store`: the Athena workgroup and query policy
                 "mlscaffold:stacks:TrainingData", "aws:athena/workgroup:Workgroup"}
ROOTS = {"mlscaffold:stacks:MlPlatform", "mlscaffold:stacks:ClusterWorkloads"}
# the model version `make deploy` uploads and sets (platform.serving.model_key)
MODEL_KEY = f"models/{'c0' * 32}/model.tar.gz"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    return write_sample_datasets(folder, "binary-classification", "label")[0]


def _build(config: PlatformConfig, dataset: Path, preview: bool = False) -> ResourceGraph:
    """The base program's graph, merged with the in-cluster program's when there is a cluster
    (fed the base's outputs, as the real deployment does); a deployment (not `preview`) serves
    MODEL_KEY unless the config names a model."""
    if not preview and config.serving.model_key is None:
        config = config.model_copy(update={
            "serving": config.serving.model_copy(update={"model_key": MODEL_KEY})})

    def program() -> None:
        platform = MlPlatform(config.prefix, MlPlatformArgs(config=config, dataset=dataset))
        for name, value in platform.exports().items():
            pulumi.export(name, value)

    base = run_under_mocks(program, project=config.project, stack=config.environment,
                           region=config.region, preview=preview)
    if "cluster" not in base.outputs:
        return base
    reference = stack_reference_name(config.project, config.environment)

    def in_cluster() -> None:
        ClusterWorkloads(config.prefix, ClusterWorkloadsArgs(
            config=config, cluster=pulumi.StackReference(reference).require_output("cluster")))

    inner = run_under_mocks(in_cluster, project=f"{config.project}-cluster",
                            stack=config.environment, region=config.region, preview=preview,
                            stack_references={reference: base.outputs})
    return merge_graphs(base, inner)


@pytest.mark.parametrize(("serving", "feature_store", "environment"), COMBINATIONS)
def test_platform_builds_with_the_expected_resources(dataset, serving, feature_store,
                                                     environment):
    config = make_config(environment, serving=serving, feature_store=feature_store)
    graph = _build(config, dataset)
    types = {r.type for r in graph.resources}
    expected = ALWAYS | BY_SERVING[serving] | (FEATURE_STORE if feature_store != "none" else set())
    assert expected <= types, sorted(expected - types)
    if serving == "none":
        assert "mlscaffold:stacks:Serving" not in types
    if serving == "kserve":
        assert not NODE_ALARMS & types - {"aws:cloudwatch/logGroup:LogGroup"}
        assert not cloudwatch_addons(graph)
    else:  # nothing runs on a cluster: none is built, nor what only its nodes need
        assert not CLUSTER & types, sorted(CLUSTER & types)
        assert "aws:eks/addon:Addon" not in types
    if feature_store == "none":
        assert not FEATURE_STORE & types

    # two trees at most: the platform, and what runs inside its cluster
    by_urn = graph.by_urn()
    for resource in graph.resources:
        node = resource
        while node.parent:
            node = by_urn[node.parent]
        assert node.type in ROOTS, f"{resource.name} is outside the platform"

    # every taggable AWS resource carries the platform's tags
    for resource in graph.resources:
        if resource.type.startswith("aws:") and isinstance(resource.inputs.get("tags"), dict):
            for key, value in config.tags.items():
                assert resource.inputs["tags"].get(key) == value, (resource.name, key)

    # GPU capacity is Karpenter's: no GPU node group, a NodePool per GPU pool and one for the
    # CPU pool
    assert not [r for r in graph.of_type("aws:eks/nodeGroup:NodeGroup") if r.inputs.get("taints")]
    pools = graph.of_type(NODE_POOL)
    assert len(pools) == (len(config.cluster.gpu_pools) + 1 if serving == "kserve" else 0)
    if serving == "kserve":
        assert config.cluster.cpu_pool.name in {p.inputs["metadata"]["name"] for p in pools}
    capacity = ["on-demand"] if environment == "prod" else ["spot"]
    for pool in pools:
        requirements = {r["key"]: r["values"]
                        for r in pool.inputs["spec"]["template"]["spec"]["requirements"]}
        assert requirements["karpenter.sh/capacity-type"] == capacity
        # a new account has no GPU quota: no GPU node at all until something asks for one
        assert "replicas" not in pool.inputs["spec"]


def test_stack_outputs_are_wired(dataset):
    config = make_config("dev", serving="sagemaker", feature_store="sagemaker")
    graph = _build(config, dataset)
    outputs = graph.outputs
    assert "cluster_name" not in outputs and "cluster" not in outputs
    assert outputs["endpoint_name"] == "demo-dev"
    (group,) = graph.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    assert outputs["feature_group"] == group.inputs["featureGroupName"]
    # what `mlscaffold features ingest` reads: the region and the deployed schema
    settings = outputs["feature_store"]
    assert settings["region"] == "us-east-1"
    assert [(f["name"], f["type"]) for f in settings["features"]] == [
        (d["featureName"], d["featureType"]) for d in group.inputs["featureDefinitions"]]
    assert settings["record_identifier"] == group.inputs["recordIdentifierFeatureName"]
    assert settings["event_time"] == group.inputs["eventTimeFeatureName"]
    # what `train --data feature-store` reads: the workgroup, writing into the artifact bucket
    (workgroup,) = graph.of_type("aws:athena/workgroup:Workgroup")
    assert outputs["training_data"]["workgroup"] == workgroup.inputs["name"]
    assert outputs["training_data"]["results_uri"] == \
        f"s3://{outputs['artifact_bucket']}/training/queries/"
    assert outputs["training_data"]["table"] == outputs["feature_group"].replace("-", "_")
    for key in ("vpc_id", "artifact_bucket", "repository_url", "model_package_group",
                "alert_topic_arn"):
        assert outputs[key], key
    # the model version served, and what `mlscaffold endpoint verify` compares the endpoint with
    assert outputs["model_key"] == MODEL_KEY
    (endpoint,) = graph.of_type("aws:sagemaker/endpoint:Endpoint")
    assert outputs["endpoint"]["name"] == endpoint.inputs["name"] == "demo-dev"
    assert outputs["endpoint"]["config_name"] == endpoint.inputs["endpointConfigName"]
    assert outputs["endpoint"]["model_key"] == MODEL_KEY
    (model,) = graph.of_type("aws:sagemaker/model:Model")
    assert model.inputs["primaryContainer"]["modelDataUrl"] == (
        f"s3://{outputs['artifact_bucket']}/{MODEL_KEY}")


@pytest.mark.parametrize("serving", ["sagemaker", "kserve"])
def test_serving_deploys_only_a_named_model_version(dataset, serving):
    """`pulumi up` without platform.serving.model_key is refused before anything is built;
    `pulumi preview` plans with the stand-in key."""
    config = make_config("dev", serving=serving)
    assert config.serving.model_key is None
    refused: list[StackConfigError] = []

    def program() -> None:
        try:
            MlPlatform(config.prefix, MlPlatformArgs(config=config, dataset=dataset))
        except StackConfigError as error:
            refused.append(error)

    # refused before the first registration: nothing of the stack changes
    assert run_under_mocks(program, project="demo", stack="dev").resources == []
    (error,) = refused
    assert error.key == "platform.serving.model_key"
    assert ("`make deploy STACK=dev` sets it to the version the stack's model registry serves"
            in str(error))
    graph = _build(config, dataset, preview=True)
    assert graph.outputs["model_key"] == STAND_IN_MODEL_KEY
    # nothing to serve, nothing needed
    assert "model_key" not in _build(make_config("dev", serving="none"), dataset).outputs


def test_a_cluster_stack_exports_what_the_in_cluster_program_reads(dataset):
    config = make_config("dev", serving="kserve")
    graph = _build(config, dataset)
    cluster = graph.outputs["cluster"]
    assert graph.outputs["cluster_name"] == cluster["name"] == "demo-dev-eks"
    assert cluster["relay_instance_id"] == "demo-dev-cluster-api-relay-instance-id"
    assert cluster["node_groups"] == ["demo-dev-cluster-system"]
    assert cluster["karpenter"] == {
        "interruption_queue": graph.named("demo-dev-cluster-karpenter-interruptions").outputs[
            "name"],
        "instance_profile": graph.named("demo-dev-cluster-karpenter-node-profile").outputs[
            "name"]}
    assert cluster["roles"] == {
        "predictor": graph.named("demo-dev-serving-predictor-role").outputs["arn"],
        "alertmanager": graph.named("demo-dev-monitoring-alertmanager-role").outputs["arn"]}
    assert cluster["serving"]["image_uri"] == f"{graph.outputs['repository_url']}:0.1.0"
    assert cluster["serving"]["model_url"] == (
        f"s3://{graph.outputs['artifact_bucket']}/{MODEL_KEY}")
    assert cluster["alert_topic_arn"] == graph.outputs["alert_topic_arn"]


@pytest.mark.parametrize("serving", ["sagemaker", "none"])
def test_a_cluster_for_training_is_built_on_request(dataset, serving):
    config = make_config("dev", {"cluster": {"enabled": True}}, serving=serving)
    types = {r.type for r in _build(config, dataset).resources}
    assert types >= CLUSTER, sorted(CLUSTER - types)
    assert "kubernetes:serving.kserve.io/v1beta1:InferenceService" not in types


def test_without_a_cluster_the_vpc_has_no_internet_path(dataset):
    graph = _build(make_config("prod", serving="sagemaker"), dataset)
    assert not graph.of_type("aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip",
                             "aws:ec2/internetGateway:InternetGateway")
    subnets = graph.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 3 and all("private" in s.name for s in subnets)
    (endpoint,) = graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"  # S3, for the model artifacts
    assert not graph.of_type("aws:ec2/route:Route")


def test_kserve_needs_the_cluster():
    with pytest.raises(StackConfigError, match=r"kserve runs on the EKS cluster: set "
                                               r"cluster\.enabled to true"):
        make_config("dev", {"cluster": {"enabled": False}}, serving="kserve")


def test_the_program_logs_the_derived_schema(dataset, caplog):
    config = make_config("dev", feature_store="sagemaker",
                         features={"types": {"support_tickets": "Fractional"}})
    with caplog.at_level(logging.INFO):
        graph = _build(config, dataset)
    (message,) = [r.getMessage() for r in caplog.records
                  if r.getMessage().startswith("feature group schema")]
    assert "  support_tickets: Fractional (declared; column 'support_tickets')" in message
    assert "  customer_id: String (inferred; column 'customer_id') record identifier" in message
    assert "  event_time: String (generated; filled at ingestion) event time" in message
    (group,) = graph.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    assert {"featureName": "support_tickets", "featureType": "Fractional"} in \
        group.inputs["featureDefinitions"]


def test_without_a_feature_store_nothing_is_exported_for_it(dataset):
    outputs = _build(make_config("dev"), dataset).outputs
    assert "feature_group" not in outputs and "feature_store" not in outputs
    assert "training_data" not in outputs


@pytest.mark.parametrize("serving", ["sagemaker", "none"])
def test_cloudwatch_observability_addon_is_wired_to_the_cluster(dataset, serving):
    config = make_config("dev", {"cluster": {"enabled": True}}, serving=serving)
    graph = _build(config, dataset)
    (addon,) = cloudwatch_addons(graph)
    assert addon.inputs["clusterName"] == "demo-dev-eks"
    (system,) = graph.of_type("aws:eks/nodeGroup:NodeGroup")
    assert system.urn in addon.dependencies  # its pods need nodes
    # trusted through the cluster's OIDC provider, for the agent's service account only
    role = graph.named("demo-dev-monitoring-cloudwatch-agent-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert "system:serviceaccount:amazon-cloudwatch:cloudwatch-agent" in (
        trust["Condition"]["StringEquals"].values())
    alarms = {a.inputs["name"]: a.inputs
              for a in graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["demo-dev-cluster-gpu-utilization"]["dimensions"] == {
        "ClusterName": "demo-dev-eks"}


def test_data_key_policy_lets_only_the_services_that_need_it_use_the_key(dataset):
    config = make_config("dev")
    key = _build(config, dataset).named("demo-dev-data-key")
    assert key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    services = {s["Principal"].get("Service") for s in statements} - {None}
    assert services == {"logs.us-east-1.amazonaws.com", "cloudwatch.amazonaws.com"}
    # CloudWatch may use it for this account's alarms publishing to the alert topic only
    alarms = next(s for s in statements if s["Sid"] == "CloudWatchAlarmsToSns")
    assert alarms["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{MOCK_ACCOUNT_ID}:alarm:*"},
        "StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": (
            f"arn:aws:sns:us-east-1:{MOCK_ACCOUNT_ID}:demo-dev-alerts")}}
    topic = _build(config, dataset).named("demo-dev-monitoring-alerts")
    assert topic.outputs["arn"] == alarms["Condition"]["StringEquals"][
        "kms:EncryptionContext:aws:sns:topicArn"]


@pytest.mark.parametrize(("serving", "feature_store"), [("sagemaker", "sagemaker"),
                                                        ("kserve", "none")])
def test_data_buckets_are_logged_and_audited(dataset, serving, feature_store):
    config = make_config("dev", serving=serving, feature_store=feature_store)
    graph = _build(config, dataset)
    buckets = {b.name for b in graph.of_type(BUCKET)}
    data = {"demo-dev-registry-artifacts"}
    if serving == "sagemaker":
        data.add("demo-dev-capture")
    if feature_store == "sagemaker":
        data.add("demo-dev-features-offline-store")
    assert buckets == data | {"demo-dev-audit-logs"}

    # server access logs of every data bucket go to the log bucket, which logs nothing itself
    logging = {r.inputs["bucket"]: r.inputs for r in graph.of_type(LOGGING)}
    assert set(logging) == data
    assert {r["targetBucket"] for r in logging.values()} == {"demo-dev-audit-logs-id"}
    log_policy = json.loads(graph.named("demo-dev-audit-logs-policy").inputs["policy"])
    delivery = next(s for s in log_policy["Statement"] if s["Sid"] == "S3ServerAccessLogs")
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert set(delivery["Condition"]["ArnLike"]["aws:SourceArn"]) == {
        f"arn:aws:s3:::{b}" for b in data}
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": MOCK_ACCOUNT_ID}
    encryption = graph.named("demo-dev-audit-logs-encryption").inputs["rules"]
    assert encryption == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]

    # one trail records reads and writes of the data buckets' objects, KMS-encrypted, signed
    (trail,) = graph.of_type("aws:cloudtrail/trail:Trail")
    assert trail.inputs["s3BucketName"] == "demo-dev-audit-logs-id"
    assert trail.inputs["enableLogFileValidation"] is True
    assert trail.inputs["kmsKeyId"] == graph.named("demo-dev-audit-trail-key").outputs["arn"]
    (selector,) = trail.inputs["advancedEventSelectors"]
    fields = {f["field"]: f for f in selector["fieldSelectors"]}
    assert fields["eventCategory"]["equals"] == ["Data"]
    assert fields["resources.type"]["equals"] == ["AWS::S3::Object"]
    assert set(fields["resources.ARN"]["startsWiths"]) == {f"arn:aws:s3:::{b}/" for b in data}
    assert set(fields) == {"eventCategory", "resources.type", "resources.ARN"}  # read and write
    # CloudTrail writes only for this trail, with bucket-owner-full-control
    trail_arn = f"arn:aws:cloudtrail:us-east-1:{MOCK_ACCOUNT_ID}:trail/demo-dev-data-events"
    write = next(s for s in log_policy["Statement"] if s["Sid"] == "CloudTrailWrite")
    assert write["Resource"] == (
        f"arn:aws:s3:::demo-dev-audit-logs/cloudtrail/AWSLogs/{MOCK_ACCOUNT_ID}/*")
    assert write["Condition"]["StringEquals"] == {
        "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}
    key = json.loads(graph.named("demo-dev-audit-trail-key").inputs["policy"])
    encrypt = next(s for s in key["Statement"] if s["Sid"] == "CloudTrailEncrypt")
    assert encrypt["Condition"]["StringEquals"] == {"aws:SourceArn": trail_arn}
    policy_urn = graph.named("demo-dev-audit-logs-policy").urn
    assert policy_urn in trail.dependencies


def test_captured_data_has_a_bucket_the_production_account_cannot_read(dataset):
    config = make_config("prod", {"registry": {"prod_account_id": "210987654321"}},
                         serving="sagemaker")
    graph = _build(config, dataset)
    endpoint = graph.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0]
    assert endpoint.inputs["dataCaptureConfig"]["destinationS3Uri"] == (
        "s3://demo-prod-capture/data-capture")
    monitor = json.loads(graph.named("demo-prod-monitoring-monitor-policy").inputs["policy"])
    reads = next(s for s in monitor["Statement"] if s["Sid"] == "ReadCapturedDataAndBaseline")
    assert "arn:aws:s3:::demo-prod-capture/data-capture/*" in reads["Resource"]
    capture = json.loads(graph.named("demo-prod-capture-policy").inputs["policy"])
    assert [s["Effect"] for s in capture["Statement"]] == ["Deny"]  # TLS only, no grants
    artifacts = json.loads(graph.named("demo-prod-registry-artifacts-policy").inputs["policy"])
    read = next(s for s in artifacts["Statement"] if s["Sid"] == "CrossAccountRead")
    assert read["Resource"] == "arn:aws:s3:::demo-prod-registry-artifacts/models/*"


def test_roles_and_keys_carry_the_conditions_scanners_look_for(dataset):
    """Every SageMaker trust policy names this account, no role manages network interfaces
    outside the VPC, every key-policy grant to a service is conditioned."""
    config = make_config("dev", serving="sagemaker", feature_store="sagemaker")
    graph = _build(config, dataset)
    sagemaker_roles = [r for r in graph.of_type("aws:iam/role:Role")
                       if "sagemaker.amazonaws.com" in r.inputs["assumeRolePolicy"]]
    assert {r.name for r in sagemaker_roles} == {
        "demo-dev-serving-execution-role", "demo-dev-monitoring-monitor-role",
        "demo-dev-monitoring-baseline-role", "demo-dev-features-ingestion-role",
        "demo-dev-training-role"}
    for role in sagemaker_roles:
        assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [SAGEMAKER_TRUST]
    vpc = "demo-dev-network-vpc-id"  # the VPC's id under the mocks
    for name in ("demo-dev-serving-execution-policy", "demo-dev-monitoring-monitor-policy",
                 "demo-dev-monitoring-baseline-policy"):
        assert_network_interfaces_in_vpc(graph.named(name).inputs["policy"], vpc)
    for rule, types in [("iam-service-trust-conditions", ["aws:iam/role:Role"]),
                        ("iam-network-interface-scoped", ["aws:iam/rolePolicy:RolePolicy"]),
                        ("kms-key-service-conditions", ["aws:kms/key:Key"])]:
        resources = graph.of_type(*types)
        assert resources
        assert [m for r in resources for m in check(rule, r.type, r.inputs, name=r.name)] == []


def _kubernetes_version(config: PlatformConfig) -> str:
    return f"{config.cluster.kubernetes_version}.0"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_kubernetes_objects_validate_against_the_cluster_version(dataset, environment):
    config = make_config(environment, serving="kserve")
    graph = _build(config, dataset)
    # every object of a built-in API group (custom resources: their own tests validate the
    # standard parts they embed, e.g. test_karpenter.py and the InferenceService's pod below)
    objects = [r for r in graph.resources if r.type.startswith("kubernetes:")
               and r.type.split(":")[1].split("/")[0] in {"core", "apps", "rbac", "batch",
                                                          "networking.k8s.io"}]
    assert {r.type.rsplit(":", 1)[-1] for r in objects} >= {
        "Namespace", "ServiceAccount", "NetworkPolicy"}
    for resource in objects:
        kubernetes_validate.validate(resource.inputs, _kubernetes_version(config), strict=True)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_inference_service_pod_validates_as_a_deployment(dataset, environment):
    config = make_config(environment, serving="kserve")
    graph = _build(config, dataset)
    service = graph.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")[0]
    predictor = service.inputs["spec"]["predictor"]
    pod = {key: predictor[key] for key in ("containers", "tolerations", "nodeSelector",
                                           "serviceAccountName", "securityContext")
           if key in predictor}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "predictor", "namespace": service.inputs["metadata"]["namespace"]},
        "spec": {"selector": {"matchLabels": {"app": "predictor"}},
                 "template": {"metadata": {"labels": {"app": "predictor"}}, "spec": pod}},
    }
    kubernetes_validate.validate(deployment, _kubernetes_version(config), strict=True)
    if config.serving.gpus:  # on GPU nodes: selects a GPU pool's labels
        gpu_pool = config.cluster.gpu_pools[0]
        assert predictor["nodeSelector"].items() <= gpu_pool.labels.items()
        # and a NodePool of the in-cluster program launches nodes with those labels, the GPU
        # pool's only (not the CPU pool's)
        selected = [p for p in graph.of_type(NODE_POOL)
                    if predictor["nodeSelector"].items()
                    <= p.inputs["spec"]["template"]["metadata"]["labels"].items()]
        assert [p.inputs["metadata"]["name"] for p in selected] == [gpu_pool.name]
    else:  # dev serves on CPU: no GPU placement, nor any pool (system nodes, then CPU pool)
        assert "nodeSelector" not in predictor and "tolerations" not in predictor


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_every_alarm_treats_missing_data_by_the_one_table(dataset, environment):
    """Endpoint, rollback and cluster alarms alike: TreatMissingData from stacks/alarms.py."""
    from mlscaffold.stacks.alarms import MISSING_DATA

    config = make_config(environment, {"cluster": {"enabled": True}}, serving="sagemaker")
    alarms = {a.inputs["name"].removeprefix(f"{config.prefix}-"): a.inputs["treatMissingData"]
              for a in _build(config, dataset).of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    # dev has no invocations-low alarm: its endpoint is idle most hours
    expected = {name: entry.treat for name, entry in MISSING_DATA.items()
                if environment == "prod" or name != "endpoint-invocations-low"}
    assert alarms == expected


PROTECTED = {"aws:eks/cluster:Cluster", "aws:kms/key:Key", "aws:s3/bucket:Bucket"}


@pytest.mark.parametrize(("environment", "serving", "feature_store"),
                         [("dev", "kserve", "sagemaker"), ("prod", "kserve", "sagemaker"),
                          ("prod", "sagemaker", "none")])
def test_cluster_keys_and_data_buckets_are_protected_outside_dev(dataset, environment, serving,
                                                                 feature_store):
    config = make_config(environment, serving=serving, feature_store=feature_store)
    graph = _build(config, dataset)
    protected = {r.name for r in graph.resources if r.options.get("protect")}
    wanted = {r.name for r in graph.of_type(*PROTECTED)}
    assert len(wanted) >= 4  # data and trail keys, artifact and log buckets at least
    assert protected == (wanted if config.protect else set())
    assert config.protect is (environment != "dev")


def test_a_kserve_serverless_canary_passes_both_packs(dataset):
    """KServe's Serverless mode with a canary: Knative and Kourier installed, the predictor's
    namespace still isolated both ways, every rule run, no mandatory finding."""
    from mlscaffold.policies import PACKS
    from mlscaffold.policies.config import pack_config
    from mlscaffold.policies.engine import evaluate

    environment = "prod"  # the strictest profile (the check matrix covers every environment)
    config = make_config(environment, {"serving": {
        "kserve_mode": "serverless", "rollout": {"strategy": "canary"}}}, serving="kserve")
    graph = _build(config, dataset)
    assert graph.of_type("kubernetes:operator.knative.dev/v1beta1:KnativeServing")
    (service,) = graph.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert service.inputs["spec"]["predictor"]["canaryTrafficPercent"] == 10
    configs = {pack: pack_config(pack, environment=environment, profile=config.profile,
                                 region=config.region) for pack in PACKS}
    result = evaluate(graph, configs)
    assert [f.message for f in result.mandatory] == []
    assert [f.message for f in result.findings if f.rule == "k8s-network-policy"] == []


def test_subnets_of_a_cluster_avoid_the_zones_eks_does_not_support(dataset):
    def zones(serving: str) -> set[str]:
        config = make_config("prod", serving=serving, feature_store="sagemaker")
        assert config.region == "us-east-1" and config.network.availability_zones == 3
        return {subnet.inputs["availabilityZoneId"]
                for subnet in _build(config, dataset).of_type("aws:ec2/subnet:Subnet")}

    assert zones("kserve") == {"use1-az1", "use1-az2", "use1-az4"}  # use1-az3 is skipped
    assert zones("sagemaker") == {"use1-az1", "use1-az2", "use1-az3"}  # no cluster: any zone
