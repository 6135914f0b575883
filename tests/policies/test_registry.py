"""The rule table: listed explicitly by domain, complete after a plain import, duplicates refused;
the policies import neither the CLI nor its error types."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from mlscaffold.policies.registry import DOMAINS, RULES, rule_table
from mlscaffold.policies.rule import Rule, rule

# the 61 rules of issue 12's day, by name (the registry change moved none in or out), and the
# MLflow tracking server's three of issue 14
RULE_NAMES = frozenset({
    "cloudwatch-log-group-kms", "cloudwatch-log-retention", "ec2-instance-encrypted-volumes",
    "ec2-instance-imdsv2", "ecr-immutable-tags", "ecr-kms-encryption", "ecr-scan-on-push",
    "eks-control-plane-logging", "eks-node-group-launch-template", "eks-node-group-no-ssh",
    "eks-private-endpoint", "eks-public-endpoint-restricted", "eks-secrets-encryption",
    "eks-standard-support", "eks-supported-version", "gpu-workload-schedulable",
    "iam-network-interface-scoped",
    "iam-no-admin-managed-policy", "iam-no-service-wildcard", "iam-no-wildcard-admin",
    "iam-service-trust-conditions", "k8s-image-pinned", "k8s-network-policy",
    "k8s-no-default-namespace", "k8s-no-privilege-escalation", "k8s-read-only-root-filesystem",
    "k8s-resource-limits", "k8s-run-as-non-root", "kms-key-rotation",
    "kms-key-service-conditions", "launch-template-encrypted-volumes",
    "launch-template-imds-hop-limit", "launch-template-imdsv2", "launch-template-no-ssh-key",
    "s3-bucket-access-logging", "s3-bucket-kms-encryption", "s3-bucket-public-access-block",
    "s3-bucket-tls-only", "s3-bucket-versioning", "s3-cross-account-read-scoped",
    "s3-data-events-audited", "sagemaker-data-capture", "sagemaker-data-capture-kms",
    "sagemaker-endpoint-auto-rollback", "sagemaker-endpoint-kms",
    "sagemaker-endpoint-rollback-window", "sagemaker-feature-group-kms",
    "sagemaker-model-network-isolation",
    "sagemaker-model-vpc", "sagemaker-monitoring-job-kms", "sagemaker-monitoring-job-network",
    "sg-no-public-ingress", "sns-topic-kms", "cpu-instance-types", "endpoint-instance-count",
    "gpu-instance-types", "gpu-scale-to-zero-outside-prod", "gpu-spot-outside-prod",
    "log-retention-bounded", "max-gpus", "max-nodes", "monthly-budget", "required-tags",
    "sagemaker-instance-types",
    # issue 14: training runs (launcher policy, Pod Identity role, training namespace)
    "iam-pass-role-scoped", "iam-pod-identity-trust-scoped", "k8s-namespace-pod-security",
    "sagemaker-mlflow-artifacts-in-stack-bucket", "sagemaker-mlflow-no-automatic-registration",
    "mlflow-server-size",
    # issue 10: extended support is not billed silently
    "eks-upgrade-policy",
    # issue 14: training data from the feature store (the Athena workgroup's results)
    "athena-workgroup-encrypted-results",
    # issue 14: KServe's Serverless mode keeps Kourier's gateway inside the cluster
    "knative-kourier-cluster-ip",
    # feature-store training queries scan at most a cutoff
    "athena-scan-cutoff",
    # names AWS accepts: Pulumi's auto-names included
    "aws-name-limits",
})


def _python(code: str) -> str:
    """Run `code` in a fresh interpreter; its stdout."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout


def test_a_plain_import_holds_every_rule():
    names = json.loads(_python(
        "import json\n"
        "from mlscaffold.policies.registry import RULES\n"
        "print(json.dumps(sorted(RULES)))\n"))
    assert len(names) == len(RULE_NAMES)
    assert set(names) == RULE_NAMES


def _dummy(name: str) -> Rule:
    return rule(name, pack="security", description="d", severity="low",
                resource_types=["aws:s3/bucket:Bucket"])(lambda subject, config: iter(()))


def test_a_name_listed_twice_is_refused():
    with pytest.raises(ValueError, match=r"rule 'twice' is listed twice \(domains 'storage' "
                                         r"and 'iam'\); rule names are unique"):
        rule_table({"storage": (_dummy("twice"),), "iam": (_dummy("other"), _dummy("twice"))})
    with pytest.raises(ValueError, match="listed twice"):
        rule_table({"storage": (RULES["s3-bucket-versioning"],) * 2})


def test_only_rules_can_be_listed():
    def not_decorated(subject, config):  # a check someone forgot to decorate
        yield from ()

    with pytest.raises(TypeError, match="not a Rule"):
        rule_table({"storage": (not_decorated,)})  # type: ignore[dict-item]


def test_every_rule_a_domain_module_defines_is_listed_once():
    listed = [r for rules in DOMAINS.values() for r in rules]
    assert len(listed) == len(RULES) == len({r.name for r in listed})
    for domain, rules in DOMAINS.items():
        module = importlib.import_module(
            "mlscaffold.policies.cost.rules" if domain == "cost"
            else f"mlscaffold.policies.security.{domain}")
        defined = {v.name for v in vars(module).values() if isinstance(v, Rule)}
        assert defined == {r.name for r in rules}, domain
        assert all(r.check.__module__ == module.__name__ for r in rules), domain
        assert all(r.pack == ("cost" if domain == "cost" else "security") for r in rules)


def test_a_rule_is_checked_when_it_is_defined():
    with pytest.raises(ValueError, match="rule name 'Not_Kebab' is not kebab-case"):
        _dummy("Not_Kebab")
    with pytest.raises(ValueError, match="setting 'x' needs a default"):
        rule("ok-name", pack="cost", description="d", severity="low", resource_types=[],
             config={"x": {"type": "integer"}})(lambda subject, config: iter(()))


def test_the_policies_import_neither_the_cli_nor_its_errors(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules: [unclosed\n")
    output = _python(
        "import json, sys\n"
        "from pathlib import Path\n"
        "import mlscaffold.policies\n"
        "from mlscaffold.policies import config, crossguard, engine, registry\n"
        "from mlscaffold.policies.cost import estimate\n"
        "crossguard.pack_policies('security'), crossguard.pack_policies('cost')\n"
        "try:\n"
        f"    config.load_policy_file(Path({str(bad)!r}))\n"
        "except config.PolicyConfigError as error:\n"
        "    print(error)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mlscaffold'))))\n")
    message, modules = output.splitlines()
    assert message.startswith(f"policy config {bad} is not valid YAML: ")
    assert "at line 2, column 1" in message
    loaded = json.loads(modules)
    assert "mlscaffold.policies.registry" in loaded
    assert not {"mlscaffold.errors", "mlscaffold.cli", "mlscaffold.cli_lifecycle"} & set(loaded)
    # beside the policies, only the names they share with the stacks (and the stacks' name
    # limits), the YAML error text and the nearest-name suggestion of error messages
    assert {m for m in loaded if not m.startswith("mlscaffold.policies")} <= {
        "mlscaffold", "mlscaffold.yamlfiles", "mlscaffold.suggest", "mlscaffold.stacks",
        "mlscaffold.stacks.config",
        "mlscaffold.stacks.constants", "mlscaffold.stacks.feature_schema",
        "mlscaffold.stacks.instances", "mlscaffold.stacks.model_keys", "mlscaffold.stacks.program",
        "mlscaffold.stacks.regions", "mlscaffold.stacks.schedules", "mlscaffold.stacks.columns",
        "mlscaffold.stacks.names", "mlscaffold.stacks.sagemaker_types"}
