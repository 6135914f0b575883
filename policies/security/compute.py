"""Compute security: the EKS control plane, managed node groups, launch templates, instances.

Props are a resource's inputs under Pulumi's wire names. A missing key counts as AWS's
default, which is the insecure one here (public API endpoint, unencrypted secrets, no control
plane logs, IMDSv1, the AMI's hop limit and volume settings). Values only known after
deployment (KMS key ARNs, launch template ids) are checked for presence, never read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from mlscaffold.stacks.config import (
    EKS_EXTENDED_SUPPORT_ENDS,
    EKS_STANDARD_SUPPORT_ENDS,
    SUPPORTED_KUBERNETES_VERSIONS,
    default_kubernetes_version,
)
from mlscaffold.stacks.constants import EKS_LOG_TYPES

from ..props import as_mapping, is_set, is_true, items_of
from ..rule import Subject, rule, violation

__all__: list[str] = []

EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"

_SSM = "use SSM Session Manager (the AmazonSSMManagedInstanceCore policy) for shell access"


def _open_to_world(cidr: Any) -> bool:
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False


# ------------------------------------------------------------------ EKS control plane


@rule("eks-private-endpoint", pack="security", severity="high", resource_types=[EKS_CLUSTER],
      description="EKS clusters enable the private API endpoint, so nodes and operators reach "
                  "the API inside the VPC.")
def eks_private_endpoint(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    vpc = as_mapping(subject.props.get("vpcConfig"))
    if not is_true(vpc.get("endpointPrivateAccess")):
        yield violation(subject, "vpcConfig.endpointPrivateAccess", "is not true",
                        "set it to true so that nodes and operators reach the API inside the "
                        "VPC")


@rule("eks-public-endpoint-restricted", pack="security", severity="high",
      resource_types=[EKS_CLUSTER],
      description="EKS clusters turn the public API endpoint off, or restrict it to listed "
                  "CIDR ranges other than 0.0.0.0/0.")
def eks_public_endpoint_restricted(subject: Subject, config: Mapping[str, Any]
                                   ) -> Iterator[str]:
    vpc = as_mapping(subject.props.get("vpcConfig"))
    public = vpc.get("endpointPublicAccess", True)  # AWS's default: on
    if public is False or (isinstance(public, str) and public.lower() == "false"):
        return
    fix = ("set vpcConfig.endpointPublicAccess to false, or list your office or VPN ranges in "
           "vpcConfig.publicAccessCidrs")
    cidrs = items_of(vpc.get("publicAccessCidrs"))
    if not cidrs:
        yield violation(subject, "vpcConfig.endpointPublicAccess",
                        "is on without publicAccessCidrs (the API is open to 0.0.0.0/0)", fix)
    for cidr in cidrs:
        if _open_to_world(cidr):
            yield violation(subject, "vpcConfig.publicAccessCidrs",
                            f"includes {cidr} (the API is open to the internet)", fix)


@rule("eks-secrets-encryption", pack="security", severity="high", resource_types=[EKS_CLUSTER],
      description="EKS clusters envelope-encrypt Kubernetes secrets with a KMS key.")
def eks_secrets_encryption(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    fix = 'set encryptionConfig with resources ["secrets"] and provider.keyArn of a KMS key'
    if not is_set(subject.props, "encryptionConfig"):
        yield violation(subject, "encryptionConfig",
                        "is not set (secrets are stored without envelope encryption)", fix)
        return
    encryption = as_mapping(subject.props["encryptionConfig"])
    if "secrets" not in items_of(encryption.get("resources")):
        yield violation(subject, "encryptionConfig.resources", 'does not include "secrets"', fix)
    if not is_set(as_mapping(encryption.get("provider")), "keyArn"):
        yield violation(subject, "encryptionConfig.provider.keyArn", "is not set", fix)


@rule("eks-control-plane-logging", pack="security", severity="medium",
      resource_types=[EKS_CLUSTER],
      description="EKS clusters send every control plane log type to CloudWatch Logs.",
      config={"log_types": {
          "type": "array", "items": {"enum": list(EKS_LOG_TYPES)}, "uniqueItems": True,
          "default": list(EKS_LOG_TYPES),
          "description": "Log types every cluster must enable."}})
def eks_control_plane_logging(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    enabled = set(items_of(subject.props.get("enabledClusterLogTypes")))
    missing = [t for t in config["log_types"] if t not in enabled]
    if missing:
        yield violation(subject, "enabledClusterLogTypes", f"lacks {', '.join(missing)}",
                        f"enable {', '.join(config['log_types'])}")


@rule("eks-supported-version", pack="security", severity="medium",
      resource_types=[EKS_CLUSTER],
      description="EKS clusters pin a Kubernetes version that EKS still supports (and patches), "
                  "in standard or extended support.",
      config={"supported_versions": {
          "type": "array", "items": {"type": "string", "pattern": r"^1\.\d+$"}, "minItems": 1,
          "default": list(SUPPORTED_KUBERNETES_VERSIONS),
          "description": "Kubernetes versions clusters may run."}})
def eks_supported_version(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    supported = list(config["supported_versions"])
    fix = f"set version to one of {', '.join(supported)}"
    if not is_set(subject.props, "version"):
        yield violation(subject, "version",
                        "is not set (EKS picks a version and upgrades go unreviewed)", fix)
    elif str(subject.props["version"]) not in supported:
        yield violation(subject, "version",
                        f"{subject.props['version']} is not a supported Kubernetes version", fix)
    else:
        version = str(subject.props["version"])
        ends = EKS_EXTENDED_SUPPORT_ENDS.get(version)
        if ends is not None and ends <= _today():
            yield violation(subject, "version",
                            f"{version} left EKS extended support on {ends.isoformat()} (no new "
                            "clusters; EKS upgrades the ones still on it)",
                            f"set it to {_upgrade_to(version)} (cluster.kubernetes_version in "
                            "the stack config)")


def _today() -> date:
    """The day support windows are judged on (tests fix it)."""
    return date.today()


def _upgrade_to(version: str) -> str:
    """The next minor version after `version` (EKS upgrades one at a time), or today's
    default when the table has none."""
    following = [v for v in SUPPORTED_KUBERNETES_VERSIONS
                 if tuple(map(int, v.split("."))) > tuple(map(int, version.split(".")))]
    return following[0] if following else default_kubernetes_version(_today())


@rule("eks-standard-support", pack="security", severity="medium", level="advisory",
      resource_types=[EKS_CLUSTER],
      description="EKS clusters pin a Kubernetes version still in EKS standard support: past "
                  "it, upgrade policy STANDARD has EKS upgrade the cluster behind the stack's "
                  "back, and EXTENDED bills the extended-support rate.")
def eks_standard_support(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    # AWS docs, "Understand the Kubernetes version lifecycle on EKS" and "View current cluster
    # upgrade policy": standard support lasts 14 months from the EKS release; then a STANDARD
    # cluster is upgraded automatically and an EXTENDED one enters extended support (billed
    # per cluster-hour at the extended rate, policies/cost/prices.json)
    if not is_set(subject.props, "version"):
        return  # eks-supported-version reports it
    version = str(subject.props["version"])
    ends = EKS_STANDARD_SUPPORT_ENDS.get(version)
    if ends is None or ends > _today():
        return
    support = as_mapping(subject.props.get("upgradePolicy")).get("supportType")
    then = ("EKS upgrades the cluster to the next version, which the stack then tries to "
            "downgrade" if support == "STANDARD" else
            "the cluster is billed at the extended-support rate")
    yield violation(subject, "version",
                    f"{version} left EKS standard support on {ends.isoformat()} ({then})",
                    f"raise it to {_upgrade_to(version)} (cluster.kubernetes_version in the "
                    "stack config; one minor version at a time)")


# ------------------------------------------------------------------ node groups


@rule("eks-node-group-no-ssh", pack="security", severity="high", resource_types=[NODE_GROUP],
      description="EKS node groups do not open SSH to their nodes (no remoteAccess).")
def eks_node_group_no_ssh(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    if is_set(subject.props, "remoteAccess"):
        yield violation(subject, "remoteAccess", "is set (SSH to the nodes)",
                        f"remove it and {_SSM}")


@rule("eks-node-group-launch-template", pack="security", severity="medium",
      resource_types=[NODE_GROUP],
      description="EKS node groups use a launch template, so that the instance metadata "
                  "service and the node volumes are configured, not left to EKS's defaults.")
def eks_node_group_launch_template(subject: Subject, config: Mapping[str, Any]
                                   ) -> Iterator[str]:
    template = as_mapping(subject.props.get("launchTemplate"))
    if not (is_set(template, "id") or is_set(template, "name")):
        yield violation(subject, "launchTemplate", "is not set (IMDS and disks take EKS's "
                        "defaults)", "set launchTemplate.id and version of a launch template "
                        "that requires IMDSv2 and encrypts its volumes")


# ------------------------------------------------------------------ launch templates, instances


def _imdsv2(subject: Subject) -> Iterator[str]:
    options = as_mapping(subject.props.get("metadataOptions"))
    tokens = options.get("httpTokens")
    if options.get("httpEndpoint") == "disabled" or tokens == "required":
        return
    yield violation(subject, "metadataOptions.httpTokens",
                    f'is "{tokens}" (IMDSv1 is allowed)' if tokens
                    else "is not set (IMDSv1 is allowed)", 'set it to "required" (IMDSv2 only)')


@rule("launch-template-imdsv2", pack="security", severity="high",
      resource_types=[LAUNCH_TEMPLATE],
      description="Launch templates require IMDSv2 session tokens for instance metadata.")
def launch_template_imdsv2(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    yield from _imdsv2(subject)


@rule("launch-template-imds-hop-limit", pack="security", severity="medium",
      resource_types=[LAUNCH_TEMPLATE],
      description="Launch templates cap the IMDS response hop limit, so that pods (one hop "
                  "further than the node) cannot read the node role's credentials.",
      config={"max_hop_limit": {
          "type": "integer", "minimum": 1, "maximum": 64, "default": 1,
          "description": "Highest httpPutResponseHopLimit allowed; 1 keeps pods away from "
                         "the node's credentials."}})
def launch_template_imds_hop_limit(subject: Subject, config: Mapping[str, Any]
                                   ) -> Iterator[str]:
    options = as_mapping(subject.props.get("metadataOptions"))
    if options.get("httpEndpoint") == "disabled":
        return
    limit = int(config["max_hop_limit"])
    hops = options.get("httpPutResponseHopLimit")
    fix = f"set metadataOptions.httpPutResponseHopLimit to {limit}"
    if hops is None:
        yield violation(subject, "metadataOptions.httpPutResponseHopLimit",
                        "is not set (EKS AMIs default to 2)", fix)
    elif float(hops) > limit:
        yield violation(subject, "metadataOptions.httpPutResponseHopLimit",
                        f"is {int(hops)}, above {limit}", fix)


@rule("launch-template-no-ssh-key", pack="security", severity="medium",
      resource_types=[LAUNCH_TEMPLATE],
      description="Launch templates carry no EC2 key pair (no SSH keys on nodes).")
def launch_template_no_ssh_key(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    if is_set(subject.props, "keyName"):
        yield violation(subject, "keyName", "is set (an SSH key pair on every instance)",
                        f"remove it and {_SSM}")


@rule("launch-template-encrypted-volumes", pack="security", severity="high",
      resource_types=[LAUNCH_TEMPLATE],
      description="Launch templates map their EBS volumes, the root one included, encrypted.")
def launch_template_encrypted_volumes(subject: Subject, config: Mapping[str, Any]
                                      ) -> Iterator[str]:
    fix = 'set ebs.encrypted to "true"'
    mappings = items_of(subject.props.get("blockDeviceMappings"))
    if not mappings:
        yield violation(subject, "blockDeviceMappings", "is not set (the root volume takes the "
                        "AMI's settings, unencrypted)", "map the root device (e.g. /dev/xvda) "
                        'with ebs.encrypted "true"')
    for index, mapping in enumerate(mappings):
        mapping = as_mapping(mapping)
        if "ebs" in list(mapping) and not is_true(as_mapping(mapping["ebs"]).get("encrypted")):
            device = mapping.get("deviceName", "?")
            yield violation(subject, f"blockDeviceMappings[{index}].ebs.encrypted",
                            f"is not true ({device} is unencrypted)", fix)


@rule("ec2-instance-imdsv2", pack="security", severity="high", resource_types=[INSTANCE],
      description="EC2 instances require IMDSv2 session tokens for instance metadata.")
def ec2_instance_imdsv2(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    yield from _imdsv2(subject)


@rule("ec2-instance-encrypted-volumes", pack="security", severity="high",
      resource_types=[INSTANCE],
      description="EC2 instances encrypt their root volume and every attached EBS volume.")
def ec2_instance_encrypted_volumes(subject: Subject, config: Mapping[str, Any]
                                   ) -> Iterator[str]:
    root = as_mapping(subject.props.get("rootBlockDevice"))
    if not is_true(root.get("encrypted")):
        yield violation(subject, "rootBlockDevice.encrypted",
                        "is not true (the root volume takes the AMI's settings, unencrypted)",
                        "set rootBlockDevice.encrypted to true")
    for index, device in enumerate(items_of(subject.props.get("ebsBlockDevices"))):
        if not is_true(as_mapping(device).get("encrypted")):
            yield violation(subject, f"ebsBlockDevices[{index}].encrypted", "is not true",
                            "set encrypted to true")
