"""FeatureStore: the schema from a CSV and the spec's declarations, and the feature group
under mocks (names that change with the schema, a role scoped to the group)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from mlscaffold.graph import ResourceGraph
from mlscaffold.stacks.constants import STACK_PREFIX_MAX
from mlscaffold.stacks.feature_schema import (
    FeatureDeclarations,
    FeatureSchema,
    FeatureSchemaError,
    normalize_event_time,
    render_value,
)
from mlscaffold.stacks.feature_store import (
    FEATURE_GROUP_NAME_MAX,
    FEATURE_GROUP_NAME_PATTERN,
    FEATURE_NAME_PATTERN,
    FeatureStore,
    FeatureStoreArgs,
    feature_definitions_from_csv,
)

from .conftest import SAGEMAKER_TRUST

OUTPUTS = ("feature_group_name", "offline_store_bucket", "ingestion_role_arn",
           "ingestion_settings")
GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
# Glue (Athena) table names: lower case, at most 255 bytes
GLUE_TABLE_NAME = re.compile(r"^[a-z0-9_]{1,255}$")


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


# ------------------------------------------------------------------ the whole file, declared types


def test_inference_reads_every_row(tmp_path):
    rows = "".join(f"C{i},{i}\n" for i in range(1500)) + "C1500,2.5\n"
    schema = feature_definitions_from_csv(_csv(tmp_path, "customer_id,label\n" + rows), "label")
    # the one fractional value is far beyond the first thousand rows
    assert schema.feature("label").type == "Fractional"


def test_numbers_with_leading_zeros_are_text(tmp_path):
    path = _csv(tmp_path, "customer_id,zip,score,label\nC1,02134,0.5,0\nC2,10001,-0.25,1\n")
    schema = feature_definitions_from_csv(path, "label")
    assert schema.feature("zip").type == "String"
    assert schema.feature("score").type == "Fractional"


def test_declared_types_win_and_are_reported_as_declared(tmp_path):
    path = _csv(tmp_path, "customer_id,zip,score,label\nC1,02134,1,0\nC2,10001,2,1\n")
    schema = feature_definitions_from_csv(path, "label", {"types": {"zip": "String",
                                                                    "score": "Fractional"}})
    assert [(f.name, f.type, f.source) for f in schema.features] == [
        ("customer_id", "String", "inferred"), ("zip", "String", "declared"),
        ("score", "Fractional", "declared"), ("label", "Integral", "inferred"),
        ("event_time", "String", "generated")]
    assert schema.declarations() == {
        "types": {"customer_id": "String", "zip": "String", "score": "Fractional",
                  "label": "Integral"},
        "record_identifier": "customer_id"}
    # the declarations read back give the same schema, every type now declared
    again = feature_definitions_from_csv(path, "label", schema.declarations())
    assert again.feature_definitions == schema.feature_definitions
    assert {f.source for f in again.features if f.column} == {"declared"}


def test_a_declared_type_the_data_contradicts_names_column_row_and_fix(tmp_path):
    path = _csv(tmp_path, "customer_id,age,label\nC1,30,0\nC2,3.5,1\n")
    with pytest.raises(FeatureSchemaError) as caught:
        feature_definitions_from_csv(path, "label", {"types": {"age": "Integral"}})
    assert str(caught.value) == (
        f"{path}: column 'age' is declared Integral in mlscaffold.yaml but row 2 (line 3) "
        "holds '3.5'; fix the value, or declare the column Fractional in features.types")


def test_a_declared_column_missing_from_the_data_is_an_error(tmp_path):
    path = _csv(tmp_path, "customer_id,label\nC1,0\n")
    with pytest.raises(FeatureSchemaError) as caught:
        feature_definitions_from_csv(path, "label", {"types": {"age": "Integral"}})
    assert str(caught.value) == (
        f"{path}: column 'age' is declared in mlscaffold.yaml (features) but not in the header "
        "(customer_id, label); fix the name or remove the declaration")


def test_declared_identifier_must_be_filled(tmp_path):
    path = _csv(tmp_path, "account,plan,label\nA1,basic,0\n,basic,1\n")
    with pytest.raises(FeatureSchemaError, match=r"record identifier 'account' must have a "
                       r"value in every row, but row 2 \(line 3\) is empty"):
        feature_definitions_from_csv(path, "label", {"record_identifier": "account"})
    # repeated values are fine: one record per identifier and event time
    repeated = _csv(tmp_path, "account,plan,label\nA1,basic,0\nA1,premium,1\n")
    schema = feature_definitions_from_csv(repeated, "label", {"record_identifier": "account"})
    assert schema.record_identifier == "account"


def test_ragged_rows_are_named(tmp_path):
    with pytest.raises(FeatureSchemaError, match=r"row 2 \(line 3\) has 3 fields, the header 2"):
        feature_definitions_from_csv(_csv(tmp_path, "a,label\n1,0\n1,2,3\n"), "label")


# ------------------------------------------------------------------ event time


@pytest.mark.parametrize(("value", "normalised"), [
    ("2024-01-05", "2024-01-05T00:00:00Z"),
    ("2024-01-05 10:00:00", "2024-01-05T10:00:00Z"),
    ("2024-01-05T10:00", "2024-01-05T10:00:00Z"),
    ("2024-01-05T10:00:00Z", "2024-01-05T10:00:00Z"),
    ("2024-01-05T10:00:00+02:00", "2024-01-05T08:00:00Z"),
    ("2024-01-05T23:30:00-0130", "2024-01-06T01:00:00Z"),
    ("2024-01-05 10:00:00.5", "2024-01-05T10:00:00.500Z"),
    ("2024-01-05T10:00:00.123456789+00:00", "2024-01-05T10:00:00.123Z"),
])
def test_iso_times_normalise_to_what_put_record_accepts(value, normalised):
    assert normalize_event_time(value, "String") == normalised
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z", normalised)


@pytest.mark.parametrize("value", ["2024-13-05", "20240105", "2024-01-05T25:00", "05/01/2024",
                                   "2024-01-05T10:00:00+24:00", "yesterday", ""])
def test_other_forms_are_not_event_times(value):
    assert normalize_event_time(value, "String") is None


def test_epoch_seconds_and_values_rendered_for_put_record():
    assert normalize_event_time("1704067200", "Fractional") == "1704067200"
    assert normalize_event_time("1.7e9", "Fractional") == "1700000000"
    assert normalize_event_time("2024-01-05", "Fractional") is None
    assert render_value(" 3.0 ", "Integral") == "3"
    assert render_value("3.5", "Integral") is None
    assert render_value("99999999999999999999", "Integral") is None  # beyond 64 bits
    assert render_value("1e-3", "Fractional") == "0.001"
    assert render_value("nan", "Fractional") is None
    assert render_value(" plan a ", "String") == "plan a"


def test_event_time_column_is_picked_only_when_every_value_normalises(tmp_path):
    good = _csv(tmp_path, "customer_id,signup_time,label\n"
                          "C1,2024-01-05,0\nC2,2024-01-05 10:00:00+01:00,1\n")
    assert feature_definitions_from_csv(good, "label").event_time_feature == "signup_time"
    bad = _csv(tmp_path, "customer_id,signup_time,label\nC1,2024-01-05,0\nC2,05/01/2024,1\n")
    schema = feature_definitions_from_csv(bad, "label")
    assert schema.event_time_feature == "event_time" and schema.generated("event_time")
    epoch = _csv(tmp_path, "customer_id,event_time,label\nC1,1704067200,0\nC2,1704067201.5,1\n")
    schema = feature_definitions_from_csv(epoch, "label")
    assert schema.event_time_feature == "event_time"
    assert schema.feature("event_time").type == "Fractional"


def test_a_declared_event_time_that_does_not_normalise_names_the_row(tmp_path):
    path = _csv(tmp_path, "customer_id,signup_time,label\nC1,2024-01-05,0\nC2,05/01/2024,1\n")
    with pytest.raises(FeatureSchemaError) as caught:
        feature_definitions_from_csv(path, "label", {"event_time": "signup_time"})
    assert str(caught.value) == (
        f"{path}: event time 'signup_time' must hold, in every row, an ISO-8601 date or "
        "date-time (String) or epoch seconds (Fractional), but row 2 (line 3) holds "
        "'05/01/2024'; fix the value, or declare another event_time")


def test_declarations_refuse_roles_of_the_wrong_type():
    with pytest.raises(ValueError, match="event_time 'ts' is declared Integral"):
        FeatureDeclarations(types={"ts": "Integral"}, event_time="ts")
    with pytest.raises(ValueError, match="record_identifier 'id' is declared Fractional"):
        FeatureDeclarations(types={"id": "Fractional"}, record_identifier="id")


def test_schema_round_trips_through_plain_data(tmp_path):
    schema = feature_definitions_from_csv(
        _csv(tmp_path, "customer_id,tenure,label\nC1,3,0\n"), "label")
    assert FeatureSchema.from_dict(json.loads(json.dumps(schema.as_dict()))) == schema
    with pytest.raises(FeatureSchemaError, match="not a feature schema"):
        FeatureSchema.from_dict({"features": []})


# ------------------------------------------------------------------ the component under mocks


def _schema(tmp_path: Path, text: str = "customer_id,tenure,spend,label\nC1,3,1.5,0\nC2,4,2.5,1\n",
            **declared) -> FeatureSchema:
    return feature_definitions_from_csv(_csv(tmp_path, text), "label", declared or None)


@pytest.fixture
def store_graph(config_for, run_mocked, tmp_path):
    default = _schema(tmp_path)

    def build(online_store: bool = True, schema: FeatureSchema | None = None,
              project: str = "demo", environment: str = "dev") -> ResourceGraph:
        config = config_for(environment, {"feature_store": {"online_store": online_store}},
                            feature_store="sagemaker", name=project,
                            environments=[environment])

        def program() -> None:
            key = aws.kms.Key("data-key")
            store = FeatureStore("features", FeatureStoreArgs(
                config=config.feature_store, prefix=config.prefix, tags=config.tags,
                kms_key_arn=key.arn, schema=schema or default))
            pulumi.export("store", {name: getattr(store, name) for name in OUTPUTS})

        return run_mocked(program, stack=environment)

    return build


def _group(graph: ResourceGraph) -> dict:
    (group,) = graph.of_type(GROUP)
    return group.inputs


def test_feature_group_schema_and_encryption(store_graph):
    graph = store_graph()
    group = _group(graph)
    assert re.fullmatch(r"demo-dev-[0-9a-f]{8}", group["featureGroupName"])
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


def test_the_same_schema_gives_the_same_name_and_a_change_a_new_one(store_graph, tmp_path):
    name = _group(store_graph())["featureGroupName"]
    assert _group(store_graph())["featureGroupName"] == name
    changed = {
        "a type": _schema(tmp_path, types={"tenure": "Fractional"}),
        "a new column": _schema(tmp_path, "customer_id,tenure,spend,plan,label\n"
                                          "C1,3,1.5,a,0\nC2,4,2.5,b,1\n"),
        "the identifier": _schema(tmp_path, record_identifier="tenure"),
        "the event time": _schema(tmp_path, "customer_id,tenure,spend,seen,label\n"
                                            "C1,3,1.5,2024-01-01,0\nC2,4,2.5,2024-01-02,1\n"),
    }
    names = {what: _group(store_graph(schema=schema))["featureGroupName"]
             for what, schema in changed.items()}
    names["the online store"] = _group(store_graph(online_store=False))["featureGroupName"]
    assert name not in names.values(), names
    assert len(set(names.values())) == len(names), names
    # the Glue table follows the group's name: the old group's table, which SageMaker
    # leaves behind, never blocks the new group
    tables = {_group(store_graph(schema=s))["offlineStoreConfig"]["dataCatalogConfig"][
        "tableName"] for s in changed.values()}
    assert len(tables) == len(changed)


def test_replacement_creates_the_new_group_before_deleting_the_old(store_graph):
    (group,) = store_graph().of_type(GROUP)
    assert "delete_before_replace" not in group.options
    assert "protect" not in group.options


def test_long_project_and_environment_names_still_fit(store_graph):
    environment = "staging-eu-west1"  # the longest environment name, and the longest project
    project = "very-long-project-name-x"[:STACK_PREFIX_MAX - len(environment) - 1]  # beside it
    assert len(f"{project}-{environment}") == STACK_PREFIX_MAX
    graph = store_graph(project=project, environment=environment)
    group = _group(graph)
    name = group["featureGroupName"]
    assert len(name) <= FEATURE_GROUP_NAME_MAX and FEATURE_GROUP_NAME_PATTERN.match(name)
    assert re.fullmatch(f"{project}-{environment}-[0-9a-f]{{8}}", name)
    table = group["offlineStoreConfig"]["dataCatalogConfig"]["tableName"]
    assert GLUE_TABLE_NAME.match(table) and table == name.replace("-", "_")


def test_ingestion_role_covers_exactly_the_group(store_graph):
    graph = store_graph()
    (role,) = graph.of_type("aws:iam/role:Role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == SAGEMAKER_TRUST
    (policy,) = graph.of_type("aws:iam/rolePolicy:RolePolicy")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    name = _group(graph)["featureGroupName"]
    assert statements["Records"]["Resource"] == (
        f"arn:aws:sagemaker:us-east-1:123456789012:feature-group/{name}")
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
        assert not any("feature-group" in r and "*" in r for r in resources)


def test_component_shape_and_outputs(store_graph):
    graph = store_graph()
    (component,) = graph.of_type("mlscaffold:stacks:FeatureStore")
    children = [r for r in graph.resources if r.urn != component.urn and r.name != "data-key"]
    assert all(r.parent == component.urn for r in children)
    group = next(r for r in children if r.type == GROUP)
    (policy,) = graph.of_type("aws:iam/rolePolicy:RolePolicy")
    assert policy.urn in group.dependencies
    outputs = graph.outputs["store"]
    assert outputs["feature_group_name"] == group.inputs["featureGroupName"]
    assert all(outputs[name] for name in OUTPUTS)
    settings = outputs["ingestion_settings"]
    assert settings["region"] == "us-east-1"
    schema = FeatureSchema.from_dict(settings)
    assert schema.feature_definitions == tuple(
        (d["featureName"], d["featureType"]) for d in group.inputs["featureDefinitions"])


def test_invalid_schemas_are_refused(config_for):
    enabled = config_for("dev", feature_store="sagemaker").feature_store
    args = {"prefix": "demo-dev", "tags": {}, "kms_key_arn": "arn:aws:kms:key"}

    def schema(*definitions: tuple[str, str]) -> FeatureSchema:
        from mlscaffold.stacks.feature_schema import Feature

        return FeatureSchema(tuple(Feature(n, t, n, "declared") for n, t in definitions),
                             "id", "ts")

    with pytest.raises(ValueError, match=r"feature_store\.enabled is false"):
        FeatureStore("f", FeatureStoreArgs(config=config_for("dev").feature_store,
                                           schema=schema(("id", "String"), ("ts", "String")),
                                           **args))
    with pytest.raises(ValueError, match="event time 'ts'"):
        FeatureStore("f", FeatureStoreArgs(config=enabled, schema=schema(
            ("id", "String"), ("ts", "Integral")), **args))
    with pytest.raises(ValueError, match="feature name 'is_deleted'"):
        FeatureStore("f", FeatureStoreArgs(config=enabled, schema=schema(
            ("id", "String"), ("ts", "String"), ("is_deleted", "String")), **args))


def test_group_names_are_made_of_what_sagemaker_and_iam_take():
    from mlscaffold.stacks.feature_store import feature_group_name

    name = feature_group_name("Churn.Model_v2-dev", {"features": [["a", "String"]]})
    assert re.fullmatch(r"churn-model-v2-dev-[0-9a-f]{8}", name)
    assert feature_group_name("Churn.Model_v2-dev", {"features": [["a", "String"]]}) == name
    assert feature_group_name("Churn.Model_v2-dev", {"features": [["a", "Integral"]]}) != name
