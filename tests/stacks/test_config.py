"""The platform config: profiles per environment and errors that name the key."""

from __future__ import annotations

from datetime import date

import pytest

from mlscaffold.spec import validate_spec
from mlscaffold.stacks.config import (
    EKS_AMI_RELEASE,
    GPU_POOL_LABEL,
    KUBERNETES_VERSIONS,
    SUPPORTED_KUBERNETES_VERSIONS,
    UNPINNED_KUBERNETES_VERSION,
    StackConfigError,
    default_kubernetes_version,
    environment_profile,
    platform_config,
    stack_settings,
)
from mlscaffold.stacks.instances import EC2_INSTANCES, gpu_count
from mlscaffold.stacks.regions import REGIONS

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


def test_cpu_pool_per_environment():
    """Every profile has a CPU pool of x86_64 CPU types without GPUs: small and spot in dev
    and staging, larger and on-demand in production; null turns it off."""
    dev, staging, prod = (make_config(e).cluster.cpu_pool for e in ("dev", "staging", "prod"))
    for pool in (dev, staging, prod):
        assert pool is not None and pool.name == "cpu"
        assert len(pool.instance_families) > 1  # more spot pools to pick from
        assert pool.instance_types and all(
            not gpu_count(t) and EC2_INSTANCES[t].arch == "x86_64" for t in pool.instance_types)
        # every listed size of every listed family is a type the table knows
        assert len(pool.instance_types) == len(pool.instance_families) * len(
            pool.instance_sizes)
        assert pool.labels == {GPU_POOL_LABEL: "cpu"}
    assert dev.capacity_types == staging.capacity_types == ["spot"]
    assert prod.capacity_types == ["on-demand"]
    assert dev.max_vcpus < staging.max_vcpus < prod.max_vcpus
    assert max(EC2_INSTANCES[t].vcpus for t in prod.instance_types) > max(
        EC2_INSTANCES[t].vcpus for t in dev.instance_types)
    # serving replicas come and go with the HPA: production nodes wait longer before going
    assert (dev.consolidate_after, prod.consolidate_after) == ("5m", "15m")
    # a stack's own settings merge into the profile's pool, or turn it off
    bigger = make_config("dev", {"cluster": {"cpu_pool": {"max_vcpus": 16}}}).cluster
    assert bigger.cpu_pool.max_vcpus == 16 and bigger.cpu_pool.capacity_types == ["spot"]
    off = make_config("dev", {"cluster": {"cpu_pool": None}}).cluster
    assert off.cpu_pool is None and off.pools == off.gpu_pools
    assert make_config("dev").cluster.pools[-1] == dev


def test_spec_choices_reach_the_config():
    config = make_config("staging", serving="kserve", feature_store="sagemaker",
                         region="eu-west-1", owner="team-a", cost_center="cc-42")
    assert config.serving.platform == "kserve" and config.feature_store.enabled
    assert config.region == "eu-west-1"
    assert config.tags == {"project": "demo", "env": "staging", "owner": "team-a",
                           "cost-center": "cc-42", "managed-by": "mlscaffold"}
    assert config.prefix == "demo-staging"


@pytest.mark.parametrize(("environments", "profiles"), [
    (["dev", "staging", "prod"], ["dev", "staging", "prod"]),
    (["dev", "production"], ["dev", "prod"]),
    (["sandbox", "qa", "live"], ["dev", "staging", "prod"]),
    # no environment named like production: the last of several is production
    (["dev", "main"], ["dev", "prod"]),
    (["dev", "qa"], ["dev", "prod"]),
    (["main"], ["dev"]),
    (["prod"], ["prod"]),
    (["dev", "prod", "prd"], ["dev", "prod", "prod"]),
])
def test_environment_profiles(environments, profiles):
    assert [environment_profile(name, environments) for name in environments] == profiles


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
         "platform.cluster.gpu_pools[0].name",
         "'system' is the system node group's pool; name GPU pools otherwise, e.g. gpu or "
         "gpu-large"),
        ({"cluster": {"gpu_pools": [{"instance_families": ["g5"]},
                                    {"instance_families": ["g6"]}]}},
         "platform.cluster.gpu_pools", "GPU pool names must be unique, got ['gpu', 'gpu']"),
        ({"cluster": {"gpu_pools": []}}, "platform.cluster.gpu_pools", "at least 1 item"),
        # the CPU pool: merged into the profile's, so one changed field each
        ({"cluster": {"cpu_pool": {"instance_families": ["m6i", "g5"]}}},
         "platform.cluster.cpu_pool.instance_families",
         "'g5' has GPUs (GPU pools take it); a CPU pool takes x86_64 CPU families such as c6i, "
         "m6i, m7i, t3"),
        ({"cluster": {"cpu_pool": {"instance_families": ["t4g"]}}},
         "platform.cluster.cpu_pool.instance_families",
         "'t4g' is an arm64 (Graviton) family and the pool's nodes run x86_64 AMIs; a CPU pool "
         "takes x86_64 CPU families such as c6i, m6i, m7i, t3"),
        ({"cluster": {"cpu_pool": {"instance_families": ["r7i"]}}},
         "platform.cluster.cpu_pool.instance_families",
         "'r7i' is not a CPU family mlscaffold knows; a CPU pool takes x86_64 CPU families"),
        ({"cluster": {"cpu_pool": {"instance_families": ["m6i", "m6i"]}}},
         "platform.cluster.cpu_pool.instance_families",
         "instance family 'm6i' is listed twice; list each once"),
        ({"cluster": {"cpu_pool": {"instance_sizes": []}}},
         "platform.cluster.cpu_pool.instance_sizes",
         "list the sizes the pool may launch, e.g. [large, xlarge]: without them Karpenter may "
         "launch any size of the families"),
        ({"cluster": {"cpu_pool": {"instance_sizes": ["large", "4xlarge"]}}},
         "platform.cluster.cpu_pool",
         "m7i.4xlarge is not in mlscaffold's instance table (m7i: large, xlarge, 2xlarge), yet "
         "the pool would let Karpenter launch it (every listed size of every family): drop "
         "4xlarge or m7i"),
        ({"cluster": {"cpu_pool": {"max_vcpus": 1}}}, "platform.cluster.cpu_pool",
         "max_vcpus 1 is below the 2 vCPUs of m6i.large, the smallest type the pool allows: "
         "raise max_vcpus or allow smaller types"),
        ({"cluster": {"cpu_pool": {"capacity_types": ["on-demand", "on-demand"]}}},
         "platform.cluster.cpu_pool.capacity_types",
         "capacity type 'on-demand' is listed twice; list each once"),
        ({"cluster": {"cpu_pool": {"name": "system"}}}, "platform.cluster.cpu_pool.name",
         "'system' is the system node group's pool; name CPU pools otherwise, e.g. cpu or "
         "cpu-large"),
        ({"cluster": {"cpu_pool": {"name": "gpu"}}}, "platform.cluster",
         "cpu_pool.name 'gpu' is also a GPU pool's name, and each pool's NodePool and "
         "EC2NodeClass take its name: rename one of them"),
        ({"cluster": {"cpu_pool": {"max_gpus": 2}}}, "platform.cluster.cpu_pool.max_gpus",
         "unknown key"),
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
         "'ml.x9.huge' is not a SageMaker hosting instance type; SageMaker hosts real-time "
         "endpoints on ml.<family>.<size> of c4, c5, "),
        ({"serving": {"instance_type": "ml.g55.xlarge"}}, "platform.serving.instance_type",
         "'ml.g55.xlarge' is not a SageMaker hosting instance type (did you mean "
         "'ml.g5.xlarge'?)"),
        # a size the family does not come in is no type at all
        ({"serving": {"instance_type": "ml.g5.3xlarge"}}, "platform.serving.instance_type",
         "'ml.g5.3xlarge' is not a SageMaker hosting instance type (did you mean "
         "'ml.g5.xlarge'?); SageMaker hosts g5 in xlarge, 2xlarge, 4xlarge, 8xlarge, "),
        ({"serving": {"instance_type": "ml.c7g.xlarge"}}, "platform.serving.instance_type",
         "'ml.c7g.xlarge' is an arm64 (Graviton) type and the serving image is built for "
         "x86_64"),
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


@pytest.mark.parametrize("instance_type", [
    "ml.g5.12xlarge", "ml.m5.4xlarge", "ml.g4dn.2xlarge", "ml.c6i.xlarge", "ml.inf2.xlarge"])
def test_serving_takes_any_type_sagemaker_hosts_on(instance_type):
    """Real SageMaker hosting types the instance table does not list are accepted: the policy
    allow-list (sagemaker-instance-types) governs them, and `cost` says it cannot price them."""
    config = make_config("prod", {"serving": {"instance_type": instance_type}})
    assert config.serving.instance_type == instance_type


@pytest.mark.parametrize("size", ["8xlarge", "16xlarge", "24xlarge"])
def test_a_gpu_pool_takes_the_g6e_sizes_aws_sells(size):
    config = make_config("prod", {"cluster": {"gpu_pools": [
        {"name": "gpu", "instance_families": ["g6e"], "instance_sizes": [size], "max_gpus": 8}]}})
    assert config.cluster.gpu_pools[0].instance_types == [f"g6e.{size}"]


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


@pytest.mark.parametrize(("key", "value", "message"), [
    ("environment", "prod",
     "stack config platform.environment: not a stack setting: the environment is the stack's "
     "name (dev), and another would give this stack that environment's resource names; remove "
     "the key"),
    ("project", "other",
     "stack config platform.project: not a stack setting: it comes from 'name' of "
     "mlscaffold.yaml, the same in every stack; remove the key, or change name there"),
    ("region", "us-west-2",
     "stack config platform.region: not a stack setting: it comes from 'region' of "
     "mlscaffold.yaml, the same in every stack; remove the key, or change region there and run "
     "mlscaffold update"),
    ("profile", "prod",
     "stack config platform.profile: not a stack setting: the sizing profile follows the "
     "environment's name in mlscaffold.yaml's environments; remove the key and set the sizes "
     "themselves (e.g. serving.min_instances)"),
    ("owner", "someone", "it comes from 'owner' of mlscaffold.yaml"),
    ("cost_center", "cc-1", "it comes from 'cost_center' of mlscaffold.yaml"),
    ("task", "regression", "it comes from 'task' of mlscaffold.yaml"),
    ("label", "target", "it comes from 'label' of mlscaffold.yaml"),
])
def test_spec_owned_facts_are_not_stack_settings(key, value, message):
    """A stack that set them would name, tag or place its resources as another stack's."""
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {key: value})
    assert caught.value.key == f"platform.{key}"
    assert message in str(caught.value)


def test_the_valid_keys_of_an_unknown_one_are_the_settable_ones():
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"colour": "red"})
    assert str(caught.value) == (
        "stack config platform.colour: unknown key 'colour'; valid keys are: network, cluster, "
        "registry, feature_store, serving, monitoring, training, tracking, protect")


def test_the_programs_refuse_a_stack_region_other_than_the_specs():
    """Under `pulumi up` the program gets the whole config (not the CLI's checks)."""
    spec = validate_spec({"name": "demo", "region": "eu-west-1"})
    platform_config(spec, "dev", None, config_keys={"aws:region": "eu-west-1"})
    with pytest.raises(StackConfigError) as caught:
        platform_config(spec, "dev", None, config_keys={"aws:region": "eu-west-2"})
    assert str(caught.value) == (
        "stack config aws:region: 'eu-west-2' is not the region of mlscaffold.yaml "
        "('eu-west-1'): set aws:region back to eu-west-1, or change region in mlscaffold.yaml "
        "and run mlscaffold update")
    with pytest.raises(StackConfigError, match="nor an AWS region mlscaffold knows"):
        platform_config(spec, "dev", None, config_keys={"aws:region": "us-east-9"})


@pytest.mark.parametrize(("spec_serving", "stack_platform"), [
    ("sagemaker", "kserve"), ("kserve", "sagemaker"), ("none", "sagemaker")])
def test_a_stack_serves_on_the_specs_platform(spec_serving, stack_platform):
    """The Makefile, CI and image are made for the spec's serving; a stack may only turn
    serving off (none: the first deploy does, for the image repository)."""
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"serving": {"platform": stack_platform}}, serving=spec_serving)
    assert str(caught.value) == (
        f"stack config platform.serving.platform: {stack_platform!r} contradicts serving "
        f"{spec_serving!r} of mlscaffold.yaml, for which the Makefile, CI and image are made: "
        f"set it to {spec_serving} (or none), or change serving in mlscaffold.yaml and run "
        "mlscaffold update")
    off = make_config("dev", {"serving": {"platform": "none"}}, serving=spec_serving)
    assert off.serving.platform == "none"


def test_a_pod_asks_for_no_more_gpus_than_a_node_of_its_pool_has():
    """The dev pool's nodes (g6, g5, g4dn xlarge and 2xlarge) have 1 GPU each."""
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"serving": {"gpus": 4}}, serving="kserve")
    assert str(caught.value) == (
        "stack config platform.serving.gpus: 4 GPUs per pod, and the largest node of GPU pool "
        "'gpu' (g4dn.xlarge) has 1: the pod would never be scheduled; lower serving.gpus to 1, "
        "or add 12xlarge (g4dn.12xlarge: 4 GPUs) to the pool's instance_sizes")
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"training": {"gpus": 2}}, serving="kserve")
    assert caught.value.key == "platform.training.gpus"
    assert "2 GPUs per pod, and the largest node of GPU pool 'gpu' (g4dn.xlarge) has 1" in str(
        caught.value)
    # a node large enough, but more than the pool may launch
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"serving": {"gpus": 4}, "cluster": {"gpu_pools": [
            {"instance_families": ["g6"], "instance_sizes": ["xlarge", "12xlarge"],
             "max_gpus": 2}]}}, serving="kserve")
    assert str(caught.value) == (
        "stack config platform.serving.gpus: 4 GPUs per pod exceed max_gpus 2 of GPU pool 'gpu' "
        "(its NodePool's limit), so no node would be launched for it; raise that pool's "
        "max_gpus or lower serving.gpus")
    make_config("staging", {"serving": {"gpus": 1}}, serving="kserve")
    assert make_config("prod", {"serving": {"gpus": 4}}, serving="kserve").serving.gpus == 4
    # SageMaker serving does not run on the pools
    assert make_config("dev", {"serving": {"gpus": 4}}).serving.gpus == 4


@pytest.mark.parametrize(("schedule", "message"), [
    ("every day", "'every day' is not a schedule SageMaker Model Monitor accepts; use "
                  "cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H, 0-23) or "
                  "cron(0 H/N ? * * *) (every N hours from hour H, N 1-24)"),
    ("cron(0 8-17 ? * * *)", "is not a schedule SageMaker Model Monitor accepts"),
    ("cron(30 6 ? * * *)", "is not a schedule SageMaker Model Monitor accepts"),
    ("cron(0 24 ? * * *)", "is out of range (hour 0-23, every 1-24 hours)"),
    ("cron(0 0/25 ? * * *)", "is out of range"),
    ("NOW", "NOW runs the monitor once and drift monitoring recurs; use cron(0 * ? * * *)"),
])
def test_drift_schedule_is_one_sagemaker_accepts(schedule, message):
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"monitoring": {"drift_schedule": schedule}})
    assert caught.value.key == "platform.monitoring.drift_schedule"
    assert message in str(caught.value)
    for accepted in ("cron(0 * ? * * *)", "cron(0 6 ? * * *)", "cron(0 17/12 ? * * *)"):
        config = make_config("dev", {"monitoring": {"drift_schedule": accepted}})
        assert config.monitoring.drift_schedule == accepted


def test_the_network_spreads_over_no_more_zones_than_the_region_has():
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"network": {"availability_zones": 6}}, region="eu-west-1")
    assert str(caught.value) == (
        "stack config platform.network.availability_zones: 6 zones, and eu-west-1 (the region "
        "of mlscaffold.yaml) has 3: set it to 3 or fewer")
    assert make_config("dev", {"network": {"availability_zones": 6}},
                       region="us-east-1").network.availability_zones == 6
    # every profile fits every known region
    for region in REGIONS:
        assert make_config("prod", region=region).network.availability_zones <= \
            REGIONS[region].availability_zones


# ---------------------------------------------------------------- Kubernetes version pinning


@pytest.mark.parametrize(("day", "expected"), [
    # 1.34 left standard support on 2026-12-02 (EKS release calendar): not pinned after that
    (date(2026, 12, 5), "1.36"),
    # before EKS released 1.36 (2026-06-02), 1.35 was the newest
    (date(2026, 5, 1), "1.35"),
    (date(2025, 11, 1), "1.34"),
])
def test_the_default_kubernetes_version_is_the_newest_in_standard_support_that_day(day, expected):
    assert default_kubernetes_version(day) == expected
    facts = KUBERNETES_VERSIONS[expected]
    assert facts.eks_release <= day < facts.standard_support_ends


def test_a_new_stack_file_pins_the_version_and_an_unpinned_one_keeps_the_old_default():
    spec = validate_spec({"name": "churn", "serving": "kserve"}).model_dump(mode="json")
    settings = stack_settings(spec, "dev")
    assert settings["cluster"]["kubernetes_version"] == default_kubernetes_version()
    assert stack_settings(spec, "dev", kubernetes_version="1.35")["cluster"][
        "kubernetes_version"] == "1.35"
    # a stack file without the key (made before stack files pinned it) is not moved
    assert platform_config(spec, "dev", {}).cluster.kubernetes_version == \
        UNPINNED_KUBERNETES_VERSION == "1.34"


def test_a_cluster_stack_counts_only_the_zones_eks_supports():
    # us-west-1 has 3 zones, and EKS supports none of usw1-az2: a cluster's network skips it
    # (stacks/network.py), so a cluster stack has 2 to spread over
    with pytest.raises(StackConfigError) as caught:
        make_config("dev", {"network": {"availability_zones": 3}}, region="us-west-1",
                    serving="kserve")
    assert str(caught.value) == (
        "stack config platform.network.availability_zones: 3 zones, and us-west-1 (the region "
        "of mlscaffold.yaml) has 2 where EKS can run the cluster (usw1-az2 is not one): set it "
        "to 2 or fewer")
    with pytest.raises(StackConfigError, match="has 2 where EKS can run the cluster"):
        make_config("dev", {"network": {"availability_zones": 3},
                            "cluster": {"enabled": True}}, region="us-west-1")
    # without a cluster, every zone of the region is usable
    assert make_config("dev", {"network": {"availability_zones": 3}}, region="us-west-1",
                       serving="sagemaker").network.availability_zones == 3


@pytest.mark.parametrize("region", sorted(REGIONS))
@pytest.mark.parametrize("serving", ["kserve", "sagemaker"])
def test_the_generated_profiles_fit_the_zones_the_stack_can_use(region, serving):
    """What `new` writes (prod: 3 zones) validates in every region, with or without a
    cluster: prod in us-west-1 with KServe gets 2."""
    spec = validate_spec({"name": "demo", "region": region, "serving": serving})
    for environment in spec.environments:
        config = platform_config(spec, environment)
        usable = REGIONS[region].usable_zones(cluster=config.cluster.enabled)
        assert config.network.availability_zones <= usable
    prod = platform_config(spec, "prod").network.availability_zones
    assert prod == (2 if (region, serving) in {("us-west-1", "kserve"),
                                               ("ca-central-1", "kserve")} else 3)


def test_the_hosting_types_are_the_sagemaker_api_s_less_arm64():
    """stacks/sagemaker_types.py is the ProductionVariantInstanceType enum of the botocore it
    was taken from, less the arm64 families; the instance table lists no other type."""
    import botocore
    import botocore.session

    from mlscaffold.stacks.instances import SAGEMAKER_INSTANCES
    from mlscaffold.stacks.sagemaker_types import SAGEMAKER_ARM64_FAMILIES, SAGEMAKER_HOSTING_TYPES

    assert set(SAGEMAKER_INSTANCES) <= SAGEMAKER_HOSTING_TYPES
    if botocore.__version__ != "1.44.8":
        pytest.skip(f"the table is botocore 1.44.8's enum; botocore {botocore.__version__} "
                    "is installed (pyproject.toml caps it at 1.44.8)")
    enum = botocore.session.get_session().get_service_model("sagemaker").shape_for(
        "ProductionVariantInstanceType").enum
    x86 = {name for name in enum if name.split(".")[1] not in SAGEMAKER_ARM64_FAMILIES}
    assert x86 == SAGEMAKER_HOSTING_TYPES
