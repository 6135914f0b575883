"""`check`, `cost` and `policy`: generated stacks pass, violations fail, bad settings refused."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlscaffold.checks import check_project, policy_configs
from mlscaffold.infra import open_infra_project
from mlscaffold.policies import PACKS, pack_directory
from mlscaffold.policies.registry import RULES, rules_of
from mlscaffold.project import create_project
from mlscaffold.spec import load_spec, validate_spec

from .conftest import REPO

EXAMPLE = REPO / "examples" / "churn-model"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "checked", "serving": "sagemaker", "feature_store": "sagemaker"})
    return create_project(tmp_path_factory.mktemp("p") / "checked", spec, git=False).path


SERVINGS = ("sagemaker", "kserve", "none")
FEATURE_STORES = ("sagemaker", "none")
REGIONS = ("us-east-1", "eu-west-1")
# every serving x feature store, the regions taking turns so that each meets every serving and
# every feature store (each stack of every environment, both packs: 6 s a case)
GENERATED = [(serving, store, REGIONS[(i + j) % len(REGIONS)])
             for i, serving in enumerate(SERVINGS) for j, store in enumerate(FEATURE_STORES)]


def test_the_generated_cases_cover_every_pair_of_choices():
    for first, second in ((0, 1), (0, 2), (1, 2)):
        options = (SERVINGS, FEATURE_STORES, REGIONS)
        assert {(case[first], case[second]) for case in GENERATED} == set(
            itertools.product(options[first], options[second]))


@pytest.mark.slow
@pytest.mark.parametrize(("serving", "feature_store", "region"), GENERATED)
def test_every_generated_stack_passes_both_packs(tmp_path, serving, feature_store, region):
    spec = validate_spec({"name": "gen", "serving": serving, "feature_store": feature_store,
                          "region": region})
    root = create_project(tmp_path / "gen", spec, git=False).path
    for check in check_project(root):
        assert check.result.mandatory == [], [f.message for f in check.result.mandatory]
        assert check.result.rules == len(RULES)


def _cluster(graph) -> dict:
    [cluster] = [r for r in graph.resources if r.type == "aws:eks/cluster:Cluster"]
    return cluster.inputs


# stack options the spec's choices above do not reach, set in every stack's Pulumi.<env>.yaml:
# (serving, settings merged into <project>:platform, what the built graph must show)
STACK_OPTIONS = {
    "sagemaker-serving-with-a-cluster": (
        "sagemaker", {"cluster": {"enabled": True}},
        lambda graph: _cluster(graph) and any(
            r.type == "aws:sagemaker/endpoint:Endpoint" for r in graph.resources)),
    "mlflow-tracking-server": (
        "sagemaker", {"tracking": {"mlflow_server": True}},
        lambda graph: any(r.type == "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
                          for r in graph.resources)),
    "public-api-cidrs": (
        "kserve", {"cluster": {"public_access_cidrs": ["203.0.113.0/24"]}},
        lambda graph: _cluster(graph)["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]),
    "kserve-serverless-canary": (
        "kserve", {"serving": {"kserve_mode": "serverless", "rollout": {"strategy": "canary"}}},
        lambda graph: any(r.type == "kubernetes:operator.knative.dev/v1beta1:KnativeServing"
                          for r in graph.resources)),
}


@pytest.mark.slow
@pytest.mark.parametrize("option", STACK_OPTIONS)
def test_stack_options_beyond_the_matrix_pass_both_packs(tmp_path, option):
    """Options set in the stacks' config, not by `new`: every environment builds with them
    under mocks and passes both packs with no mandatory finding."""
    from mlscaffold.infra import preview_stack
    from mlscaffold.policies.engine import evaluate

    serving, settings, built = STACK_OPTIONS[option]
    spec = validate_spec({"name": "opt", "serving": serving, "feature_store": "none",
                          "ci": "none"})
    root = create_project(tmp_path / "opt", spec, git=False).path

    def apply(platform):
        for section, values in settings.items():
            platform.setdefault(section, {}).update(values)

    for environment in spec.environments:
        _set_stack(root, environment, apply)
    opened = open_infra_project(root)
    for environment in spec.environments:
        graph = preview_stack(opened, environment)  # what check_stack evaluates
        assert built(graph), environment
        result = evaluate(graph, policy_configs(opened, environment))
        assert result.mandatory == [], [f.message for f in result.mandatory]
        assert result.rules == len(RULES)


def test_examples_pass_with_every_rule_run(run_cli):
    result = run_cli(["check", str(EXAMPLE), "--format", "json"])
    assert result.exit_code == 0, result.stdout
    stacks = json.loads(result.stdout)
    assert [s["stack"] for s in stacks] == ["dev", "staging", "prod"]
    assert all(s["passed"] and s["rules"] == len(RULES) for s in stacks)


def _set_stack(project: Path, stack: str, change) -> None:
    path = project / "infra" / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"][f"{project.name}:platform"])
    path.write_text(yaml.safe_dump(document))


def test_a_mandatory_violation_fails_check_with_exit_1(run_cli, tmp_path, project):
    copy = tmp_path / "checked"
    subprocess.run(["cp", "-r", str(project), str(copy)], check=True)

    def on_demand_gpus(platform):
        platform["cluster"]["enabled"] = True  # a cluster to train on
        platform["cluster"]["gpu_pools"][0]["capacity_types"] = ["spot", "on-demand"]

    _set_stack(copy, "dev", on_demand_gpus)
    result = run_cli(["check", str(copy), "--stack", "dev"])
    assert result.exit_code == 1
    assert "dev: FAILED: 1 mandatory" in result.stdout
    assert ("[mandatory/medium] gpu-spot-outside-prod: NodePool 'checked-dev-gpu-node-pool': "
            "spec.template.spec.requirements[2] allows on-demand capacity") in result.stdout
    # the other stacks are untouched and pass
    assert run_cli(["check", str(copy), "--stack", "prod"]).exit_code == 0


def test_progressive_delivery_passes_both_packs_and_a_short_bake_fails(run_cli, tmp_path,
                                                                       project):
    """A prod stack with a linear rollout and an A/B test passes both packs; a baking time
    the rollback alarms cannot fire in fails sagemaker-endpoint-rollback-window."""
    copy = tmp_path / "checked"
    subprocess.run(["cp", "-r", str(project), str(copy)], check=True)
    challenger = f"models/{'cd' * 32}/model.tar.gz"

    def delivery(wait: int):
        def change(platform):
            platform["serving"]["rollout"] = {"strategy": "linear", "linear_step_percent": 50,
                                              "wait_seconds": wait, "max_seconds": 3600}
            platform["serving"]["ab_test"] = {"challenger_model_key": challenger,
                                              "challenger_weight": 20,
                                              "challenger_instance_count": 2}
        return change

    _set_stack(copy, "prod", delivery(600))
    passed = run_cli(["check", str(copy), "--stack", "prod"])
    assert passed.exit_code == 0, passed.stdout
    _set_stack(copy, "prod", delivery(60))
    failed = run_cli(["check", str(copy), "--stack", "prod"])
    assert failed.exit_code == 1
    assert "prod: FAILED: 1 mandatory" in failed.stdout
    assert ("[mandatory/medium] sagemaker-endpoint-rollback-window: Endpoint "
            "'checked-prod-serving-endpoint': deploymentConfig.blueGreenUpdatePolicy."
            "trafficRoutingConfiguration.waitIntervalInSeconds is 60, shorter than the 120 "
            "seconds the rollback alarms need to fire") in failed.stdout


def test_extended_support_fails_unless_the_policy_file_allows_it(run_cli, tmp_path, project):
    """cluster.support_type EXTENDED is reported by the cost pack's eks-upgrade-policy; the
    policy file of docs/policies.md lets a prod stack pay for it deliberately."""
    copy = tmp_path / "checked"
    subprocess.run(["cp", "-r", str(project), str(copy)], check=True)
    _set_stack(copy, "prod",
               lambda p: p["cluster"].update(enabled=True, support_type="EXTENDED"))
    failed = run_cli(["check", str(copy), "--stack", "prod"])
    assert failed.exit_code == 1
    assert "prod: FAILED: 1 mandatory" in failed.stdout
    assert ("[mandatory/medium] eks-upgrade-policy: Cluster 'checked-prod-cluster-eks': "
            "upgradePolicy.supportType is EXTENDED: from ") in failed.stdout
    policy = tmp_path / "org.yaml"
    policy.write_text("version: 1\nenvironments:\n  prod:\n    eks-upgrade-policy: "
                      "{allow_extended: true}\n")
    allowed = run_cli(["check", str(copy), "--stack", "prod", "--policy-config", str(policy)])
    assert allowed.exit_code == 0, allowed.stdout


def test_advisory_level_from_the_policy_file_does_not_fail(run_cli, tmp_path, project):
    copy = tmp_path / "checked"
    subprocess.run(["cp", "-r", str(project), str(copy)], check=True)
    _set_stack(copy, "dev", lambda p: p["cluster"].update(enabled=True) or p["cluster"][
        "gpu_pools"][0].update(capacity_types=["on-demand"]))
    policy = tmp_path / "org.yaml"
    policy.write_text("version: 1\nrules:\n  gpu-spot-outside-prod: {enforcementLevel: advisory}\n")
    result = run_cli(["check", str(copy), "--stack", "dev", "--policy-config", str(policy)])
    assert result.exit_code == 0, result.stdout
    assert "1 advisory" in result.stdout and "[advisory/medium] gpu-spot-outside-prod" in \
        result.stdout


@pytest.mark.parametrize(("content", "message"), [
    ("version: 1\nrules:\n  no-such-rule: {}\n", "rules: unknown rule 'no-such-rule'"),
    ("version: 1\nrules:\n  max-gpus: {max_gpus: many}\n",
     "rules.max-gpus.max_gpus: 'many' is not of type 'integer'"),
    ("version: 1\nenvironments:\n  prod:\n    monthly-budget: {budget_usd: -5}\n",
     "environments.prod.monthly-budget.budget_usd: -5 is less than or equal to the minimum of 0"),
    ("version: 1\nrules:\n  max-gpus: {enforcementLevel: sometimes}\n",
     "rules.max-gpus.enforcementLevel: 'sometimes' is not one of"),
    ("versoin: 1\n", "unknown key 'versoin'"),
    ("version: 2\n", "version: 2 is not supported; this mlscaffold reads version 1"),
    ("- rules\n", "must hold a mapping of version, rules and environments"),
    ("rules: [a]\n", "rules: ['a'] is not a mapping"),
    ("version: 1\nenvironments:\n  prd:\n    monthly-budget: {budget_usd: 1}\n",
     "environments.prd is not an environment of this project (did you mean 'prod'?), so its "
     "settings would apply to no stack; rename it to one of: dev, staging, prod"),
    ("rules: [\n", "is not valid YAML"),
])
def test_bad_policy_config_is_refused_before_evaluation(run_cli, tmp_path, content, message):
    policy = tmp_path / "org.yaml"
    policy.write_text(content)
    result = run_cli(["check", str(EXAMPLE), "--policy-config", str(policy)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_policy_sections_of_other_projects_environments_are_left_alone(run_cli, tmp_path):
    """An organisation's file serves projects with other environments: a section close to none
    of this project's, or next to its own near name, is not a typo."""
    policy = tmp_path / "org.yaml"
    policy.write_text("version: 1\nenvironments:\n  sandbox:\n    monthly-budget: {budget_usd: 1}"
                      "\n  stage:\n    monthly-budget: {budget_usd: 2}\n  staging:\n"
                      "    monthly-budget: {budget_usd: 3}\n")
    result = run_cli(["policy", "config", str(EXAMPLE), "--stack", "staging", "--pack", "cost",
                      "--policy-config", str(policy)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["monthly-budget"]["budget_usd"] == 3


def test_sarif_report(run_cli, tmp_path, project):
    copy = tmp_path / "checked"
    subprocess.run(["cp", "-r", str(project), str(copy)], check=True)
    _set_stack(copy, "dev", lambda p: p["cluster"].update(enabled=True) or p["cluster"][
        "gpu_pools"][0].update(consolidate_after="Never"))
    output = tmp_path / "report.sarif"
    result = run_cli(["check", str(copy), "--format", "sarif", "--output", str(output)])
    assert result.exit_code == 1
    sarif = json.loads(output.read_text())
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == ["gpu-scale-to-zero-outside-prod"]
    (finding,) = run["results"]
    assert finding["ruleId"] == rules[finding["ruleIndex"]]
    assert finding["level"] == "error"
    location = finding["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "infra/Pulumi.dev.yaml"
    assert location["logicalLocations"][0]["name"] == "checked-dev-gpu-node-pool"
    assert finding["partialFingerprints"]["mlscaffoldFinding/v1"]
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"]


def test_cost_prints_totals_and_assumptions(run_cli):
    result = run_cli(["cost", str(EXAMPLE), "--stack", "prod"])
    assert result.exit_code == 0
    assert "prod (us-east-1, prices as of" in result.stdout
    assert "TOTAL" in result.stdout and "Assumptions:" in result.stdout
    data = json.loads(run_cli(["cost", str(EXAMPLE), "--format", "json"]).stdout)
    assert set(data) == {"dev", "staging", "prod"}
    assert data["prod"]["total_monthly_usd"] > data["dev"]["total_monthly_usd"] > 0


def test_policy_list_shows_every_rule(run_cli):
    result = run_cli(["policy", "list"])
    assert result.exit_code == 0
    for name in RULES:
        assert name in result.stdout
    assert f"{len(RULES)} rules" in result.stdout
    assert len(rules_of("security")) >= 40 and len(rules_of("cost")) >= 10


@pytest.mark.parametrize("pack", PACKS)
def test_packs_are_real_crossguard_packs(pack):
    directory = pack_directory(pack)
    manifest = yaml.safe_load((directory / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    assert "mlscaffold-kit==" in (directory / "requirements.txt").read_text()
    # constructing the pack starts the policy server, which announces its port and waits
    process = subprocess.Popen([sys.executable, str(directory / "__main__.py")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.poll() is not None else port
    finally:
        process.kill()
        process.wait()


def test_policy_config_is_what_check_evaluates(run_cli):
    result = run_cli(["policy", "config", str(EXAMPLE), "--stack", "prod", "--pack", "cost"])
    assert json.loads(result.stdout) == policy_configs(open_infra_project(EXAMPLE),
                                                       "prod")["cost"]
    assert json.loads(result.stdout)["monthly-budget"]["region"] == "us-east-1"


def test_policy_schema_accepts_the_documented_example(run_cli):
    import jsonschema

    schema = json.loads(run_cli(["policy", "schema"]).stdout)
    jsonschema.validate(yaml.safe_load(
        "version: 1\nrules:\n  required-tags: {tags: [project, env, owner, cost-center, team]}\n"
        "environments:\n  prod:\n    monthly-budget: {budget_usd: 25000}\n"), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1, "rules": {"nope": {}}}, schema)


def test_new_records_the_org_config(run_cli, tmp_path):
    policy = tmp_path / "org.yaml"
    policy.write_text("version: 1\nenvironments:\n  dev:\n    monthly-budget: {budget_usd: 1}\n")
    dest = tmp_path / "tight"
    result = run_cli(["new", str(dest), "--no-input", "--no-git", "--org-config", str(policy)])
    assert result.exit_code == 0, result.stderr
    assert (dest / "policy.yaml").read_text() == policy.read_text()
    assert load_spec(dest / "mlscaffold.yaml").policy_config == "policy.yaml"
    checked = run_cli(["check", str(dest), "--stack", "dev"])
    assert checked.exit_code == 1 and "monthly-budget" in checked.stdout


def test_new_refuses_a_bad_org_config(run_cli, tmp_path):
    policy = tmp_path / "org.yaml"
    policy.write_text("version: 1\nrules:\n  nope: {}\n")
    result = run_cli(["new", str(tmp_path / "x"), "--no-input", "--org-config", str(policy)])
    assert result.exit_code == 2 and "unknown rule 'nope'" in result.stderr
    assert not (tmp_path / "x").exists()
    policy.write_text("version: 1\nenvironments:\n  prd:\n    monthly-budget: {budget_usd: 1}\n")
    result = run_cli(["new", str(tmp_path / "x"), "--no-input", "--org-config", str(policy)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: policy config {policy}: environments.prd is not an "
                             "environment of this project (did you mean 'prod'?), so its "
                             "settings would apply to no stack; rename it to one of: dev, "
                             "staging, prod\n")
    assert not (tmp_path / "x").exists()
