"""FeatureStore: schema inference from a CSV, and the feature group under mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from mlscaffold.graph import ResourceGraph
from mlscaffold.stacks.feature_store import (
    FEATURE_NAME_PATTERN,
    FeatureStore,
    FeatureStoreArgs,
    feature_definitions_from_csv,
)

from .conftest import SAGEMAKER_TRUST

OUTPUTS = ("feature_group_name", "offline_store_bucket", "ingestion_role_arn")


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.csv"
    path.write_text(text)
    return path


def test_schema_types_identifier_and_generated_event_time(tmp_path):
    path = _csv(tmp_path, "customer_id,tenure,spend,plan,label\n"
                          "C1,3,10.5,basic,0\nC2,7,20,premium,1\nC3,1,,basic,0\n")
    schema = feature_definitions_from_csv(path, "label")
    assert schema.feature_definitions == (
        ("customer_id", "String"), ("tenure", "Integral"), ("spend", "Fractional"),
        ("plan", "String"), ("label", "Integral"), ("event_time", "String"))
    assert schema.record_identifier == "customer_id"
    assert schema.event_time_feature == "event_time"
    assert schema.columns["spend"] == "spend"


def test_schema_names_fit_sagemaker(tmp_path):
    path = _csv(tmp_path, "Monthly Spend ($),Age,age,write_time,-x-,,label\n"
                          "1.5,30,31,a,b,c,1\n")
    schema = feature_definitions_from_csv(path, "label")
    names = [name for name, _ in schema.feature_definitions]
    assert names[:6] == ["Monthly_Spend", "Age", "age_2", "write_time_2", "x", "feature_5"]
    assert all(FEATURE_NAME_PATTERN.match(name) for name in names)
    assert len({name.lower() for name in names}) == len(names)
    assert schema.columns["Monthly Spend ($)"] == "Monthly_Spend"


def test_schema_identifier_fallbacks_and_timestamp_column(tmp_path):
    unique_strings = _csv(tmp_path, "email,score,seen_at,label\n"
                                    "a@x,1,2024-01-02T03:04:05Z,1\nb@x,1,2024-01-03,0\n")
    schema = feature_definitions_from_csv(unique_strings, "label")
    assert schema.record_identifier == "email"
    assert schema.event_time_feature == "seen_at"
    assert len(schema.feature_definitions) == 4  # nothing generated

    # no usable identifier: a generated one, named clear of the existing record_id column
    repeated = _csv(tmp_path, "record_id,plan,label\nx,basic,1\nx,basic,0\n")
    schema = feature_definitions_from_csv(repeated, "label")
    assert schema.record_identifier == "record_id_2"
    assert ("record_id_2", "String") in schema.feature_definitions


def test_schema_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="label column 'target' is not in the header"):
        feature_definitions_from_csv(_csv(tmp_path, "a,b\n1,2\n"), "target")
    with pytest.raises(ValueError, match="no header row"):
        feature_definitions_from_csv(_csv(tmp_path, ""), "label")


@pytest.fixture
def store_graph(config_for, run_mocked, tmp_path):
    schema = feature_definitions_from_csv(
        _csv(tmp_path, "customer_id,tenure,spend,label\nC1,3,1.5,0\nC2,4,2.5,1\n"), "label")

    def build(online_store: bool = True) -> ResourceGraph:
        config = config_for("dev", {"feature_store": {"online_store": online_store}},
                            feature_store="sagemaker")

        def program() -> None:
            key = aws.kms.Key("data-key")
            store = FeatureStore("features", FeatureStoreArgs(
                config=config.feature_store, prefix=config.prefix, tags=config.tags,
                kms_key_arn=key.arn, feature_definitions=schema.feature_definitions,
                record_identifier=schema.record_identifier,
                event_time_feature=schema.event_time_feature))
            pulumi.export("store", {name: getattr(store, name) for name in OUTPUTS})

        return run_mocked(program)

    return build


def _group(graph: ResourceGraph) -> dict:
    (group,) = graph.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    return group.inputs


def test_feature_group_schema_and_encryption(store_graph):
    graph = store_graph()
    group = _group(graph)
    assert group["featureGroupName"] == "demo-dev"
    assert group["recordIdentifierFeatureName"] == "customer_id"
    assert group["eventTimeFeatureName"] == "event_time"
    assert [(d["featureName"], d["featureType"]) for d in group["featureDefinitions"]] == [
        ("customer_id", "String"), ("tenure", "Integral"), ("spend", "Fractional"),
        ("label", "Integral"), ("event_time", "String")]

    offline = group["offlineStoreConfig"]
    assert offline["s3StorageConfig"]["kmsKeyId"].startswith("arn:aws:kms:")
    assert offline["s3StorageConfig"]["s3Uri"].startswith("s3://")
    assert offline["s3StorageConfig"]["s3Uri"].endswith("/offline-store")
    assert offline["disableGlueTableCreation"] is False
    (database,) = graph.of_type("aws:glue/catalogDatabase:CatalogDatabase")
    assert offline["dataCatalogConfig"]["database"] == database.inputs["name"] == \
        "demo_dev_features"

    online = group["onlineStoreConfig"]
    assert online["enableOnlineStore"] is True
    assert online["securityConfig"]["kmsKeyId"].startswith("arn:aws:kms:")

    (encryption,) = graph.of_type("aws:s3/bucketServerSideEncryptionConfiguration:"
                                  "BucketServerSideEncryptionConfiguration")
    assert encryption.inputs["rules"][0]["bucketKeyEnabled"] is True


def test_online_store_follows_config(store_graph):
    assert "onlineStoreConfig" not in _group(store_graph(online_store=False))


def test_ingestion_role_is_least_privilege(store_graph):
    graph = store_graph()
    (role,) = graph.of_type("aws:iam/role:Role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == SAGEMAKER_TRUST
    (policy,) = graph.of_type("aws:iam/rolePolicy:RolePolicy")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["Records"]["Resource"] == (
        "arn:aws:sagemaker:us-east-1:123456789012:feature-group/demo-dev")
    assert {"sagemaker:PutRecord", "sagemaker:GetRecord"} <= set(statements["Records"]["Action"])
    assert statements["OfflineStoreObjects"]["Resource"].endswith("/offline-store/*")
    assert statements["Key"]["Resource"].startswith("arn:aws:kms:")
    assert all(r.startswith("arn:aws:glue:") for r in statements["CatalogTables"]["Resource"])
    for statement in statements.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [
            statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [
            statement["Resource"]]
        assert "*" not in resources and not any(a.endswith("*") for a in actions)


def test_component_shape_and_outputs(store_graph):
    graph = store_graph()
    (component,) = graph.of_type("mlscaffold:stacks:FeatureStore")
    children = [r for r in graph.resources if r.urn != component.urn and r.name != "data-key"]
    assert all(r.parent == component.urn for r in children)
    group = next(r for r in children if r.type == "aws:sagemaker/featureGroup:FeatureGroup")
    (policy,) = graph.of_type("aws:iam/rolePolicy:RolePolicy")
    assert policy.urn in group.dependencies
    outputs = graph.outputs["store"]
    assert outputs["feature_group_name"] == "demo-dev"
    assert all(outputs[name] for name in OUTPUTS)


def test_invalid_arguments_are_refused(config_for):
    enabled = config_for("dev", feature_store="sagemaker").feature_store
    args = {"prefix": "demo-dev", "tags": {}, "kms_key_arn": "arn:aws:kms:key",
            "record_identifier": "id", "event_time_feature": "ts"}
    with pytest.raises(ValueError, match=r"feature_store\.enabled is false"):
        FeatureStore("f", FeatureStoreArgs(config=config_for("dev").feature_store,
                                           feature_definitions=[("id", "String"),
                                                                ("ts", "String")], **args))
    with pytest.raises(ValueError, match="event time 'ts'"):
        FeatureStore("f", FeatureStoreArgs(config=enabled, feature_definitions=[
            ("id", "String"), ("ts", "Integral")], **args))
    with pytest.raises(ValueError, match="feature name 'is_deleted'"):
        FeatureStore("f", FeatureStoreArgs(config=enabled, feature_definitions=[
            ("id", "String"), ("ts", "String"), ("is_deleted", "String")], **args))
