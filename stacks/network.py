"""The platform's VPC: private subnets for nodes and endpoints, public ones for NAT and load
balancers, VPC endpoints for the AWS APIs the platform calls, and flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ._common import child_options, fitted, policy_document, resource_tags, token
from .config import NetworkConfig
from .karpenter import DISCOVERY_TAG

__all__ = ["INTERFACE_ENDPOINT_SERVICES", "Network", "NetworkArgs", "subnet_cidrs"]

# AWS APIs the cluster's nodes call through interface endpoints (private DNS) instead of the
# NAT gateway: image pulls, IRSA tokens, logs. SageMaker needs none: its network-isolated models
# and jobs make no calls from the VPC, and model artifacts come through the free S3 gateway
# endpoint (AWS docs: "Give SageMaker AI hosted endpoints access to resources in your VPC").
INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = ("ecr.api", "ecr.dkr", "sts", "logs")


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Private and public subnet CIDRs, one of each per zone, carved from the VPC block.

    Private subnets are 1/16 of the VPC each (a /20 in a /16), numbered from the start; public
    ones are 1/16 of the last private-sized block (a /24 in a /16), so the two never overlap.
    """
    network = ipaddress.ip_network(cidr)
    blocks = list(network.subnets(prefixlen_diff=4))
    if zones > len(blocks) - 1:
        raise ValueError(f"{cidr} cannot hold {zones} zones")
    public = list(blocks[-1].subnets(prefixlen_diff=4))
    return [str(b) for b in blocks[:zones]], [str(b) for b in public[:zones]]


@dataclass
class NetworkArgs:
    """Inputs of :class:`Network`."""

    config: NetworkConfig
    """CIDR, zone count and NAT layout."""
    tags: Mapping[str, str]
    """The platform's tags (project, env, owner, cost-center, managed-by)."""
    region: str
    """AWS region, for the VPC endpoint service names."""
    cluster_name: str | None = None
    """EKS cluster that shares the subnets: tags them for its load balancers, and the private
    ones for Karpenter's discovery of where to launch nodes."""
    kms_key_arn: pulumi.Input[str] | None = None
    """KMS key encrypting the flow-log group (its policy must allow CloudWatch Logs)."""
    log_retention_days: int = 30
    """Retention of the flow-log group."""
    internet_egress: bool = True
    """Public subnets, an internet gateway and NAT gateways, for nodes that pull images and
    charts from the internet. Without them the VPC has private subnets only."""
    interface_endpoints: Sequence[str] = INTERFACE_ENDPOINT_SERVICES
    """AWS services reached through interface endpoints (see INTERFACE_ENDPOINT_SERVICES)."""
    exclude_zone_ids: Sequence[str] = ()
    """Zone IDs never to use, e.g. those where EKS cannot place its control plane."""


class Network(pulumi.ComponentResource):
    """A VPC spread over ``config.availability_zones`` zones.

    Nodes and interface endpoints live in private subnets that reach the internet through NAT
    gateways (one per zone, or a single one when ``single_nat_gateway``); public subnets hold
    only the NAT gateways and internet-facing load balancers. Without ``internet_egress`` there
    are neither: private subnets with the S3 gateway endpoint only. Subnets are placed by zone
    ID (the same physical zone in every account), skipping ``exclude_zone_ids``. The default
    security group is emptied, endpoints accept HTTPS from the VPC only, and all traffic is
    flow-logged.
    """

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    endpoint_security_group_id: pulumi.Output[str]
    s3_prefix_list_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("Network"), name, None, opts)
        config = self._config = args.config
        zones = config.availability_zones
        private_cidrs, public_cidrs = subnet_cidrs(config.cidr, zones)
        zone_ids = aws.get_availability_zones_output(
            state="available", exclude_zone_ids=list(args.exclude_zone_ids) or None,
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOutputOptions(parent=self)).zone_ids

        def tags(resource: str, **extra: str) -> dict[str, str]:
            return resource_tags(args.tags, name=f"{name}-{resource}", **extra)

        cluster_tags = ({f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
                        if args.cluster_name else {})
        # Karpenter launches GPU nodes in the subnets carrying its discovery tag: private only
        node_tags = {DISCOVERY_TAG: args.cluster_name} if args.cluster_name else {}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block=config.cidr, enable_dns_support=True,
            enable_dns_hostnames=True, tags=tags("vpc"), opts=child_options(self))
        # stripped of its rules: whatever lands in the default group by mistake gets no traffic
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags=tags("default-sg"),
            opts=child_options(self))

        private_subnets: list[aws.ec2.Subnet] = []
        public_subnets: list[aws.ec2.Subnet] = []
        for index in range(zones):
            zone = zone_ids.apply(lambda ids, i=index: _zone(ids, i, zones))
            private_subnets.append(aws.ec2.Subnet(
                f"{name}-private-{index}", vpc_id=vpc.id, cidr_block=private_cidrs[index],
                availability_zone_id=zone, map_public_ip_on_launch=False,
                tags=tags(f"private-{index}", **{"kubernetes.io/role/internal-elb": "1"},
                          **cluster_tags, **node_tags),
                opts=child_options(self)))
            if args.internet_egress:
                public_subnets.append(aws.ec2.Subnet(
                    f"{name}-public-{index}", vpc_id=vpc.id, cidr_block=public_cidrs[index],
                    availability_zone_id=zone, map_public_ip_on_launch=False,
                    tags=tags(f"public-{index}", **{"kubernetes.io/role/elb": "1"},
                              **cluster_tags),
                    opts=child_options(self)))

        nat_gateways = (self._internet_egress(name, vpc, public_subnets, tags)
                        if args.internet_egress else [])
        private_routes: list[aws.ec2.RouteTable] = []
        for index, subnet in enumerate(private_subnets):
            routes = aws.ec2.RouteTable(
                f"{name}-private-rt-{index}", vpc_id=vpc.id, tags=tags(f"private-rt-{index}"),
                opts=child_options(self))
            if nat_gateways:
                aws.ec2.Route(
                    f"{name}-private-nat-{index}", route_table_id=routes.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat_gateways[index % len(nat_gateways)].id,
                    opts=child_options(self))
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{index}", subnet_id=subnet.id, route_table_id=routes.id,
                opts=child_options(self))
            private_routes.append(routes)

        endpoint_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg", vpc_id=vpc.id,
            description="HTTPS from the VPC to the interface endpoints",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=[config.cidr],
                description="HTTPS from the VPC")],
            tags=tags("endpoints-sg"), opts=child_options(self))
        s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint", vpc_id=vpc.id, service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway", route_table_ids=[rt.id for rt in private_routes],
            tags=tags("s3-endpoint"), opts=child_options(self))
        for service in args.interface_endpoints:
            label = service.replace(".", "-")
            aws.ec2.VpcEndpoint(
                f"{name}-{label}-endpoint", vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface", private_dns_enabled=True,
                subnet_ids=[s.id for s in private_subnets],
                security_group_ids=[endpoint_group.id], tags=tags(f"{label}-endpoint"),
                opts=child_options(self))

        self._flow_logs(name, vpc, args, tags)

        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.endpoint_security_group_id = endpoint_group.id
        self.s3_prefix_list_id = s3_endpoint.prefix_list_id
        self.register_outputs({
            "vpc_id": self.vpc_id,
            "vpc_cidr": self.vpc_cidr,
            "private_subnet_ids": self.private_subnet_ids,
            "public_subnet_ids": self.public_subnet_ids,
            "endpoint_security_group_id": self.endpoint_security_group_id,
            "s3_prefix_list_id": self.s3_prefix_list_id,
        })

    def _internet_egress(self, name: str, vpc: aws.ec2.Vpc,
                         public_subnets: list[aws.ec2.Subnet],
                         tags: Callable[[str], dict[str, str]]) -> list[aws.ec2.NatGateway]:
        """The internet gateway, the public route table and the NAT gateways (one per zone, or
        one for all with ``single_nat_gateway``)."""
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=tags("igw"), opts=child_options(self))
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags=tags("public-rt"),
            opts=child_options(self))
        aws.ec2.Route(
            f"{name}-public-internet", route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0", gateway_id=gateway.id, opts=child_options(self))
        for index, subnet in enumerate(public_subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{index}", subnet_id=subnet.id,
                route_table_id=public_routes.id, opts=child_options(self))
        nat_gateways: list[aws.ec2.NatGateway] = []
        count = 1 if self._config.single_nat_gateway else len(public_subnets)
        for index in range(count):
            address = aws.ec2.Eip(
                f"{name}-nat-eip-{index}", domain="vpc", tags=tags(f"nat-eip-{index}"),
                opts=child_options(self, depends_on=[gateway]))
            nat_gateways.append(aws.ec2.NatGateway(
                f"{name}-nat-{index}", allocation_id=address.id,
                subnet_id=public_subnets[index].id, tags=tags(f"nat-{index}"),
                opts=child_options(self, depends_on=[gateway])))
        return nat_gateways

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, args: NetworkArgs,
                   tags: Callable[[str], dict[str, str]]) -> None:
        """All VPC traffic to a CloudWatch log group, written by a role that can do only that."""
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", name=f"/aws/vpc/{name}/flow-logs",
            retention_in_days=args.log_retention_days, kms_key_id=args.kms_key_arn,
            tags=tags("flow-logs"), opts=child_options(self))
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        # only flow logs of this account may assume the role (confused deputy)
        role = aws.iam.Role(
            f"{name}-flow-logs-role", name=fitted(aws.iam.Role, f"{name}-flow-logs-role"),
            assume_role_policy=policy_document([{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": pulumi.Output.format(
                        "arn:{0}:ec2:{1}:{2}:vpc-flow-log/*", partition, args.region, account)},
                },
            }]),
            description="Writes the VPC flow logs", tags=tags("flow-logs-role"),
            opts=child_options(self))
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs-policy", role=role.id, policy=policy_document([{
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents",
                           "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
                "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")],
            }]),
            opts=child_options(self))
        aws.ec2.FlowLog(
            f"{name}-flow-log", vpc_id=vpc.id, traffic_type="ALL",
            log_destination_type="cloud-watch-logs", log_destination=group.arn,
            iam_role_arn=role.arn, tags=tags("flow-log"),
            opts=child_options(self, depends_on=[policy]))


def _zone(zone_ids: list[str], index: int, wanted: int) -> str:
    if len(zone_ids) < wanted:
        raise ValueError(f"the region has {len(zone_ids)} usable availability zones, fewer than "
                         f"the {wanted} in network.availability_zones; lower that setting")
    return zone_ids[index]
