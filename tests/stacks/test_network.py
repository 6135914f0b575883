"""Network under mocks: subnets, NAT, endpoints, security groups, flow logs, tags."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from mlscaffold.graph import ResourceGraph
from mlscaffold.stacks.network import (
    INTERFACE_ENDPOINT_SERVICES,
    Network,
    NetworkArgs,
    subnet_cidrs,
)

PLATFORM_TAGS = {"project", "env", "owner", "cost-center", "managed-by"}
UNTAGGABLE = {"aws:ec2/route:Route", "aws:ec2/routeTableAssociation:RouteTableAssociation",
              "aws:iam/rolePolicy:RolePolicy"}
SUBNET = "aws:ec2/subnet:Subnet"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/platform"


@pytest.fixture(scope="module")
def graphs() -> dict[str, ResourceGraph]:
    """Graphs already built in this module, by their arguments (the runs are deterministic)."""
    return {}


@pytest.fixture
def build(config_for: Callable[..., Any], run_mocked: Callable[..., ResourceGraph],
          graphs: dict[str, ResourceGraph]) -> Callable[..., ResourceGraph]:
    """Declare a Network for an environment and export its outputs; return the graph."""

    def run(environment: str = "dev", overrides: dict[str, Any] | None = None,
            preview: bool = False, **extra: Any) -> ResourceGraph:
        key = json.dumps([environment, overrides, preview, extra], sort_keys=True)
        if key in graphs:
            return graphs[key]
        config = config_for(environment, overrides)

        def program() -> None:
            network = Network("demo", NetworkArgs(
                config=config.network, tags=config.tags, region=config.region,
                cluster_name="demo-eks", **extra))
            for output in ("vpc_id", "vpc_cidr", "private_subnet_ids", "public_subnet_ids",
                           "endpoint_security_group_id"):
                pulumi.export(output, getattr(network, output))

        graphs[key] = run_mocked(program, stack=environment, preview=preview)
        return graphs[key]

    return run


def subnets(graph: ResourceGraph, kind: str) -> list:
    return [r for r in graph.of_type(SUBNET) if r.name.startswith(f"demo-{kind}-")]


def test_component_token_and_every_child_parented(build) -> None:
    graph = build()
    (component,) = graph.of_type("mlscaffold:stacks:Network")
    assert component.name == "demo"
    children = [r for r in graph.resources if r is not component]
    assert children and all(r.parent == component.urn for r in children)
    assert all(r.name.startswith("demo-") for r in children)


@pytest.mark.parametrize(("environment", "zones"), [("dev", 2), ("prod", 3)])
def test_two_subnets_per_zone_without_public_ips(build, environment: str, zones: int) -> None:
    graph = build(environment)
    assert len(graph.of_type(SUBNET)) == 2 * zones
    for kind, role in (("private", "internal-elb"), ("public", "elb")):
        group = subnets(graph, kind)
        assert len(group) == zones
        # placed by zone ID: the same physical zone in every account
        assert {s.inputs["availabilityZoneId"] for s in group} == {
            f"use1-az{index}" for index in range(1, zones + 1)}
        assert all("availabilityZone" not in s.inputs for s in group)
        for subnet in group:
            assert subnet.inputs["mapPublicIpOnLaunch"] is False
            assert subnet.inputs["tags"][f"kubernetes.io/role/{role}"] == "1"
            assert subnet.inputs["tags"]["kubernetes.io/cluster/demo-eks"] == "shared"
            # Karpenter launches nodes where it finds its discovery tag: private subnets only
            assert subnet.inputs["tags"].get("karpenter.sh/discovery") == (
                "demo-eks" if kind == "private" else None)


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.16.0.0/18", "10.20.0.0/20"])
def test_subnet_cidrs_are_disjoint_and_inside_the_vpc(cidr: str) -> None:
    private, public = subnet_cidrs(cidr, 6)
    vpc = ipaddress.ip_network(cidr)
    blocks = [ipaddress.ip_network(b) for b in private + public]
    assert len(private) == len(public) == 6
    assert all(b.subnet_of(vpc) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    assert all(b.prefixlen <= 28 for b in blocks)  # AWS's smallest subnet


def test_subnet_cidrs_of_a_slash_16() -> None:
    assert subnet_cidrs("10.0.0.0/16", 2) == (["10.0.0.0/20", "10.0.16.0/20"],
                                              ["10.0.240.0/24", "10.0.241.0/24"])


@pytest.mark.parametrize(("environment", "nats"), [("dev", 1), ("prod", 3)])
def test_nat_gateways_single_or_one_per_zone(build, environment: str, nats: int) -> None:
    graph = build(environment)
    gateways = graph.of_type("aws:ec2/natGateway:NatGateway")
    addresses = graph.of_type("aws:ec2/eip:Eip")
    assert len(gateways) == len(addresses) == nats
    assert all(a.inputs["domain"] == "vpc" for a in addresses)
    public_ids = {f"{s.name}-id" for s in subnets(graph, "public")}
    assert all(g.inputs["subnetId"] in public_ids for g in gateways)
    # every private route table sends internet traffic to a NAT gateway, spread over all NATs
    nat_routes = [r for r in graph.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert len(nat_routes) == len(subnets(graph, "private"))
    assert {r.inputs["natGatewayId"] for r in nat_routes} == {f"{g.name}-id" for g in gateways}
    assert all(r.inputs["destinationCidrBlock"] == "0.0.0.0/0" for r in nat_routes)


def test_only_public_subnets_route_to_the_internet_gateway(build) -> None:
    graph = build()
    (igw_route,) = [r for r in graph.of_type("aws:ec2/route:Route") if "gatewayId" in r.inputs]
    assert igw_route.inputs["routeTableId"] == "demo-public-rt-id"
    associations = graph.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    public = {a.inputs["subnetId"] for a in associations
              if a.inputs["routeTableId"] == "demo-public-rt-id"}
    assert public == {f"{s.name}-id" for s in subnets(graph, "public")}


def test_zones_that_must_be_avoided_are_skipped(build) -> None:
    graph = build(exclude_zone_ids=["use1-az1"])
    assert {s.inputs["availabilityZoneId"] for s in subnets(graph, "private")} == {
        "use1-az2", "use1-az3"}


def test_too_few_zones_left_is_an_error_naming_the_setting(build) -> None:
    with pytest.raises(ValueError, match=r"2 usable availability zones, fewer than the 3 in "
                                         r"network\.availability_zones"):
        build("prod", exclude_zone_ids=[f"use1-az{index}" for index in range(1, 5)])


def test_without_internet_egress_only_private_subnets_and_the_s3_gateway(build) -> None:
    graph = build(internet_egress=False, interface_endpoints=[])
    assert len(subnets(graph, "private")) == 2 and not subnets(graph, "public")
    assert not graph.of_type("aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip",
                             "aws:ec2/internetGateway:InternetGateway", "aws:ec2/route:Route")
    (endpoint,) = graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert graph.outputs["public_subnet_ids"] == []


def test_vpc_endpoints_with_private_dns(build) -> None:
    graph = build()
    endpoints = {r.inputs["serviceName"]: r.inputs
                 for r in graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    s3 = endpoints.pop("com.amazonaws.us-east-1.s3")
    assert s3["vpcEndpointType"] == "Gateway"
    assert sorted(s3["routeTableIds"]) == ["demo-private-rt-0-id", "demo-private-rt-1-id"]
    assert set(endpoints) == {f"com.amazonaws.us-east-1.{s}" for s in INTERFACE_ENDPOINT_SERVICES}
    assert len(endpoints) == 4
    private_ids = sorted(f"{s.name}-id" for s in subnets(graph, "private"))
    for endpoint in endpoints.values():
        assert endpoint["vpcEndpointType"] == "Interface"
        assert endpoint["privateDnsEnabled"] is True
        assert sorted(endpoint["subnetIds"]) == private_ids
        assert endpoint["securityGroupIds"] == ["demo-endpoints-sg-id"]


def test_endpoint_security_group_allows_https_from_the_vpc_only(build) -> None:
    group = build().named("demo-endpoints-sg")
    assert group.inputs["ingress"] == [{"protocol": "tcp", "fromPort": 443, "toPort": 443,
                                        "cidrBlocks": ["10.0.0.0/16"],
                                        "description": "HTTPS from the VPC"}]
    assert not group.inputs.get("egress")


def test_default_security_group_is_emptied(build) -> None:
    group = build().named("demo-default-sg")
    assert group.inputs["vpcId"] == "demo-vpc-id"
    assert not group.inputs.get("ingress") and not group.inputs.get("egress")


def test_vpc_has_dns_for_private_endpoints(build) -> None:
    vpc = build().named("demo-vpc")
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True


@pytest.mark.parametrize(("extra", "key"), [({}, None), ({"kms_key_arn": KEY_ARN}, KEY_ARN)])
def test_flow_logs_to_a_bounded_log_group(build, extra: dict, key: str | None) -> None:
    graph = build(log_retention_days=90, **extra)
    group = graph.named("demo-flow-logs")
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs.get("kmsKeyId") == key
    flow_log = graph.named("demo-flow-log")
    assert flow_log.inputs["vpcId"] == "demo-vpc-id"
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"] == group.outputs["arn"]
    assert flow_log.inputs["iamRoleArn"] == graph.named("demo-flow-logs-role").outputs["arn"]
    (trust,) = json.loads(graph.named("demo-flow-logs-role").inputs["assumeRolePolicy"])[
        "Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/*"}}
    (statement,) = json.loads(graph.named("demo-flow-logs-policy").inputs["policy"])["Statement"]
    assert statement["Resource"] == [group.outputs["arn"], group.outputs["arn"] + ":*"]
    assert all(a.startswith("logs:") and "*" not in a for a in statement["Action"])


def test_every_taggable_resource_carries_the_platform_tags(build) -> None:
    graph = build("prod")
    for resource in graph.resources:
        if resource.custom and resource.type not in UNTAGGABLE:
            tags = resource.inputs.get("tags") or {}
            assert set(tags) >= PLATFORM_TAGS, resource.name
            assert tags["Name"] == resource.name, resource.name


def test_outputs(build) -> None:
    outputs = build().outputs
    assert outputs["vpc_id"] == "demo-vpc-id"
    assert outputs["vpc_cidr"] == "10.0.0.0/16"
    assert outputs["private_subnet_ids"] == ["demo-private-0-id", "demo-private-1-id"]
    assert outputs["public_subnet_ids"] == ["demo-public-0-id", "demo-public-1-id"]
    assert outputs["endpoint_security_group_id"] == "demo-endpoints-sg-id"


def test_preview_with_unknown_outputs(build) -> None:
    assert len(build("prod", preview=True).of_type(SUBNET)) == 6


def test_custom_cidr_and_zone_count(build) -> None:
    graph = build(overrides={"network": {"cidr": "10.8.0.0/20", "availability_zones": 4}})
    private = sorted(s.inputs["cidrBlock"] for s in subnets(graph, "private"))
    public = sorted(s.inputs["cidrBlock"] for s in subnets(graph, "public"))
    assert private == ["10.8.0.0/24", "10.8.1.0/24", "10.8.2.0/24", "10.8.3.0/24"]
    assert public == ["10.8.15.0/28", "10.8.15.16/28", "10.8.15.32/28", "10.8.15.48/28"]
