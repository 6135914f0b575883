"""IAM documents the SageMaker roles of the platform share: a trust policy that only this
account's SageMaker resources can use, and network-interface permissions limited to the VPC.

Serving's execution role, the Model Monitor and baseline roles and the feature store's
ingestion role all use them, so the conditions are written once.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from ._common import policy_document
from .constants import NETWORK_INTERFACE_ACTIONS

__all__ = ["SAGEMAKER_SERVICE", "SAGEMAKER_VPC_ACTIONS", "sagemaker_trust_policy",
           "vpc_network_interface_statements"]

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
# what SageMaker needs to run an endpoint or job in a VPC (its network interfaces); AWS docs:
# "Give SageMaker AI access to resources in your Amazon VPC"
SAGEMAKER_VPC_ACTIONS: tuple[str, ...] = (
    *NETWORK_INTERFACE_ACTIONS, "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups")
_DESCRIBE = tuple(a for a in SAGEMAKER_VPC_ACTIONS if a.startswith("ec2:Describe"))
_ON_INTERFACES = ("ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                  "ec2:DeleteNetworkInterfacePermission")


def sagemaker_trust_policy(parent: pulumi.Resource) -> pulumi.Output[str]:
    """Trust policy letting SageMaker assume a role for this account's resources only.

    aws:SourceAccount alone (AWS SageMaker docs, "Cross-service confused deputy prevention":
    use aws:SourceAccount to allow any resource of the account). The same role serves several
    resource types (an endpoint's model, Model Monitor's processing jobs, a feature group), and
    a condition that SageMaker's request lacks denies it: an aws:SourceArn narrowed to one type
    would refuse the others (awslabs/nx-neptune#468 discusses that failure mode).
    """
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    account = aws.get_caller_identity_output(opts=invoke).account_id
    return policy_document([{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": SAGEMAKER_SERVICE},
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    }])


def vpc_network_interface_statements(parent: pulumi.Resource, vpc_id: pulumi.Input[str]
                                     ) -> list[dict[str, Any]]:
    """What SageMaker needs to place network interfaces in the VPC `vpc_id`, and no more.

    The Service Authorization Reference for EC2 decides the shape: ec2:Vpc is a condition key
    of the subnet and security group CreateNetworkInterface uses, and of the interface for
    CreateNetworkInterfacePermission, DeleteNetworkInterface and DeleteNetworkInterfacePermission;
    but not of the interface CreateNetworkInterface creates, which is limited by its ARN
    (this account and region) while its required subnet must be in the VPC. The Describe
    actions have no resource-level permissions and stay on "*".
    """
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    partition = aws.get_partition_output(opts=invoke).partition
    region = aws.get_region_output(opts=invoke).region
    account = aws.get_caller_identity_output(opts=invoke).account_id

    def arn(resource: pulumi.Input[str]) -> pulumi.Output[str]:
        return pulumi.Output.format("arn:{0}:ec2:{1}:{2}:{3}", partition, region, account,
                                    resource)

    in_vpc = {"ArnEquals": {"ec2:Vpc": arn(pulumi.Output.concat("vpc/", vpc_id))}}
    interfaces = arn("network-interface/*")
    return [
        {"Sid": "DescribeNetwork", "Effect": "Allow", "Action": list(_DESCRIBE),
         "Resource": "*"},
        {"Sid": "CreateNetworkInterface", "Effect": "Allow",
         "Action": "ec2:CreateNetworkInterface", "Resource": interfaces},
        {"Sid": "CreateNetworkInterfaceInVpc", "Effect": "Allow",
         "Action": "ec2:CreateNetworkInterface",
         "Resource": [arn("subnet/*"), arn("security-group/*")], "Condition": in_vpc},
        {"Sid": "ManageNetworkInterfacesInVpc", "Effect": "Allow", "Action": list(_ON_INTERFACES),
         "Resource": interfaces, "Condition": in_vpc},
    ]
