"""`mlscaffold train --on sagemaker --data feature-store`, offline.

moto plays SageMaker's DescribeFeatureGroup, Glue's GetTable, S3 and Athena's
StartQueryExecution / GetQueryExecution. moto runs no SQL: its queue of predefined results
(moto.athena.models, query_results_queue) stands for what the query returns, and moto writes
them as a CSV where Athena writes its results (<OutputLocation>/<query id>.csv). moto's queries
always succeed, so botocore's Stubber answers the Athena calls of a query that fails. The SQL
itself is checked as text: the point-in-time, deletion and split clauses.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends

import mlscaffold.remote_train as remote_train
from mlscaffold.errors import MlscaffoldError, UsageError
from mlscaffold.feature_data import (
    SPLIT_COLUMN,
    VALIDATION_PERCENT,
    OfflineTable,
    feature_store_channels,
    run_query,
    split_results,
    training_query,
)
from mlscaffold.stacks.feature_schema import feature_definitions_from_csv

from .conftest import assert_error, run_cli
from .test_remote import (
    ACCOUNT,
    BUCKET,
    CLUSTER,
    JOB,
    KEY,
    REGION,
    TRAINING,
    push_image,
    write_outputs,
)

GROUP = "lc-binary-dev-1a2b3c4d"
# moto names a group's Glue table itself, as SageMaker does when it is not told: a database
# and table are given here for the tests that need no group
DATABASE = "sagemaker_featurestore"
TABLE = "lc_binary_dev_1a2b3c4d"
WORKGROUP = "lc-binary-dev-training-data"
RESULTS = f"s3://{BUCKET}/training/queries/"
TRAINING_DATA = {"workgroup": WORKGROUP, "results_uri": RESULTS, "database": DATABASE,
                 "table": TABLE, "launcher_policy_arn": f"arn:aws:iam::{ACCOUNT}:policy/q"}


# the sample data every new project gets (a generated example's copy): the dataset the stack's
# schema comes from
DATASET = Path(__file__).resolve().parents[2] / "examples" / "churn-model" / "datasets" / \
    "train.csv"


class Spec:
    feature_store = "sagemaker"
    label = "label"


class Run:
    """RemoteRun's surface: clients, echo, sleep."""

    def __init__(self, session: Any, **clients: Any) -> None:
        self.session, self.clients, self.lines = session, clients, []
        self.sleep = lambda seconds: None

    def client(self, service: str) -> Any:
        return self.clients.get(service) or self.session.client(service)

    def echo(self, line: str) -> None:
        self.lines.append(line)


def schema_of():
    return feature_definitions_from_csv(DATASET, "label")


def outputs_of() -> dict[str, Any]:
    return {"feature_group": GROUP,
            "feature_store": {"region": REGION, **schema_of().as_dict()},
            "training_data": TRAINING_DATA, "training": TRAINING}


def glue_columns(schema, drop: str | None = None) -> list[dict[str, str]]:
    """The offline store table's columns: the features (lower case, as Glue keeps them) and
    what Feature Store adds."""
    kinds = {"String": "string", "Integral": "bigint", "Fractional": "double"}
    columns = [{"Name": f.name.lower(), "Type": kinds[f.type]} for f in schema.features]
    columns += [{"Name": "write_time", "Type": "timestamp"},
                {"Name": "api_invocation_time", "Type": "timestamp"},
                {"Name": "is_deleted", "Type": "boolean"}]
    return [c for c in columns if c["Name"] != drop]


@pytest.fixture
def store(monkeypatch):
    """A deployed stack's feature group, its Glue table and workgroup, under moto."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    schema = schema_of()
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket=BUCKET)
        session.client("ecr").create_repository(repositoryName=TRAINING["repository_url"]
                                                .split("/", 1)[1])
        session.client("sagemaker").create_feature_group(
            FeatureGroupName=GROUP, RecordIdentifierFeatureName=schema.record_identifier,
            EventTimeFeatureName=schema.event_time_feature,
            FeatureDefinitions=[{"FeatureName": n, "FeatureType": t}
                                for n, t in schema.feature_definitions],
            OfflineStoreConfig={
                "S3StorageConfig": {"S3Uri": "s3://lc-binary-dev-features/offline-store",
                                    "KmsKeyId": KEY},
                "DataCatalogConfig": {"Catalog": "AwsDataCatalog", "Database": DATABASE,
                                      "TableName": TABLE}},
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/ingestion")
        catalog = session.client("sagemaker").describe_feature_group(
            FeatureGroupName=GROUP)["OfflineStoreConfig"]["DataCatalogConfig"]
        glue = session.client("glue")
        glue.create_database(DatabaseInput={"Name": catalog["Database"]})
        glue.create_table(DatabaseName=catalog["Database"], TableInput={
            "Name": catalog["TableName"], "StorageDescriptor": {
                "Columns": glue_columns(schema)}})
        session.client("athena").create_work_group(Name=WORKGROUP)
        monkeypatch.setattr(remote_train, "job_name", lambda target, now=None: JOB)
        yield session


def table_of(session: Any) -> OfflineTable:
    """The group's table as DescribeFeatureGroup names it."""
    catalog = session.client("sagemaker").describe_feature_group(
        FeatureGroupName=GROUP)["OfflineStoreConfig"]["DataCatalogConfig"]
    return OfflineTable(GROUP, catalog["Catalog"], catalog["Database"], catalog["TableName"])


def athena_returns(rows: list[list[str | None]]) -> None:
    """What the next query returns (header first), as moto's predefined results."""
    backend = athena_backends[ACCOUNT][REGION]
    backend.query_results_queue.append(QueryResults(
        rows=[{"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
              for row in rows],
        column_info=[{"Name": name, "Type": "varchar"} for name in rows[0]]))


def result_rows(splits: list[str]) -> list[list[str | None]]:
    """The dataset as the query returns it: lower-case feature names, then the split column;
    the n-th row in splits[n]."""
    schema = schema_of()
    with DATASET.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        body = [row for row, _ in zip(reader, splits, strict=False)]
    header = [schema.columns[c].lower() for c in schema.columns] + [SPLIT_COLUMN]
    return [header, *[[v or None for v in row] + [split] for row, split in zip(body, splits,
                                                                              strict=True)]]


def channels(session: Any, outputs: dict | None = None, run: Any = None):
    target = remote_train.training_target({"training": TRAINING}, "dev")
    return feature_store_channels(run or Run(session), target, spec=Spec(),
                                  outputs=outputs or outputs_of(), stack="dev")


# ------------------------------------------------------------------ the query


def test_the_query_is_point_in_time_and_splits_by_record_identifier():
    schema = schema_of()
    query = training_query(OfflineTable(GROUP, "AwsDataCatalog", DATABASE, TABLE), schema)
    columns = [f'"{schema.columns[c].lower()}"' for c in schema.columns]
    # the dataset's columns, label included, in its order; the generated event time is not one
    assert query.startswith("SELECT\n  " + ",\n  ".join(columns) + ",\n")
    assert '"event_time",' not in query and '"label"' in query
    assert f'FROM "{DATABASE}"."{TABLE}"' in query
    # the latest record per identifier: event time as a time, then invocation and write time
    assert ('PARTITION BY "customer_id"\n    ORDER BY from_iso8601_timestamp("event_time") '
            'DESC, "api_invocation_time" DESC, "write_time" DESC') in query
    # ranked first, deleted after: a record whose latest write is a delete is dropped
    assert 'WHERE mlscaffold_rank = 1 AND NOT "is_deleted"' in query
    assert ("CASE WHEN mod(mod(from_big_endian_64(xxhash64(to_utf8(CAST(\"customer_id\" AS "
            "varchar)))), 100) + 100, 100) < 20 THEN 'validation' ELSE 'train' END AS "
            "mlscaffold_split") in query
    assert query.endswith('ORDER BY "customer_id"')
    assert VALIDATION_PERCENT == 20  # the sample data's 200 of 1,000 rows


def test_a_numeric_event_time_is_ordered_as_a_number(tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("id,at,x,label\na,1700000000.5,1,0\nb,1700000001,2,1\n")
    schema = feature_definitions_from_csv(data, "label", {"event_time": "at"})
    query = training_query(OfflineTable(GROUP, "AwsDataCatalog", DATABASE, TABLE), schema, 30)
    assert 'ORDER BY "at" DESC, "api_invocation_time" DESC' in query
    assert "< 30 THEN 'validation'" in query and '"at",' in query  # a dataset column here
    with pytest.raises(ValueError, match="between 0 and 100"):
        training_query(OfflineTable(GROUP, "c", DATABASE, TABLE), schema, 100)


def test_results_are_split_with_the_dataset_header(tmp_path):
    rows = result_rows(["train", "validation", "train"])
    results = tmp_path / "results.csv"
    with results.open("w", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(
            [[v or "" for v in row] for row in rows])
    files, counts = split_results(results, schema_of(), tmp_path)
    assert counts == {"train": 2, "validation": 1}
    original = DATASET.read_text().splitlines()
    assert files["train"].read_text().splitlines() == [original[0], original[1], original[3]]
    assert files["validation"].read_text().splitlines() == [original[0], original[2]]
    results.write_text('"customer_id","label"\n')
    with pytest.raises(MlscaffoldError, match="the query's result has the columns "
                                              "customer_id, label, not customer_id, "):
        split_results(results, schema_of(), tmp_path)


# ------------------------------------------------------------------ channels under moto


def test_the_channels_come_from_the_offline_store(store):
    athena_returns(result_rows(["train", "validation"] * 3))
    keys, data = channels(store)
    s3 = store.client("s3")
    original = DATASET.read_text().splitlines()
    bodies = {c: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode()
              for c, k in keys.items()}
    assert bodies["train"].splitlines() == [original[0], *original[1:7:2]]
    assert bodies["validation"].splitlines() == [original[0], *original[2:7:2]]
    for channel, key in keys.items():
        assert key.startswith("training/data/") and key.endswith(f"/{channel}.csv")
        assert key.split("/")[2] == data["sha256"][channel]  # content-addressed: data hash
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == KEY
    table = table_of(store)
    execution = store.client("athena").get_query_execution(
        QueryExecutionId=data["query_execution_id"])["QueryExecution"]
    assert execution["WorkGroup"] == WORKGROUP
    assert execution["QueryExecutionContext"] == {"Catalog": "AwsDataCatalog",
                                                  "Database": table.database}
    assert execution["Query"] == training_query(table, schema_of())
    assert execution["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS", "KmsKey": KEY}
    assert data == {"source": "feature-store", "feature_group": GROUP, "table": str(table),
                    "query_execution_id": data["query_execution_id"],
                    "results": f"{RESULTS}{data['query_execution_id']}.csv",
                    "rows": {"train": 3, "validation": 3}, "sha256": data["sha256"]}


def test_no_feature_store_in_the_spec():
    class NoStore(Spec):
        feature_store = "none"

    target = remote_train.training_target({"training": TRAINING}, "dev")
    with pytest.raises(UsageError) as caught:
        feature_store_channels(None, target, spec=NoStore(), outputs={}, stack="dev")
    assert caught.value.message == ("--data feature-store: mlscaffold.yaml has feature_store: "
                                    "none, so stack dev has no feature group to train from")


def test_a_stack_without_the_query_settings(store):
    outputs = {k: v for k, v in outputs_of().items() if k != "training_data"}
    with pytest.raises(UsageError, match="stack dev has no output 'training_data', which names "
                                         "the Athena workgroup"):
        channels(store, outputs)


def test_a_label_missing_from_the_table(store):
    table = table_of(store)
    store.client("glue").update_table(DatabaseName=table.database, TableInput={
        "Name": table.table, "StorageDescriptor": {"Columns": glue_columns(schema_of(),
                                                                           drop="label")}})
    with pytest.raises(UsageError) as caught:
        channels(store)
    assert caught.value.message == (f"the offline store table {table} has no column "
                                 "'label' (the label), which stack dev's schema names")


def test_no_records(store):
    athena_returns(result_rows([]))
    with pytest.raises(UsageError) as caught:
        channels(store)
    assert caught.value.message.startswith(f"the offline store table {table_of(store)} holds no "
                                        "records (Athena query ")
    assert "mlscaffold features ingest --stack dev" in caught.value.hint
    assert list(store.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix="training/data/").get("Contents", [])) == []


def test_records_in_one_split_only(store):
    athena_returns(result_rows(["train", "train"]))
    with pytest.raises(UsageError, match="holds 2 records, none of which falls in the "
                                         "validation split"):
        channels(store)


def _athena(query_id: str, *statuses: dict) -> tuple[object, Stubber]:
    """An Athena client whose query `query_id` starts, then reports `statuses` in turn."""
    athena = boto3.client("athena", region_name=REGION, aws_access_key_id="x",
                          aws_secret_access_key="x")
    stubber = Stubber(athena)
    stubber.add_response("start_query_execution", {"QueryExecutionId": query_id})
    for status in statuses:
        stubber.add_response("get_query_execution", {"QueryExecution": {
            "QueryExecutionId": query_id, "Status": status}})
    return athena, stubber


def test_a_failed_query_says_why():
    athena, stubber = _athena("q-1", {"State": "RUNNING"}, {
        "State": "FAILED", "StateChangeReason": "COLUMN_NOT_FOUND: line 2:3: Column\n"
                                                "'x' cannot be resolved"})
    table = OfflineTable(GROUP, "AwsDataCatalog", DATABASE, TABLE)
    with stubber, pytest.raises(MlscaffoldError) as caught:
        run_query(Run(None, athena=athena), table, "SELECT 1", TRAINING_DATA, KEY)
    assert caught.value.message == (f"the offline-store query q-1 on {DATABASE}.{TABLE} failed: "
                                    "COLUMN_NOT_FOUND: line 2:3: Column 'x' cannot be resolved")
    stubber.assert_no_pending_responses()


def test_a_query_over_the_scan_cutoff_says_which_setting_raises_it():
    # the reason Athena gives (dbt-labs/dbt-adapters#1221 quotes it)
    athena, stubber = _athena("q-3", {
        "State": "CANCELLED",
        "StateChangeReason": "Query cancelled! : Bytes scanned limit was exceeded"})
    table = OfflineTable(GROUP, "AwsDataCatalog", DATABASE, TABLE)
    with stubber, pytest.raises(MlscaffoldError) as caught:
        run_query(Run(None, athena=athena), table, "SELECT 1",
                  {**TRAINING_DATA, "scan_limit_gb": 100}, KEY)
    assert caught.value.message.endswith("cancelled: Query cancelled! : Bytes scanned limit was "
                                         "exceeded")
    assert caught.value.hint == ("the workgroup cancels a query that scans more than 100 GB: "
                                 "raise training.query_scan_limit_gb in "
                                 "infra/Pulumi.<stack>.yaml and run pulumi up")


def test_ctrl_c_stops_the_query():
    athena, stubber = _athena("q-2", {"State": "RUNNING"})
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-2"})
    run = Run(None, athena=athena)

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    run.sleep = interrupted
    with stubber, pytest.raises(MlscaffoldError, match="stopped Athena query q-2"):
        run_query(run, OfflineTable(GROUP, "c", DATABASE, TABLE), "SELECT 1", TRAINING_DATA,
                  KEY)
    stubber.assert_no_pending_responses()


def test_the_model_card_names_the_data_source():
    card = "# Model card: x exp-001\n\n| | |\n|---|---|\n| task | t |\n\n## Validation\n"
    data = {"feature_group": GROUP, "table": "d.t", "query_execution_id": "q-1",
            "rows": {"train": 8, "validation": 2}}
    assert remote_train.card_with_source(card, data) == (
        "# Model card: x exp-001\n\n| | |\n|---|---|\n| task | t |\n"
        f"| data source | feature group `{GROUP}` (table `d.t`), Athena query `q-1`: 8 train, "
        "2 validation records |\n\n## Validation\n")


# ------------------------------------------------------------------ the command


def model_from(trained: Path, session: Any) -> None:
    """What SageMaker uploads when the job completes: here, a trained project's exp-001."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for item in sorted((trained / "experiments" / "exp-001").iterdir()):
            tar.add(item, arcname=item.name)
    session.client("s3").put_object(
        Bucket=BUCKET, Key=f"training/jobs/{JOB}/output/{JOB}/output/model.tar.gz",
        Body=buffer.getvalue())


def use_feature_store(project: Path) -> None:
    """feature_store: sagemaker in the spec and in the last render's answers."""
    for name in ("mlscaffold.yaml", ".copier-answers.yml"):
        path = project / name
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**data, "feature_store": "sagemaker"}, sort_keys=False))


def test_train_on_sagemaker_from_the_feature_store(project, store, trained_copy, tmp_path,
                                                   monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # MLflow logging is test_remote's
    use_feature_store(project)
    push_image(store)
    model_from(trained_copy, store)
    athena_returns(result_rows(["train", "validation"] * 4))
    outputs = write_outputs(tmp_path, **outputs_of())
    result = run_cli(project, "train", "--on", "sagemaker", "--stack", "dev", "--outputs",
                     outputs, "--time", "5", "--data", "feature-store")
    assert result.code == 0, result.err
    assert f"{table_of(store)}: 4 train and 4 validation records" in result.out
    experiment = project / "experiments" / "exp-001"
    record = json.loads((experiment / "experiment.json").read_text())["remote"]["data"]
    assert record["source"] == "feature-store" and record["rows"] == {"train": 4,
                                                                       "validation": 4}
    assert record["table"] == str(table_of(store)) and record["query_execution_id"]
    card = (experiment / "model_card.md").read_text()
    assert f"| data source | feature group `{GROUP}`" in card
    job = store.client("sagemaker").describe_training_job(TrainingJobName=JOB)
    uris = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
            for c in job["InputDataConfig"]}
    assert uris == {c: f"s3://{BUCKET}/training/data/{record['sha256'][c]}/{c}.csv"
                    for c in ("train", "validation")}


def test_feature_store_data_on_a_project_without_one(project, tmp_path):
    outputs = write_outputs(tmp_path, training=TRAINING)
    result = run_cli(project, "train", "--on", "sagemaker", "--stack", "dev", "--outputs",
                     outputs, "--data", "feature-store")
    # before any AWS call: the test has no credentials
    assert_error(result, 2, "--data feature-store: mlscaffold.yaml has feature_store: none, "
                            "so stack dev has no feature group to train from")
    local = run_cli(project, "train", "--data", "feature-store")
    assert_error(local, 2, "--data feature-store is for remote runs (a local run reads "
                           "datasets/)", "add --on sagemaker or --on eks")


def test_train_on_eks_from_the_feature_store(project, store, trained_copy, tmp_path,
                                             monkeypatch):
    """The Job fetches the query's channels; kubectl and the tunnel are stand-ins, and the
    Job's upload of the model is played by putting a trained experiment under its prefix."""
    import contextlib
    from types import SimpleNamespace

    import mlscaffold.eks_job as eks_job
    import mlscaffold.tunnel as tunnel
    from mlscaffold.eks_follow import JobOutcome

    applied: list[dict] = []

    def apply(*args, stdin=None):
        applied.append(json.loads(stdin))
        return ""

    def follow(kubectl, name, **options):  # the Job ran and uploaded its model
        for item in (trained_copy / "experiments" / "exp-001").iterdir():
            store.client("s3").put_object(Bucket=BUCKET, Body=item.read_bytes(),
                                          Key=f"training/jobs/{name}/output/model/{item.name}")
        return JobOutcome("Complete", "CompletionsReached", "", None)

    monkeypatch.setattr(eks_job, "find_kubectl", lambda kubeconfig: SimpleNamespace(run=apply))
    monkeypatch.setattr(eks_job, "follow_job", follow)
    monkeypatch.setattr(tunnel, "open_tunnel", lambda target: contextlib.nullcontext())
    monkeypatch.setattr(tunnel, "tunnel_target", lambda outputs, stack: None)
    monkeypatch.setattr(tunnel, "tunnel_kubeconfig", lambda cluster: "apiVersion: v1\n")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    use_feature_store(project)
    push_image(store)
    athena_returns(result_rows(["validation", "train", "train"]))
    outputs = write_outputs(tmp_path, **{**outputs_of(), "cluster": CLUSTER, "training": {
        **TRAINING, "eks": {"namespace": "ml-training", "service_account": "trainer"}}})
    result = run_cli(project, "train", "--on", "eks", "--stack", "dev", "--outputs", outputs,
                     "--time", "5", "--data", "feature-store")
    assert result.code == 0, result.err
    record = json.loads((project / "experiments" / "exp-001" / "experiment.json").read_text())
    data = record["remote"]["data"]
    assert record["remote"]["on"] == "eks" and data["rows"] == {"train": 2, "validation": 1}
    (manifest,) = applied
    fetch = manifest["spec"]["template"]["spec"]["initContainers"][0]["args"][0]
    for channel in ("train", "validation"):
        assert f"training/data/{data['sha256'][channel]}/{channel}.csv" in fetch
    dry = run_cli(project, "train", "--on", "eks", "--stack", "dev", "--outputs", outputs,
                  "--data", "feature-store", "--dry-run")
    assert_error(dry, 2, "--dry-run with --data feature-store")


# ------------------------------------------------------------------ the query, run


def run_on_sqlite(query: str, rows: list[dict[str, Any]], columns: list[str]) -> list[tuple]:
    """The query, parsed as Trino SQL by sqlglot and run by SQLite on `rows` as the offline
    store's table. Trino's functions SQLite lacks are Python functions here: ISO-8601 times as
    epoch seconds, UTF-8 encoding, a stand-in for xxhash64 (8 bytes of SHA-256: the split's
    logic, not Athena's hash values), big-endian bytes as a signed 64-bit integer."""
    import hashlib
    import sqlite3
    from datetime import datetime

    sqlglot = pytest.importorskip("sqlglot", reason="sqlglot (test extra) parses the Trino SQL")
    from sqlglot import exp

    tree = sqlglot.parse_one(query, read="trino").transform(
        lambda node: exp.Anonymous(this="ISO_TIME", expressions=[node.this])
        if isinstance(node, exp.FromISO8601Timestamp) else node)
    connection = sqlite3.connect(":memory:")
    connection.execute("ATTACH ':memory:' AS sagemaker_featurestore")
    connection.create_function("ISO_TIME", 1, lambda v: datetime.fromisoformat(v).timestamp())
    connection.create_function("ENCODE", 2, lambda v, charset: v.encode(charset))
    connection.create_function("XXHASH64", 1, lambda v: hashlib.sha256(v).digest()[:8])
    connection.create_function("FROM_BIG_ENDIAN_64", 1,
                               lambda v: int.from_bytes(v, "big", signed=True))
    connection.execute(f'CREATE TABLE sagemaker_featurestore."{TABLE}" '
                       f"({', '.join(repr(c) for c in columns)})")
    connection.executemany(
        f'INSERT INTO sagemaker_featurestore."{TABLE}" VALUES '
        f"({', '.join('?' * len(columns))})", [[r.get(c) for c in columns] for r in rows])
    return connection.execute(tree.sql(dialect="sqlite")).fetchall()


def test_the_query_keeps_the_latest_live_record_of_each_identifier(tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("id,at,x,label\na,2024-01-01T00:00:00Z,1,0\n")
    schema = feature_definitions_from_csv(data, "label", {"event_time": "at"})
    query = training_query(OfflineTable(GROUP, "AwsDataCatalog", DATABASE, TABLE), schema, 50)
    columns = ["id", "at", "x", "label", "write_time", "api_invocation_time", "is_deleted"]

    def record(id_: str, at: str, x: int | None, invoked: int, deleted: bool = False,
               written: int = 0) -> dict[str, Any]:
        return {"id": id_, "at": at, "x": x, "label": 0 if x is None else x % 2,
                "api_invocation_time": invoked, "write_time": written, "is_deleted": deleted}

    rows = [
        # a: a later event wins over a later write of an earlier event; "…00.5Z" is later
        # than "…00Z" though it sorts before it as text
        record("a", "2024-01-01T00:00:00Z", 1, invoked=9),
        record("a", "2024-01-01T00:00:00.5Z", 2, invoked=1),
        # b: the same event time twice: the later PutRecord wins, then the later write
        record("b", "2024-01-02T00:00:00Z", 3, invoked=1),
        record("b", "2024-01-02T00:00:00Z", 4, invoked=2),
        record("b", "2024-01-02T00:00:00Z", 5, invoked=2, written=1),
        # c: deleted after its last event: gone
        record("c", "2024-01-03T00:00:00Z", 6, invoked=1),
        record("c", "2024-01-04T00:00:00Z", None, invoked=2, deleted=True),
        # d: deleted, then put again with a later event time: back
        record("d", "2024-01-03T00:00:00Z", None, invoked=1, deleted=True),
        record("d", "2024-01-05T00:00:00Z", 7, invoked=2),
        *[record(f"e{n}", "2024-01-06T00:00:00Z", 8, invoked=1) for n in range(40)],
    ]
    found = run_on_sqlite(query, rows, columns)
    latest = {row[0]: row for row in found}
    assert len(found) == len(latest) == 43  # one row per live identifier: a, b, d, e0-e39
    assert latest["a"][1:3] == ("2024-01-01T00:00:00.5Z", 2)
    assert latest["b"][2] == 5 and "c" not in latest and latest["d"][2] == 7
    assert [row[0] for row in found] == sorted(latest)  # ordered by identifier
    assert [len(row) for row in found] == [5] * 43  # id, at, x, label, split
    splits = {row[0]: row[-1] for row in found}
    assert set(splits.values()) == {"train", "validation"}
    # the split follows the identifier alone: the same on every run, whatever the other rows
    again = run_on_sqlite(query, [*rows[::-1], record("f", "2024-01-07T00:00:00Z", 9, 1)],
                          columns)
    assert {row[0]: row[-1] for row in again if row[0] != "f"} == splits


def test_the_job_hashes_the_query_results_it_trains_on(project, store, tmp_path):
    """The data hash a registered model carries (experiment.json's data.<split>.sha256, which
    `promote --stack` copies) is the hash of the channels the query made."""
    from mlscaffold.lifecycle.config import ProjectConfig
    from mlscaffold.lifecycle.job import JobPaths, run_training_job

    athena_returns(result_rows(["train", "train", "train", "validation"] * 40))
    keys, data = channels(store)
    paths = JobPaths(tmp_path / "opt-ml")
    for channel, key in keys.items():  # what SageMaker puts in the container
        paths.channel(channel).mkdir(parents=True)
        store.client("s3").download_file(BUCKET, key, str(paths.channel(channel) /
                                                          f"{channel}.csv"))
    paths.hyperparameters.parent.mkdir(parents=True)
    paths.hyperparameters.write_text(json.dumps({"time": "1", "seed": "42"}))
    config = ProjectConfig(root=project, name="lc-binary", task="binary-classification",
                           label="label", metric="roc_auc", metric_threshold=0.75)
    run_training_job(config, paths)
    record = json.loads((paths.model / "experiment.json").read_text())
    assert {split: item["sha256"] for split, item in record["data"].items()} == data["sha256"]
    assert {split: item["rows"] for split, item in record["data"].items()} == data["rows"]
