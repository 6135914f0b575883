"""The platform config: profiles per environment and errors that name the key."""

from __future__ import annotations

import pytest

from mlscaffold.stacks.config import (
    SUPPORTED_KUBERNETES_VERSIONS,
    StackConfigError,
    environment_profile,
)
from mlscaffold.stacks.instances import gpu_count

from .conftest import make_config


def test_dev_is_small_and_spot_prod_on_demand_and_larger():
    dev, prod = make_config("dev"), make_config("prod")
    dev_gpu, prod_gpu = dev.cluster.gpu_node_groups[0], prod.cluster.gpu_node_groups[0]
    assert dev_gpu.capacity_type == "SPOT" and dev_gpu.min_size == 0
    assert prod_gpu.capacity_type == "ON_DEMAND"
    assert prod_gpu.max_size > dev_gpu.max_size
    assert prod.network.availability_zones == 3 and not prod.network.single_nat_gateway
    assert dev.network.single_nat_gateway
    assert prod.serving.min_instances > dev.serving.min_instances
    assert all(gpu_count(t) for g in (dev_gpu, prod_gpu) for t in g.instance_types)
    assert dev.cluster.kubernetes_version in SUPPORTED_KUBERNETES_VERSIONS


def test_spec_choices_reach_the_config():
    config = make_config("staging", serving="kserve", feature_store="sagemaker",
                         region="eu-west-1", owner="team-a", cost_center="cc-42")
    assert config.serving.platform == "kserve" and config.feature_store.enabled
    assert config.region == "eu-west-1"
    assert config.tags == {"project": "demo", "env": "staging", "owner": "team-a",
                           "cost-center": "cc-42", "managed-by": "mlscaffold"}
    assert config.prefix == "demo-staging"


@pytest.mark.parametrize(("name", "profile"), [("prod", "prod"), ("production", "prod"),
                                               ("staging", "staging"), ("qa", "staging"),
                                               ("dev", "dev"), ("sandbox", "dev")])
def test_environment_profiles(name, profile):
    assert environment_profile(name) == profile


def test_overrides_merge_into_the_profile():
    config = make_config("dev", {"serving": {"max_instances": 4},
                                 "network": {"cidr": "10.8.0.0/16"}})
    assert config.serving.max_instances == 4 and config.serving.min_instances == 1
    assert config.network.cidr == "10.8.0.0/16" and config.network.single_nat_gateway


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"colour": "red"}, "platform.colour", "unknown key"),
        ({"cluster": {"gpu_node_groups": [{"instance_types": ["g5.xlarge"], "min_size": 2,
                                           "desired_size": 2, "max_size": 1}]}},
         "platform.cluster.gpu_node_groups[0]", "max_size 1 is below min_size 2"),
        ({"cluster": {"gpu_node_groups": [{"instance_types": ["m6i.large"]}]}},
         "platform.cluster.gpu_node_groups[0].instance_types", "'m6i.large' has no GPU"),
        ({"cluster": {"kubernetes_version": "1.20"}}, "platform.cluster.kubernetes_version",
         "not supported"),
        ({"cluster": {"public_access_cidrs": ["0.0.0.0/0"]}},
         "platform.cluster.public_access_cidrs", "opens the API to the internet"),
        ({"network": {"cidr": "10.0.0.0/8"}}, "platform.network.cidr", "from /16 to /20"),
        ({"serving": {"instance_type": "ml.x9.huge"}}, "platform.serving.instance_type",
         "unknown SageMaker instance type"),
        ({"cluster": {"system_node_group": {"instance_types": ["g5.xlarge"]}}},
         "platform.cluster.system_node_group.instance_types", "has GPUs"),
        ({"cluster": {"system_node_group": {"instance_types": ["t4g.micro"]}}},
         "platform.cluster.system_node_group.instance_types",
         "'t4g.micro' is an arm64 (Graviton) type and node groups run x86_64 AMIs"),
        # the fixed key of old deployments, which every deploy overwrote
        ({"serving": {"model_key": "models/production/model.tar.gz"}},
         "platform.serving.model_key",
         "'models/production/model.tar.gz' is not a model key; keys are models/<sha256 of the "
         "model's files>/model.tar.gz, as `mlscaffold model upload` prints them"),
        ({"serving": {"model_key": f"models/{'A' * 64}/model.tar.gz"}},
         "platform.serving.model_key", "is not a model key"),
    ],
)
def test_invalid_overrides_name_the_key_and_fix(overrides, key, fragment):
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", overrides)
    assert caught.value.key == key
    assert fragment in str(caught.value)


def test_a_model_key_names_a_version_by_its_content():
    key = f"models/{'0123456789abcdef' * 4}/model.tar.gz"
    assert make_config("dev", {"serving": {"model_key": key}}).serving.model_key == key
    assert make_config("dev").serving.model_key is None  # `make deploy` sets it


def test_unknown_environment_is_refused():
    with pytest.raises(StackConfigError, match=r"'qa' is not an environment of mlscaffold\.yaml"):
        make_config("qa")


def test_feature_declarations_come_from_the_spec_only():
    config = make_config("dev", feature_store="sagemaker",
                         features={"types": {"age": "Integral"}, "event_time": "seen"})
    assert config.features is not None
    assert config.features.types == {"age": "Integral"} and config.features.event_time == "seen"
    assert make_config("dev").features is None
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"features": {"types": {"age": "String"}}}, feature_store="sagemaker")
    assert str(caught.value) == (
        "stack config platform.features: the feature schema is the same in every stack; move "
        "it to the features section of mlscaffold.yaml")
