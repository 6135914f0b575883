"""The project spec: defaults, validation messages, round trips, and the blueprint in step."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mlscaffold import __version__, catalog
from mlscaffold.answers import DERIVED_ANSWERS
from mlscaffold.errors import SpecError
from mlscaffold.spec import SPEC_VERSION, ProjectSpec, load_spec, spec_json_schema, validate_spec

from .conftest import blueprint_questions


def test_defaults_follow_the_task():
    for task, info in catalog.TASKS.items():
        spec = validate_spec({"name": "churn", "task": task})
        assert spec.metric == info.default_metric
        assert spec.metric_threshold == info.default_threshold
    assert validate_spec({"name": "x1"}).environments == ["dev", "staging", "prod"]


def test_package_is_the_snake_case_name():
    assert validate_spec({"name": "churn-model-v2"}).package == "churn_model_v2"


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"name": "123-model"}, "name", "cannot name AWS resources"),
        ({"name": "X_Bad"}, "name", "use lower-case letters, digits and single dashes, starting "
                                    "with a letter, e.g. x-bad"),
        ({"name": "Churn-Model.v2"}, "name", "e.g. churn-model-v2"),
        ({"name": "churn-model-for-the-whole-org", "environments": ["dev", "production-eu"]},
         "spec", "('churn-model-for-the-whole-org-production-eu' is over 36 characters); use a "
                 "project name of at most 22 characters or a shorter environment name"),
        # prefixes AWS reserves for S3 bucket names, which start "<project>-<environment>-"
        ({"name": "sthree-churn"}, "spec",
         "project name 'sthree-churn' makes S3 bucket names starting with 'sthree-' "
         "(sthree-churn-dev-artifacts-…), a prefix AWS reserves; choose another name, e.g. "
         "my-sthree-churn"),
        ({"name": "sthree"}, "spec", "starting with 'sthree-' (sthree-dev-artifacts-…)"),
        ({"name": "amzn-s3-demo-x"}, "spec", "starting with 'amzn-s3-demo-'"),
        ({"name": "amzn-s3", "environments": ["dev", "demo-eu"]}, "spec",
         "project name 'amzn-s3' with environment 'demo-eu' makes S3 bucket names starting "
         "with 'amzn-s3-demo-' (amzn-s3-demo-eu-artifacts-…), a prefix AWS reserves; choose "
         "another project or environment name"),
        ({"name": "x", "environments": [f"e{i}" for i in range(9)]}, "environments",
         "9 environments are listed; a project has at most 8"),
        ({"name": "x", "metric_threshold": 2}, "metric_threshold",
         "metric_threshold 2 is outside what roc_auc can be (between 0 and 1)"),
        ({"name": "x", "task": "regression", "metric": "rmse", "metric_threshold": -1},
         "metric_threshold", "outside what rmse can be (at least 0)"),
        ({"name": "x", "task": "regression", "metric_threshold": 1.5}, "metric_threshold",
         "outside what r2 can be (at most 1)"),
        ({"name": "class"}, "name", "Python keyword"),
        ({"name": "json"}, "name", "would shadow"),
        ({"name": "--"}, "name", "cannot name AWS resources"),
        ({"name": "x", "task": "clustering"}, "task", "'clustering' is not valid"),
        ({"name": "x", "serving": "lambda"}, "serving", "'sagemaker', 'kserve' or 'none'"),
        ({"name": "x", "ci": "jenkins"}, "ci", "'github', 'gitlab' or 'none'"),
        ({"name": "x", "region": "mars-east-1"}, "region",
         "'mars-east-1' is not an AWS region mlscaffold knows; use one of: us-east-1, "),
        ({"name": "x", "region": "US-EAST-1"}, "region", "not an AWS region mlscaffold knows"),
        ({"name": "x", "region": "eu-west-99"}, "region", "not an AWS region mlscaffold knows"),
        # a real region whose facts (price multiplier, Model Monitor image) mlscaffold lacks
        ({"name": "x", "region": "il-central-1"}, "region", "not an AWS region mlscaffold knows"),
        ({"name": "x", "environments": ["dev", "dev"]}, "environments", "more than once"),
        ({"name": "x", "environments": ["Dev"]}, "environments", "'Dev' is not valid"),
        ({"name": "x", "environments": ["dev_1"]}, "environments", "'dev_1' is not valid"),
        ({"name": "x", "environments": []}, "environments", "at least one environment"),
        ({"name": "x", "label": "a,b"}, "label", "not a usable CSV column name"),
        ({"name": "x", "task": "regression", "metric": "roc_auc"}, "metric",
         "does not fit task regression"),
        ({"name": "x", "colour": "red"}, "colour", "unknown key 'colour'"),
        ({"name": "x", "version": 2}, "version", "spec version 2 is not supported"),
        ({"name": "x", "metric_threshold": "abc"}, "metric_threshold", "'abc' is not a number"),
        ({"name": ["a"]}, "name", "['a'] is not text"),
        ({"name": "x", "features": {"types": {"age": "Integral"}}}, "features",
         "the section is read only with feature_store: sagemaker (this spec has none); set "
         "feature_store: sagemaker or remove it"),
        ({"name": "x", "feature_store": "sagemaker", "features": {"types": {"age": "Integer"}}},
         "features.types.age",
         "'Integer' is not valid; input should be 'String', 'Integral' or 'Fractional'"),
        ({"name": "x", "feature_store": "sagemaker", "features": {"typo": {}}}, "features.typo",
         "unknown key 'features.typo'; valid keys are: types, record_identifier, event_time"),
        ({"name": "x", "feature_store": "sagemaker", "features": ["age"]}, "features",
         "must be a mapping with the keys types, record_identifier, event_time"),
        ({"name": "x", "feature_store": "sagemaker", "features": {"record_identifier": "label"}},
         "features", "record_identifier is the label column 'label'"),
        ({"name": "x", "feature_store": "sagemaker",
          "features": {"event_time": "ts", "types": {"ts": "Integral"}}}, "features",
         "event_time 'ts' is declared Integral; declare it Fractional (epoch seconds) or "
         "String (ISO-8601)"),
    ],
)
def test_invalid_values_name_the_field_and_the_fix(values, field, fragment):
    with pytest.raises(SpecError) as caught:
        validate_spec(values)
    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_yaml_round_trip(tmp_path: Path):
    spec = validate_spec({"name": "ltv", "task": "regression", "label": "revenue",
                          "environments": ["dev", "prod"], "region": "eu-west-1"})
    path = tmp_path / "mlscaffold.yaml"
    path.write_text(spec.to_yaml())
    assert load_spec(path) == spec


def test_load_spec_errors_name_the_file(tmp_path: Path):
    path = tmp_path / "mlscaffold.yaml"
    path.write_text("name: x\ntask: clustering\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.source == str(path)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    path.write_text("- a list\n")
    with pytest.raises(SpecError, match="must hold a mapping"):
        load_spec(path)


def test_json_schema_validates_a_written_spec(tmp_path: Path):
    import jsonschema

    schema = spec_json_schema()
    json.dumps(schema)  # must be plain JSON
    spec = validate_spec({"name": "x", "task": "multiclass-classification"})
    jsonschema.validate(yaml.safe_load(spec.to_yaml()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**spec.model_dump(mode="json"), "ci": "jenkins"}, schema)


def test_json_schema_holds_the_specs_own_rules():
    """The schema editors and CI validate with refuses what the CLI refuses, where JSON Schema
    can say it, and requires only what the model requires."""
    import jsonschema

    from .conftest import REPO

    validator = jsonschema.Draft202012Validator(spec_json_schema())
    examples = sorted((REPO / "examples").glob("*/mlscaffold.yaml"))
    assert examples
    for path in examples:
        validator.validate(yaml.safe_load(path.read_text()))
    validator.validate({"name": "churn"})  # metric and threshold default by task
    for bad in ({"name": "My_Proj"}, {"name": "x" * 35}, {"name": "x", "region": "us-east-9"},
                {"name": "x", "environments": ["Dev"]}, {"name": "x", "environments": []},
                {"name": "x", "environments": ["dev", "dev"]}, {"name": "x", "owner": "a,b"}):
        with pytest.raises(SpecError):
            validate_spec(bad)  # the CLI refuses it
        assert not validator.is_valid(bad), bad  # and so does the schema


@pytest.mark.parametrize(("values", "message"), [
    ({"name": "x", "owner": "a,b"}, "'a,b' is not a tag value AWS takes on every resource; use "
                                    "at most 128 letters, digits, spaces and _ . : / = + @ -"),
    ({"name": "abcdefghij" * 4}, "is 40 characters long; AWS resource names start with "
                                 "'<name>-<environment>', which must fit in 36 characters"),
])
def test_length_and_tag_messages_say_the_rule(values, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        validate_spec(values)


def test_blueprint_questions_are_the_spec_fields():
    """copier.yml mirrors the spec: same answers, same choices, same per-task defaults."""
    questions = {k: v for k, v in blueprint_questions().items()
                 if not k.startswith("_")}
    answers = validate_spec({"name": "x"}).blueprint_answers()
    # and what mlscaffold derives from the spec, and the spec format the blueprint writes
    assert set(questions) == set(answers) | set(DERIVED_ANSWERS) | {"spec_version"}
    assert questions["spec_version"]["default"] == SPEC_VERSION
    assert questions["task"]["choices"] == list(catalog.TASKS)
    assert questions["serving"]["choices"] == list(catalog.SERVING_PLATFORMS)
    assert questions["feature_store"]["choices"] == list(catalog.FEATURE_STORES)
    assert questions["ci"]["choices"] == list(catalog.CI_PROVIDERS)
    for field in ("label", "serving", "feature_store", "ci", "region", "owner", "cost_center",
                  "environments"):
        assert questions[field]["default"] == answers[field], field
    assert questions["mlscaffold_version"]["default"] == __version__
    # a plain `copier copy` of the blueprint gets what `mlscaffold new` passes
    assert questions["mlscaffold_distribution"]["default"] == answers["mlscaffold_distribution"]
    assert questions["runtime_requirements"]["default"] == answers["runtime_requirements"]
    for task, info in catalog.TASKS.items():
        assert f"'{task}': '{info.default_metric}'" in questions["metric"]["default"]
        assert f"'{task}': {info.default_threshold}" in questions["metric_threshold"]["default"]


def test_spec_is_frozen():
    spec = ProjectSpec(name="x")
    with pytest.raises(ValueError):
        spec.task = "regression"  # type: ignore[misc]


FEATURES = {"types": {"age": "Integral", "plan": "String", "monthly_charges": "Fractional"},
            "record_identifier": "customer_id", "event_time": "signup_time"}


def test_features_section_round_trips_and_stays_out_of_the_blueprint(tmp_path: Path):
    spec = validate_spec({"name": "churn", "feature_store": "sagemaker", "features": FEATURES})
    path = tmp_path / "mlscaffold.yaml"
    path.write_text(spec.to_yaml())
    assert load_spec(path) == spec
    assert yaml.safe_load(path.read_text())["features"] == FEATURES
    assert "features" not in spec.blueprint_answers()
    assert "features" not in validate_spec({"name": "churn"}).to_yaml()


def test_json_schema_holds_the_features_section():
    import jsonschema

    schema = spec_json_schema()
    spec = validate_spec({"name": "churn", "feature_store": "sagemaker", "features": FEATURES})
    jsonschema.validate(yaml.safe_load(spec.to_yaml()), schema)
    document = spec.model_dump(mode="json")
    for bad in ({**FEATURES, "types": {"age": "Integer"}}, {**FEATURES, "colour": "red"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**document, "features": bad}, schema)


TRACKING_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/churn-dev"


@pytest.mark.parametrize("uri", [
    TRACKING_ARN,
    "arn:aws-us-gov:sagemaker:us-gov-west-1:123456789012:mlflow-app/app-7",
    "http://127.0.0.1:5000",
    "https://mlflow.example.com/team",
])
def test_tracking_uri_takes_a_sagemaker_arn_or_a_server_url(uri):
    spec = validate_spec({"name": "churn", "tracking_uri": uri})
    assert spec.tracking_uri == uri
    assert yaml.safe_load(spec.to_yaml())["tracking_uri"] == uri
    # where runs are logged changes no rendered file: no blueprint answer
    assert "tracking_uri" not in spec.blueprint_answers()


@pytest.mark.parametrize("uri", [
    "file:///tmp/mlruns",  # the project's own store is the default: no URI
    "sqlite:///mlflow.db",
    "databricks",
    "arn:aws:s3:::bucket",
    "arn:aws-cn:sagemaker:cn-north-1:123456789012:mlflow-tracking-server/x",  # no plugin route
    "arn:aws:sagemaker:eu-west-1:1234:mlflow-tracking-server/x",
    "https://",
])
def test_tracking_uri_refuses_other_stores_naming_the_two_forms(uri):
    with pytest.raises(SpecError) as raised:
        validate_spec({"name": "churn", "tracking_uri": uri})
    assert raised.value.field == "tracking_uri"
    assert str(raised.value) == (
        f"{uri!r} is not a tracking server mlscaffold logs to; give the ARN of a SageMaker MLflow "
        "tracking server (arn:aws:sagemaker:REGION:ACCOUNT:mlflow-tracking-server/NAME, the "
        "stack output mlflow_tracking_server_arn) or the http(s):// URL of an MLflow server, "
        "or leave tracking_uri out to log to the project's own store (mlruns/)")


def test_json_schema_holds_the_tracking_uri():
    import jsonschema

    schema = spec_json_schema()
    document = validate_spec({"name": "churn", "tracking_uri": TRACKING_ARN}).model_dump(
        mode="json")
    jsonschema.validate(document, schema)
    jsonschema.validate({**document, "tracking_uri": None}, schema)
    for bad in ("file:///tmp/mlruns", "arn:aws:s3:::bucket"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**document, "tracking_uri": bad}, schema)


def test_a_metric_gets_its_own_default_gate_and_an_error_or_loss_none():
    """The task's default gate (0.75 for roc_auc) was every metric's: `log_loss <= 0.75` passes
    a model that guesses the base rate (0.69 on balanced classes), `rmse <= 0.6` is in the
    label's units."""
    assert validate_spec({"name": "x", "metric": "accuracy"}).metric_threshold == 0.75
    assert validate_spec({"name": "x", "metric": "recall"}).metric_threshold == 0.6
    assert validate_spec({"name": "x", "metric": "log_loss",
                          "metric_threshold": 0.3}).metric_threshold == 0.3
    for task, metric in (("binary-classification", "log_loss"), ("regression", "rmse"),
                         ("regression", "mape")):
        with pytest.raises(SpecError, match=f"metric {metric} has no default quality gate"):
            validate_spec({"name": "x", "task": task, "metric": metric})
