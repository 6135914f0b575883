"""Fixtures for component tests: platform configs per environment, and the mocked runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mlscaffold.graph import MOCK_ACCOUNT_ID, ResourceGraph, run_under_mocks
from mlscaffold.spec import validate_spec
from mlscaffold.stacks.config import PlatformConfig, platform_config


def make_config(environment: str = "dev", overrides: dict[str, Any] | None = None,
                **spec_values: Any) -> PlatformConfig:
    """A platform config for `environment` of a spec (serving, feature_store... as keywords)."""
    spec = validate_spec({"name": "demo", **spec_values})
    return platform_config(spec, environment, overrides)


@pytest.fixture
def config_for() -> Callable[..., PlatformConfig]:
    return make_config


@pytest.fixture
def run_mocked() -> Callable[..., ResourceGraph]:
    """Run a function declaring resources under mocks (project 'demo', stack 'dev')."""

    def run(program: Callable[[], Any], stack: str = "dev", **kwargs: Any) -> ResourceGraph:
        return run_under_mocks(program, project="demo", stack=stack, **kwargs)

    return run


# what every role SageMaker assumes must show (stacks/_iam.py)
SAGEMAKER_TRUST = {"Effect": "Allow", "Action": "sts:AssumeRole",
                   "Principal": {"Service": "sagemaker.amazonaws.com"},
                   "Condition": {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}}}


def assert_network_interfaces_in_vpc(policy: str, vpc_id: str) -> None:
    """A role policy manages network interfaces only in `vpc_id`: every ENI create or delete
    action is on ARNs of this account and region, and all but CreateNetworkInterface on the
    new interface carry an ec2:Vpc condition; only Describe actions are on "*"."""
    vpc = f"arn:aws:ec2:us-east-1:{MOCK_ACCOUNT_ID}:vpc/{vpc_id}"
    granted: dict[str, list[tuple[str, dict]]] = {}
    for statement in json.loads(policy)["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else \
            statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else \
            statement["Resource"]
        for action in (a for a in actions if a.startswith("ec2:")):
            if resources == ["*"]:
                assert action.startswith("ec2:Describe"), action
                continue
            for resource in resources:
                granted.setdefault(action, []).append((resource, statement.get("Condition", {})))
    prefix = f"arn:aws:ec2:us-east-1:{MOCK_ACCOUNT_ID}:"
    in_vpc = {"ArnEquals": {"ec2:Vpc": vpc}}
    assert granted == {
        "ec2:CreateNetworkInterface": [(f"{prefix}network-interface/*", {}),
                                       (f"{prefix}subnet/*", in_vpc),
                                       (f"{prefix}security-group/*", in_vpc)],
        **{action: [(f"{prefix}network-interface/*", in_vpc)] for action in (
            "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
            "ec2:DeleteNetworkInterfacePermission")},
    }
