"""`mlscaffold train --on sagemaker|eks --data feature-store`: a remote run's training and
validation channels from the feature group's offline store instead of the project's CSVs.

1. DescribeFeatureGroup names the group's Glue table (``OfflineStoreConfig.DataCatalogConfig``);
   GetTable says which columns it has, and a label or feature the table lacks is a usage error.
2. One Athena query (:func:`training_query`), in the stack's workgroup (stack output
   ``training_data``: results encrypted with the platform key, the configuration enforced),
   reads the table point-in-time: the latest record per record identifier by event time, ties
   broken by ``api_invocation_time`` then ``write_time``, deleted records dropped; only the
   schema's columns (features and label, in the dataset's order), plus a split column from a
   hash of the record identifier, rows in identifier order, so that a rerun on the same
   records gives the same bytes.
3. The result CSV (Athena writes it under ``training/queries/`` of the artifact bucket) is read
   once and written as ``train.csv`` and ``validation.csv`` with the dataset's column names,
   which are uploaded content-addressed like the project's own CSVs
   (``training/data/<sha256>/<split>.csv``, :func:`.remote_train.upload_files`): the training
   role reads them where it reads uploaded data, and their SHA-256 is the data hash the
   experiment, its model card and a registered model package carry.

The SageMaker Python SDK v3's feature-store dataset builder lives in ``sagemaker-mlops`` (pandas
and the SDK's session; no train/validation split): this module asks Athena through boto3.
Nothing here prints except through the run's ``echo``; errors are :mod:`mlscaffold.errors`.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aws import aws_errors, error_code
from .errors import MlscaffoldError, UsageError
from .outputs import require_output
from .sample_data import SPLITS
from .stacks.feature_schema import FeatureSchema

__all__ = ["DATA_SOURCES", "SPLIT_COLUMN", "VALIDATION_PERCENT", "OfflineTable",
           "TrainingData", "check_feature_store", "feature_store_channels", "training_query"]

#: where a remote run's data comes from: the project's CSVs, or the feature group
DATA_SOURCES = ("upload", "feature-store")
#: the query's last column: which channel a row goes to
SPLIT_COLUMN = "mlscaffold_split"
_RANK = "mlscaffold_rank"
# the share of rows the project's own split puts in validation (the sample data's
# train/validation rows: 800/200), so a feature-store run trains on as much as a local one
VALIDATION_PERCENT = round(100 * SPLITS["validation"][0]
                           / (SPLITS["train"][0] + SPLITS["validation"][0]))
ATHENA_POLL_SECONDS = 2.0
_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")
# columns Feature Store adds to every record of the offline store (AWS docs, "Amazon SageMaker
# Feature Store offline store data format": write_time, api_invocation_time, is_deleted)
OFFLINE_STORE_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")
_PERMISSIONS = ("the query policy of the stack (output training_data.launcher_policy_arn): "
                "sagemaker:DescribeFeatureGroup, glue:GetTable, athena:StartQueryExecution and "
                "GetQueryExecution in the stack's workgroup, s3:GetObject on the offline store "
                "and on training/queries/, kms:Decrypt and GenerateDataKey on the data key")
_INGEST_HINT = ("ingest records (`mlscaffold features ingest --stack {stack}`); the offline "
                "store shows them within about 15 minutes")


@dataclass(frozen=True)
class OfflineTable:
    """The Glue table of a feature group's offline store."""

    feature_group: str
    catalog: str
    database: str
    table: str

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


@dataclass(frozen=True)
class TrainingData:
    """What one feature-store run read: its channels' files and the facts of the query."""

    files: dict[str, Path]
    rows: dict[str, int]
    query_execution_id: str
    table: OfflineTable
    results: str

    def record(self, sha256: Mapping[str, str]) -> dict[str, Any]:
        """The remote-run record's ``data``: source, table, query, rows and data hashes."""
        return {"source": "feature-store", "feature_group": self.table.feature_group,
                "table": str(self.table), "query_execution_id": self.query_execution_id,
                "results": self.results, "rows": dict(self.rows), "sha256": dict(sha256)}


def _quote(name: str) -> str:
    # Athena keeps table and column names in lower case and matches them so (Athena docs,
    # "Name databases, tables, and columns"); a double-quoted identifier may hold `-`
    return '"' + name.lower().replace('"', '""') + '"'


def training_query(table: OfflineTable, schema: FeatureSchema,
                   validation_percent: int = VALIDATION_PERCENT) -> str:
    """The one query of a feature-store run (Athena engine 3, Trino SQL).

    - point in time: ``row_number()`` over each record identifier's records, latest event time
      first, ties by ``api_invocation_time`` then ``write_time``; only the first is kept, and
      dropped when it is a delete marker (``is_deleted``: a deleted record stays deleted);
    - columns: the schema's dataset columns (features and label) in the dataset's order, then
      ``mlscaffold_split``;
    - split: ``validation`` when the record identifier's xxhash64, taken modulo 100, is below
      `validation_percent`, else ``train``: the same record lands in the same channel on
      every run;
    - rows ordered by record identifier.
    """
    if not 0 < validation_percent < 100:
        raise ValueError(f"validation_percent {validation_percent} is not between 0 and 100")
    features = [schema.feature(name) for name in schema.columns.values()]
    record_id = _quote(schema.record_identifier)
    event = schema.feature(schema.event_time_feature)
    # ISO-8601 strings are compared as times, not as text ("…00.5Z" sorts before "…00Z")
    event_time = (f"from_iso8601_timestamp({_quote(event.name)})" if event.type == "String"
                  else _quote(event.name))
    # xxhash64 gives 8 bytes, from_big_endian_64 a signed bigint; the double mod keeps
    # negative hashes in 0..99 (Trino binary and math functions)
    bucket = (f"mod(mod(from_big_endian_64(xxhash64(to_utf8(CAST({record_id} AS varchar)))), "
              f"100) + 100, 100)")
    columns = ",\n  ".join(_quote(f.name) for f in features)
    # the catalog is the query's context (QueryExecutionContext.Catalog)
    source = f"{_quote(table.database)}.{_quote(table.table)}"
    return (
        f"SELECT\n  {columns},\n"
        f"  CASE WHEN {bucket} < {validation_percent} THEN 'validation' ELSE 'train' END"
        f" AS {SPLIT_COLUMN}\n"
        f"FROM (\n"
        f"  SELECT *, row_number() OVER (\n"
        f"    PARTITION BY {record_id}\n"
        f"    ORDER BY {event_time} DESC, \"api_invocation_time\" DESC, \"write_time\" DESC\n"
        f"  ) AS {_RANK}\n"
        f"  FROM {source}\n"
        f")\n"
        f"WHERE {_RANK} = 1 AND NOT \"is_deleted\"\n"
        f"ORDER BY {record_id}"
    )


def _settings(outputs: Mapping[str, Any], stack: str) -> tuple[str, FeatureSchema, dict]:
    """The feature group, its schema and the stack's query settings from the outputs."""
    from .features import deployed_feature_group

    group, _region, schema = deployed_feature_group(dict(outputs), stack)
    settings = require_output(dict(outputs), "training_data", stack,
                              "names the Athena workgroup that reads the feature store")
    if not isinstance(settings, Mapping) or not all(
            isinstance(settings.get(k), str) for k in ("workgroup", "results_uri")):
        raise UsageError(f"stack {stack}'s output training_data lacks workgroup or results_uri",
                         hint="deploy the stack with this mlscaffold version first "
                              "(make deploy STACK=...)")
    return group, schema, dict(settings)


def offline_table(run: Any, group: str) -> OfflineTable:
    """The group's Glue table from DescribeFeatureGroup (API: OfflineStoreConfig's
    DataCatalogConfig: Catalog, Database, TableName)."""
    from botocore.exceptions import ClientError

    with aws_errors(f"describe feature group {group}", _PERMISSIONS):
        try:
            described = run.client("sagemaker").describe_feature_group(FeatureGroupName=group)
        except ClientError as error:
            if error_code(error) not in ("ResourceNotFound", "ValidationException"):
                raise
            raise UsageError(f"feature group {group} does not exist",
                             hint="deploy the stack (make deploy STACK=...)") from None
    catalog = (described.get("OfflineStoreConfig") or {}).get("DataCatalogConfig") or {}
    if not catalog.get("TableName") or not catalog.get("Database"):
        raise UsageError(f"feature group {group} has no offline store table, so there is "
                         "nothing to train on",
                         hint="deploy the stack with this mlscaffold version (its groups "
                              "keep an offline store)")
    return OfflineTable(group, catalog.get("Catalog") or "AwsDataCatalog",
                        catalog["Database"], catalog["TableName"])


def check_table(run: Any, table: OfflineTable, schema: FeatureSchema, label: str,
                stack: str) -> None:
    """A feature, the label, the identifier, the event time or a column Feature Store adds
    missing from the Glue table is a usage error naming it."""
    from botocore.exceptions import ClientError

    with aws_errors(f"read the table {table} of feature group {table.feature_group}",
                    _PERMISSIONS):
        try:
            found = run.client("glue").get_table(DatabaseName=table.database, Name=table.table)
        except ClientError as error:
            if error_code(error) != "EntityNotFoundException":
                raise
            raise UsageError(f"the offline store table {table} of feature group "
                             f"{table.feature_group} does not exist",
                             hint="deploy the stack (make deploy STACK=...)") from None
    have = {str(c.get("Name", "")).lower()
            for c in found["Table"].get("StorageDescriptor", {}).get("Columns", [])}
    names = {feature: column for column, feature in schema.columns.items()}
    wanted = [*names, schema.record_identifier, schema.event_time_feature,
              *OFFLINE_STORE_COLUMNS]
    for feature in dict.fromkeys(wanted):
        if feature.lower() in have:
            continue
        column = names.get(feature)
        role = ("the label" if column == label else
                "the record identifier" if feature == schema.record_identifier else
                "the event time" if feature == schema.event_time_feature else
                "a column Feature Store adds" if feature in OFFLINE_STORE_COLUMNS else
                "a feature")
        raise UsageError(
            f"the offline store table {table} has no column {feature.lower()!r} ({role}"
            f"{f', dataset column {column!r}' if column and column != feature else ''}), "
            f"which stack {stack}'s schema names",
            hint="deploy the current schema (make deploy STACK=...), ingest again, or train "
                 "from the project's CSVs (--data upload)")


def run_query(run: Any, table: OfflineTable, query: str, settings: Mapping[str, str],
              kms_key_arn: str) -> tuple[str, str]:
    """Run `query` in the stack's workgroup; its execution id and result CSV's URI. A query
    that fails is MlscaffoldError with Athena's reason; Ctrl-C stops it."""
    athena = run.client("athena")
    with aws_errors(f"query the offline store of feature group {table.feature_group}",
                    _PERMISSIONS):
        # the workgroup enforces its result location and encryption (EnforceWorkGroupConfiguration);
        # the same settings here keep the results encrypted should it not
        query_id = athena.start_query_execution(
            QueryString=query, WorkGroup=settings["workgroup"],
            QueryExecutionContext={"Catalog": table.catalog, "Database": table.database},
            ResultConfiguration={"OutputLocation": settings["results_uri"],
                                 "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS",
                                                             "KmsKey": kms_key_arn}},
        )["QueryExecutionId"]
        run.echo(f"querying {table} (Athena query {query_id})")
        try:
            while True:
                execution = athena.get_query_execution(QueryExecutionId=query_id)[
                    "QueryExecution"]
                state = execution["Status"]["State"]
                if state in _DONE:
                    break
                run.sleep(ATHENA_POLL_SECONDS)
        except KeyboardInterrupt:
            athena.stop_query_execution(QueryExecutionId=query_id)
            raise MlscaffoldError(f"stopped Athena query {query_id}; nothing was started"
                                  ) from None
    if state != "SUCCEEDED":
        reason = " ".join(str(execution["Status"].get("StateChangeReason")
                              or "no reason given").split())
        hint = f"aws athena get-query-execution --query-execution-id {query_id}"
        if "scanned limit" in reason.lower():  # the workgroup's BytesScannedCutoffPerQuery
            limit = settings.get("scan_limit_gb")  # absent from stacks deployed before it
            hint = (f"the workgroup cancels a query that scans more than "
                    f"{f'{limit} GB' if limit else 'its cutoff'}: raise "
                    "training.query_scan_limit_gb in infra/Pulumi.<stack>.yaml and run "
                    "pulumi up")
        raise MlscaffoldError(f"the offline-store query {query_id} on {table} "
                              f"{state.lower()}: {reason}", hint=hint)
    return query_id, execution["ResultConfiguration"]["OutputLocation"]


def split_results(results: Path, schema: FeatureSchema, directory: Path
                  ) -> tuple[dict[str, Path], dict[str, int]]:
    """The query's CSV as ``train.csv`` and ``validation.csv`` in `directory`, headed with the
    dataset's column names; (files, rows)."""
    columns = list(schema.columns)
    expected = [schema.columns[c].lower() for c in columns] + [SPLIT_COLUMN]
    files = {split: directory / f"{split}.csv" for split in ("train", "validation")}
    rows = dict.fromkeys(files, 0)
    with results.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [name.lower() for name in next(reader, None) or []]
        if header != expected:
            raise MlscaffoldError(f"the query's result has the columns {', '.join(header)}, "
                                  f"not {', '.join(expected)}")
        handles = {split: path.open("w", newline="", encoding="utf-8")
                   for split, path in files.items()}
        try:
            writers = {split: csv.writer(h, lineterminator="\n") for split, h in handles.items()}
            for writer in writers.values():
                writer.writerow(columns)
            for cells in reader:
                split = cells[-1] if cells else ""
                if split not in writers or len(cells) != len(expected):
                    raise MlscaffoldError(f"the query's result holds a row of another shape "
                                          f"(line {reader.line_num})")
                writers[split].writerow(cells[:-1])
                rows[split] += 1
        finally:
            for handle_ in handles.values():
                handle_.close()
    return files, rows


def _download(run: Any, uri: str, destination: Path) -> None:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if not match:
        raise MlscaffoldError(f"Athena's result location is not an S3 URI: {uri!r}")
    with aws_errors(f"download the query's result {uri}", _PERMISSIONS):
        run.client("s3").download_file(match.group(1), match.group(2), str(destination))


def check_feature_store(spec: Any, stack: str) -> None:
    """A project whose spec declares no feature store has none to train from: UsageError."""
    if getattr(spec, "feature_store", "none") != "sagemaker":
        raise UsageError(f"--data feature-store: mlscaffold.yaml has feature_store: "
                         f"{getattr(spec, 'feature_store', 'none')}, so stack {stack} has no "
                         "feature group to train from",
                         hint="train from the project's CSVs (--data upload), or set "
                              "feature_store: sagemaker in mlscaffold.yaml and deploy")


def feature_store_channels(run: Any, target: Any, *, spec: Any, outputs: Mapping[str, Any],
                           stack: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Query the stack's feature group and upload the two channels; (channel -> key, the
    remote-run record's ``data``): a :data:`.remote_train.ChannelSource` once `spec`,
    `outputs` and `stack` are bound. Raises UsageError when the project has no feature store,
    the table lacks a column, or the store holds no records; MlscaffoldError when the
    query fails."""
    from .lifecycle.files import sha256_file
    from .remote_train import upload_files

    check_feature_store(spec, stack)
    group, schema, settings = _settings(outputs, stack)
    table = offline_table(run, group)
    check_table(run, table, schema, spec.label, stack)
    query_id, results = run_query(run, table, training_query(table, schema), settings,
                                  target.kms_key_arn)
    with tempfile.TemporaryDirectory(prefix="mlscaffold-features-") as scratch:
        downloaded = Path(scratch) / "results.csv"
        _download(run, results, downloaded)
        files, rows = split_results(downloaded, schema, Path(scratch))
        total = sum(rows.values())
        if total == 0:
            raise UsageError(f"the offline store table {table} holds no records (Athena query "
                             f"{query_id})", hint=_INGEST_HINT.format(stack=stack))
        empty = [split for split, count in rows.items() if count == 0]
        if empty:
            raise UsageError(f"the offline store table {table} holds {total} records, none of "
                             f"which falls in the {empty[0]} split ({VALIDATION_PERCENT}% of "
                             "record identifiers go to validation)",
                             hint="ingest more records, or train from the project's CSVs "
                                  "(--data upload)")
        run.echo(f"{table}: {rows['train']} train and {rows['validation']} validation "
                 "records (latest per record identifier)")
        sha256 = {split: sha256_file(path) for split, path in files.items()}
        keys = upload_files(run, target, files)
        data = TrainingData(files, rows, query_id, table, results)
        return keys, data.record(sha256)
