"""The offline engine: levels, disabled rules, and values unknown before deployment."""

from __future__ import annotations

from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from mlscaffold.graph import GraphResource, ResourceGraph
from mlscaffold.policies.config import pack_config
from mlscaffold.policies.engine import evaluate

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def _graph(http_tokens: str) -> ResourceGraph:
    inputs = {"metadataOptions": {"httpTokens": http_tokens, "httpPutResponseHopLimit": 1},
              "blockDeviceMappings": [{"ebs": {"encrypted": True}}],
              "tags": {"project": "p", "env": "dev", "owner": "o", "cost-center": "c"}}
    return ResourceGraph("p", "dev", [GraphResource(
        f"urn:pulumi:dev::p::{TEMPLATE}::lt", TEMPLATE, "lt", True, None, (), inputs)])


def _security(**levels: str) -> dict:
    config = pack_config("security", environment="dev", profile="dev", region="us-east-1")
    for rule, level in levels.items():
        config[rule]["enforcementLevel"] = level
    return {"security": config}


def _imds(result) -> list:
    return [f for f in result.findings if f.rule == "launch-template-imdsv2"]


def test_violation_is_mandatory_and_fails():
    result = evaluate(_graph("optional"), _security())
    (finding,) = _imds(result)
    assert finding.level == "mandatory" and finding.resource == "lt"
    assert not result.passed


def test_advisory_and_disabled_levels():
    advisory = evaluate(_graph("optional"), _security(**{"launch-template-imdsv2": "advisory"}))
    assert [f.level for f in _imds(advisory)] == ["advisory"] and advisory.passed
    disabled = evaluate(_graph("optional"), _security(**{"launch-template-imdsv2": "disabled"}))
    assert _imds(disabled) == [] and disabled.rules == advisory.rules - 1


def test_unknown_value_is_reported_as_the_engine_does():
    result = evaluate(_graph(UNKNOWN_STRING_VALUE), _security())
    (finding,) = _imds(result)
    assert finding.level == "unknown" and result.passed
    assert "can't be known during preview" in finding.message
    assert "metadataOptions.httpTokens" in finding.message
