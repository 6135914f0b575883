"""The feature store's training data under mocks: the Athena workgroup (results enforced into
training/queries/, KMS-encrypted; a per-query scan cutoff) and the query policy (this
workgroup, this group's table, the offline store and results prefixes, the key); every rule
passes on them."""

from __future__ import annotations

import json

import pulumi
import pytest

from mlscaffold.graph import MOCK_ACCOUNT_ID, ResourceGraph
from mlscaffold.policies.registry import RULES
from mlscaffold.stacks.config import PlatformConfig
from mlscaffold.stacks.training_data import TrainingData, TrainingDataArgs

from ..policies.conftest import check
from .conftest import make_config

KEY = "arn:aws:kms:us-east-1:1:key/k"
WORKGROUP = "aws:athena/workgroup:Workgroup"


@pytest.fixture(scope="module")
def graph() -> ResourceGraph:
    from mlscaffold.graph import run_under_mocks

    config = make_config("dev", feature_store="sagemaker")

    def program() -> None:
        data = TrainingData("data", TrainingDataArgs(
            prefix=config.prefix, tags=config.tags, region=config.region, kms_key_arn=KEY,
            artifact_bucket_name="artifacts", offline_store_bucket="features",
            feature_group_name="demo-dev-1a2b3c4d", database_name="demo_dev_features",
            scan_limit_gb=config.training.query_scan_limit_gb))
        pulumi.export("training_data", data.settings)

    return run_under_mocks(program, project="demo", stack="dev")


def test_the_workgroup_enforces_kms_encrypted_results(graph):
    (workgroup,) = graph.of_type(WORKGROUP)
    assert workgroup.inputs["name"] == "demo-dev-training-data"
    configuration = workgroup.inputs["configuration"]
    assert configuration["enforceWorkgroupConfiguration"] is True
    assert configuration["engineVersion"] == {"selectedEngineVersion": "Athena engine version 3"}
    assert configuration["bytesScannedCutoffPerQuery"] == 100 * 10**9  # the default 100 GB
    assert configuration["resultConfiguration"] == {
        "outputLocation": "s3://artifacts/training/queries/",
        "expectedBucketOwner": MOCK_ACCOUNT_ID,
        "encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKeyArn": KEY}}
    assert graph.outputs["training_data"] == {
        "workgroup": "demo-dev-training-data", "results_uri": "s3://artifacts/training/queries/",
        "database": "demo_dev_features", "table": "demo_dev_1a2b3c4d",
        "launcher_policy_arn": graph.named("data-launcher").outputs["arn"], "scan_limit_gb": 100}


def test_the_query_policy_reaches_this_group_and_its_prefixes_only(graph):
    found = {s["Sid"]: s for s in json.loads(
        graph.named("data-launcher").inputs["policy"])["Statement"]}
    region = f"us-east-1:{MOCK_ACCOUNT_ID}"
    assert found["Queries"]["Resource"] == \
        f"arn:aws:athena:{region}:workgroup/demo-dev-training-data"
    assert found["FeatureGroup"]["Resource"] == \
        f"arn:aws:sagemaker:{region}:feature-group/demo-dev-1a2b3c4d"
    assert found["CatalogTable"]["Resource"] == [
        f"arn:aws:glue:{region}:catalog", f"arn:aws:glue:{region}:database/demo_dev_features",
        f"arn:aws:glue:{region}:table/demo_dev_features/demo_dev_1a2b3c4d"]
    assert found["ReadOfflineStore"] == {"Sid": "ReadOfflineStore", "Effect": "Allow",
                                         "Action": "s3:GetObject",
                                         "Resource": "arn:aws:s3:::features/offline-store/*"}
    assert found["QueryResults"]["Resource"] == "arn:aws:s3:::artifacts/training/queries/*"
    assert found["ListQueryResults"]["Condition"] == {
        "StringLike": {"s3:prefix": "training/queries/*"}}
    assert found["DataKey"]["Resource"] == KEY
    # nothing on every resource, nothing beyond reading and writing query results
    every = [s for s in found.values() if s["Resource"] == "*"]
    assert every == []
    actions = {a for s in found.values() for a in
               ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if a.startswith("s3:Delete") or a.endswith("*")}


def test_every_rule_passes(graph):
    mine = [r for r in graph.resources if not r.type.startswith("mlscaffold:")]
    assert {r.type for r in mine} == {WORKGROUP, "aws:iam/policy:Policy"}
    checked = 0
    for name, rule in RULES.items():
        if rule.stack:
            continue
        for resource in mine:
            if resource.type in rule.resource_types:
                assert check(name, resource.type, resource.inputs, name=resource.name) == [], \
                    (name, resource.name)
                checked += 1
    assert checked >= 6  # the workgroup's rules (results, scan cutoff), IAM, tags


def test_training_data_from_the_feature_store_needs_one():
    with pytest.raises(ValueError, match=r"training\.data feature-store reads the feature "
                                         r"group, which this stack does not have"):
        make_config("dev", {"training": {"data": "feature-store"}})
    config = make_config("dev", {"training": {"data": "feature-store"}},
                         feature_store="sagemaker")
    assert isinstance(config, PlatformConfig) and config.training.data == "feature-store"


def test_the_scan_cutoff_is_at_least_one_gb():
    with pytest.raises(ValueError, match="query_scan_limit_gb"):
        make_config("dev", {"training": {"query_scan_limit_gb": 0}}, feature_store="sagemaker")
    config = make_config("dev", {"training": {"query_scan_limit_gb": 500}},
                         feature_store="sagemaker")
    assert config.training.query_scan_limit_gb == 500
