"""AuditTrail under mocks: the log bucket, access logging of each data bucket, the trail and its
key, checked against the security pack's bucket and audit rules."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from mlscaffold.graph import MOCK_ACCOUNT_ID, ResourceGraph
from mlscaffold.policies.config import pack_config
from mlscaffold.policies.engine import evaluate
from mlscaffold.stacks._storage import secure_bucket
from mlscaffold.stacks.audit import ACCESS_LOG_PREFIX, TRAIL_PREFIX, AuditTrail, AuditTrailArgs

TAGS = {"project": "demo", "env": "dev", "owner": "ml-platform", "cost-center": "ml"}
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{MOCK_ACCOUNT_ID}:trail/demo-dev-data-events"
# every rule about buckets, keys and the audit of data
RULES = ("s3-bucket-kms-encryption", "s3-bucket-public-access-block", "s3-bucket-tls-only",
         "s3-bucket-versioning", "s3-bucket-access-logging", "s3-data-events-audited",
         "s3-cross-account-read-scoped", "kms-key-rotation", "kms-key-service-conditions",
         "required-tags")


@pytest.fixture
def audit_graph(run_mocked) -> ResourceGraph:
    def program() -> None:
        parent = pulumi.ComponentResource("test:index:Data", "data")
        key = aws.kms.Key("data-key", enable_key_rotation=True, tags=TAGS)
        buckets = {label: secure_bucket(f"demo-dev-{label}", parent=parent,
                                        physical_name=f"demo-dev-{label}", kms_key_arn=key.arn,
                                        tags=TAGS, noncurrent_version_days=30).bucket.bucket
                   for label in ("artifacts", "capture")}
        audit = AuditTrail("audit", AuditTrailArgs(
            prefix="demo-dev", tags=TAGS, region="us-east-1", buckets=buckets,
            log_retention_days=90))
        pulumi.export("audit", {"log_bucket_name": audit.log_bucket_name,
                                "trail_arn": audit.trail_arn, "key_arn": audit.key_arn})

    return run_mocked(program)


def test_component_shape_and_outputs(audit_graph):
    (component,) = audit_graph.of_type("mlscaffold:stacks:AuditTrail")
    children = audit_graph.children(component.urn)
    assert children and all(r.name.startswith("audit-") for r in children)
    assert audit_graph.outputs["audit"] == {
        "log_bucket_name": "audit-logs", "trail_arn": TRAIL_ARN,
        "key_arn": f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT_ID}:key/audit-trail-key"}


def test_logs_every_data_bucket_and_records_its_data_events(audit_graph):
    logging = {r.inputs["bucket"]: r for r in
               audit_graph.of_type("aws:s3/bucketLogging:BucketLogging")}
    assert set(logging) == {"demo-dev-artifacts", "demo-dev-capture"}
    assert logging["demo-dev-capture"].inputs["targetPrefix"] == f"{ACCESS_LOG_PREFIX}/capture/"
    policy_urn = audit_graph.named("audit-logs-policy").urn
    assert all(policy_urn in r.dependencies for r in logging.values())

    trail = audit_graph.named("audit-trail").inputs
    assert (trail["name"], trail["s3KeyPrefix"]) == ("demo-dev-data-events", TRAIL_PREFIX)
    arns = trail["advancedEventSelectors"][0]["fieldSelectors"][2]["startsWiths"]
    assert arns == ["arn:aws:s3:::demo-dev-artifacts/", "arn:aws:s3:::demo-dev-capture/"]

    lifecycle = audit_graph.named("audit-logs-lifecycle").inputs["rules"]
    assert {"id": "expire-objects", "status": "Enabled", "filter": {},
            "expiration": {"days": 90}} in lifecycle
    key = json.loads(audit_graph.named("audit-trail-key").inputs["policy"])["Statement"]
    assert [s["Sid"] for s in key] == ["AccountIam", "CloudTrailEncrypt", "CloudTrailDescribe"]
    assert all(s["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL_ARN for s in key[1:])


def test_passes_the_bucket_and_audit_rules(audit_graph):
    configs = {pack: {name: settings for name, settings in pack_config(
        pack, environment="dev", profile="dev", region="us-east-1").items() if name in RULES}
        for pack in ("security", "cost")}
    result = evaluate(audit_graph, configs)
    assert result.rules == len(RULES)
    assert [(f.rule, f.resource, f.message) for f in result.findings] == []
    # the log bucket is a log store: SSE-S3, no access logs of its own
    assert audit_graph.named("audit-logs-encryption").inputs["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    assert "audit-logs" not in {r.inputs["bucket"] for r in
                                audit_graph.of_type("aws:s3/bucketLogging:BucketLogging")}


def test_needs_a_bucket(run_mocked):
    with pytest.raises(ValueError, match="AuditTrail needs at least one bucket"):
        run_mocked(lambda: AuditTrail("audit", AuditTrailArgs(
            prefix="demo-dev", tags=TAGS, region="us-east-1", buckets={},
            log_retention_days=30)))
