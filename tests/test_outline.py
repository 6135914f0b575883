"""The README's diagram drawn from the config (mlscaffold.outline) is the mocked graph's, for
every option that changes the platform; `new` draws it without importing Pulumi."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlscaffold.diagram import to_dot, to_mermaid
from mlscaffold.infra import preview_stack
from mlscaffold.outline import spec_diagram, stack_outline
from mlscaffold.project import blueprint_source, render_into
from mlscaffold.sample_data import write_sample_datasets
from mlscaffold.spec import load_spec, validate_spec

from .conftest import blueprint_choices

TASKS = blueprint_choices("task")
SERVING = blueprint_choices("serving")
FEATURE_STORES = blueprint_choices("feature_store")
# us-east-1 has a zone EKS cannot use (the cluster's subnets skip it)
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
# the first environment is the stack drawn: its name makes the names, its profile (dev,
# staging, prod) the sizing; `qa` and `main` are profiles by other names
ENVIRONMENTS = [["dev", "staging", "prod"], ["qa", "prod"], ["prod"], ["main", "prod"]]
PROFILE_ENVIRONMENTS = ENVIRONMENTS[:3]

# Pulumi.<env>.yaml settings (under <project>:platform) that change what is built: the cluster
# with any serving, its pools, its NAT gateways, drift monitoring. Each with the servings it
# applies to (None: all).
STACK_OPTIONS: list[tuple[str, tuple[str, ...] | None, dict]] = [
    ("cluster", ("sagemaker", "none"), {"cluster": {"enabled": True}}),
    ("no-cpu-pool", None, {"cluster": {"enabled": True, "cpu_pool": None}}),
    ("two-gpu-pools", None, {"cluster": {"enabled": True, "gpu_pools": [
        {"name": "gpu", "instance_families": ["g5"]},
        {"name": "gpu-large", "instance_families": ["g6"], "max_gpus": 8}]}}),
    ("nat-per-zone", None, {"cluster": {"enabled": True},
                            "network": {"single_nat_gateway": False, "availability_zones": 4}}),
    ("single-nat", None, {"cluster": {"enabled": True},
                          "network": {"single_nat_gateway": True, "availability_zones": 3}}),
    ("no-data-capture", ("sagemaker",), {"serving": {"data_capture_percent": 0}}),
    ("tracking-server", None, {"tracking": {"mlflow_server": True}}),
    ("kserve-serverless", ("kserve",), {"serving": {"kserve_mode": "serverless"}}),
    # settings that change resources' inputs only: the drawing must not move
    ("inputs-only", None, {
        "registry": {"prod_account_id": "210987654321"},
        "feature_store": {"online_store": False},
        "monitoring": {"alert_emails": ["ml-alerts@example.com"], "min_invocations_per_hour": 5},
        "serving": {"instance_type": "ml.g4dn.xlarge", "gpus": 0},
        "cluster": {"public_access_cidrs": ["203.0.113.0/24"], "kubernetes_version": "1.35",
                    "admin_role_arns": ["arn:aws:iam::123456789012:role/ml-admins"]},
        "protect": True}),
]


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (_deep_merge(merged[key], value)
                       if isinstance(value, dict) and isinstance(merged.get(key), dict)
                       else value)
    return merged


@pytest.fixture(scope="module")
def project_of(tmp_path_factory) -> Callable[..., object]:
    """(root, values, overrides) -> spec: a project as the bundled blueprint renders it, with
    sample data, copied into root; `overrides` edit the first stack's config. Each spec is
    rendered once per module (a Copier render is most of a second) and copied after."""
    rendered: dict[str, Path] = {}

    def make(root: Path, values: dict, overrides: dict | None = None):
        spec = validate_spec(values)
        key = json.dumps(values, sort_keys=True)
        if key not in rendered:
            source = tmp_path_factory.mktemp("rendered") / "project"
            render_into(source, spec, blueprint_source(None))
            write_sample_datasets(source / "datasets", spec.task, spec.label)
            rendered[key] = source
        shutil.copytree(rendered[key], root, dirs_exist_ok=True)
        if overrides:
            path = root / "infra" / f"Pulumi.{spec.environments[0]}.yaml"
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            key = f"{spec.name}:platform"
            document["config"][key] = _deep_merge(document["config"][key], overrides)
            path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return spec

    return make


def _assert_outline_is_the_mocked_graph(project_of, root: Path, values: dict,
                                        overrides: dict | None = None) -> None:
    spec = project_of(root, values, overrides)
    stack = spec.environments[0]
    mocked = preview_stack(root, stack)
    outlined = stack_outline(root, spec, stack)
    assert to_mermaid(outlined) == to_mermaid(mocked)
    assert to_dot(outlined) == to_dot(mocked)
    if not overrides:  # the README's diagram: the stack as the spec derives it
        assert spec_diagram(spec) == to_mermaid(mocked)


def _spec_matrix() -> list[tuple[str, str, str, str, list[str]]]:
    """Every serving x feature store x environments (the options that shape the platform
    together), each with the task and region that cover the most pairs of values not yet
    covered: every pair of any two of the five options appears (checked below). The whole
    product (216 mocked programs) took a sixth of the test suite's time and drew nothing more:
    task and region change no resource in combination with a third option."""
    def pairs(row: tuple) -> set:
        return set(itertools.combinations(enumerate(map(str, row)), 2))

    covered: set = set()
    rows = []
    for serving, store, environments in itertools.product(SERVING, FEATURE_STORES,
                                                          ENVIRONMENTS):
        row = max(((task, serving, store, region, environments)
                   for task, region in itertools.product(TASKS, REGIONS)),
                  key=lambda row: len(pairs(row) - covered))
        covered |= pairs(row)
        rows.append(row)
    return rows


# The whole matrix is drawn once per full run: the fast tier takes the rows whose first
# environment is a profile's own name (every serving x feature store x profile), the slow tier
# the rest, so that no combination is drawn twice.
FULL_MATRIX = _spec_matrix()
PLATFORM_MATRIX = [row for row in FULL_MATRIX if row[4] in PROFILE_ENVIRONMENTS]
OTHER_SPEC_ROWS = [row for row in FULL_MATRIX if row[4] not in PROFILE_ENVIRONMENTS]


def _spec_ids(value):
    return ",".join(value) if isinstance(value, list) else value


@pytest.mark.parametrize(("task", "serving", "store", "region", "environments"),
                         PLATFORM_MATRIX, ids=_spec_ids)
def test_outline_draws_every_platform_as_the_mocked_graph(project_of, tmp_path: Path, task,
                                                          serving, store, region, environments):
    _assert_outline_is_the_mocked_graph(project_of, tmp_path, {
        "name": "outline-demo", "task": task, "serving": serving, "feature_store": store,
        "region": region, "environments": environments})


@pytest.mark.slow
@pytest.mark.parametrize(("task", "serving", "store", "region", "environments"),
                         OTHER_SPEC_ROWS, ids=_spec_ids)
def test_outline_draws_every_other_spec_combination_as_the_mocked_graph(
        project_of, tmp_path: Path, task, serving, store, region, environments):
    _assert_outline_is_the_mocked_graph(project_of, tmp_path, {
        "name": "outline-demo", "task": task, "serving": serving, "feature_store": store,
        "region": region, "environments": environments})


def _stack_matrix() -> list[tuple[str, str, str, list[str], dict]]:
    """(option, serving, feature store, environments, overrides): each option with each serving
    it applies to, each profile and each feature store among them (every pair of the four)."""
    cases = [(name, serving, overrides) for name, servings, overrides in STACK_OPTIONS
             for serving in SERVING if servings is None or serving in servings]
    return [(name, serving, FEATURE_STORES[(index + turn) % len(FEATURE_STORES)],
             environments, overrides)
            for index, (name, serving, overrides) in enumerate(cases)
            for turn, environments in enumerate(PROFILE_ENVIRONMENTS)]


def _stack_ids(matrix: list) -> list[str]:
    return [f"{name}-{serving}-{store}-{environments[0]}"
            for name, serving, store, environments, _ in matrix]


# each option x serving once in the fast tier (profiles taking turns), the other profiles of
# each in the slow tier: the two tiers draw the full matrix once
FULL_STACK_MATRIX = _stack_matrix()
_TURNS = len(PROFILE_ENVIRONMENTS)
STACK_MATRIX = [row for position, row in enumerate(FULL_STACK_MATRIX)
                if position % _TURNS == (position // _TURNS) % _TURNS]
OTHER_STACK_ROWS = [row for position, row in enumerate(FULL_STACK_MATRIX)
                    if position % _TURNS != (position // _TURNS) % _TURNS]


@pytest.mark.parametrize(("name", "serving", "store", "environments", "overrides"),
                         STACK_MATRIX, ids=_stack_ids(STACK_MATRIX))
def test_outline_follows_the_stack_config(project_of, tmp_path: Path, name, serving, store,
                                          environments, overrides):
    _assert_outline_is_the_mocked_graph(project_of, tmp_path, {
        "name": "outline-demo", "serving": serving, "feature_store": store,
        "environments": environments}, overrides)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "serving", "store", "environments", "overrides"),
                         OTHER_STACK_ROWS, ids=_stack_ids(OTHER_STACK_ROWS))
def test_outline_follows_the_stack_config_in_every_other_combination(
        project_of, tmp_path: Path, name, serving, store, environments, overrides):
    _assert_outline_is_the_mocked_graph(project_of, tmp_path, {
        "name": "outline-demo", "serving": serving, "feature_store": store,
        "environments": environments}, overrides)


def test_the_matrices_cover_every_pair_of_option_values_once():
    options = [TASKS, SERVING, FEATURE_STORES, REGIONS, [str(e) for e in ENVIRONMENTS]]
    seen = {pair for row in FULL_MATRIX
            for pair in itertools.combinations(enumerate(map(str, row)), 2)}
    for (i, first), (j, second) in itertools.combinations(enumerate(options), 2):
        for a, b in itertools.product(first, second):
            assert ((i, a), (j, b)) in seen, (a, b)
    assert {(row[1], row[2], str(row[4])) for row in FULL_MATRIX} == {
        (serving, store, str(environments)) for serving, store, environments
        in itertools.product(SERVING, FEATURE_STORES, ENVIRONMENTS)}
    # the fast tier alone draws each task and region at least once
    assert {row[0] for row in PLATFORM_MATRIX} == set(TASKS)
    assert {row[3] for row in PLATFORM_MATRIX} == set(REGIONS)
    stacks = {(name, serving, store, environments[0])
              for name, serving, store, environments, _ in FULL_STACK_MATRIX}
    cases = {(name, serving) for name, serving, *_ in stacks}
    assert {(*case, store) for case in cases for store in FEATURE_STORES} == {
        (name, serving, store) for name, serving, store, _ in stacks}
    assert {(*case, environments[0]) for case in cases
            for environments in PROFILE_ENVIRONMENTS} == {
        (name, serving, profile) for name, serving, _, profile in stacks}
    # the tiers split each matrix: every row in one of them, none in both
    assert sorted(map(str, PLATFORM_MATRIX + OTHER_SPEC_ROWS)) == sorted(map(str, FULL_MATRIX))
    assert sorted(map(str, STACK_MATRIX + OTHER_STACK_ROWS)) == sorted(
        map(str, FULL_STACK_MATRIX))
    assert {(name, serving) for name, serving, *_ in STACK_MATRIX} == cases
    assert len(STACK_MATRIX) == len(cases)


def test_new_imports_neither_pulumi_nor_boto3(tmp_path: Path):
    # the real entry point, as a user runs it; -X importtime lists every module imported
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlscaffold", "new", str(tmp_path / "proj"),
         "--no-input", "--no-git", "--serving", "kserve", "--feature-store", "sagemaker",
         "--format", "json"], capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()
                if line.startswith("import time:")}
    assert "mlscaffold.outline" in imported and "copier" in imported
    heavy = {"pulumi", "pulumi_aws", "pulumi_kubernetes", "pulumi_policy", "grpc", "boto3",
             "botocore"}
    assert {name.split(".")[0] for name in imported} & heavy == set()
    assert json.loads(completed.stdout)["path"] == str(tmp_path / "proj")
    readme = (tmp_path / "proj" / "README.md").read_text(encoding="utf-8")
    assert '["InferenceService<br/>proj-dev-inference-service"]' in readme
    assert '["feature group<br/>proj-dev-features-group"]' in readme


@pytest.mark.parametrize("example", ["churn-model", "lifetime-value"])
def test_the_examples_readme_embeds_the_outline(example: str):
    root = Path(__file__).resolve().parents[1] / "examples" / example
    spec = load_spec(root / "mlscaffold.yaml")
    readme = (root / "README.md").read_text(encoding="utf-8")
    embedded = readme.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert embedded.startswith("flowchart LR\n  subgraph ")
    assert to_mermaid(stack_outline(root, spec, spec.environments[0])) == embedded
