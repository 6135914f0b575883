"""The MLflow tracking server rules: build the passing case, change one field, assert the exact
rule and message."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from .conftest import changed, check, check_stack

SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
BUCKET = "aws:s3/bucket:Bucket"
SERVER_PROPS = {
    "trackingServerName": "demo-dev-mlflow",
    "artifactStoreUri": "s3://demo-dev-artifacts-1a2b/mlflow",
    "roleArn": "arn:aws:iam::123456789012:role/demo-dev-tracking-role",
    "trackingServerSize": "Small", "mlflowVersion": "3.0",
    "automaticModelRegistration": False, "weeklyMaintenanceWindowStart": "Sun:03:00",
    "tags": {"project": "demo", "env": "dev", "owner": "ml", "cost-center": "cc"},
}
ARTIFACTS = (BUCKET, "artifacts", {"bucket": "demo-dev-artifacts-1a2b"})
FIX = "keep the artifacts in the platform's artifact bucket, artifact_store_uri=s3://<artifact " \
      "bucket>/mlflow"


def test_artifacts_in_a_bucket_of_the_stack_pass():
    rule = "sagemaker-mlflow-artifacts-in-stack-bucket"
    assert check_stack(rule, [ARTIFACTS, (SERVER, "mlflow", SERVER_PROPS)]) == []
    # the bucket root is a bucket of the stack too
    root = changed(SERVER_PROPS, "artifactStoreUri", "s3://demo-dev-artifacts-1a2b")
    assert check_stack(rule, [ARTIFACTS, (SERVER, "mlflow", root)]) == []


def test_artifacts_in_another_bucket_are_refused():
    props = changed(SERVER_PROPS, "artifactStoreUri", "s3://someone-elses-bucket/mlflow")
    assert check_stack("sagemaker-mlflow-artifacts-in-stack-bucket",
                       [ARTIFACTS, (SERVER, "mlflow", props)]) == [(
                           "mlflow", "MlflowTrackingServer 'mlflow': artifactStoreUri names the "
                           "bucket someone-elses-bucket, which is not a bucket of this stack "
                           f"(its encryption and public access are not checked); {FIX}")]


def test_artifacts_outside_s3_are_refused():
    props = changed(SERVER_PROPS, "artifactStoreUri", "https://example.com/mlflow")
    assert check_stack("sagemaker-mlflow-artifacts-in-stack-bucket",
                       [ARTIFACTS, (SERVER, "mlflow", props)]) == [(
                           "mlflow", "MlflowTrackingServer 'mlflow': artifactStoreUri is "
                           "'https://example.com/mlflow', not an s3:// URI of a bucket of this "
                           f"stack; {FIX}")]


def test_an_artifact_uri_not_known_yet_is_undecided():
    # a new bucket's name (so the URI) is known only after deployment
    unknown = changed(SERVER_PROPS, "artifactStoreUri", UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        check_stack("sagemaker-mlflow-artifacts-in-stack-bucket",
                    [ARTIFACTS, (SERVER, "mlflow", unknown)])


def test_automatic_model_registration_is_refused():
    rule = "sagemaker-mlflow-no-automatic-registration"
    assert check(rule, SERVER, SERVER_PROPS) == []
    assert check(rule, SERVER, changed(SERVER_PROPS, "automaticModelRegistration")) == []
    assert check(rule, SERVER, changed(SERVER_PROPS, "automaticModelRegistration", True),
                 name="mlflow") == [
        "MlflowTrackingServer 'mlflow': automaticModelRegistration is true (every model "
        "registered in MLflow becomes a SageMaker model package, past the quality gate); set "
        "automatic_model_registration=False and promote models with `mlscaffold promote`"]


def test_server_size_follows_the_environment():
    rule = "mlflow-server-size"
    assert check(rule, SERVER, SERVER_PROPS) == []
    # AWS's default is Small
    assert check(rule, SERVER, changed(SERVER_PROPS, "trackingServerSize")) == []
    large = changed(SERVER_PROPS, "trackingServerSize", "Large")
    assert check(rule, SERVER, large, name="mlflow") == [
        "MlflowTrackingServer 'mlflow': trackingServerSize is Large, not an allowed tracking "
        "server size in this environment; use Small (tracking.server_size in the stack config), "
        "or add it to mlflow-server-size.allowed in the policy file"]
    assert check(rule, SERVER, large, profile="staging") != []
    assert check(rule, SERVER, large, profile="prod") == []
    assert check(rule, SERVER, large, allowed=["Small", "Large"]) == []


def test_the_tracking_server_carries_the_cost_tags():
    assert check("required-tags", SERVER, SERVER_PROPS) == []
    assert check("required-tags", SERVER, changed(SERVER_PROPS, "tags.owner"),
                 name="mlflow") == [
        "MlflowTrackingServer 'mlflow': tags lack owner; tag it with project, env, owner, "
        "cost-center (mlscaffold's components pass the platform's tags; provider default tags "
        "are not seen by policies)"]
