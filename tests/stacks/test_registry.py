"""ModelRegistry under mocks: bucket hardening, image repository, cross-account read."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from mlscaffold.graph import ResourceGraph
from mlscaffold.stacks._storage import secure_bucket
from mlscaffold.stacks.registry import (
    MODELS_PREFIX,
    ModelRegistry,
    ModelRegistryArgs,
    image_lifecycle_policy,
)

from ..policies.conftest import check

PROD_ACCOUNT = "210987654321"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
OUTPUTS = ("model_package_group_name", "artifact_bucket_name", "artifact_bucket_arn",
           "repository_url", "repository_arn")


@pytest.fixture
def registry_graph(config_for, run_mocked):
    def build(prod_account: str | None = None) -> ResourceGraph:
        overrides = {"registry": {"prod_account_id": prod_account}} if prod_account else None
        config = config_for("dev", overrides)

        def program() -> None:
            key = aws.kms.Key("data-key")
            registry = ModelRegistry("registry", ModelRegistryArgs(
                config=config.registry, prefix=config.prefix, tags=config.tags,
                kms_key_arn=key.arn))
            pulumi.export("registry", {name: getattr(registry, name) for name in OUTPUTS})

        return run_mocked(program)

    return build


def _one(graph: ResourceGraph, type_: str) -> dict:
    (resource,) = graph.of_type(type_)
    return resource.inputs


def test_component_shape(registry_graph):
    graph = registry_graph()
    (component,) = graph.of_type("mlscaffold:stacks:ModelRegistry")
    children = [r for r in graph.resources if r.urn != component.urn and r.name != "data-key"]
    assert children and all(r.parent == component.urn for r in children)
    assert all(r.name.startswith("registry-") for r in children)
    outputs = graph.outputs["registry"]
    assert outputs["model_package_group_name"] == "demo-dev"
    assert outputs["repository_url"].endswith("/demo-dev-serving")
    assert all(outputs[name] for name in OUTPUTS)


def test_artifact_bucket_is_hardened(registry_graph, config_for):
    graph = registry_graph()
    bucket = _one(graph, "aws:s3/bucket:Bucket")
    assert bucket["bucketPrefix"] == "demo-dev-artifacts-"
    assert bucket["tags"]["project"] == "demo" and bucket["tags"]["env"] == "dev"

    (rule,) = _one(graph, "aws:s3/bucketServerSideEncryptionConfiguration:"
                          "BucketServerSideEncryptionConfiguration")["rules"]
    assert rule["bucketKeyEnabled"] is True
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"].startswith("arn:aws:kms:")

    block = _one(graph, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block[flag] is True for flag in ("blockPublicAcls", "blockPublicPolicy",
                                                "ignorePublicAcls", "restrictPublicBuckets"))
    versioning = _one(graph, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["versioningConfiguration"]["status"] == "Enabled"

    rules = {r["id"]: r for r in _one(
        graph, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]}
    retention = config_for("dev").registry.artifact_retention_days
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": retention}
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"][
        "daysAfterInitiation"] == 7

    (statement,) = json.loads(_one(graph, "aws:s3/bucketPolicy:BucketPolicy")["policy"])[
        "Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_repository_is_immutable_scanned_and_encrypted(registry_graph):
    graph = registry_graph()
    repository = _one(graph, "aws:ecr/repository:Repository")
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    (encryption,) = repository["encryptionConfigurations"]
    assert encryption["encryptionType"] == "KMS" and encryption["kmsKey"]
    lifecycle = json.loads(_one(graph, "aws:ecr/lifecyclePolicy:LifecyclePolicy")["policy"])
    assert lifecycle == json.loads(image_lifecycle_policy(30))
    assert lifecycle["rules"][-1]["selection"]["countNumber"] == 30


def test_no_cross_account_access_by_default(registry_graph):
    graph = registry_graph()
    assert not graph.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy",
                             "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")
    policy = json.loads(_one(graph, "aws:s3/bucketPolicy:BucketPolicy")["policy"])
    assert all(s["Effect"] == "Deny" for s in policy["Statement"])


def test_prod_account_can_read(registry_graph):
    graph = registry_graph(PROD_ACCOUNT)
    principal = {"AWS": [f"arn:aws:iam::{PROD_ACCOUNT}:root"]}

    bucket_policy = json.loads(_one(graph, "aws:s3/bucketPolicy:BucketPolicy")["policy"])
    grants = {s["Sid"]: s for s in bucket_policy["Statement"] if s["Effect"] == "Allow"}
    # the published models only: not the whole bucket (baseline data, monitoring reports)
    bucket = "arn:aws:s3:::registry-artifacts"
    assert grants["CrossAccountRead"]["Action"] == "s3:GetObject"
    assert grants["CrossAccountRead"]["Resource"] == f"{bucket}/{MODELS_PREFIX}/*"
    assert grants["CrossAccountList"] == {
        "Sid": "CrossAccountList", "Effect": "Allow", "Principal": principal,
        "Action": "s3:ListBucket", "Resource": bucket,
        "Condition": {"StringLike": {"s3:prefix": [f"{MODELS_PREFIX}/*"]}}}
    assert all(s["Principal"] == principal for s in grants.values())
    assert check("s3-cross-account-read-scoped", BUCKET_POLICY,
                 _one(graph, BUCKET_POLICY)) == []

    (pull,) = json.loads(_one(graph, "aws:ecr/repositoryPolicy:RepositoryPolicy")["policy"])[
        "Statement"]
    assert pull["Principal"] == principal
    assert set(pull["Action"]) == {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                   "ecr:BatchCheckLayerAvailability"}

    group_policy = _one(graph, "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")
    assert group_policy["modelPackageGroupName"] == "demo-dev"
    actions = {a for s in json.loads(group_policy["resourcePolicy"])["Statement"]
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"} <= actions
    assert not any(a.startswith(("sagemaker:Create", "sagemaker:Update", "sagemaker:Delete"))
                   for a in actions)


def test_other_accounts_never_read_a_whole_bucket(run_mocked):
    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Parent", "parent")
        secure_bucket("data", parent=parent, physical_name="data", kms_key_arn="arn:key",
                      tags={}, noncurrent_version_days=30,
                      read_only_principals=[f"arn:aws:iam::{PROD_ACCOUNT}:root"])

    with pytest.raises(ValueError, match="bucket data: read_only_principals need a "
                                         "read_only_prefix"):
        run_mocked(program)
