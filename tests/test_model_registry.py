"""The SageMaker Model Registry as a stack's registry of record: `promote --stack`, `rollback
--stack`, `model served` and `status`, against moto's SageMaker, S3, KMS and ECR (botocore's
Stubber where moto lacks an API: DeleteModelPackage, which moto 5.2 does not implement)."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlscaffold.errors import MlscaffoldError
from mlscaffold.lifecycle.config import ProjectConfig
from mlscaffold.lifecycle.registry import current_version, read_registry
from mlscaffold.model import current_model
from mlscaffold.model_registry import (
    _MAX_METADATA,
    APPROVED,
    PENDING,
    REJECTED,
    _metadata,
    promote_to_stack,
)
from mlscaffold.project import create_project
from mlscaffold.spec import load_spec, validate_spec

from .lifecycle.conftest import assert_error, invoke
from .tools.environments import without_aws_credentials

REGION = "us-east-1"
BUCKET = {"dev": "shop-dev-artifacts", "prod": "shop-prod-artifacts"}
REPOSITORY = "shop-prod-serving"
COMMIT = "a" * 40
# three experiments of the binary task (roc_auc, higher is better)
EXPERIMENTS = {"exp-001": 0.80, "exp-002": 0.85, "exp-003": 0.70}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "shop", "serving": "sagemaker", "ci": "none",
                          "environments": ["dev", "prod"]})
    return create_project(tmp_path_factory.mktemp("p") / "shop", spec, git=False).path


def _add_experiment(root: Path, experiment: str, roc_auc: float) -> None:
    """What `train` leaves: the experiment's model files and its index entry."""
    folder = root / "experiments" / experiment
    folder.mkdir(parents=True)
    (folder / "model.joblib").write_bytes(f"weights of {experiment}".encode())
    (folder / "model.json").write_text(json.dumps({"experiment": experiment}))
    (folder / "experiment.json").write_text(json.dumps({
        "id": experiment, "data": {"train": {"sha256": "1" * 64, "rows": 10},
                                   "validation": {"sha256": "2" * 64, "rows": 5}}}))
    (folder / "leaderboard.json").write_text("[]")  # not a model file: never uploaded
    index = root / "experiments" / "index.json"
    entries = json.loads(index.read_text())["experiments"] if index.exists() else []
    entries.append({"id": experiment, "validation": {"roc_auc": roc_auc, "accuracy": 0.7},
                    "test": {"roc_auc": roc_auc - 0.01}})
    index.write_text(json.dumps({"experiments": entries}))


@pytest.fixture
def project(made, tmp_path, monkeypatch) -> Path:
    root = shutil.copytree(made, tmp_path / "shop")
    for experiment, value in EXPERIMENTS.items():
        _add_experiment(root, experiment, value)
    for stack, bucket in BUCKET.items():
        (root / f"outputs-{stack}.json").write_text(json.dumps({
            "artifact_bucket": bucket, "model_package_group": f"shop-{stack}",
            "repository_url": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/shop-{stack}-serving"}))
    monkeypatch.setenv("GITHUB_SHA", COMMIT)  # the project is no git checkout
    return root


def _keep_unset_metadata(monkeypatch) -> None:
    """moto 5.2's UpdateModelPackage clears CustomerMetadataProperties that the request leaves
    out; AWS keeps them (the API changes only what a request names)."""
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.update_model_package

    def update(self, model_package_arn, **fields):
        package = self.model_packages.get(
            self.model_package_name_mapping.get(model_package_arn, model_package_arn))
        if fields.get("customer_metadata_properties") is None and package is not None:
            fields["customer_metadata_properties"] = package.customer_metadata_properties
        return original(self, model_package_arn=model_package_arn, **fields)

    monkeypatch.setattr(SageMakerModelBackend, "update_model_package", update)


@pytest.fixture
def aws(monkeypatch):
    """The two stacks' registries as their stacks make them: model package groups, artifact
    buckets with SSE-KMS default encryption, prod's image repository with image abc123."""
    _keep_unset_metadata(monkeypatch)
    with mock_aws():
        key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        for stack, bucket in BUCKET.items():
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
            sagemaker.create_model_package_group(ModelPackageGroupName=f"shop-{stack}")
        ecr = boto3.client("ecr", region_name=REGION)
        ecr.create_repository(repositoryName=REPOSITORY)
        for tag, config in (("abc123", "c"), ("def456", "d")):  # two images, two digests
            ecr.put_image(repositoryName=REPOSITORY, imageTag=tag, imageManifest=json.dumps({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + config * 64, "size": 1,
                           "mediaType": "application/vnd.docker.container.image.v1+json"},
                "layers": [{"digest": "sha256:" + config * 64, "size": 1, "mediaType":
                            "application/vnd.docker.image.rootfs.diff.tar.gzip"}]}))
        yield {"sagemaker": sagemaker, "s3": s3, "ecr": ecr}


def _promote(root: Path, experiment: str, stage: str, stack: str, *extra: str):
    return invoke("promote", experiment, "--to", stage, "--stack", stack, "--outputs",
                  root / f"outputs-{stack}.json", "--project", root, *extra)


def _versions(sagemaker, group: str) -> list[dict]:
    """Every version of `group`, oldest first, described."""
    summaries = sagemaker.list_model_packages(ModelPackageGroupName=group)[
        "ModelPackageSummaryList"]
    return [sagemaker.describe_model_package(ModelPackageName=item["ModelPackageArn"])
            for item in sorted(summaries, key=lambda item: item["ModelPackageVersion"])]


def _image_digest(ecr, tag: str = "abc123") -> str:
    return ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageTag": tag}])[
        "imageDetails"][0]["imageDigest"]


# ---------------------------------------------------------------- promote --stack


def test_production_registers_an_approved_version_with_metrics_lineage_and_key(project, aws):
    result = _promote(project, "exp-002", "production", "prod", "--image-tag", "abc123")
    assert result.code == 0, result.err
    key = current_model(project, "production").key
    (version,) = _versions(aws["sagemaker"], "shop-prod")
    assert version["ModelApprovalStatus"] == APPROVED
    assert version["ApprovalDescription"] == ("approved by `mlscaffold promote exp-002 --to "
                                              "production` (roc_auc=0.85)")
    digest = _image_digest(aws["ecr"])
    assert version["CustomerMetadataProperties"] == {
        "mlscaffold:stage": "production", "mlscaffold:experiment": "exp-002",
        "mlscaffold:model-key": key, "mlscaffold:metric": "roc_auc",
        "mlscaffold:git-commit": COMMIT, "mlscaffold:image-tag": "abc123",
        "mlscaffold:image-digest": digest,
        "mlscaffold:data-sha256:train": "1" * 64,
        "mlscaffold:data-sha256:validation": "2" * 64,
        "metric:validation:roc_auc": "0.85", "metric:validation:accuracy": "0.7",
        "metric:test:roc_auc": "0.84"}
    (container,) = version["InferenceSpecification"]["Containers"]
    assert container == {
        "Image": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}@{digest}",
        "ModelDataUrl": f"s3://shop-prod-artifacts/{key}"}
    assert version["Task"] == "CLASSIFICATION"
    # the artifact: the promoted folder's files, uploaded once under their content's key
    head = aws["s3"].head_object(Bucket="shop-prod-artifacts", Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert current_version(_layout(project), "production")["experiment"] == "exp-002"
    assert result.out.splitlines() == [
        f"promoted exp-002 to production as v1 (sha256 "
        f"{read_registry(_layout(project))['stages']['production']['versions'][0]['sha256'][:12]})"
        f"; wrote {project / 'models' / 'registry.json'}",
        f"registered exp-002 for production in stack prod: v1 of shop-prod (Approved; "
        f"roc_auc=0.8500; {key}); model uploaded"]


def _layout(root: Path):
    from mlscaffold.lifecycle.config import Layout

    return Layout(root.resolve())


def test_staging_registers_a_pending_candidate_that_production_then_approves(project, aws):
    assert _promote(project, "exp-002", "staging", "dev").code == 0
    (pending,) = _versions(aws["sagemaker"], "shop-dev")
    assert pending["ModelApprovalStatus"] == PENDING
    assert pending["CustomerMetadataProperties"]["mlscaffold:stage"] == "staging"
    assert "InferenceSpecification" not in pending  # no image given

    result = _promote(project, "exp-002", "production", "dev")
    assert result.code == 0, result.err
    (approved,) = _versions(aws["sagemaker"], "shop-dev")  # the same version, approved
    assert approved["ModelPackageArn"] == pending["ModelPackageArn"]
    assert approved["ModelApprovalStatus"] == APPROVED
    assert result.out.splitlines()[-1].startswith(
        "approved exp-002 for production in stack dev: v1 of shop-dev (Approved;")
    assert result.out.splitlines()[-1].endswith("model already in the artifact bucket")


def test_promoting_the_served_model_again_changes_nothing(project, aws):
    assert _promote(project, "exp-002", "production", "prod").code == 0
    again = _promote(project, "exp-002", "production", "prod")
    assert again.code == 0, again.err
    assert len(_versions(aws["sagemaker"], "shop-prod")) == 1
    assert len(read_registry(_layout(project))["stages"]["production"]["versions"]) == 1
    key = current_model(project, "production").key
    assert again.out == (f"production of stack prod is v1 of shop-prod (Approved; "
                         f"roc_auc=0.8500; {key}) already\n")


def test_the_same_model_with_a_new_image_is_a_new_version(project, aws):
    """A version is a model and the image that serves it: a new image tag registers again
    (no metric gate: the model is the same), the same one changes nothing."""
    for tag, count in (("abc123", 1), ("def456", 2), ("def456", 2)):
        result = _promote(project, "exp-002", "production", "prod", "--image-tag", tag)
        assert result.code == 0, result.err
        versions = _versions(aws["sagemaker"], "shop-prod")
        assert len(versions) == count
    assert [v["CustomerMetadataProperties"]["mlscaffold:image-digest"] for v in versions] == [
        _image_digest(aws["ecr"], "abc123"), _image_digest(aws["ecr"], "def456")]
    assert _image_digest(aws["ecr"], "abc123") != _image_digest(aws["ecr"], "def456")
    assert result.out.endswith("already\n")


def test_production_refuses_a_worse_model_than_the_approved_one(project, aws):
    assert _promote(project, "exp-002", "production", "prod").code == 0
    local_before = (project / "models" / "registry.json").read_text()
    refused = _promote(project, "exp-003", "production", "prod")
    assert_error(refused, 1, "error: refusing to register: exp-003 roc_auc=0.7000 is worse than "
                             "v1 (exp-002), the approved version of stack prod, roc_auc=0.8500 "
                             "(use --force to override)")
    assert len(_versions(aws["sagemaker"], "shop-prod")) == 1
    assert (project / "models" / "registry.json").read_text() == local_before

    forced = _promote(project, "exp-003", "production", "prod", "--force")
    assert forced.code == 0, forced.err
    assert "warning: registered despite: exp-003 roc_auc=0.7000 is worse than v1" in forced.err
    assert [v["ModelApprovalStatus"] for v in _versions(aws["sagemaker"], "shop-prod")] == [
        APPROVED, APPROVED]


def test_a_version_that_cannot_be_approved_is_deleted_and_the_local_promotion_undone(
        project, aws):
    """The approval fails (an identity that may register but not approve): the version made is
    deleted again and models/ is as before. Stubber: moto has no DeleteModelPackage."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/shop-prod/1"
    stub = Stubber(sagemaker)
    stub.add_response("describe_model_package_group", {
        "ModelPackageGroupName": "shop-prod", "ModelPackageGroupArn": arn.rsplit("/", 1)[0],
        "CreationTime": datetime.datetime(2026, 1, 1), "CreatedBy": {},
        "ModelPackageGroupStatus": "Completed"}, {"ModelPackageGroupName": "shop-prod"})
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
    stub.add_response("create_model_package", {"ModelPackageArn": arn})
    stub.add_client_error("update_model_package", "AccessDeniedException",
                          "not authorized to perform: sagemaker:UpdateModelPackage")
    stub.add_response("delete_model_package", {}, {"ModelPackageName": arn})
    before = _model_files(project)
    config = ProjectConfig.from_spec(project, load_spec(project / "mlscaffold.yaml"))
    with stub, pytest.raises(MlscaffoldError) as raised:
        promote_to_stack(config, "exp-002", "production", "prod",
                         outputs_source=str(project / "outputs-prod.json"),
                         clients={**aws, "sagemaker": sagemaker})
    stub.assert_no_pending_responses()  # the delete was called
    assert str(raised.value) == (
        "AWS denied UpdateModelPackage: cannot register exp-002 in model package group "
        "shop-prod (not authorized to perform: sagemaker:UpdateModelPackage); allow "
        "sagemaker:DescribeModelPackageGroup, ListModelPackages and DescribeModelPackage on the "
        "model package group; sagemaker:CreateModelPackage, UpdateModelPackage and "
        "DeleteModelPackage; ecr:DescribeImages on the serving image repository; "
        "s3:GetObject, s3:ListBucket, s3:PutObject and s3:GetEncryptionConfiguration on the "
        "artifact bucket, kms:GenerateDataKey on its key for this identity")
    assert _model_files(project) == before
    assert read_registry(_layout(project))["stages"]["production"] == {
        "current": None, "history": [], "versions": []}


def _model_files(root: Path) -> list[Path]:
    """The model folders' files (not the registry's own file and lock)."""
    return sorted(p.relative_to(root) for p in (root / "models").rglob("*")
                  if p.name not in ("registry.json", ".registry.lock"))


def test_a_failed_cleanup_says_what_is_left_and_how_to_delete_it(project, aws):
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/shop-prod/1"
    stub = Stubber(sagemaker)
    stub.add_response("describe_model_package_group", {
        "ModelPackageGroupName": "shop-prod", "ModelPackageGroupArn": arn.rsplit("/", 1)[0],
        "CreationTime": datetime.datetime(2026, 1, 1), "CreatedBy": {},
        "ModelPackageGroupStatus": "Completed"})
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
    stub.add_response("create_model_package", {"ModelPackageArn": arn})
    stub.add_client_error("update_model_package", "ThrottlingException", "slow down")
    stub.add_client_error("delete_model_package", "ThrottlingException", "slow down")
    config = ProjectConfig.from_spec(project, load_spec(project / "mlscaffold.yaml"))
    with stub, pytest.raises(MlscaffoldError) as raised:
        promote_to_stack(config, "exp-002", "production", "prod",
                         outputs_source=str(project / "outputs-prod.json"),
                         clients={**aws, "sagemaker": sagemaker})
    assert str(raised.value) == (
        "cannot register exp-002 in model package group shop-prod: UpdateModelPackage failed: "
        "ThrottlingException: slow down; and deleting the half-registered version failed "
        "(ThrottlingException): delete it with `aws sagemaker delete-model-package "
        f"--model-package-name {arn}`")
    assert current_version(_layout(project), "production") is None


def test_bad_input_is_one_line_and_changes_nothing(project, aws, monkeypatch):
    registry = project / "models" / "registry.json"
    before = registry.read_text() if registry.exists() else None

    def unchanged() -> None:
        assert (registry.read_text() if registry.exists() else None) == before
        assert _versions(aws["sagemaker"], "shop-prod") == []

    not_pushed = _promote(project, "exp-002", "production", "prod", "--image-tag", "nope")
    assert_error(not_pushed, 2, f"error: the serving image 123456789012.dkr.ecr.{REGION}."
                                f"amazonaws.com/{REPOSITORY}:nope is not pushed; push it first: "
                                "make push STACK=prod IMAGE_TAG=nope")
    unchanged()
    (project / "outputs-prod.json").write_text(json.dumps({"artifact_bucket": "b"}))
    undeployed = _promote(project, "exp-002", "production", "prod")
    assert_error(undeployed, 2, "error: stack prod has no output 'model_package_group', which "
                                "is its SageMaker Model Registry (a model package group); "
                                "deploy the stack with this mlscaffold version first")
    (project / "outputs-prod.json").write_text(json.dumps({
        "artifact_bucket": "b", "model_package_group": "shop-gone"}))
    gone = _promote(project, "exp-002", "production", "prod")
    assert_error(gone, 2, f"error: stack prod has no model package group shop-gone in {REGION}; "
                          "deploy the stack first (make deploy STACK=prod)")
    unchanged()
    assert_error(invoke("promote", "exp-002", "--image-tag", "abc", "--project", project), 2,
                 "--image-tag records the serving image of a registered version; give "
                 "--stack ENV too")


def test_without_credentials_nothing_is_promoted(project, monkeypatch, tmp_path):
    without_aws_credentials(monkeypatch, tmp_path)
    result = _promote(project, "exp-002", "production", "prod")
    assert_error(result, 2, "error: no usable AWS credentials to read model package group "
                            "shop-prod (Unable to locate credentials); log in")
    assert not (project / "models" / "registry.json").exists() or \
        current_version(_layout(project), "production") is None


# ---------------------------------------------------------------- rollback, served, status


def _served(root: Path, stack: str, stage: str):
    return invoke("model", "served", root, "--stack", stack, "--stage", stage, "--outputs",
                  root / f"outputs-{stack}.json")


def test_rollback_rejects_the_served_version_and_serves_the_one_before(project, aws):
    assert _promote(project, "exp-001", "production", "prod").code == 0
    first = current_model(project, "production").key
    assert _promote(project, "exp-002", "production", "prod", "--image-tag", "abc123").code == 0
    second = current_model(project, "production").key
    served = _served(project, "prod", "production")
    assert served.code == 0, served.err
    assert served.out == f"model_key={second}\nimage_tag=abc123\nversion=2\n"
    assert "model: stack prod serves v2 Approved (exp-002, roc_auc=0.8500) for production" \
        in served.err

    result = invoke("rollback", "--to", "production", "--stack", "prod", "--outputs",
                    project / "outputs-prod.json", "--project", project)
    assert result.code == 0, result.err
    assert result.out == ("rolled back production of stack prod: v2 Rejected (exp-002, "
                          "roc_auc=0.8500); v1 Approved (exp-001, roc_auc=0.8000) serves again\n"
                          "deploy it: make deploy STACK=prod STAGE=production\n")
    versions = _versions(aws["sagemaker"], "shop-prod")
    assert [v["ModelApprovalStatus"] for v in versions] == [APPROVED, REJECTED]
    assert versions[0]["ApprovalDescription"] == "approved again by `mlscaffold rollback` from v2"
    assert versions[1]["ApprovalDescription"] == ("rolled back by `mlscaffold rollback`: v1 "
                                                  "serves production again")
    assert _served(project, "prod", "production").out == \
        f"model_key={first}\nimage_tag=''\nversion=1\n"

    again = invoke("promote", "--rollback", "--to", "production", "--stack", "prod",
                   "--outputs", project / "outputs-prod.json", "--project", project)
    assert_error(again, 2, "error: nothing to roll back to: v1 is the only production version "
                           "of shop-prod; register another: mlscaffold promote exp-NNN --to "
                           "production --stack prod")


def test_staging_serves_the_newest_candidate_not_rejected(project, aws):
    assert _promote(project, "exp-001", "staging", "dev").code == 0
    assert _promote(project, "exp-002", "staging", "dev").code == 0
    assert _served(project, "dev", "staging").out.endswith("version=2\n")
    nothing = _served(project, "dev", "production")
    assert_error(nothing, 2, "error: model package group shop-dev of stack dev has no approved "
                             "production version to deploy; register one: mlscaffold promote "
                             "exp-NNN --to production --stack dev, or make deploy STACK=dev "
                             "STAGE=production EXP=exp-NNN")
    rolled = invoke("rollback", "--to", "staging", "--stack", "dev", "--outputs",
                    project / "outputs-dev.json", "--project", project)
    assert rolled.code == 0, rolled.err
    assert [v["ModelApprovalStatus"] for v in _versions(aws["sagemaker"], "shop-dev")] == [
        PENDING, REJECTED]  # staging's previous version is not approved by the rollback
    assert _served(project, "dev", "staging").out.endswith("version=1\n")


def _endpoint(aws, key: str, bucket: str = "shop-prod-artifacts") -> dict:
    sagemaker = aws["sagemaker"]
    sagemaker.create_model(ModelName="shop-prod-serving-model-1",
                           ExecutionRoleArn="arn:aws:iam::123456789012:role/serving",
                           PrimaryContainer={"Image": "x", "ModelDataUrl": f"s3://{bucket}/{key}"})
    sagemaker.create_endpoint_config(EndpointConfigName="shop-prod-serving-config-1",
                                     ProductionVariants=[{
                                         "VariantName": "primary",
                                         "ModelName": "shop-prod-serving-model-1",
                                         "InstanceType": "ml.m5.xlarge",
                                         "InitialInstanceCount": 1,
                                         "InitialVariantWeight": 1}])
    sagemaker.create_endpoint(EndpointName="shop-prod",
                              EndpointConfigName="shop-prod-serving-config-1")
    return {"name": "shop-prod", "config_name": "shop-prod-serving-config-1"}


def test_status_shows_the_approved_version_and_what_the_endpoint_serves(project, aws):
    assert _promote(project, "exp-001", "production", "prod").code == 0
    key = current_model(project, "production").key
    # registered, not deployed yet: serving is behind the registry
    undeployed = invoke("status", project, "--stack", "prod", "--outputs",
                        project / "outputs-prod.json")
    assert undeployed.code == 1
    assert "  endpoint: not deployed yet" in undeployed.out.splitlines()
    outputs = json.loads((project / "outputs-prod.json").read_text())
    outputs["endpoint"] = _endpoint(aws, key)
    (project / "outputs-prod.json").write_text(json.dumps(outputs))
    status = invoke("status", project, "--stack", "prod", "--outputs",
                    project / "outputs-prod.json")
    assert status.code == 0, status.err
    lines = status.out.splitlines()
    assert lines[0] == f"stack prod ({REGION}): model package group shop-prod"
    assert lines[1].startswith("  production: v1 Approved (exp-001, roc_auc=0.8000), registered ")
    assert lines[2] == f"    model {key}; image not recorded; git {COMMIT}"
    assert lines[3] == "    validation: accuracy=0.7000, roc_auc=0.8000"
    assert lines[4] == "  staging: v1 Approved (exp-001, roc_auc=0.8000), registered " + \
        lines[1].split("registered ")[1]
    assert "  endpoint shop-prod: InService" in lines
    assert f"    variant primary (weight 1.0): v1, s3://shop-prod-artifacts/{key}" in lines
    assert "  serving runs the production version" in lines

    # a newer approved version that is not deployed yet: exit 1, and the fix
    assert _promote(project, "exp-002", "production", "prod").code == 0
    behind = invoke("status", project, "--stack", "prod", "--outputs",
                    project / "outputs-prod.json", "--format", "json")
    assert behind.code == 1
    report = json.loads(behind.out)
    assert report["served"]["production"]["experiment"] == "exp-002"
    assert [v["version"] for v in report["versions"]] == [2, 1]
    assert report["variants"] == [{"name": "primary", "weight": 1.0, "version": 1,
                                   "model_url": f"s3://shop-prod-artifacts/{key}"}]
    text = invoke("status", project, "--stack", "prod", "--outputs",
                  project / "outputs-prod.json")
    assert ("  serving does not run the production version: deploy it (make deploy "
            "STACK=prod STAGE=production)") in text.out.splitlines()


def test_metadata_fits_the_apis_limits():
    metrics = {f"m{i}": i / 7 for i in range(80)}
    metadata = _metadata({"mlscaffold:experiment": "exp-001", "empty": "", "none": None,
                          "odd": "a,b;c"}, metrics, {"x": 1.0})
    assert len(metadata) == _MAX_METADATA
    assert "empty" not in metadata and "none" not in metadata
    assert metadata["odd"] == "a_b_c"
    assert metadata["metric:validation:m1"] == "0.142857"
    assert all(len(value) <= 256 for value in metadata.values())
