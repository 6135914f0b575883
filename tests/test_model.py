"""`mlscaffold model upload`: the current model of a stage, content-addressed, KMS-encrypted,
uploaded once (moto's S3 and KMS)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlscaffold.errors import MlscaffoldError, UsageError
from mlscaffold.model import current_model, model_archive, model_digest, upload_model
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec
from mlscaffold.stacks.model_keys import MODEL_KEY_PATTERN

BUCKET = "shop-dev-artifacts-0123"
FILES = {"model.joblib": b"\x80\x04weights", "model.json": b'{"task": "binary"}',
         "experiment.json": b'{"id": "exp-001"}'}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "shop", "serving": "sagemaker"})
    return create_project(tmp_path_factory.mktemp("p") / "shop", spec, git=False).path


def _promote(root: Path, stage: str, version: int, files: dict[str, bytes]) -> None:
    """What the project's `promote` leaves: models/<stage>/vN and its registry entry."""
    folder = root / "models" / stage / f"v{version}"
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    path = root / "models" / "registry.json"
    registry = json.loads(path.read_text()) if path.exists() else {"stages": {}}
    state = registry["stages"].setdefault(stage, {"current": None, "history": [],
                                                  "versions": []})
    state["versions"].append({"version": version, "path": f"models/{stage}/v{version}",
                              "experiment": f"exp-{version:03d}"})
    state["history"].append(version)
    state["current"] = version
    path.write_text(json.dumps(registry))


def _set_current(root: Path, stage: str, version: int) -> None:
    path = root / "models" / "registry.json"
    registry = json.loads(path.read_text())
    registry["stages"][stage]["current"] = version
    path.write_text(json.dumps(registry))


@pytest.fixture
def project(made, tmp_path) -> Path:
    root = shutil.copytree(made, tmp_path / "shop")
    _promote(root, "staging", 1, FILES)
    (root / "outputs.json").write_text(json.dumps({"artifact_bucket": BUCKET}))
    return root


@pytest.fixture
def aws():
    """moto's S3 with the artifact bucket as the stack makes it: versioned, SSE-KMS default
    encryption with the platform's key; yields (s3 client, key ARN)."""
    with mock_aws():
        key_arn = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                   "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True}]})
        yield s3, key_arn


def _upload(project: Path, s3, stage: str = "staging"):
    return upload_model(project, "dev", stage, outputs_source=str(project / "outputs.json"),
                        client=s3)


# ---------------------------------------------------------------- the version's identity


def test_the_digest_covers_names_and_contents_only(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, order in ((first, sorted(FILES)), (second, sorted(FILES, reverse=True))):
        folder.mkdir()
        for name in order:
            (folder / name).write_bytes(FILES[name])
    os.utime(second / "model.joblib", (1_000_000, 1_000_000))
    (second / "model.json").chmod(0o600)
    digest = model_digest(first)
    assert digest == model_digest(second)
    assert len(digest) == 64 and MODEL_KEY_PATTERN.match(f"models/{digest}/model.tar.gz")
    expected = hashlib.sha256("".join(
        f"{name}\0{hashlib.sha256(FILES[name]).hexdigest()}\n" for name in sorted(FILES)
    ).encode()).hexdigest()
    assert digest == expected

    (second / "model.joblib").write_bytes(b"\x80\x04other weights")
    assert model_digest(second) != digest
    (second / "model.joblib").write_bytes(FILES["model.joblib"])
    (second / "model.json").rename(second / "model-v2.json")
    assert model_digest(second) != digest


def test_the_archive_is_reproducible_and_holds_the_files_at_its_root(tmp_path):
    folder = tmp_path / "v1"
    (folder / "assets").mkdir(parents=True)
    for name, content in FILES.items():
        (folder / name).write_bytes(content)
    (folder / "assets" / "vocab.txt").write_text("a\nb\n")
    archive = model_archive(folder)
    os.utime(folder / "model.json", (2_000_000, 2_000_000))
    assert model_archive(folder) == archive  # no timestamps in the tar or the gzip header
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as opened:
        members = {m.name: opened.extractfile(m).read() for m in opened.getmembers()}
        assert {(m.mtime, m.uid, m.mode) for m in opened.getmembers()} == {(0, 0, 0o644)}
    assert members == {**FILES, "assets/vocab.txt": b"a\nb\n"}


def test_the_current_model_of_a_stage_comes_from_the_registry(project):
    _promote(project, "staging", 2, {**FILES, "model.joblib": b"retrained"})
    model = current_model(project, "staging")
    assert (model.stage, model.version, model.path) == (
        "staging", 2, project / "models" / "staging" / "v2")
    assert model.key == f"models/{model_digest(model.path)}/model.tar.gz"
    _set_current(project, "staging", 1)  # what `make rollback` leaves
    assert current_model(project, "staging").version == 1


def test_the_registry_the_projects_own_promote_and_rollback_write_is_read(made, tmp_path):
    """What the lifecycle's promote and rollback write, `model upload` reads."""
    from mlscaffold.lifecycle import registry
    from mlscaffold.lifecycle.config import Layout
    from mlscaffold.lifecycle.metrics import metrics_for

    root = shutil.copytree(made, tmp_path / "shop")
    for n, weights in ((1, b"first"), (2, b"second")):
        experiment = root / "experiments" / f"exp-00{n}"
        experiment.mkdir(parents=True)
        for name, content in {**FILES, "model.joblib": weights}.items():
            (experiment / name).write_bytes(content)
    layout = Layout(root)
    metric = metrics_for("binary-classification")[0]
    for n in (1, 2):
        registry.promote(layout, {"id": f"exp-00{n}", "validation": {}}, "staging", metric, None)
    promoted = current_model(root, "staging")
    registry.rollback(layout, "staging")
    restored = current_model(root, "staging")
    assert (promoted.version, promoted.path) == (2, root / "models" / "staging" / "v2")
    assert (restored.version, restored.path) == (1, root / "models" / "staging" / "v1")
    assert restored.key != promoted.key
    assert restored.digest == model_digest(root / "experiments" / "exp-001")


def test_a_stage_current_version_is_known_by_its_model_not_its_experiment_id(made, tmp_path):
    """experiments/ is not committed: another clone's exp-001 is another model, and is
    promoted; the same model under another id changes nothing."""
    from mlscaffold.lifecycle import registry
    from mlscaffold.lifecycle.config import Layout
    from mlscaffold.lifecycle.metrics import metrics_for

    root = shutil.copytree(made, tmp_path / "shop")
    layout, metric = Layout(root), metrics_for("binary-classification")[0]

    def trained(name: str, weights: bytes) -> dict:
        experiment = root / "experiments" / name
        shutil.rmtree(experiment, ignore_errors=True)
        experiment.mkdir(parents=True)
        for file, content in {**FILES, "model.joblib": weights}.items():
            (experiment / file).write_bytes(content)
        return {"id": name, "validation": {}}

    first, created = registry.promote(layout, trained("exp-001", b"mine"), "staging", metric,
                                      None)
    assert (first["version"], created) == (1, True)
    # a teammate's clone: its own exp-001, another model
    other, created = registry.promote(layout, trained("exp-001", b"theirs"), "staging", metric,
                                      None)
    assert (other["version"], created) == (2, True)
    same, created = registry.promote(layout, trained("exp-007", b"theirs"), "staging", metric,
                                     None)
    assert (same["version"], same["experiment"], created) == (2, "exp-001", False)


@pytest.mark.parametrize(("change", "message"), [
    (lambda root: (root / "models" / "registry.json").unlink(),
     "no models/registry.json in {root}: no model was promoted yet; promote one: "
     "make promote EXP=exp-NNN STAGE=production"),
    (lambda root: None,
     "no production model in models/registry.json (stages with a model: staging); promote "
     "one: make promote EXP=exp-NNN STAGE=production"),
    (lambda root: shutil.rmtree(root / "models" / "staging" / "v1"),
     None),
])
def test_a_missing_model_is_a_usage_error_naming_the_fix(project, change, message):
    change(project)
    stage = "staging" if message is None else "production"
    with pytest.raises(UsageError) as caught:
        current_model(project, stage)
    expected = message.format(root=project) if message else (
        f"the current staging model v1 should be in {project / 'models/staging/v1'}, which "
        "does not exist; restore models/ from version control, or promote again")
    assert str(caught.value) == expected


# ---------------------------------------------------------------- upload


def test_upload_puts_the_archive_once_encrypted_with_the_buckets_key(project, aws):
    s3, key_arn = aws
    model = current_model(project, "staging")
    result = _upload(project, s3)
    assert (result.uploaded, result.bucket, result.key) == (True, BUCKET, model.key)
    head = s3.head_object(Bucket=BUCKET, Key=model.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn
    assert head["Metadata"] == {"files-sha256": model.digest}
    body = s3.get_object(Bucket=BUCKET, Key=model.key)["Body"].read()
    assert body == model_archive(model.path) and result.size == len(body)

    again = _upload(project, s3)
    assert (again.uploaded, again.key) == (False, model.key)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="models/")["Versions"]
    assert [v["Key"] for v in versions] == [model.key]  # nothing overwritten


def test_a_new_model_gets_a_new_key_and_a_rollback_the_old_one(project, aws):
    s3, _ = aws
    first = _upload(project, s3)
    _promote(project, "staging", 2, {**FILES, "model.joblib": b"retrained"})
    second = _upload(project, s3)
    assert second.uploaded and second.key != first.key
    _set_current(project, "staging", 1)
    back = _upload(project, s3)
    assert (back.uploaded, back.key) == (False, first.key)
    # the same files promoted again (another version number) are the same model
    _promote(project, "staging", 3, FILES)
    assert _upload(project, s3).key == first.key


def test_a_bucket_without_the_kms_default_is_refused(project, aws):
    s3, _ = aws
    s3.delete_bucket_encryption(Bucket=BUCKET)
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    with pytest.raises(MlscaffoldError) as caught:
        _upload(project, s3)
    assert str(caught.value) == (
        f"bucket {BUCKET} has no SSE-KMS default encryption with a key, so the model would not "
        "be encrypted with the platform's key; deploy the stack with this mlscaffold version "
        "(its artifact bucket encrypts with the data key), then upload again")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_access_denied_names_the_permissions(project):
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    key = current_model(project, "staging").key
    with Stubber(s3) as stubber:
        stubber.add_client_error("head_object", "403", "Forbidden", 403,
                                 expected_params={"Bucket": BUCKET, "Key": key})
        with pytest.raises(MlscaffoldError) as caught:
            _upload(project, s3)
    assert str(caught.value) == (
        f"AWS denied HeadObject: cannot upload the staging model to s3://{BUCKET}/{key} "
        "(Forbidden); allow s3:GetObject and s3:ListBucket (to see whether the version is "
        "there), s3:GetEncryptionConfiguration and s3:PutObject on the artifact bucket, "
        "kms:GenerateDataKey on its key for this identity")


def test_the_command_prints_only_the_key_on_stdout(project, aws, run_cli):
    outputs = str(project / "outputs.json")
    args = ["model", "upload", str(project), "--stack", "dev", "--stage", "staging",
            "--outputs", outputs]
    first = run_cli(args)
    key = current_model(project, "staging").key
    assert (first.exit_code, first.stdout) == (0, f"{key}\n"), first.stderr
    assert first.stderr.startswith(f"model: uploaded staging v1 to s3://{BUCKET}/{key} (")
    second = run_cli(args)
    assert second.stdout == f"{key}\n"
    assert second.stderr == f"model: staging v1 is already at s3://{BUCKET}/{key}\n"

    wrong = run_cli(["model", "upload", str(project), "--stack", "qa", "--stage", "staging",
                     "--outputs", outputs])
    assert wrong.exit_code == 2
    assert wrong.stderr == (f"error: --stack 'qa' is not an environment of "
                            f"{project / 'mlscaffold.yaml'}; use one of: dev, staging, prod\n")
    (project / "outputs.json").write_text("{}")
    missing = run_cli(args)
    assert missing.exit_code == 2 and missing.stderr.startswith(
        "error: stack dev has no output 'artifact_bucket', which holds the model versions")
