"""Experiment tracking: a SageMaker managed MLflow tracking server, its artifacts in the
platform's artifact bucket under ``mlflow/``, and the role it uses for them and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ._common import child_options, fitted, policy_document, resource_tags, token
from ._iam import sagemaker_trust_policy
from .config import TrackingConfig

__all__ = ["MLFLOW_PREFIX", "TrackingServer", "TrackingServerArgs", "tracking_server_name"]

# the artifact bucket's folder of the tracking server's artifacts (runs' files and models)
MLFLOW_PREFIX = "mlflow"


def tracking_server_name(prefix: str) -> str:
    """The tracking server's name, part of its ARN: ``<project>-<env>-mlflow``."""
    return f"{prefix}-mlflow"


@dataclass
class TrackingServerArgs:
    """Inputs of :class:`TrackingServer`."""

    config: TrackingConfig
    prefix: str
    """Resource-name prefix, ``<project>-<env>``."""
    tags: Mapping[str, str]
    """The platform's tags."""
    artifact_bucket_name: pulumi.Input[str]
    """The platform's artifact bucket (KMS-encrypted, versioned, TLS only, no public access);
    the server keeps its artifacts under ``mlflow/`` there."""
    artifact_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """The bucket's KMS key: the server reads and writes objects encrypted with it."""


class TrackingServer(pulumi.ComponentResource):
    """A SageMaker MLflow tracking server (``aws.sagemaker.MlflowTrackingServer``).

    Its role may read, write and delete objects under ``mlflow/`` of the artifact bucket, list
    that prefix and use the bucket's KMS key through S3, nothing else: AWS's docs suggest
    AmazonS3FullAccess, which would reach every bucket of the account. Automatic registration
    of MLflow models in the SageMaker Model Registry stays off: models reach the registry
    through ``mlscaffold promote`` (quality gate, lineage), not as a side effect of logging.
    Clients need ``sagemaker-mlflow:*`` on the server's ARN and their own S3 access to the
    prefix (MLflow clients upload artifacts to S3 directly).
    """

    tracking_server_arn: pulumi.Output[str]
    tracking_server_url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TrackingServerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("TrackingServer"), name, None, opts)
        config = args.config
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region = aws.get_region_output(opts=invoke).region

        role = aws.iam.Role(
            f"{name}-role", name=fitted(aws.iam.Role, f"{name}-role"),
            assume_role_policy=sagemaker_trust_policy(self),
            description=f"MLflow tracking server of {args.prefix}: its artifacts in S3",
            tags=resource_tags(args.tags, name=f"{name}-role"), opts=child_options(self))
        objects = pulumi.Output.concat(args.artifact_bucket_arn, f"/{MLFLOW_PREFIX}/*")
        policy = aws.iam.RolePolicy(
            f"{name}-artifacts", role=role.id, policy=policy_document([
                {"Sid": "ListArtifacts", "Effect": "Allow", "Action": "s3:ListBucket",
                 "Resource": args.artifact_bucket_arn,
                 "Condition": {"StringLike": {"s3:prefix": [MLFLOW_PREFIX,
                                                             f"{MLFLOW_PREFIX}/*"]}}},
                {"Sid": "BucketLocation", "Effect": "Allow", "Action": "s3:GetBucketLocation",
                 "Resource": args.artifact_bucket_arn},
                {"Sid": "Artifacts", "Effect": "Allow",
                 "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                 "Resource": objects},
                # the bucket's default encryption: objects are written and read with the
                # platform's key, through S3 only
                {"Sid": "ArtifactKey", "Effect": "Allow",
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": args.kms_key_arn,
                 "Condition": {"StringEquals": {"kms:ViaService": pulumi.Output.concat(
                     "s3.", region, ".amazonaws.com")}}},
            ]),
            opts=child_options(self))
        server = aws.sagemaker.MlflowTrackingServer(
            f"{name}-server", tracking_server_name=tracking_server_name(args.prefix),
            artifact_store_uri=pulumi.Output.concat("s3://", args.artifact_bucket_name, "/",
                                                    MLFLOW_PREFIX),
            role_arn=role.arn, tracking_server_size=config.server_size,
            mlflow_version=config.mlflow_version, automatic_model_registration=False,
            weekly_maintenance_window_start=config.maintenance_window,
            tags=resource_tags(args.tags, name=f"{name}-server"),
            # SageMaker uses the role as soon as the server starts: its policy first
            opts=child_options(self, depends_on=[policy]))

        self.tracking_server_arn = server.arn
        self.tracking_server_url = server.tracking_server_url
        self.role_arn = role.arn
        self.register_outputs({
            "tracking_server_arn": self.tracking_server_arn,
            "tracking_server_url": self.tracking_server_url,
            "role_arn": self.role_arn,
        })
