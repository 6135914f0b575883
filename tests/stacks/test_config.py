"""The platform config: profiles per environment and errors that name the key."""

from __future__ import annotations

import pytest

from mlscaffold.stacks.config import (
    EKS_AMI_RELEASE,
    SUPPORTED_KUBERNETES_VERSIONS,
    StackConfigError,
    environment_profile,
)
from mlscaffold.stacks.instances import gpu_count

from .conftest import make_config


def test_dev_is_small_and_spot_prod_on_demand_and_larger():
    dev, prod = make_config("dev"), make_config("prod")
    dev_gpu, prod_gpu = dev.cluster.gpu_pools[0], prod.cluster.gpu_pools[0]
    assert dev_gpu.capacity_types == ["spot"]
    assert prod_gpu.capacity_types == ["on-demand"]
    assert prod_gpu.max_gpus > dev_gpu.max_gpus
    # dev: small single-GPU types, several families for more spot capacity
    assert len(dev_gpu.instance_families) > 1
    assert {gpu_count(t) for t in dev_gpu.instance_types} == {1}
    # production nodes are pinned to a tested AMI release, the others take the latest
    assert prod.cluster.node_image_version == EKS_AMI_RELEASE
    assert dev.cluster.node_image_version == "latest"
    assert prod.network.availability_zones == 3 and not prod.network.single_nat_gateway
    assert dev.network.single_nat_gateway
    assert prod.serving.min_instances > dev.serving.min_instances
    assert all(gpu_count(t) for g in (dev_gpu, prod_gpu) for t in g.instance_types)
    assert dev_gpu.instance_types and prod_gpu.instance_types
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
        ({"cluster": {"gpu_pools": [{"instance_families": ["m6i"]}]}},
         "platform.cluster.gpu_pools[0].instance_families",
         "'m6i' has no GPU; a GPU pool takes GPU families such as g4dn, g5, g6, g6e, p3, p4d, "
         "p5"),
        ({"cluster": {"gpu_pools": [{"instance_families": ["g5", "g7"]}]}},
         "platform.cluster.gpu_pools[0].instance_families",
         "'g7' is not a GPU family mlscaffold knows"),
        ({"cluster": {"gpu_pools": [{"instance_families": ["g6", "p4d"],
                                     "instance_sizes": ["xlarge"]}]}},
         "platform.cluster.gpu_pools[0]",
         "p4d has no xlarge size; its sizes are 24xlarge: add one to instance_sizes or drop "
         "p4d"),
        ({"cluster": {"gpu_pools": [{"instance_families": ["p5"], "max_gpus": 4}]}},
         "platform.cluster.gpu_pools[0]",
         "max_gpus 4 is below the 8 GPUs of p5.48xlarge, the smallest type the pool allows: "
         "raise max_gpus or allow smaller types"),
        ({"cluster": {"gpu_pools": [{"instance_families": ["g5"],
                                     "capacity_types": ["spot", "spot"]}]}},
         "platform.cluster.gpu_pools[0].capacity_types",
         "capacity type 'spot' is listed twice; list each once"),
        ({"cluster": {"gpu_pools": [{"instance_families": ["g5"],
                                     "capacity_types": ["reserved"]}]}},
         "platform.cluster.gpu_pools[0].capacity_types[0]", "'spot' or 'on-demand'"),
        ({"cluster": {"gpu_pools": [{"instance_families": ["g5"],
                                     "consolidate_after": "5 minutes"}]}},
         "platform.cluster.gpu_pools[0].consolidate_after", "should match pattern"),
        ({"cluster": {"gpu_pools": [{"name": "system", "instance_families": ["g5"]}]}},
         "platform.cluster.gpu_pools[0].name", "'system' is the CPU node group's pool"),
        ({"cluster": {"gpu_pools": [{"instance_families": ["g5"]},
                                    {"instance_families": ["g6"]}]}},
         "platform.cluster.gpu_pools", "GPU pool names must be unique, got ['gpu', 'gpu']"),
        ({"cluster": {"gpu_pools": []}}, "platform.cluster.gpu_pools", "at least 1 item"),
        # a Pulumi.<env>.yaml written by an earlier mlscaffold
        ({"cluster": {"gpu_node_groups": [{"name": "gpu", "instance_types": ["g5.xlarge"]}]}},
         "platform.cluster",
         "gpu_node_groups was replaced by gpu_pools (Karpenter NodePools): rename the key and "
         "give each pool instance_families, capacity_types and max_gpus instead of "
         "instance_types, capacity_type and min/desired/max_size"),
        ({"cluster": {"autoscaler": "cluster-autoscaler"}}, "platform.cluster",
         "autoscaler was removed: Karpenter scales the GPU pools; delete the key"),
        ({"cluster": {"system_node_group": {"min_size": 0, "desired_size": 0}}},
         "platform.cluster",
         "system_node_group.desired_size is 0, but Karpenter's controller, CoreDNS and the "
         "other add-ons run on the system nodes"),
        ({"cluster": {"node_image_version": "2026-07-14"}},
         "platform.cluster.node_image_version", "should match pattern"),
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
        ({"cluster": {"admin_role_arns": ["arn:aws:sts::123456789012:assumed-role/admin/me"]}},
         "platform.cluster.admin_role_arns",
         "'arn:aws:sts::123456789012:assumed-role/admin/me' is not an IAM role ARN; give the "
         "role's ARN, e.g. arn:aws:iam::123456789012:role/ml-admins"),
        ({"cluster": {"viewer_role_arns": ["arn:aws:iam::123456789012:user/alice"]}},
         "platform.cluster.viewer_role_arns", "is not an IAM role ARN"),
        ({"cluster": {"admin_role_arns": ["arn:aws:iam::123456789012:role/a"] * 2}},
         "platform.cluster.admin_role_arns",
         "'arn:aws:iam::123456789012:role/a' is listed twice; list each role once"),
        ({"cluster": {"admin_role_arns": ["arn:aws:iam::123456789012:role/a"],
                      "viewer_role_arns": ["arn:aws:iam::123456789012:role/a"]}},
         "platform.cluster",
         "'arn:aws:iam::123456789012:role/a' is in both admin_role_arns and viewer_role_arns; "
         "an IAM principal has one access entry: keep it in one of them"),
        ({"cluster": {"support_type": "LTS"}}, "platform.cluster.support_type",
         "'STANDARD' or 'EXTENDED'"),
        ({"protect": "sometimes"}, "platform.protect", "valid boolean"),
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


def test_data_and_cluster_are_protected_outside_dev():
    assert [make_config(env).protect for env in ("dev", "staging", "prod")] == [
        False, True, True]
    assert make_config("dev", {"protect": True}).protect
    assert make_config("prod", {"protect": False}).protect is False


def test_access_and_support_defaults():
    cluster = make_config("prod").cluster
    assert cluster.admin_role_arns == [] and cluster.viewer_role_arns == []
    assert cluster.support_type == "STANDARD"
    roles = ["arn:aws:iam::123456789012:role/ml/admins", "arn:aws-cn:iam::123456789012:role/x"]
    assert make_config("dev", {"cluster": {"admin_role_arns": roles}}).cluster.admin_role_arns \
        == roles
