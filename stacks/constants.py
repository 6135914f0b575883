"""Names the stacks build with and the policies (and preflight) recognise: one definition each.

A stack puts a taint, a label, a requirement key or a resource kind on what it creates; a rule
finds what it checks by the same name. Plain values only: this module imports nothing of
mlscaffold, so the CrossGuard packs, the stacks and the CLI can all read it.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "ATHENA_BYTES_PER_GB",
    "AUTONAME_SUFFIX",
    "CAPACITY_TYPE",
    "EKS_LOG_TYPES",
    "GPU_NODE_SELECTOR",
    "GPU_RESOURCE",
    "GPU_TAINT",
    "INFERENCE_SERVICE",
    "INFERENCE_SERVICE_KIND",
    "INFERENCE_SERVICE_LABEL",
    "INSTANCE_FAMILY",
    "INSTANCE_SIZE",
    "INSTANCE_TYPE",
    "KNATIVE_SERVING",
    "KNATIVE_SERVING_KIND",
    "NETWORK_INTERFACE_ACTIONS",
    "NODE_CLASS",
    "NODE_CLASS_KIND",
    "NODE_POOL",
    "NODE_POOL_KIND",
    "PROFILES",
    "S3_OBJECT",
    "S3_RESERVED_PREFIXES",
    "SAGEMAKER_CHALLENGER_SUFFIX",
    "SAGEMAKER_NAME_MAX",
    "SAGEMAKER_VERSIONED_SUFFIXES",
    "STACK_PREFIX_MAX",
    "TAINT_EFFECTS",
    "Profile",
    "kubernetes_type",
]

#: the sizing of an environment, and the profile its policy defaults are chosen by
Profile = Literal["dev", "staging", "prod"]
PROFILES: tuple[str, ...] = get_args(Profile)

# --------------------------------------------------------------------- Kubernetes and GPUs
#: the extended resource NVIDIA's device plugin advertises: what GPU pods request and limit
GPU_RESOURCE = "nvidia.com/gpu"
#: the taint every GPU node carries (EKS API form), so only pods that tolerate it land there
GPU_TAINT = {"key": GPU_RESOURCE, "value": "true", "effect": "NO_SCHEDULE"}
#: EKS API taint effects -> Kubernetes effects
TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute",
                 "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
#: the label every GPU node carries, whatever its pool
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}


def kubernetes_type(kind: tuple[str, str]) -> str:
    """The Pulumi type of a Kubernetes (custom) resource: ``kubernetes:<apiVersion>:<kind>``."""
    return f"kubernetes:{kind[0]}:{kind[1]}"


#: Karpenter's custom resources (apiVersion, kind)
NODE_POOL_KIND = ("karpenter.sh/v1", "NodePool")
NODE_CLASS_KIND = ("karpenter.k8s.aws/v1", "EC2NodeClass")
NODE_POOL = kubernetes_type(NODE_POOL_KIND)
NODE_CLASS = kubernetes_type(NODE_CLASS_KIND)
#: the NodePool requirement keys the stacks restrict and the rules read
INSTANCE_FAMILY = "karpenter.k8s.aws/instance-family"
INSTANCE_SIZE = "karpenter.k8s.aws/instance-size"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
CAPACITY_TYPE = "karpenter.sh/capacity-type"

#: the Knative Operator's KnativeServing (apiVersion, kind): Knative Serving for KServe's
#: Serverless mode
KNATIVE_SERVING_KIND = ("operator.knative.dev/v1beta1", "KnativeServing")
KNATIVE_SERVING = kubernetes_type(KNATIVE_SERVING_KIND)

#: KServe's InferenceService (apiVersion, kind), and the label KServe puts on its pods
INFERENCE_SERVICE_KIND = ("serving.kserve.io/v1beta1", "InferenceService")
INFERENCE_SERVICE = kubernetes_type(INFERENCE_SERVICE_KIND)
INFERENCE_SERVICE_LABEL = "serving.kserve.io/inferenceservice"

# --------------------------------------------------------------------------------- AWS
#: every EKS control plane log type (AWS's list): the stacks enable all, the rule asks for all
EKS_LOG_TYPES: tuple[str, ...] = (
    "api", "audit", "authenticator", "controllerManager", "scheduler")
#: the CloudTrail data-event resource type of S3 objects
S3_OBJECT = "AWS::S3::Object"
#: the EC2 actions that create and delete network interfaces (and their permissions) in a VPC,
#: as SageMaker, Lambda and the like do on a role's behalf
NETWORK_INTERFACE_ACTIONS: tuple[str, ...] = (
    "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission")


# SageMaker model and endpoint configuration names: at most 63 characters (API reference,
# CreateModel ModelName, CreateEndpointConfig EndpointConfigName); Pulumi auto-names them
# "<logical name>-<7 random hex digits>"
SAGEMAKER_NAME_MAX = 63
AUTONAME_SUFFIX = 8
# child names of a SageMaker model version: "<serving component>-model", "...-config", and an
# A/B test's "...-challenger" model
SAGEMAKER_VERSIONED_SUFFIXES = ("model", "config")
SAGEMAKER_CHALLENGER_SUFFIX = "challenger"
# The longest stack prefix ("<project>-<environment>") whose names fit every AWS limit: the
# tightest is the serving component's A/B challenger model, "<prefix>-serving-challenger" plus
# Pulumi's suffix. The spec refuses longer project and environment names at `new`, so turning
# on an A/B test later never makes a name AWS rejects.
STACK_PREFIX_MAX = (SAGEMAKER_NAME_MAX - AUTONAME_SUFFIX - len("-serving-") - max(
    map(len, (*SAGEMAKER_VERSIONED_SUFFIXES, SAGEMAKER_CHALLENGER_SUFFIX))))

# S3 general purpose bucket names must not start with these (Amazon S3 User Guide, "General
# purpose bucket naming rules": https://docs.aws.amazon.com/AmazonS3/latest/userguide/
# bucketnamingrules.html; sthree-configurator is within sthree-). Every bucket of a stack is
# named "<project>-<environment>-<purpose>-" plus the digits S3 appends, so the reserved
# suffixes there (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3) never end one.
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")

# Athena counts scanned data in decimal units (it bills per TB of 10^12 bytes): a workgroup's
# BytesScannedCutoffPerQuery of N GB is N * 10^9 bytes
ATHENA_BYTES_PER_GB = 10**9
