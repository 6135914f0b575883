"""The API relay: how Pulumi reaches a private EKS API endpoint from outside the VPC.

The cluster's endpoint is private, and the in-cluster program (Helm releases, KServe, network
policies) is applied from wherever `pulumi up` runs: a laptop, or a CI runner outside the VPC,
which cannot connect to it (pulumi/pulumi-eks#1134). A public endpoint for GitHub-hosted runners
would have to admit their whole, changing address space. Instead, a minimal instance in a
private subnet is the far end of an AWS Systems Manager port-forwarding session
(document ``AWS-StartPortForwardingSessionToRemoteHost``): `mlscaffold tunnel` forwards a local
port to the endpoint's port 443 through it. The relay accepts no inbound connection and has no
SSH key; the session is authorised by IAM (``ssm:StartSession`` on this instance and that
document) and the Kubernetes API still authenticates the caller with its own IAM identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ._common import assume_role_policy, child_options, fitted, resource_tags, token

__all__ = ["PORT_FORWARDING_DOCUMENT", "RELAY_AMI_PARAMETER", "RELAY_INSTANCE_TYPE", "ApiRelay",
           "ApiRelayArgs"]

# the AWS-managed Session Manager document that forwards a local port to a host the instance
# reaches (AWS docs: "Start a session", port forwarding to remote hosts)
PORT_FORWARDING_DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"
# the latest Amazon Linux 2023 for arm64, which ships the SSM agent; a new image replaces the
# relay on the next deploy, so it never runs unpatched for long
RELAY_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
RELAY_INSTANCE_TYPE = "t4g.nano"
SSM_CORE_POLICY = "AmazonSSMManagedInstanceCore"


@dataclass
class ApiRelayArgs:
    """Inputs of :class:`ApiRelay`."""

    prefix: str
    """Resource-name prefix, ``<project>-<env>``."""
    tags: Mapping[str, str]
    """The platform's tags."""
    vpc_id: pulumi.Input[str]
    """VPC of the relay and the cluster."""
    vpc_cidr: pulumi.Input[str]
    """The relay may open HTTPS connections inside the VPC (the API endpoint's interfaces)."""
    subnet_id: pulumi.Input[str]
    """A private subnet with a route to the internet (NAT) for the Session Manager service."""


class ApiRelay(pulumi.ComponentResource):
    """A ``t4g.nano`` Session Manager instance that forwards HTTPS to the private API endpoint.

    IMDSv2 only (hop limit 1), an encrypted root volume, no public address, no key pair, no
    inbound rule; outbound HTTPS only: into the VPC (the endpoint) and to Session Manager
    through the NAT gateway. Its role holds ``AmazonSSMManagedInstanceCore`` and nothing else.
    """

    instance_id: pulumi.Output[str]
    instance_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: ApiRelayArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("ApiRelay"), name, None, opts)

        def tags(resource: str) -> dict[str, str]:
            return resource_tags(args.tags, name=f"{name}-{resource}")

        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        role = aws.iam.Role(
            f"{name}-role", name=fitted(aws.iam.Role, f"{name}-role"),
            description=f"API relay of {args.prefix}: Session Manager only",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            tags=tags("role"), opts=child_options(self))
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-ssm", role=role.name, policy_arn=pulumi.Output.format(
                "arn:{0}:iam::aws:policy/{1}", partition.partition, SSM_CORE_POLICY),
            opts=child_options(self))
        profile = aws.iam.InstanceProfile(
            f"{name}-profile", role=role.name, tags=tags("profile"), opts=child_options(self))
        group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id,
            description=f"API relay of {args.prefix}: no inbound, HTTPS out only",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=[args.vpc_cidr],
                    description="the private API endpoint of the cluster"),
                # Session Manager's endpoints (ssm, ssmmessages, ec2messages) are public AWS
                # endpoints reached through the NAT gateway; security groups cannot name hosts
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"],
                    description="Session Manager through the NAT gateway"),
            ],
            tags=tags("sg"), opts=child_options(self))
        image = aws.ssm.get_parameter_output(
            name=RELAY_AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self))
        instance = aws.ec2.Instance(
            f"{name}-instance", ami=image.value, instance_type=RELAY_INSTANCE_TYPE,
            subnet_id=args.subnet_id, vpc_security_group_ids=[group.id],
            iam_instance_profile=profile.name, associate_public_ip_address=False,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True, volume_type="gp3", delete_on_termination=True),
            monitoring=False, tags=tags("instance"), volume_tags=tags("volume"),
            # the agent registers with Session Manager only once the role is attached
            opts=child_options(self, depends_on=[attachment]))

        self.instance_id = instance.id
        self.instance_arn = instance.arn
        self.security_group_id = group.id
        self.register_outputs({"instance_id": self.instance_id,
                               "instance_arn": self.instance_arn,
                               "security_group_id": self.security_group_id})
