"""The feature store from the command line: the schema a stack derives, and ingestion.

:func:`project_schema` derives what ``pulumi up`` deploys (from ``datasets/train.csv`` and the
spec's ``features`` section) without Pulumi or AWS. :func:`ingest` puts every row of a CSV into
a deployed stack's feature group with ``PutRecord``, reading the group's name, region and
schema from the stack's outputs, so the records match what was deployed, not what the spec
says today. Nothing here prints; errors are :mod:`mlscaffold.errors`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .errors import MlscaffoldError, UsageError
from .infra import find_project, require_environment
from .outputs import read_stack_outputs, require_output
from .spec import SPEC_FILENAME, ProjectSpec, load_spec
from .stacks.columns import csv_reader, not_utf8
from .stacks.feature_schema import (
    FeatureSchema,
    FeatureSchemaError,
    feature_definitions_from_csv,
    format_event_time,
    normalize_event_time,
    record_id_for,
    render_value,
)

__all__ = ["DATASET", "IngestResult", "ingest", "project_schema", "schema_yaml"]

# the data the infra program derives the feature group from (infra/__main__.py passes it)
DATASET = Path("datasets") / "train.csv"
DEFAULT_WORKERS = 4
# botocore retries each call itself (adaptive mode: backoff and client-side rate limiting);
# a call that still fails with a throttling or server error, e.g. once the client's retry
# quota is spent under sustained throttling, is tried again after each of these pauses
RETRY_PAUSES_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0)
_BOTOCORE_RETRIES = {"mode": "adaptive", "max_attempts": 8}
_THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown"})
# PutRecord's modelled faults (botocore's sagemaker-featurestore-runtime model)
_SERVER_CODES = frozenset({"InternalFailure", "ServiceUnavailable"})
# PutRecord callers need kms:Decrypt on the online store's key (API OnlineStoreSecurityConfig)
_PERMISSIONS = ("the credentials need sagemaker:PutRecord on the feature group and "
                "kms:Decrypt on the key of its online store")
_HINTS = {
    "AccessForbidden": _PERMISSIONS,
    "AccessDeniedException": _PERMISSIONS,
    "ResourceNotFound": "deploy the stack (pulumi up) or pass the outputs of the deployed one",
}


def _spec(project: Path) -> tuple[Path, ProjectSpec]:
    root = find_project(project)
    spec = load_spec(root / SPEC_FILENAME)
    if spec.feature_store != "sagemaker":
        raise UsageError(f"{root / SPEC_FILENAME} has feature_store: {spec.feature_store}, so "
                         "its stacks have no feature group",
                         hint="set feature_store: sagemaker in mlscaffold.yaml and deploy")
    return root, spec


def project_schema(project: Path) -> tuple[Path, FeatureSchema]:
    """The project's dataset and the feature group schema its stacks derive from it.

    Raises UsageError naming the file, column, row and fix when the data does not fit.
    """
    root, spec = _spec(project)
    try:
        return DATASET, feature_definitions_from_csv(root / DATASET, spec.label, spec.features)
    except FeatureSchemaError as error:
        raise UsageError(str(error)) from None


def _yaml_key(key: str) -> str:
    """`key` as a YAML mapping key: plain when it reads back as itself, else quoted."""
    try:
        if yaml.safe_load(f"{key}: x") == {key: "x"}:
            return key
    except yaml.YAMLError:
        pass
    return json.dumps(key, ensure_ascii=False)


def schema_yaml(schema: FeatureSchema, dataset: Path = DATASET) -> str:
    """The schema as the ``features`` section of mlscaffold.yaml, every type declared, each
    line commented with its feature name and whether it was declared or inferred."""
    rows = [(f"    {_yaml_key(f.column)}: {f.type}", f"{f.source}, feature {f.name}")
            for f in schema.features if f.column is not None]
    width = max(len(text) for text, _ in rows)
    lines = [f"# The feature group's schema, derived from {dataset.as_posix()} and "
             "mlscaffold.yaml.",
             "# Paste it into mlscaffold.yaml to declare every type as it is now.",
             "features:", "  types:"]
    lines += [f"{text:<{width}}  # {comment}" for text, comment in rows]
    for key, name in (("record_identifier", schema.record_identifier),
                      ("event_time", schema.event_time_feature)):
        feature = schema.feature(name)
        if feature.column is None:
            lines.append(f"  # {key}: none; mlscaffold features ingest fills the generated "
                         f"feature {name}")
        else:
            lines.append(f"  {key}: {_yaml_key(feature.column)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ ingestion


@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest` wrote."""

    feature_group: str
    region: str
    dataset: Path
    rows: int
    seconds: float


def deployed_feature_group(outputs: dict[str, Any],
                           stack: str) -> tuple[str, str, FeatureSchema]:
    """The feature group a stack deployed, from its outputs: name, region and schema."""
    group = require_output(outputs, "feature_group", stack, "names the feature group")
    settings = require_output(outputs, "feature_store", stack,
                              "holds the feature group's region and schema")
    try:
        if not isinstance(group, str) or not isinstance(settings.get("region"), str):
            raise FeatureSchemaError("no region")
        return group, settings["region"], FeatureSchema.from_dict(settings)
    except (FeatureSchemaError, AttributeError) as error:
        raise UsageError(f"stack {stack}'s outputs feature_group and feature_store are not "
                         f"what this mlscaffold exports ({error})",
                         hint="deploy the stack with this mlscaffold version (pulumi up)"
                         ) from None


def _check_columns(path: Path, header: list[str] | None, schema: FeatureSchema,
                   stack: str) -> dict[str, int]:
    if not header:
        raise UsageError(f"{path}: no header row", hint="the first line must name the columns")
    # spaces around a name are not part of it, as the schema read it (feature_definitions_from_csv)
    header = [name.strip() for name in header]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise UsageError(f"{path}: column {twice[0]!r} appears more than once in the header",
                         hint="give every column its own name")
    deployed = schema.columns
    missing = [c for c in deployed if c not in header]
    extra = [c for c in header if c not in deployed]
    if missing or extra:
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"not in the deployed schema {', '.join(map(repr, extra))}"] if extra else [])
        raise UsageError(
            f"{path}: the columns differ from stack {stack}'s feature group ({'; '.join(parts)})",
            hint="ingest data with the deployed columns, or deploy this data's schema first "
                 "(pulumi up; `mlscaffold features schema` shows it)")
    return {column: i for i, column in enumerate(header)}


def _records(path: Path, schema: FeatureSchema, stack: str,
             ingested_at: str) -> Iterator[tuple[int, int, list[dict[str, str]]]]:
    """(row, line, PutRecord's Record) for every row; a value that does not fit the deployed
    schema is a UsageError naming the row, the column and the fix."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv_reader(handle)
        index = _check_columns(path, next(reader, None), schema, stack)
        for row, cells in enumerate((c for c in reader if c), start=1):
            where = f"row {row} (line {reader.line_num})"
            if len(cells) != len(index):
                raise UsageError(f"{path}: {where} has {len(cells)} fields, the header "
                                 f"{len(index)}", hint="quote values that hold commas")
            record = []
            for feature in schema.features:
                role = ("record identifier" if feature.name == schema.record_identifier else
                        "event time" if feature.name == schema.event_time_feature else None)
                if feature.column is None:  # generated: the row's digest, or the ingestion time
                    value = record_id_for(cells) if role == "record identifier" else ingested_at
                    record.append({"FeatureName": feature.name, "ValueAsString": value})
                    continue
                cell = cells[index[feature.column]].strip()
                if not cell:
                    if role:
                        raise UsageError(f"{path}: {where}: column {feature.column!r}, the "
                                         f"{role}, is empty",
                                         hint="every record needs one; fill it or drop the row")
                    continue  # an empty cell is a missing value: left out of the record
                value = (normalize_event_time(cell, feature.type) if role == "event time"
                         else render_value(cell, feature.type))
                if value is None:
                    kind = ("an ISO-8601 date or date-time" if role == "event time"
                            and feature.type == "String" else feature.type)
                    raise UsageError(
                        f"{path}: {where}: column {feature.column!r} holds {cell!r}, not "
                        f"{kind} as in stack {stack}'s feature group",
                        hint="fix the value, or declare the column's type in mlscaffold.yaml "
                             "and deploy the new schema (pulumi up)")
                record.append({"FeatureName": feature.name, "ValueAsString": value})
            yield row, reader.line_num, record


def _client(region: str, workers: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("sagemaker-featurestore-runtime", region_name=region,
                        config=Config(retries=_BOTOCORE_RETRIES,
                                      max_pool_connections=max(10, workers)))


@dataclass
class _Failure:
    row: int
    line: int
    code: str
    message: str


def _retryable(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    code = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in _THROTTLING_CODES or code in _SERVER_CODES or status == 429 or status >= 500


def _put(client: Any, group: str, record: list[dict[str, str]],
         sleep: Callable[[float], None]) -> None:
    from botocore.exceptions import ClientError

    for pause in (*RETRY_PAUSES_SECONDS, None):
        try:
            client.put_record(FeatureGroupName=group, Record=record)
            return
        except ClientError as error:
            if pause is None or not _retryable(error):
                raise
            sleep(pause)


def _failure(error: BaseException, row: int, line: int) -> _Failure:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return _Failure(row, line, details.get("Code", "error"), details.get("Message", ""))
    if isinstance(error, BotoCoreError):
        return _Failure(row, line, type(error).__name__, str(error))
    raise error


def ingest(project: Path, stack: str, *, outputs_source: str | None = None,
           dataset: Path | None = None, workers: int = DEFAULT_WORKERS, client: Any = None,
           now: Callable[[], datetime] | None = None,
           sleep: Callable[[float], None] = time.sleep) -> IngestResult:
    """Put every row of `dataset` (default: the project's datasets/train.csv) into the feature
    group of `stack`, as one ``PutRecord`` call per row on `workers` threads.

    The group's name, region and schema come from the stack's outputs (`outputs_source`: a
    JSON file or ``-``; default: the Pulumi CLI). Every row is checked against that schema
    before anything is written; columns that differ from it, or a value of the wrong type,
    are a UsageError. Values are rendered as the schema's types, event times normalised to
    UTC, empty cells left out; a generated record identifier is a digest of the row, a
    generated event time the one time of this ingestion. Throttling and server errors are
    retried (botocore's adaptive mode, then a few paused rounds); the first other error stops
    the ingestion: MlscaffoldError naming the row.
    """
    started = time.perf_counter()
    root, spec = _spec(project)
    require_environment(spec, stack, root)
    outputs = read_stack_outputs(root, stack, outputs_source)
    group, region, schema = deployed_feature_group(outputs, stack)
    path = dataset if dataset is not None else root / DATASET
    if not path.is_file():
        raise UsageError(f"--input {path}: no such file", hint="pass the CSV to ingest")
    ingested_at = format_event_time((now or (lambda: datetime.now(UTC)))())
    try:
        for _ in _records(path, schema, stack, ingested_at):
            pass  # every row checked before the first is written
    except UnicodeDecodeError:
        raise UsageError(f"{path}: {not_utf8(path)}") from None
    client = client if client is not None else _client(region, workers)
    records = _records(path, schema, stack, ingested_at)
    try:
        written, failure = _put_all(client, group, records, workers, sleep)
    finally:
        records.close()
    if failure is not None:
        hint = _HINTS.get(failure.code, "fix the row (or the cause) and run again")
        raise MlscaffoldError(
            f"row {failure.row} (line {failure.line}) of {path} was not written to feature "
            f"group {group}: {failure.code}: {failure.message} ({written} rows written before "
            "it stopped)",
            hint=f"{hint}; rows written again replace their online record, the offline store "
                 "keeps every write")
    return IngestResult(group, region, path, written, time.perf_counter() - started)


def _put_all(client: Any, group: str, records: Iterator[tuple[int, int, list[dict[str, str]]]],
             workers: int, sleep: Callable[[float], None]) -> tuple[int, _Failure | None]:
    """Send the records on a small pool, at most `workers` in flight, so that nothing waits
    in a queue: at the first error no new row is sent, only the calls already running finish.
    Returns the rows written and the earliest failed row, if any."""
    written = 0
    failures: list[_Failure] = []
    pending: dict[Future[None], tuple[int, int]] = {}

    def settle(until: int) -> None:
        nonlocal written
        while len(pending) > until:
            for future in wait(pending, return_when=FIRST_COMPLETED).done:
                row, line = pending.pop(future)
                error = future.exception()
                if error is None:
                    written += 1
                else:
                    failures.append(_failure(error, row, line))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="put-record") as pool:
        for row, line, record in records:
            settle(workers - 1)
            if failures:
                break
            pending[pool.submit(_put, client, group, record, sleep)] = (row, line)
        settle(0)
    return written, min(failures, key=lambda f: f.row) if failures else None
