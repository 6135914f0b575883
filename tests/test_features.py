"""`mlscaffold features`: the derived schema, and ingestion into a deployed feature group.

PutRecord is stubbed with botocore's Stubber (moto does not implement the Feature Store
runtime). The Stubber answers before botocore's own retry layer, so the throttled call here
exercises mlscaffold's retry round, not botocore's.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pulumi
import pytest
import yaml
from botocore.stub import Stubber

from mlscaffold import features
from mlscaffold.errors import MlscaffoldError, UsageError
from mlscaffold.features import ingest, project_schema
from mlscaffold.graph import run_under_mocks
from mlscaffold.sample_data import write_sample_datasets
from mlscaffold.spec import load_spec, validate_spec
from mlscaffold.stacks.config import platform_config
from mlscaffold.stacks.feature_schema import (
    FeatureSchemaError,
    feature_definitions_from_csv,
    record_id_for,
)
from mlscaffold.stacks.model_keys import STAND_IN_MODEL_KEY

GROUP = "churn-dev-0123abcd"
NOW = datetime(2026, 12, 3, 9, 30, 15, tzinfo=UTC)
DATA = ("customer_id,Monthly Spend ($),visits,signup_time,plan,label\n"
        "C1,10.50,3,2024-01-05,basic,0\n"
        "C2,20,4.0,2024-01-05 10:00:00+02:00,,1\n"
        "C3,1e1,5,2024-01-06T08:00:00.25Z,premium,0\n")
DECLARED = {"types": {"visits": "Integral"}, "event_time": "signup_time"}


def _project(tmp_path: Path, data: str = DATA, declared: dict | None = DECLARED) -> Path:
    root = tmp_path / "churn"
    (root / "datasets").mkdir(parents=True)
    spec = {"name": "churn", "feature_store": "sagemaker", "environments": ["dev", "prod"]}
    if declared is not None:
        spec["features"] = declared
    (root / "mlscaffold.yaml").write_text(validate_spec(spec).to_yaml())
    (root / "datasets" / "train.csv").write_text(data)
    return root


def _outputs(root: Path, region: str = "eu-west-1") -> Path:
    """The stack outputs `pulumi stack output --json` prints for the project's schema."""
    spec = load_spec(root / "mlscaffold.yaml")
    schema = feature_definitions_from_csv(root / "datasets" / "train.csv", spec.label,
                                          spec.features)
    path = root / "outputs.json"
    path.write_text(json.dumps({"feature_group": GROUP,
                                "feature_store": {"region": region, **schema.as_dict()}}))
    return path


def _client(region: str = "eu-west-1"):
    return boto3.client("sagemaker-featurestore-runtime", region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _record(**values: str) -> list[dict[str, str]]:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


EXPECTED = [
    _record(customer_id="C1", Monthly_Spend="10.50", visits="3",
            signup_time="2024-01-05T00:00:00Z", plan="basic", label="0"),
    _record(customer_id="C2", Monthly_Spend="20", visits="4",
            signup_time="2024-01-05T08:00:00Z", label="1"),  # the empty plan left out
    _record(customer_id="C3", Monthly_Spend="10", visits="5",
            signup_time="2024-01-06T08:00:00.250Z", plan="premium", label="0"),
]


@contextlib.contextmanager
def _putting_expected(client) -> Iterator[None]:
    """`client` answers one put_record per row of EXPECTED, in order, and every one is used."""
    with Stubber(client) as stubber:
        for record in EXPECTED:
            stubber.add_response("put_record", {}, {"FeatureGroupName": GROUP, "Record": record})
        yield
        stubber.assert_no_pending_responses()


def _ingest(root: Path, client, **kwargs):
    pauses: list[float] = []
    result = ingest(root, "dev", outputs_source=str(_outputs(root)), client=client,
                    now=lambda: NOW, sleep=pauses.append, **{"workers": 1, **kwargs})
    return result, pauses


def test_every_row_goes_as_the_deployed_schema_says(tmp_path):
    root = _project(tmp_path)
    client = _client()
    with _putting_expected(client):
        result, pauses = _ingest(root, client)
    assert (result.feature_group, result.region, result.rows) == (GROUP, "eu-west-1", 3)
    assert result.dataset == root / "datasets" / "train.csv"
    assert pauses == []


def test_generated_identifier_and_event_time(tmp_path):
    data = "plan,spend,label\nbasic,1.5,0\npremium,2,1\nbasic,1.5,0\n"
    root = _project(tmp_path, data, declared=None)
    client = _client()
    rows = [line.split(",") for line in data.splitlines()[1:]]
    with Stubber(client) as stubber:
        for plan, spend, label in rows:
            stubber.add_response("put_record", {}, {"FeatureGroupName": GROUP, "Record": _record(
                plan=plan, spend=spend, label=label,
                record_id=record_id_for([plan, spend, label]),
                event_time="2026-12-03T09:30:15Z")})
        result, _ = _ingest(root, client)
        stubber.assert_no_pending_responses()
    assert result.rows == 3
    # the same content, the same identifier; one time for the whole ingestion
    assert record_id_for(rows[0]) == record_id_for(rows[2]) != record_id_for(rows[1])


def test_a_throttled_call_is_retried_after_a_pause(tmp_path):
    root = _project(tmp_path)
    client = _client()
    with Stubber(client) as stubber:
        stubber.add_response("put_record", {}, {"FeatureGroupName": GROUP, "Record": EXPECTED[0]})
        stubber.add_client_error("put_record", "ThrottlingException", "Rate exceeded", 400,
                                 expected_params={"FeatureGroupName": GROUP,
                                                  "Record": EXPECTED[1]})
        for record in EXPECTED[1:]:
            stubber.add_response("put_record", {}, {"FeatureGroupName": GROUP, "Record": record})
        result, pauses = _ingest(root, client)
        stubber.assert_no_pending_responses()
    assert result.rows == 3
    assert pauses == [1.0]


def _sent_identifiers(client) -> list[str]:
    """The first value (the customer_id) of every PutRecord the client is asked to make."""
    sent: list[str] = []
    lock = threading.Lock()

    def collect(params, **_):
        with lock:
            sent.append(params["Record"][0]["ValueAsString"])

    client.meta.events.register("provide-client-params.sagemaker-featurestore-runtime.PutRecord",
                                collect)
    return sent


def test_a_rejected_row_stops_the_ingestion_and_is_named(tmp_path):
    root = _project(tmp_path)
    client = _client()
    sent = _sent_identifiers(client)
    with Stubber(client) as stubber:
        stubber.add_response("put_record", {}, {"FeatureGroupName": GROUP, "Record": EXPECTED[0]})
        stubber.add_client_error("put_record", "ValidationError",
                                 "Record is missing the event time", 400,
                                 expected_params={"FeatureGroupName": GROUP,
                                                  "Record": EXPECTED[1]})
        with pytest.raises(MlscaffoldError) as caught:
            _ingest(root, client)
        stubber.assert_no_pending_responses()
    assert sent == ["C1", "C2"]  # row 3 was never sent
    error = caught.value
    assert not isinstance(error, UsageError) and error.exit_code == 1
    assert error.message == (
        f"row 2 (line 3) of {root / 'datasets' / 'train.csv'} was not written to feature group "
        f"{GROUP}: ValidationError: Record is missing the event time (1 rows written before it "
        "stopped)")
    assert error.hint.startswith("fix the row (or the cause) and run again")


def test_server_errors_give_up_after_the_last_round(tmp_path):
    root = _project(tmp_path, "customer_id,label\nC1,0\n", declared=None)
    client = _client()
    with Stubber(client) as stubber:
        for _ in range(len(features.RETRY_PAUSES_SECONDS) + 1):
            stubber.add_client_error("put_record", "ServiceUnavailable", "busy", 503)
        with pytest.raises(MlscaffoldError, match=r"row 1 .*ServiceUnavailable: busy"):
            _ingest(root, client)
        stubber.assert_no_pending_responses()


def test_derivation_and_the_schema_command_import_neither_pulumi_nor_boto3(tmp_path):
    root = _project(tmp_path)
    code = (
        "import sys\n"
        "from mlscaffold.cli import cli\n"
        f"try:\n    cli.main(['features', 'schema', {str(root)!r}])\n"
        "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "print('LOADED', [m for m in ('pulumi', 'pulumi_aws', 'boto3', 'botocore')\n"
        "                 if m in sys.modules], file=sys.stderr)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True)
    assert "LOADED []" in completed.stderr
    assert "signup_time" in completed.stdout


def test_many_rows_on_a_pool_are_each_written_once(tmp_path):
    data = "customer_id,score,label\n" + "".join(f"C{i},{i / 10},{i % 2}\n" for i in range(60))
    root = _project(tmp_path, data, declared=None)
    client = _client()
    sent = _sent_identifiers(client)
    with Stubber(client) as stubber:
        for _ in range(60):
            stubber.add_response("put_record", {})
        result, _ = _ingest(root, client, workers=4)
        stubber.assert_no_pending_responses()
    assert result.rows == 60
    assert sorted(sent) == sorted(f"C{i}" for i in range(60))


def test_a_rejection_on_a_pool_stops_sending_new_rows(tmp_path):
    data = "customer_id,label\n" + "".join(f"C{i},{i % 2}\n" for i in range(40))
    root = _project(tmp_path, data, declared=None)
    client = _client()
    sent = _sent_identifiers(client)
    with Stubber(client) as stubber:
        for _ in range(4):
            stubber.add_response("put_record", {})
        stubber.add_client_error("put_record", "ValidationError", "bad record", 400)
        for _ in range(3):  # at most the other three calls in flight finish
            stubber.add_response("put_record", {})
        with pytest.raises(MlscaffoldError, match="ValidationError: bad record"):
            _ingest(root, client, workers=4)
    assert 5 <= len(sent) <= 8


# ------------------------------------------------------------------ refused before any call


def _refused(root: Path, outputs: Path | None = None, **kwargs) -> UsageError:
    client = _client()
    with Stubber(client), pytest.raises(UsageError) as caught:  # no response: no call allowed
        ingest(root, "dev", outputs_source=str(outputs or _outputs(root)), client=client,
               now=lambda: NOW, sleep=lambda _: None, **kwargs)
    return caught.value


def test_columns_that_differ_from_the_deployed_schema_are_refused(tmp_path):
    root = _project(tmp_path)
    outputs = _outputs(root)
    other = tmp_path / "other.csv"
    other.write_text("customer_id,Monthly Spend ($),visits,signup_time,tier,label\n"
                     "C1,1,2,2024-01-01,x,0\n")
    error = _refused(root, outputs, dataset=other)
    assert error.message == (
        f"{other}: the columns differ from stack dev's feature group (missing 'plan'; not in "
        "the deployed schema 'tier')")
    assert error.exit_code == 2


def test_a_value_of_another_type_is_refused_with_its_row(tmp_path):
    root = _project(tmp_path)
    outputs = _outputs(root)
    bad = tmp_path / "bad.csv"
    bad.write_text(DATA.replace("C3,1e1,5,", "C3,1e1,5.5,"))
    error = _refused(root, outputs, dataset=bad)
    assert error.message == (f"{bad}: row 3 (line 4): column 'visits' holds '5.5', not Integral "
                             "as in stack dev's feature group")
    late = tmp_path / "late.csv"
    late.write_text(DATA.replace("2024-01-06T08:00:00.25Z", "06/01/2024"))
    error = _refused(root, outputs, dataset=late)
    assert "row 3 (line 4): column 'signup_time' holds '06/01/2024', not an ISO-8601 date" \
        in error.message


def test_an_empty_event_time_is_refused(tmp_path):
    root = _project(tmp_path)
    outputs = _outputs(root)
    empty = tmp_path / "empty.csv"
    empty.write_text(DATA.replace(",2024-01-05,basic", ",,basic"))
    error = _refused(root, outputs, dataset=empty)
    assert "row 1 (line 2): column 'signup_time', the event time, is empty" in error.message


def test_a_file_separated_by_semicolons_is_ingested_and_one_not_in_utf8_refused(tmp_path):
    root = _project(tmp_path)
    outputs = _outputs(root)
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text(DATA.replace(",", ";"))
    client = _client()
    with _putting_expected(client):
        ingest(root, "dev", outputs_source=str(outputs), client=client, dataset=semicolons,
               now=lambda: NOW, sleep=lambda _: None, workers=1)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(DATA.replace("premium", "pr\u00e9mium").encode("latin-1"))
    expected = (f"{latin}: it is not UTF-8 text (line 4: byte 0xe9); save it as UTF-8 (a "
                "spreadsheet's \"CSV UTF-8\")")
    assert _refused(root, outputs, dataset=latin).message == expected
    with pytest.raises(FeatureSchemaError) as caught:
        feature_definitions_from_csv(latin, "label", None)
    assert str(caught.value) == expected


def test_unknown_stack_and_missing_outputs_are_usage_errors(tmp_path):
    root = _project(tmp_path)
    with pytest.raises(UsageError, match="--stack 'qa' is not an environment"):
        ingest(root, "qa", outputs_source=str(_outputs(root)))
    bare = root / "bare.json"
    bare.write_text(json.dumps({"vpc_id": "vpc-1"}))
    with pytest.raises(UsageError, match="stack dev has no output 'feature_group'"):
        ingest(root, "dev", outputs_source=str(bare))
    odd = root / "odd.json"
    odd.write_text(json.dumps({"feature_group": GROUP, "feature_store": {"region": "x"}}))
    with pytest.raises(UsageError, match="are not what this mlscaffold exports"):
        ingest(root, "dev", outputs_source=str(odd))


def test_the_platform_exports_what_ingestion_reads(tmp_path):
    """The outputs of the real program (under mocks) are what ingest takes."""
    root = _project(tmp_path, declared=None)
    write_sample_datasets(root / "datasets", "binary-classification", "label")
    spec = load_spec(root / "mlscaffold.yaml")
    # deployed with a model version, as `make deploy` sets it
    config = platform_config(spec, "dev", {"serving": {"model_key": STAND_IN_MODEL_KEY}})

    def program() -> None:
        from mlscaffold.stacks import MlPlatform, MlPlatformArgs

        platform = MlPlatform(config.prefix, MlPlatformArgs(
            config=config, dataset=root / "datasets" / "train.csv"))
        for name, value in platform.exports().items():
            pulumi.export(name, value)

    outputs = run_under_mocks(program, project="churn", stack="dev").outputs
    path = root / "stack-outputs.json"
    path.write_text(json.dumps(outputs))
    client = _client("us-east-1")
    with Stubber(client) as stubber:
        for _ in range(800):
            stubber.add_response("put_record", {})
        result = ingest(root, "dev", outputs_source=str(path), client=client, workers=2,
                        sleep=lambda _: None)
        stubber.assert_no_pending_responses()
    assert (result.rows, result.region) == (800, "us-east-1")
    assert result.feature_group == outputs["feature_group"]


# ------------------------------------------------------------------ the CLI


def test_schema_command_formats(run_cli, tmp_path):
    root = _project(tmp_path)
    text = run_cli(["features", "schema", str(root)])
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "Feature group schema from datasets/train.csv"
    assert lines[2].split() == ["customer_id", "customer_id", "String", "inferred"]
    assert lines[3].split() == ["Monthly", "Spend", "($)", "Monthly_Spend", "Fractional",
                                "inferred"]
    assert lines[4].split() == ["visits", "visits", "Integral", "declared"]
    assert lines[-2:] == ["record identifier: customer_id (column customer_id)",
                          "event time: signup_time (column signup_time)"]

    document = json.loads(run_cli(["features", "schema", str(root), "--format", "json"]).stdout)
    assert document["dataset"] == "datasets/train.csv"
    assert document["event_time"] == "signup_time"

    pasted = yaml.safe_load(run_cli(["features", "schema", str(root), "--format", "yaml"]).stdout)
    assert pasted["features"] == {
        "types": {"customer_id": "String", "Monthly Spend ($)": "Fractional",
                  "visits": "Integral", "signup_time": "String", "plan": "String",
                  "label": "Integral"},
        "record_identifier": "customer_id", "event_time": "signup_time"}
    # pasted into mlscaffold.yaml, it declares the same schema
    spec_path = root / "mlscaffold.yaml"
    spec_path.write_text(spec_path.read_text().split("features:")[0]
                         + yaml.safe_dump(pasted, sort_keys=False))
    _, again = project_schema(root)
    assert again.feature_definitions == project_schema(root)[1].feature_definitions
    assert {f.source for f in again.features} == {"declared"}


def test_schema_command_errors_are_one_line_exit_2(run_cli, tmp_path):
    root = _project(tmp_path, DATA.replace("C2,20,4.0,", "C2,20,4.5,"))
    result = run_cli(["features", "schema", str(root)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {root / 'datasets' / 'train.csv'}: column 'visits' is declared Integral in "
        "mlscaffold.yaml but row 2 (line 3) holds '4.5'; fix the value, or declare the column "
        "Fractional in features.types\n")


def test_ingest_command_prints_a_summary(run_cli, tmp_path, monkeypatch):
    root = _project(tmp_path)
    client = _client()
    monkeypatch.setattr(features, "_client", lambda region, workers: client)
    with Stubber(client) as stubber:
        for record in EXPECTED:
            stubber.add_response("put_record", {}, {"FeatureGroupName": GROUP, "Record": record})
        result = run_cli(["features", "ingest", str(root), "--stack", "dev", "--outputs",
                          str(_outputs(root)), "--workers", "1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Wrote 3 rows of {root / 'datasets' / 'train.csv'} to "
                                    f"feature group {GROUP} (eu-west-1) in ")


def test_ingest_command_refuses_other_columns_with_exit_2(run_cli, tmp_path):
    root = _project(tmp_path)
    outputs = _outputs(root)
    other = tmp_path / "other.csv"
    other.write_text("a,label\n1,0\n")
    result = run_cli(["features", "ingest", str(root), "-s", "dev", "--outputs", str(outputs),
                      "--input", str(other)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {other}: the columns differ from stack dev's")
    assert result.stderr.count("\n") == 1


def test_spaces_around_header_names_are_not_part_of_them(tmp_path):
    """As the lifecycle reads a header: `plan ` is the deployed `plan`, at derivation and
    ingestion alike."""
    spaced = DATA.replace("plan,label", " plan , label ", 1)
    root = _project(tmp_path, spaced)
    outputs = _outputs(root)
    deployed = json.loads(outputs.read_text())["feature_store"]["features"]
    assert [feature["column"] for feature in deployed][-2:] == ["plan", "label"]
    client = _client()
    with _putting_expected(client):
        result, _ = _ingest(root, client)
    assert result.rows == 3
