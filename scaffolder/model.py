"""`mlscaffold model upload`: a project's current model of a stage, as an immutable,
content-addressed version in a deployed stack's artifact bucket.

The project's registry (``models/registry.json``, written by the lifecycle's ``promote`` and
``rollback``) names the current version of each stage and its folder. That folder's files
are hashed (names and contents, in a fixed order; not the archive, whose gzip header carries a
time), and the version is uploaded once to ``models/<sha256>/model.tar.gz``
(:mod:`mlscaffold.stacks.model_keys`), KMS-encrypted with the bucket's default key. The key
is what the stack serves (``platform.serving.model_key``): the same files give the same key,
so an unchanged model uploads nothing and changes nothing; a new model is a new key, and so a
new SageMaker model (blue/green) or a rolling update of the KServe predictor.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .aws import aws_client, aws_errors, error_code
from .errors import MlscaffoldError, UsageError

__all__ = ["ModelVersion", "UploadResult", "current_model", "files_digest", "model_archive",
           "model_digest", "publish_version", "upload_model"]

_CHUNK = 1 << 20
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_UPLOAD_PERMISSIONS = ("s3:GetObject and s3:ListBucket (to see whether the version is there), "
                       "s3:GetEncryptionConfiguration and s3:PutObject on the artifact bucket, "
                       "kms:GenerateDataKey on its key")


@dataclass(frozen=True)
class ModelVersion:
    """The current model of a stage: its registry entry's version and folder, and the digest
    of the folder's files."""

    stage: str
    version: int
    path: Path
    digest: str

    @property
    def key(self) -> str:
        from .stacks.model_keys import model_key

        return model_key(self.digest)


@dataclass(frozen=True)
class UploadResult:
    """Where a model version is: uploaded now, or already there from an earlier deploy."""

    model: ModelVersion
    bucket: str
    key: str
    uploaded: bool
    size: int | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _files(folder: Path) -> list[tuple[str, Path]]:
    """(relative POSIX name, path) of every file under `folder`, in name order."""
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    if not files:
        raise UsageError(f"{folder} holds no files, so there is no model to upload",
                         hint="promote a model again (make promote EXP=exp-NNN STAGE=...)")
    return files


def model_digest(folder: Path) -> str:
    """SHA-256 over every file of `folder`: its relative name and the SHA-256 of its content,
    in name order. Timestamps, permissions and the archive format play no part."""
    return files_digest(_files(folder))


def files_digest(files: list[tuple[str, Path]]) -> str:
    """:func:`model_digest` of the folder that would hold `files` ((relative POSIX name,
    path) pairs) and nothing else, e.g. an experiment's model files before promotion copies
    them."""
    digest = hashlib.sha256()
    for name, path in sorted(files):
        content = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                content.update(chunk)
        digest.update(f"{name}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()


def write_archive(folder: Path, stream: BinaryIO) -> None:
    """The files of `folder` as a gzip-compressed tar at the archive's root (what SageMaker
    extracts to /opt/ml/model and KServe's storage initializer to /mnt/models), reproducibly:
    name order, no times, owners or modes of the machine that made it."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=stream, mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in _files(folder):
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as content:
                archive.addfile(info, content)


def model_archive(folder: Path) -> bytes:
    """:func:`write_archive` in memory."""
    buffer = io.BytesIO()
    write_archive(folder, buffer)
    return buffer.getvalue()


def current_model(project: Path, stage: str) -> ModelVersion:
    """The current model of `stage` in the project's registry (``models/registry.json``), as the
    lifecycle's ``promote`` and ``rollback`` keep it."""
    from .lifecycle.config import STAGES, Layout
    from .lifecycle.registry import current_version

    promote = f"make promote EXP=exp-NNN STAGE={stage}"
    layout = Layout(project)  # where the lifecycle keeps the registry: models/registry.json
    registry = layout.registry.relative_to(project).as_posix()
    if not layout.registry.is_file():
        raise UsageError(f"no {registry} in {project}: no model was promoted yet",
                         hint=f"promote one: {promote}")
    entry = current_version(layout, stage)  # DataError on a registry that is not JSON
    if entry is None:
        known = [other for other in STAGES if current_version(layout, other) is not None]
        raise UsageError(f"no {stage} model in {registry}"
                         + (f" (stages with a model: {', '.join(known)})" if known else ""),
                         hint=f"promote one: {promote}")
    folder = project / entry["path"]
    if not folder.is_dir():
        raise UsageError(f"the current {stage} model v{entry['version']} should be in {folder}, "
                         "which does not exist",
                         hint="restore models/ from version control, or promote again")
    return ModelVersion(stage, int(entry["version"]), folder, model_digest(folder))


def _exists(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in _NOT_FOUND:
            return False
        raise
    return True


def _bucket_key(client: Any, bucket: str) -> str:
    """The KMS key of the bucket's default encryption (the platform's data key), which the
    serving roles may decrypt with: naming only ``aws:kms`` would pick the AWS managed key
    ``aws/s3`` (S3 API reference, PutObject, SSEKMSKeyId)."""
    from botocore.exceptions import ClientError

    try:
        rules = client.get_bucket_encryption(Bucket=bucket)[
            "ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as error:
        if error_code(error) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
            return str(default["KMSMasterKeyID"])
    raise MlscaffoldError(f"bucket {bucket} has no SSE-KMS default encryption with a key, so "
                          "the model would not be encrypted with the platform's key",
                          hint="deploy the stack with this mlscaffold version (its artifact "
                               "bucket encrypts with the data key), then upload again")


def upload_model(project: Path, stack: str, stage: str, *, outputs_source: str | None = None,
                 client: Any = None) -> UploadResult:
    """Upload the current `stage` model of `project` to `stack`'s artifact bucket (stack output
    ``artifact_bucket``, from `outputs_source` or the Pulumi CLI) unless that version is
    already there; returns where it is."""
    from .infra import find_project, stack_config
    from .outputs import read_stack_outputs, require_output
    from .spec import SPEC_FILENAME, load_spec

    root = find_project(project)
    spec = load_spec(root / SPEC_FILENAME)
    region = stack_config(root, spec, stack).get("aws:region", spec.region)
    model = current_model(root, stage)
    bucket = str(require_output(read_stack_outputs(root, stack, outputs_source),
                                "artifact_bucket", stack, "holds the model versions"))
    return publish_version(model, bucket, client if client is not None
                           else aws_client("s3", region))


def publish_version(model: ModelVersion, bucket: str, client: Any) -> UploadResult:
    """Upload `model` to `bucket` under its content's key with the S3 `client`, unless that
    version is already there; returns where it is."""
    key = model.key
    with aws_errors(f"upload the {model.stage} model to s3://{bucket}/{key}",
                    _UPLOAD_PERMISSIONS):
        if _exists(client, bucket, key):
            return UploadResult(model, bucket, key, uploaded=False, size=None)
        kms_key = _bucket_key(client, bucket)
        with tempfile.TemporaryFile() as archive:
            write_archive(model.path, archive)
            size = archive.tell()
            archive.seek(0)
            client.upload_fileobj(archive, bucket, key, ExtraArgs={
                "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key,
                "ContentType": "application/gzip",
                "Metadata": {"files-sha256": model.digest}})
    return UploadResult(model, bucket, key, uploaded=True, size=size)
