"""`preview` and `graph` on a generated project, and how their bad input is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "shown", "serving": "kserve", "environments": ["dev", "prod"]})
    return create_project(tmp_path_factory.mktemp("p") / "shown", spec, git=False).path


@pytest.fixture
def project(made, tmp_path) -> Path:
    copy = tmp_path / "shown"
    shutil.copytree(made, copy)
    return copy


def test_preview_table_lists_resources_as_a_tree(run_cli, made):
    result = run_cli(["preview", str(made), "--stack", "prod"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "NAME", "KEY", "INPUTS"]
    assert any(line.startswith("mlscaffold:stacks:MlPlatform") and " shown-prod" in line
               for line in lines)
    node_group = next(line for line in lines if "shown-prod-cluster-system " in line)
    assert "capacityType=ON_DEMAND" in node_group and "instanceTypes=['m6i.xlarge']" in node_group
    pool = next(line for line in lines if "shown-prod-gpu-node-pool " in line)
    assert pool.startswith("kubernetes:karpenter.sh:NodePool")
    assert "spec.limits={'cpu': '128', 'nvidia.com/gpu': '8'}" in pool
    assert lines[-1].startswith("shown/prod: ") and "nothing deployed" in lines[-1]


def test_preview_json_is_the_graph(run_cli, made):
    graph = json.loads(run_cli(["preview", str(made), "--format", "json"]).stdout)
    assert graph["stack"] == "dev"  # the first environment by default
    types = {r["type"] for r in graph["resources"]}
    assert "kubernetes:serving.kserve.io/v1beta1:InferenceService" in types
    assert graph["outputs"]["cluster_name"] == "shown-dev-eks"


def test_preview_finds_the_project_from_a_subfolder(run_cli, made, monkeypatch):
    monkeypatch.chdir(made / "src")
    assert run_cli(["preview", "--stack", "dev"]).exit_code == 0


def test_graph_mermaid_and_dot(run_cli, made):
    mermaid = run_cli(["graph", str(made), "--stack", "prod"]).stdout
    assert mermaid.startswith("flowchart LR") and "InferenceService<br/>" in mermaid
    dot = run_cli(["graph", str(made), "--format", "dot"]).stdout
    assert dot.startswith("digraph platform {") and dot.rstrip().endswith("}")


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p["cluster"]["gpu_pools"][0].update(instance_families=["m6i"]),
     "infra/Pulumi.dev.yaml: stack config platform.cluster.gpu_pools[0].instance_families: "
     "'m6i' has no GPU"),
    (lambda p: p["cluster"]["gpu_pools"][0].update(instance_families=["p5"]),
     "platform.cluster.gpu_pools[0]: p5 has no xlarge or 2xlarge size; its sizes are 48xlarge"),
    # a stack config written by an earlier mlscaffold
    (lambda p: p["cluster"].update(gpu_node_groups=[{"name": "gpu"}]),
     "platform.cluster: gpu_node_groups was replaced by gpu_pools (Karpenter NodePools)"),
    (lambda p: p.update(colour="blue"), "platform.colour: unknown key"),
    # the dev pool's nodes have 1 GPU each: the InferenceService would never be scheduled
    (lambda p: p["serving"].update(gpus=4),
     "infra/Pulumi.dev.yaml: stack config platform.serving.gpus: 4 GPUs per pod, and the "
     "largest node of GPU pool 'gpu' (g4dn.xlarge) has 1"),
])
def test_bad_stack_config_names_the_key(run_cli, project, change, message):
    path = project / "infra" / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"]["shown:platform"])
    path.write_text(yaml.safe_dump(document))
    result = run_cli(["preview", str(project), "--stack", "dev"])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_unknown_stack_and_missing_project(run_cli, made, tmp_path):
    result = run_cli(["preview", str(made), "--stack", "qa"])
    assert result.exit_code == 2 and "--stack 'qa' is not an environment" in result.stderr
    assert "use one of: dev, prod" in result.stderr
    result = run_cli(["preview", str(tmp_path)])
    assert result.exit_code == 2 and "is not inside an mlscaffold project" in result.stderr


def test_program_error_shows_the_users_frames_only(run_cli, project):
    program = project / "infra" / "__main__.py"
    program.write_text(program.read_text() + "\nraise RuntimeError('no quota')\n")
    result = run_cli(["preview", str(project)])
    assert result.exit_code == 1
    assert f'File "{program}", line' in result.stderr
    assert "raise RuntimeError('no quota')" in result.stderr
    assert "site-packages" not in result.stderr and "scaffolder" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"error: infra program of stack dev failed at {program}:")


def test_data_that_contradicts_the_declared_features_is_a_usage_error(run_cli, project):
    spec_path = project / "mlscaffold.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec.update(feature_store="sagemaker", features={"types": {"plan": "Integral"}})
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    stack_path = project / "infra" / "Pulumi.dev.yaml"
    document = yaml.safe_load(stack_path.read_text())
    document["config"]["shown:platform"]["feature_store"] = {"enabled": True}
    stack_path.write_text(yaml.safe_dump(document))
    result = run_cli(["preview", str(project), "--stack", "dev"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {project / 'datasets' / 'train.csv'}: column 'plan' is declared Integral in "
        "mlscaffold.yaml but row 1 (line 2) holds 'standard'; fix the value, or declare the column "
        "String in features.types; `mlscaffold features schema` shows what is derived\n")

    spec["features"] = {"types": {"support_tickets": "Fractional"}}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    graph = json.loads(run_cli(["preview", str(project), "--format", "json"]).stdout)
    (group,) = [r for r in graph["resources"]
                if r["type"] == "aws:sagemaker/featureGroup:FeatureGroup"]
    assert {"featureName": "support_tickets", "featureType": "Fractional"} in \
        group["inputs"]["featureDefinitions"]
    assert graph["outputs"]["feature_group"] == group["inputs"]["featureGroupName"]


def test_a_fresh_project_previews_with_the_stand_in_model_and_a_set_key_wins(run_cli, project):
    """`new` writes no model key (there is no model yet): offline runs plan with the stand-in
    key, as `pulumi preview` does; a key set in the stack file is the one served."""
    graph = json.loads(run_cli(["preview", str(project), "--format", "json"]).stdout)
    stand_in = f"models/{'0' * 64}/model.tar.gz"
    assert graph["outputs"]["model_key"] == stand_in
    (service,) = [r for r in graph["resources"]
                  if r["type"] == "kubernetes:serving.kserve.io/v1beta1:InferenceService"]
    (container,) = service["inputs"]["spec"]["predictor"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["STORAGE_URI"].endswith(f"-artifacts/{stand_in}")

    key = f"models/{'9f' * 32}/model.tar.gz"
    path = project / "infra" / "Pulumi.dev.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["shown:platform"]["serving"]["model_key"] = key
    path.write_text(yaml.safe_dump(document))
    graph = json.loads(run_cli(["preview", str(project), "--format", "json"]).stdout)
    assert graph["outputs"]["model_key"] == key
