"""Training on the platform: what `mlscaffold train --on sagemaker|eks` needs from AWS.

- The SageMaker training role: reads the uploaded data sets (``training/data/``), writes the
  runs' outputs and checkpoints (``training/jobs/``) with the platform's key, pulls the
  project's image from its repository, writes its logs; nothing else.
- The launcher policy, for the people and the CI role that start runs (attach it to them): start,
  describe and stop training jobs named after the platform, pass the training role to SageMaker
  and nothing else, upload data sets, read the runs' outputs and logs, see whether the image
  was pushed.
- With the EKS cluster, the Kubernetes Job's role, given to the ``trainer`` service account of
  the ``ml-training`` namespace through EKS Pod Identity: the same data in, its model out.

The prefixes and names are :mod:`.training_layout`'s, which the CLI reads too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import child_options, fitted, policy_document, resource_tags, token
from ._iam import SAGEMAKER_SERVICE, sagemaker_trust_policy
from .config import TrainingConfig
from .training_layout import (
    TRAINING_DATA_PREFIX,
    TRAINING_JOBS_PREFIX,
    TRAINING_LOG_GROUP,
    TRAINING_NAMESPACE,
    TRAINING_SERVICE_ACCOUNT,
    job_name_prefix,
)

__all__ = ["POD_IDENTITY_SERVICE", "Training", "TrainingArgs", "pod_identity_trust_policy"]

POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
_ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                     "ecr:GetDownloadUrlForLayer"]


def pod_identity_trust_policy(cluster_name: pulumi.Input[str], namespace: str,
                              service_account: str) -> pulumi.Output[str]:
    """EKS Pod Identity may assume the role for one service account of one cluster only (AWS
    docs, "Create IAM role with trust policy required by EKS Pod Identity": the agent tags the
    session with the cluster, namespace and service account, which the conditions match)."""
    return policy_document([{
        "Effect": "Allow", "Principal": {"Service": POD_IDENTITY_SERVICE},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {
            "aws:RequestTag/eks-cluster-name": cluster_name,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": service_account}},
    }])


@dataclass
class TrainingArgs:
    """Inputs of :class:`Training`."""

    config: TrainingConfig
    """Instance type, spot, volume; the Kubernetes Job's resources."""
    prefix: str
    """Resource-name prefix, ``<project>-<env>``; training job names start with it."""
    tags: Mapping[str, str]
    """The platform's tags."""
    region: str
    """The platform's region."""
    kms_key_arn: pulumi.Input[str]
    """The platform's data key: the artifact bucket's, and the jobs' outputs and volumes."""
    artifact_bucket_name: pulumi.Input[str]
    """The bucket of ``training/data/`` and ``training/jobs/``."""
    repository_arn: pulumi.Input[str]
    """The project's image repository: the training jobs run its image."""
    repository_url: pulumi.Input[str]
    """Its URL (the ``training`` output's image repository)."""
    cluster_name: pulumi.Input[str] | None = None
    """The EKS cluster: with it, the Kubernetes Job's role and Pod Identity association."""


class Training(pulumi.ComponentResource):
    """The roles and the policy of training runs: see the module's documentation.

    :attr:`settings` is the stack output ``training``, everything the CLI needs to start a run.
    """

    role_arn: pulumi.Output[str]
    launcher_policy_arn: pulumi.Output[str]
    job_role_arn: pulumi.Output[str] | None = None
    settings: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: TrainingArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("Training"), name, None, opts)
        self._name, self._args = name, args
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self._account = aws.get_caller_identity_output(opts=invoke).account_id
        self._partition = aws.get_partition_output(opts=invoke).partition
        bucket = pulumi.Output.format("arn:{0}:s3:::{1}", self._partition,
                                      args.artifact_bucket_name)
        self._data = pulumi.Output.concat(bucket, f"/{TRAINING_DATA_PREFIX}/*")
        self._jobs = pulumi.Output.concat(bucket, f"/{TRAINING_JOBS_PREFIX}/*")
        self._bucket = bucket

        role = aws.iam.Role(
            f"{name}-role", name=fitted(aws.iam.Role, f"{name}-role"),
            assume_role_policy=sagemaker_trust_policy(self),
            description=f"SageMaker training jobs of {args.prefix}: data sets in, models out",
            tags=self._tags("role"), opts=child_options(self))
        policy = aws.iam.RolePolicy(
            f"{name}-policy", role=role.id, policy=self._job_policy(), opts=child_options(self))
        launcher = aws.iam.Policy(
            f"{name}-launcher", description=f"Start and follow training runs of {args.prefix} "
                                            "(mlscaffold train --on sagemaker|eks)",
            policy=self._launcher_policy(role.arn), tags=self._tags("launcher"),
            opts=child_options(self))
        self.role_arn = pulumi.Output.all(role.arn, policy.id).apply(lambda v: v[0])
        self.launcher_policy_arn = launcher.arn

        eks: pulumi.Input[dict[str, Any]] | None = None
        if args.cluster_name is not None:
            job_role = aws.iam.Role(
                f"{name}-eks-role", name=fitted(aws.iam.Role, f"{name}-eks-role"),
                assume_role_policy=pod_identity_trust_policy(
                    args.cluster_name, TRAINING_NAMESPACE, TRAINING_SERVICE_ACCOUNT),
                description=f"Kubernetes training Jobs of {args.prefix} (EKS Pod Identity)",
                tags=self._tags("eks-role"), opts=child_options(self))
            job_policy = aws.iam.RolePolicy(
                f"{name}-eks-policy", role=job_role.id, policy=policy_document(
                    self._data_statements()), opts=child_options(self))
            association = aws.eks.PodIdentityAssociation(
                f"{name}-pod-identity", cluster_name=args.cluster_name,
                namespace=TRAINING_NAMESPACE, service_account=TRAINING_SERVICE_ACCOUNT,
                role_arn=job_role.arn, tags=self._tags("pod-identity"),
                opts=child_options(self, depends_on=[job_policy]))
            self.job_role_arn = job_role.arn
            eks = pulumi.Output.all(association.association_id).apply(lambda _: {
                "namespace": TRAINING_NAMESPACE, "service_account": TRAINING_SERVICE_ACCOUNT})

        config = args.config
        self.settings = pulumi.Output.from_input({
            "region": args.region,
            "bucket": args.artifact_bucket_name,
            "role_arn": self.role_arn,
            "kms_key_arn": args.kms_key_arn,
            "repository_url": args.repository_url,
            "data_prefix": TRAINING_DATA_PREFIX,
            "jobs_prefix": TRAINING_JOBS_PREFIX,
            "job_name_prefix": job_name_prefix(args.prefix),
            "instance_type": config.instance_type,
            "spot": config.spot,
            "spot_wait_seconds": config.spot_wait_minutes * 60,
            "volume_size_gb": config.volume_size_gb,
            "launcher_policy_arn": launcher.arn,
            "eks": eks,
        })
        self.register_outputs({"role_arn": self.role_arn,
                               "launcher_policy_arn": self.launcher_policy_arn,
                               "job_role_arn": self.job_role_arn, "settings": self.settings})

    def _tags(self, resource: str) -> dict[str, str]:
        return resource_tags(self._args.tags, name=f"{self._name}-{resource}")

    def _arn(self, service: str, resource: str) -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:{1}:{2}:{3}:{4}", self._partition, service,
                                    self._args.region, self._account, resource)

    def _key_statement(self) -> dict[str, Any]:
        return {"Sid": "DataKey", "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": self._args.kms_key_arn}

    def _data_statements(self) -> list[dict[str, Any]]:
        """Data sets in, outputs and checkpoints out: the two prefixes and the key only."""
        return [
            {"Sid": "ReadDataSets", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": self._data},
            {"Sid": "WriteAndResumeRuns", "Effect": "Allow",
             "Action": ["s3:PutObject", "s3:GetObject"], "Resource": self._jobs},
            # channels (S3Prefix) and checkpoints are listed before they are read
            {"Sid": "ListTrainingPrefixes", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": self._bucket, "Condition": {"StringLike": {"s3:prefix": [
                 f"{TRAINING_DATA_PREFIX}/*", f"{TRAINING_JOBS_PREFIX}/*"]}}},
            self._key_statement(),
        ]

    def _job_policy(self) -> pulumi.Output[str]:
        """The training role: the data statements, the image, its logs and metrics (AWS docs,
        "How to use SageMaker AI execution roles", CreateTrainingJob permissions, narrowed to
        this platform's bucket prefixes, repository and log group)."""
        logs = self._arn("logs", f"log-group:{TRAINING_LOG_GROUP}")
        return policy_document([
            *self._data_statements(),
            {"Sid": "PullImage", "Effect": "Allow", "Action": _ECR_PULL_ACTIONS,
             "Resource": self._args.repository_arn},
            # no resource-level permissions (Service Authorization Reference, ECR)
            {"Sid": "RegistryLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
             "Resource": "*"},
            {"Sid": "Logs", "Effect": "Allow",
             "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                        "logs:DescribeLogStreams"],
             "Resource": [logs, pulumi.Output.concat(logs, ":*")]},
            {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
             "Resource": "*", "Condition": {"StringEquals": {
                 "cloudwatch:namespace": TRAINING_LOG_GROUP}}},
        ])

    def _launcher_policy(self, role_arn: pulumi.Input[str]) -> pulumi.Output[str]:
        """What starting and following a run takes: jobs of this platform's name, the training
        role passed to SageMaker only, data sets up, outputs and logs down."""
        jobs = self._arn("sagemaker", f"training-job/{job_name_prefix(self._args.prefix)}-*")
        logs = self._arn("logs", f"log-group:{TRAINING_LOG_GROUP}")
        return policy_document([
            {"Sid": "TrainingJobs", "Effect": "Allow",
             "Action": ["sagemaker:CreateTrainingJob", "sagemaker:AddTags",
                        "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
             "Resource": jobs},
            # AWS IAM User Guide, "Grant a user permissions to pass a role to an AWS service":
            # the role by ARN, to SageMaker only
            {"Sid": "PassTrainingRole", "Effect": "Allow", "Action": "iam:PassRole",
             "Resource": role_arn,
             "Condition": {"StringEquals": {"iam:PassedToService": SAGEMAKER_SERVICE}}},
            {"Sid": "UploadDataSets", "Effect": "Allow",
             "Action": ["s3:PutObject", "s3:GetObject"], "Resource": self._data},
            {"Sid": "ReadRuns", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": self._jobs},
            {"Sid": "ListTrainingPrefixes", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": self._bucket, "Condition": {"StringLike": {"s3:prefix": [
                 f"{TRAINING_DATA_PREFIX}/*", f"{TRAINING_JOBS_PREFIX}/*"]}}},
            self._key_statement(),
            {"Sid": "ReadLogs", "Effect": "Allow",
             "Action": ["logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"],
             "Resource": [logs, pulumi.Output.concat(logs, ":*")]},
            {"Sid": "ImagePushed", "Effect": "Allow", "Action": "ecr:DescribeImages",
             "Resource": self._args.repository_arn},
        ])
