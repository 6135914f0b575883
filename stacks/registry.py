"""The model registry: a SageMaker model package group, the artifact bucket and the serving
image repository, optionally readable from a production account."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ._common import child_options, policy_document, resource_tags, token
from ._storage import secure_bucket
from .config import RegistryConfig
from .model_keys import MODELS_PREFIX

__all__ = ["MODELS_PREFIX", "ModelRegistry", "ModelRegistryArgs", "image_lifecycle_policy"]

# the repository pull actions another account needs to run the serving image
_ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                     "ecr:GetDownloadUrlForLayer"]


def image_lifecycle_policy(keep_images: int, untagged_days: int = 7) -> str:
    """ECR lifecycle policy: drop untagged images after `untagged_days`, keep the newest
    `keep_images` images."""
    return json.dumps({"rules": [
        {"rulePriority": 1, "description": f"untagged images after {untagged_days} days",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                       "countUnit": "days", "countNumber": untagged_days},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": f"keep the newest {keep_images} images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                       "countNumber": keep_images},
         "action": {"type": "expire"}},
    ]})


@dataclass
class ModelRegistryArgs:
    """Inputs of :class:`ModelRegistry`."""

    config: RegistryConfig
    """Artifact retention and the optional production account allowed to read."""
    prefix: str
    """Resource-name prefix, ``<project>-<env>``; also the model package group's name."""
    tags: Mapping[str, str]
    """The platform's tags."""
    kms_key_arn: pulumi.Input[str]
    """Platform data key: encrypts the bucket and the repository (its policy must let
    ``config.prod_account_id`` decrypt when that is set)."""
    keep_images: int = 30
    """Serving images kept in the repository."""
    protect: bool = False
    """Pulumi protect on the artifact bucket."""


class ModelRegistry(pulumi.ComponentResource):
    """Where trained models and their serving image live.

    Model versions are registered in a SageMaker model package group; their artifacts sit in a
    KMS-encrypted, versioned, TLS-only bucket whose old versions expire after
    ``config.artifact_retention_days``; the serving image is in an ECR repository with
    immutable tags, scan on push and KMS encryption. With ``config.prod_account_id``, that
    account may read the published models (``models/``, nothing else of the bucket), pull the
    image and describe the model packages.
    """

    model_package_group_name: pulumi.Output[str]
    artifact_bucket_name: pulumi.Output[str]
    artifact_bucket_arn: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ModelRegistryArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("ModelRegistry"), name, None, opts)
        config = args.config
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        readers = ([pulumi.Output.format("arn:{0}:iam::{1}:root", partition.partition,
                                         config.prod_account_id)]
                   if config.prod_account_id else [])

        group = aws.sagemaker.ModelPackageGroup(
            f"{name}-model-group", model_package_group_name=args.prefix,
            model_package_group_description=f"Model versions of {args.prefix}",
            tags=resource_tags(args.tags, name=f"{name}-model-group"),
            opts=child_options(self))
        artifacts = secure_bucket(
            f"{name}-artifacts", parent=self, physical_name=f"{args.prefix}-artifacts",
            kms_key_arn=args.kms_key_arn, tags=args.tags,
            noncurrent_version_days=config.artifact_retention_days,
            read_only_principals=readers, read_only_prefix=MODELS_PREFIX,
            protect=args.protect)
        repository = aws.ecr.Repository(
            f"{name}-serving-image", name=f"{args.prefix}-serving",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(
                encryption_type="KMS", kms_key=args.kms_key_arn)],
            tags=resource_tags(args.tags, name=f"{name}-serving-image"),
            opts=child_options(self))
        aws.ecr.LifecyclePolicy(
            f"{name}-serving-image-lifecycle", repository=repository.name,
            policy=image_lifecycle_policy(args.keep_images), opts=child_options(self))

        if readers:
            principal = {"AWS": readers}
            aws.ecr.RepositoryPolicy(
                f"{name}-serving-image-policy", repository=repository.name,
                policy=policy_document([{
                    "Sid": "CrossAccountPull", "Effect": "Allow", "Principal": principal,
                    "Action": _ECR_PULL_ACTIONS}]),
                opts=child_options(self))
            # model-package-group/NAME -> model-package/NAME/* (the versions in the group)
            packages = group.arn.apply(lambda arn: arn.replace(
                ":model-package-group/", ":model-package/", 1) + "/*")
            aws.sagemaker.ModelPackageGroupPolicy(
                f"{name}-model-group-policy",
                model_package_group_name=group.model_package_group_name,
                resource_policy=policy_document([
                    {"Sid": "CrossAccountDescribeGroup", "Effect": "Allow",
                     "Principal": principal, "Action": "sagemaker:DescribeModelPackageGroup",
                     "Resource": group.arn},
                    {"Sid": "CrossAccountReadPackages", "Effect": "Allow",
                     "Principal": principal,
                     "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
                     "Resource": packages},
                ]),
                opts=child_options(self))

        self.model_package_group_name = group.model_package_group_name
        self.artifact_bucket_name = artifacts.bucket.bucket
        self.artifact_bucket_arn = artifacts.bucket.arn
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.register_outputs({
            "model_package_group_name": self.model_package_group_name,
            "artifact_bucket_name": self.artifact_bucket_name,
            "artifact_bucket_arn": self.artifact_bucket_arn,
            "repository_url": self.repository_url,
            "repository_arn": self.repository_arn,
        })
