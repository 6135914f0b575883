"""Every resource name fits AWS: each stack the spec accepts, at the longest project and
environment names `new` takes, names (or lets Pulumi auto-name) every resource within its
type's limit and characters (stacks/names.py), and a stack whose auto-names fit keeps them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlscaffold.graph import ResourceGraph
from mlscaffold.sample_data import write_sample_datasets
from mlscaffold.spec import validate_spec
from mlscaffold.stacks.config import platform_config
from mlscaffold.stacks.constants import STACK_PREFIX_MAX
from mlscaffold.stacks.names import NAME_RULES, autoname_length, fitted_name, name_problem

from .test_platform import _build

# (environments of the spec, the one rendered): a dev, a staging and a prod profile, each with
# a project name making "<project>-<environment>" STACK_PREFIX_MAX characters long
PROFILES = {"dev": (["d"], "d"), "staging": (["stage"], "stage"), "prod": (["d", "p"], "p")}
# the other split: the longest environment name, and the longest project beside it
LONG_ENVIRONMENT = (["e" * 16, "f" * 16], "f" * 16)
STACKS = [("sagemaker", False), ("sagemaker", True), ("kserve", True)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    return write_sample_datasets(folder, "binary-classification", "label")[0]


def _graph(dataset: Path, environments: list[str], environment: str, serving: str,
           cluster: bool, feature_store: str, project: str | None = None) -> ResourceGraph:
    name = project or "n" * (STACK_PREFIX_MAX - len(environment) - 1)
    spec = validate_spec({"name": name, "environments": environments, "serving": serving,
                          "feature_store": feature_store})
    config = platform_config(spec, environment, {"cluster": {"enabled": cluster}})
    assert len(config.prefix) == STACK_PREFIX_MAX or project
    return _build(config, dataset)


def _problems(graph: ResourceGraph) -> list[str]:
    problems = []
    for resource in graph.resources:
        rule = NAME_RULES.get(resource.type)
        if rule is None or not resource.custom:
            continue
        problem = name_problem(resource.type, resource.inputs.get(rule.prop), resource.name)
        if problem:
            problems.append(f"{resource.type} {resource.name}: {rule.prop} {problem}")
    return problems


@pytest.mark.parametrize("feature_store", ["sagemaker", "none"])
@pytest.mark.parametrize(("serving", "cluster"), STACKS)
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_name_fits_aws_at_the_longest_names_new_accepts(dataset, profile, serving,
                                                             cluster, feature_store):
    environments, environment = PROFILES[profile]
    graph = _graph(dataset, environments, environment, serving, cluster, feature_store)
    assert not _problems(graph)


def test_every_name_fits_aws_with_the_longest_environment_name(dataset):
    graph = _graph(dataset, *LONG_ENVIRONMENT, "kserve", True, "sagemaker")
    assert not _problems(graph)


def test_auto_names_that_fit_are_kept(dataset):
    """A stack deployed today keeps its names: only an auto-name AWS would refuse is replaced
    by an explicit one (a new physical name would replace the resource)."""
    graph = _graph(dataset, ["dev", "staging", "prod"], "staging", "kserve", True, "sagemaker",
                   project="churn-model")
    fitted = []
    for resource in graph.resources:
        rule = NAME_RULES.get(resource.type)
        name = resource.inputs.get(rule.prop) if rule and resource.custom else None
        digest = hashlib.sha256(resource.name.encode()).hexdigest()[:7]
        if isinstance(name, str) and name.endswith(f"-{digest}"):
            fitted.append(resource.name)
            assert autoname_length(resource.name) > rule.max_length, resource.name
    # the EventBridge rule Karpenter's interruption handling needs is one that did not fit
    assert "churn-model-staging-cluster-karpenter-instance-state-change" in fitted


def test_a_fitted_name_is_stable_unique_and_within_the_limit():
    rule = "aws:cloudwatch/eventRule:EventRule"
    assert fitted_name(rule, "demo-dev-cluster-karpenter") is None  # the auto-name fits
    long = "n" * 34 + "-p-cluster-karpenter-instance-state-change"
    name = fitted_name(rule, long)
    assert name == fitted_name(rule, long) and len(name) == 64
    assert name.startswith("n" * 34 + "-p-cluster-karpenter-")
    assert fitted_name(rule, long[:-1] + "x") != name
    assert name_problem(rule, name, long) is None
    assert name_problem(rule, None, long) == (
        f"is not set, and Pulumi's auto-name '{long}-xxxxxxx' is 84 characters, over the 64 "
        "AWS allows (EventBridge PutRule Name 1-64; pulumi-aws 64)")
