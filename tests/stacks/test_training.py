"""Training under mocks: the SageMaker training role, the launcher policy and, with a cluster,
the Kubernetes Job's Pod Identity role and association; every IAM rule passes on them."""

from __future__ import annotations

import json

import pulumi
import pytest

from mlscaffold.graph import MOCK_ACCOUNT_ID, ResourceGraph
from mlscaffold.policies.registry import RULES
from mlscaffold.stacks.training import Training, TrainingArgs

from ..policies.conftest import check
from .conftest import SAGEMAKER_TRUST

BUCKET = "arn:aws:s3:::artifacts"


@pytest.fixture
def training_graph(config_for, run_mocked):
    def build(cluster: bool) -> ResourceGraph:
        config = config_for("dev")

        def program() -> None:
            training = Training("training", TrainingArgs(
                config=config.training, prefix=config.prefix, tags=config.tags,
                region=config.region, kms_key_arn="arn:aws:kms:us-east-1:1:key/k",
                artifact_bucket_name="artifacts",
                repository_arn="arn:aws:ecr:us-east-1:1:repository/demo-dev-serving",
                repository_url="1.dkr.ecr.us-east-1.amazonaws.com/demo-dev-serving",
                cluster_name="demo-dev-eks" if cluster else None))
            pulumi.export("training", training.settings)

        return run_mocked(program)

    return build


def statements(graph: ResourceGraph, name: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(graph.named(name).inputs["policy"])["Statement"]}


def test_the_training_role_reads_data_and_writes_runs_only(training_graph):
    graph = training_graph(cluster=False)
    role = graph.named("training-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [SAGEMAKER_TRUST]
    found = statements(graph, "training-policy")
    assert found["ReadDataSets"]["Resource"] == f"{BUCKET}/training/data/*"
    assert found["WriteAndResumeRuns"]["Resource"] == f"{BUCKET}/training/jobs/*"
    assert found["ListTrainingPrefixes"]["Condition"] == {"StringLike": {"s3:prefix": [
        "training/data/*", "training/jobs/*"]}}
    assert found["PullImage"]["Resource"].endswith(":repository/demo-dev-serving")
    assert not graph.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert graph.outputs["training"]["eks"] is None
    assert graph.outputs["training"]["job_name_prefix"] == "demo-dev"
    assert graph.outputs["training"]["spot"] is True


def test_the_launcher_passes_the_training_role_to_sagemaker_only(training_graph):
    graph = training_graph(cluster=False)
    found = statements(graph, "training-launcher")
    assert "training-role" in found["PassTrainingRole"]["Resource"]
    assert found["PassTrainingRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert found["TrainingJobs"]["Resource"] == (
        f"arn:aws:sagemaker:us-east-1:{MOCK_ACCOUNT_ID}:training-job/demo-dev-*")


def test_with_a_cluster_the_job_gets_a_pod_identity_role(training_graph):
    graph = training_graph(cluster=True)
    (association,) = graph.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "ml-training", "trainer")
    trust = json.loads(graph.named("training-eks-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-name": "demo-dev-eks",
        "aws:RequestTag/kubernetes-namespace": "ml-training",
        "aws:RequestTag/kubernetes-service-account": "trainer"}
    assert graph.outputs["training"]["eks"] == {"namespace": "ml-training",
                                                "service_account": "trainer"}


def test_every_iam_rule_passes(training_graph):
    graph = training_graph(cluster=True)
    iam = [r for r in graph.resources if r.type.startswith("aws:iam/")]
    assert len(iam) == 5  # two roles, their policies, the launcher
    for name, rule in RULES.items():
        if rule.stack or rule.pack != "security":
            continue
        for resource in iam:
            if resource.type in rule.resource_types:
                assert check(name, resource.type, resource.inputs, name=resource.name) == [], \
                    (name, resource.name)
