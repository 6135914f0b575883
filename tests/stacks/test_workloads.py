"""ClusterWorkloads under mocks: the in-cluster program's component, fed the base stack's
``cluster`` output, reaching the private endpoint through the tunnel."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from mlscaffold.graph import GraphResource, ResourceGraph
from mlscaffold.stacks.config import KARPENTER_VERSION, SUPPORTED_KUBERNETES_VERSIONS
from mlscaffold.stacks.constants import GPU_TAINT
from mlscaffold.stacks.instances import EC2_INSTANCES
from mlscaffold.stacks.karpenter import ec2_node_class, node_pool
from mlscaffold.stacks.workloads import (
    CERT_MANAGER_VERSION,
    DCGM_EXPORTER_VERSION,
    KNATIVE_OPERATOR_VERSION,
    KNATIVE_SERVING_VERSION,
    KSERVE_VERSION,
    KUBE_PROMETHEUS_STACK_VERSION,
    READY_TIMEOUT_SECONDS,
    SPEC_HASH_ANNOTATION,
    ClusterWorkloads,
    ClusterWorkloadsArgs,
    predictor_network_policies,
    tunnel_kubeconfig,
)

RELEASE = "kubernetes:helm.sh/v3:Release"
ENDPOINT_HOST = "0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com"
ROLES = {"predictor": "arn:aws:iam::123456789012:role/predictor",
         "alertmanager": "arn:aws:iam::123456789012:role/alertmanager"}
MODEL_URL = "s3://demo-artifacts/models/production/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-dev-serving:0.1.0"
TOPIC = "arn:aws:sns:us-east-1:123456789012:demo-dev-alerts"


def cluster_output(version: str = "1.34", kserve: bool = True) -> dict[str, Any]:
    """The base stack's ``cluster`` output as MlPlatform exports it."""
    output: dict[str, Any] = {
        "name": "demo-dev-eks", "endpoint": f"https://{ENDPOINT_HOST}",
        "certificate_authority": "bW9jay1jYQ==", "relay_instance_id": "i-0relay",
        "node_groups": ["demo-dev-system"], "region": "us-east-1",
        "tunnel_port": 9443, "kubernetes_version": version,
        "karpenter": {"interruption_queue": "demo-dev-eks",
                      "instance_profile": "demo-dev-cluster-karpenter-node-profile"},
        "roles": {}}
    if kserve:
        output["roles"] = dict(ROLES)
        output["serving"] = {"image_uri": IMAGE, "model_url": MODEL_URL}
        output["alert_topic_arn"] = TOPIC
    return output


@pytest.fixture
def build(config_for: Callable[..., Any], run_mocked: Callable[..., ResourceGraph]
          ) -> Callable[..., ResourceGraph]:
    def run(environment: str = "dev", serving: str = "kserve",
            overrides: dict[str, Any] | None = None) -> ResourceGraph:
        config = config_for(environment, overrides, serving=serving)
        if not config.cluster.enabled:
            config = config_for(environment, {"cluster": {"enabled": True}, **(overrides or {})},
                                serving=serving)
        output = cluster_output(config.cluster.kubernetes_version, serving == "kserve")

        def program() -> None:
            ClusterWorkloads("demo", ClusterWorkloadsArgs(config=config, cluster=output))

        return run_mocked(program, stack=environment)

    return run


def releases(graph: ResourceGraph) -> dict[str, GraphResource]:
    return {r.inputs["name"]: r for r in graph.of_type(RELEASE)}


def one(graph: ResourceGraph, type_: str) -> GraphResource:
    """The one resource of `type_`, training's namespace, service account and policies aside
    (test_the_training_namespace covers them)."""
    (resource,) = [r for r in graph.of_type(type_) if not r.name.startswith("demo-training-")]
    return resource


def test_component_token_and_every_child_parented_to_it(build) -> None:
    graph = build()
    component = one(graph, "mlscaffold:stacks:ClusterWorkloads")
    children = [r for r in graph.resources if r is not component]
    assert children and all(r.parent == component.urn for r in children)
    # nothing here is an AWS resource: the base program made the roles it needs
    assert not [r for r in children if r.type.startswith("aws:")]


def test_the_provider_reaches_the_cluster_through_the_tunnel(build) -> None:
    graph = build()
    provider = one(graph, "pulumi:providers:kubernetes")
    config = json.loads(provider.inputs["kubeconfig"])
    (cluster,) = config["clusters"]
    # the local end of `mlscaffold tunnel`; TLS is checked against the endpoint's own name
    assert cluster["cluster"] == {"server": "https://127.0.0.1:9443",
                                  "tls-server-name": ENDPOINT_HOST,
                                  "certificate-authority-data": "bW9jay1jYQ=="}
    exec_ = config["users"][0]["user"]["exec"]
    assert exec_["command"] == "aws"
    assert exec_["args"] == ["eks", "get-token", "--cluster-name", "demo-dev-eks",
                             "--region", "us-east-1"]
    assert config["current-context"] == "demo-dev-eks"
    for resource in graph.resources:
        if resource.type.startswith("kubernetes:"):
            assert provider.urn in resource.dependencies or resource.parent, resource.name


def test_the_kubeconfig_is_the_same_on_every_run() -> None:
    """A changed server would make pulumi-kubernetes replace every resource of the provider."""
    assert tunnel_kubeconfig(cluster_output()) == tunnel_kubeconfig(cluster_output())
    assert "127.0.0.1:9443" in tunnel_kubeconfig(cluster_output())


def test_node_addons_pinned(build) -> None:
    found = releases(build(serving="sagemaker"))
    assert set(found) == {"nvidia-device-plugin", "karpenter-crd", "karpenter"}
    for release in found.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", release.inputs["version"]), release.name
        assert release.inputs["namespace"] == "kube-system"
    assert found["nvidia-device-plugin"].inputs["repositoryOpts"] == {
        "repo": "https://nvidia.github.io/k8s-device-plugin"}
    for chart in ("karpenter-crd", "karpenter"):
        assert found[chart].inputs["chart"] == f"oci://public.ecr.aws/karpenter/{chart}"
        assert found[chart].inputs["version"] == KARPENTER_VERSION
    # the CRDs come from their own release, which Helm upgrades; the controller's copy is
    # installed once only and never upgraded
    assert found["karpenter"].inputs["skipCrds"] is True
    assert found["karpenter-crd"].urn in found["karpenter"].dependencies


def test_device_plugin_runs_on_gpu_nodes_only(build) -> None:
    values = releases(build())["nvidia-device-plugin"].inputs["values"]
    assert values["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal",
                                      "value": "true", "effect": "NoSchedule"}]
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_karpenter_values(build) -> None:
    values = releases(build())["karpenter"].inputs["values"]
    assert values["settings"] == {"clusterName": "demo-dev-eks",
                                  "clusterEndpoint": f"https://{ENDPOINT_HOST}",
                                  "interruptionQueue": "demo-dev-eks"}
    # its role comes through EKS Pod Identity (the base stack's association): no annotation
    assert values["serviceAccount"] == {"create": True, "name": "karpenter"}
    assert values["nodeSelector"] == {"kubernetes.io/os": "linux",
                                      "mlscaffold.io/node-pool": "system"}
    assert values["replicas"] == 2
    assert set(values["controller"]["resources"]) == {"requests", "limits"}


def test_one_karpenter_replica_on_a_single_system_node(build) -> None:
    graph = build(overrides={"cluster": {"system_node_group": {"min_size": 1,
                                                                "desired_size": 1}}})
    # the chart spreads replicas over nodes (required anti-affinity by host name)
    assert releases(graph)["karpenter"].inputs["values"]["replicas"] == 1


NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
TWO_POOLS = {"cluster": {"gpu_pools": [
    {"name": "train", "instance_families": ["p5"], "capacity_types": ["spot", "on-demand"],
     "max_gpus": 16},
    {"name": "infer", "instance_families": ["g6", "g5"], "instance_sizes": ["xlarge"],
     "max_gpus": 4}]}}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_a_node_class_and_node_pool_per_pool(build, config_for, environment: str) -> None:
    overrides = {"cluster": {"enabled": True, **TWO_POOLS["cluster"]}}
    config = config_for(environment, overrides)
    graph = build(environment, overrides=overrides)
    karpenter = releases(graph)["karpenter"]
    pools = {r.inputs["metadata"]["name"]: r for r in graph.of_type(NODE_POOL)}
    classes = {r.inputs["metadata"]["name"]: r for r in graph.of_type(NODE_CLASS)}
    # the GPU pools and the profile's CPU pool
    assert set(pools) == set(classes) == {"train", "infer", "cpu"}
    assert [pool.name for pool in config.cluster.pools] == ["train", "infer", "cpu"]
    for pool in config.cluster.pools:
        node_class = ec2_node_class(
            pool, cluster_name=f"demo-{environment}-eks",
            instance_profile="demo-dev-cluster-karpenter-node-profile",
            ami_release=config.cluster.node_image_version, tags=config.tags)
        assert classes[pool.name].inputs == node_class
        assert pools[pool.name].inputs == node_pool(pool)
        # the CRDs and the controller first, then the class its pool refers to
        assert karpenter.urn in classes[pool.name].dependencies
        assert {karpenter.urn, classes[pool.name].urn} <= set(pools[pool.name].dependencies)
    # production nodes stay on a tested AMI release; dev takes each new one
    for pool in ("infer", "cpu"):
        alias = classes[pool].inputs["spec"]["amiSelectorTerms"][0]["alias"]
        assert alias == ("al2023@latest" if environment == "dev" else "al2023@v20260714")
    # CPU nodes: no GPU taint, their own smaller root volume
    assert "taints" not in pools["cpu"].inputs["spec"]["template"]["spec"]
    assert classes["cpu"].inputs["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "50Gi"


def test_no_cpu_pool_when_the_config_turns_it_off(build) -> None:
    graph = build(serving="sagemaker", overrides={"cluster": {"cpu_pool": None}})
    assert [r.inputs["metadata"]["name"] for r in graph.of_type(NODE_POOL)] == ["gpu"]
    assert [r.inputs["metadata"]["name"] for r in graph.of_type(NODE_CLASS)] == ["gpu"]


def _fits(pod_spec: dict[str, Any], pool_node: dict[str, Any]) -> bool:
    """Whether the scheduler may put a pod with `pod_spec` on a node like `pool_node`: the
    node's NoSchedule taints tolerated, its labels matching the pod's nodeSelector."""
    tolerated = {(t["key"], t.get("value"), t["effect"]) for t in pod_spec.get("tolerations", [])}
    labels = pool_node["metadata"]["labels"]
    return all((t["key"], t["value"], t["effect"]) in tolerated
               for t in pool_node["spec"].get("taints", [])) and all(
        labels.get(k) == v for k, v in pod_spec.get("nodeSelector", {}).items())


def _pool_node(pool: Any, system: bool = False) -> dict[str, Any]:
    """A node of a pool as Karpenter makes it (labels, taints), or a system node."""
    if system:
        return {"metadata": {"labels": {"mlscaffold.io/node-pool": "system"}}, "spec": {}}
    template = node_pool(pool)["spec"]["template"]
    return {"metadata": {"labels": template["metadata"]["labels"]},
            "spec": {"taints": template["spec"].get("taints", [])}}


def test_a_cpu_predictor_selects_no_pool_and_fits_system_and_cpu_nodes(build, config_for):
    """The dev profile serves on CPU: the predictor is pinned nowhere, so its replicas fill the
    system nodes first and a replica that fits nowhere gets a CPU-pool node from Karpenter;
    GPU nodes stay out of its reach (their taint)."""
    config = config_for("dev", serving="kserve")
    assert config.serving.gpus == 0
    predictor = one(build("dev"), ISVC).inputs["spec"]["predictor"]
    for key in ("nodeSelector", "tolerations", "affinity"):
        assert key not in predictor
    (container,) = predictor["containers"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    # it asks for what it may use: a replica cannot crowd out the controllers beside it
    assert container["resources"]["requests"] == container["resources"]["limits"]
    cpu_pool, gpu_pool = config.cluster.cpu_pool, config.cluster.gpu_pools[0]
    assert _fits(predictor, _pool_node(cpu_pool, system=True))
    assert _fits(predictor, _pool_node(cpu_pool))
    assert not _fits(predictor, _pool_node(gpu_pool))
    # a replica fits on the pool's largest node at all (one vCPU by default)
    largest = max(cpu_pool.instance_types, key=lambda t: EC2_INSTANCES[t].vcpus)
    assert float(container["resources"]["requests"]["cpu"]) < EC2_INSTANCES[largest].vcpus


def test_a_gpu_predictor_still_selects_the_gpu_pool(build, config_for):
    predictor = one(build("prod"), ISVC).inputs["spec"]["predictor"]
    config = config_for("prod", serving="kserve")
    assert _fits(predictor, _pool_node(config.cluster.gpu_pools[0]))
    assert not _fits(predictor, _pool_node(config.cluster.cpu_pool))
    assert not _fits(predictor, _pool_node(config.cluster.cpu_pool, system=True))


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_helm_values_are_valid_kubernetes(build, version: str) -> None:
    """The pod-level fragments of the charts' values, as a Pod, pass the Kubernetes schema."""
    found = releases(build())
    karpenter = found["karpenter"].inputs["values"]
    device_plugin = found["nvidia-device-plugin"].inputs["values"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "values"}, "spec": {
        "nodeSelector": {**karpenter["nodeSelector"], **device_plugin["nodeSelector"]},
        "tolerations": device_plugin["tolerations"],
        "containers": [{"name": "controller",
                        "image": f"public.ecr.aws/karpenter/controller:{KARPENTER_VERSION}",
                        "resources": karpenter["controller"]["resources"]}],
    }}
    kubernetes_validate.validate(pod, f"{version}.0", strict=True)


def test_no_kserve_or_prometheus_without_kserve_serving(build) -> None:
    graph = build(serving="sagemaker")
    assert not graph.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert set(releases(graph)) == {"nvidia-device-plugin", "karpenter-crd", "karpenter"}


def test_kserve_install_and_namespace(build) -> None:
    graph = build()
    found = releases(graph)
    assert found["cert-manager"].inputs["version"] == CERT_MANAGER_VERSION
    assert found["cert-manager"].inputs["values"] == {"crds": {"enabled": True}}
    for release in ("kserve-crd", "kserve"):
        assert found[release].inputs["chart"] == f"oci://ghcr.io/kserve/charts/{release}"
        assert found[release].inputs["version"] == KSERVE_VERSION
    controller = found["kserve"].inputs["values"]["kserve"]["controller"]
    assert controller["deploymentMode"] == "RawDeployment"
    assert {found["kserve-crd"].urn, found["cert-manager"].urn} <= set(
        found["kserve"].dependencies)

    namespace = one(graph, "kubernetes:core/v1:Namespace").inputs["metadata"]
    assert namespace["name"] == "ml-serving" != "default"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    account = one(graph, "kubernetes:core/v1:ServiceAccount").inputs
    assert account["metadata"] == {"name": "demo-predictor", "namespace": "ml-serving",
                                   "annotations": {"eks.amazonaws.com/role-arn":
                                                   ROLES["predictor"]}}
    assert account["automountServiceAccountToken"] is False


def test_inference_service_serves_the_base_stacks_image_and_model(build, config_for) -> None:
    graph = build("prod")
    service = one(graph, "kubernetes:serving.kserve.io/v1beta1:InferenceService")
    dependencies = set(service.dependencies)
    assert releases(graph)["kserve"].urn in dependencies
    assert one(graph, "kubernetes:core/v1:ServiceAccount").urn in dependencies
    assert service.inputs["metadata"]["namespace"] == "ml-serving"
    predictor = service.inputs["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "demo-predictor"
    gpu_pool = config_for("prod").cluster.gpu_pools[0]
    assert predictor["nodeSelector"] == gpu_pool.labels
    (toleration,) = predictor["tolerations"]
    assert toleration == {"key": GPU_TAINT["key"], "operator": "Equal",
                          "value": GPU_TAINT["value"], "effect": "NoSchedule"}
    (container,) = predictor["containers"]
    assert container["image"] == IMAGE
    assert {"name": "STORAGE_URI", "value": MODEL_URL} in container["env"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)  # prod sizing


def test_prometheus_and_dcgm(build) -> None:
    graph = build()
    found = releases(graph)
    stack, dcgm = found["kube-prometheus-stack"], found["dcgm-exporter"]
    assert stack.inputs["version"] == KUBE_PROMETHEUS_STACK_VERSION
    assert dcgm.inputs["version"] == DCGM_EXPORTER_VERSION
    assert stack.urn in dcgm.dependencies

    values = dcgm.inputs["values"]
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert values["tolerations"] == [{"key": GPU_TAINT["key"], "operator": "Equal",
                                      "value": GPU_TAINT["value"], "effect": "NoSchedule"}]
    assert values["serviceMonitor"]["enabled"] is True

    values = stack.inputs["values"]
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    (rule,) = values["additionalPrometheusRulesMap"]["gpu"]["groups"][0]["rules"]
    assert rule["expr"] == "DCGM_FI_DEV_GPU_UTIL > 90"
    (cpu,) = values["additionalPrometheusRulesMap"]["nodes"]["groups"][0]["rules"]
    assert cpu["expr"].startswith('100 * (1 - avg by (instance) (rate(node_cpu_seconds_total'
                                  '{mode="idle"}[5m])))')
    assert cpu["expr"].endswith("> 80") and cpu["for"] == "15m"
    alertmanager = values["alertmanager"]
    assert alertmanager["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        ROLES["alertmanager"])
    (sns,) = next(r for r in alertmanager["config"]["receivers"] if r["name"] == "sns")[
        "sns_configs"]
    assert sns["topic_arn"] == TOPIC
    assert values["grafana"]["adminPassword"] == ""


# ------------------------------------------------------------------ KServe in operation

ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@pytest.mark.parametrize(("environment", "timeout"), [("dev", "900"), ("prod", "1800")])
def test_pulumi_up_waits_for_the_inference_service(build, environment, timeout):
    """Ready or a failed deploy: 15 minutes for a CPU predictor (dev), 30 for a GPU one."""
    service = one(build(environment), ISVC)
    annotations = service.inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/waitFor"] == "condition=Ready"
    assert annotations["pulumi.com/timeoutSeconds"] == timeout
    assert int(timeout) == READY_TIMEOUT_SECONDS[
        "gpu" if service.inputs["spec"]["predictor"]["containers"][0]["resources"]["limits"].get(
            "nvidia.com/gpu") else "cpu"]
    # KServe's own annotations stay
    assert annotations["serving.kserve.io/deploymentMode"] == "RawDeployment"


def test_the_provider_has_the_generic_await():
    """pulumi.com/waitFor came in pulumi-kubernetes 4.18.0 and takes precedence over the
    provider's own await logic since 4.18.4 (pulumi/pulumi-kubernetes#3329); the Python SDK
    installs the provider plugin of its own version."""
    from ..conftest import REPO

    platform = (REPO / "scaffolder" / "requirements" / "platform.txt").read_text().splitlines()
    (requirement,) = [line for line in platform if line.startswith("pulumi-kubernetes")]
    minimum = re.search(r">=\s*([\d.]+)", requirement)
    assert minimum, requirement
    assert tuple(int(part) for part in minimum.group(1).split(".")) >= (4, 18, 4), requirement


def _spec_hash(overrides: dict[str, Any], config_for, run_mocked) -> str:
    config = config_for("dev", overrides, serving="kserve")

    def program() -> None:
        ClusterWorkloads("demo", ClusterWorkloadsArgs(config=config, cluster=cluster_output()))

    service = one(run_mocked(program), ISVC)
    return service.inputs["spec"]["predictor"]["annotations"][SPEC_HASH_ANNOTATION]


def test_every_spec_change_reaches_the_deployment(config_for, run_mocked):
    """KServe 0.15 reports its Deployment's observedGeneration (kserve/kserve#6081): a change
    of the replica bounds alone, which KServe gives to the HPA, must still change the pods."""
    same = _spec_hash({}, config_for, run_mocked)
    assert re.fullmatch(r"[0-9a-f]{16}", same)
    assert _spec_hash({}, config_for, run_mocked) == same
    assert _spec_hash({"serving": {"max_replicas": 3}}, config_for, run_mocked) != same


def _policies(graph: ResourceGraph) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in graph.of_type(NETWORK_POLICY)
            if r.inputs["metadata"]["namespace"] == "ml-serving"}


def test_the_model_namespace_denies_by_default(build):
    graph = build()
    policies = _policies(graph)
    # no client namespace configured: nothing may call the predictor (kubelet probes come
    # from the node, which the VPC CNI always admits)
    assert set(policies) == {"default-deny", "demo-predictor-egress"}
    deny = policies["default-deny"]
    assert deny["metadata"]["namespace"] == "ml-serving"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    service = one(graph, ISVC)
    namespace = one(graph, "kubernetes:core/v1:Namespace")
    for policy in graph.of_type(NETWORK_POLICY):
        if policy.inputs["metadata"]["namespace"] != "ml-serving":
            continue
        assert namespace.urn in policy.dependencies
        assert policy.urn in service.dependencies  # isolated before the predictor starts


def test_the_predictor_reaches_dns_and_the_aws_apis_only(build):
    egress = _policies(build(overrides={"network": {"cidr": "10.8.0.0/16"}}))[
        "demo-predictor-egress"]["spec"]
    assert egress["podSelector"] == {"matchLabels": {
        "serving.kserve.io/inferenceservice": "demo"}}
    assert egress["policyTypes"] == ["Egress"]
    dns, vpc, public = egress["egress"]
    assert dns == {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                      "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    https = [{"protocol": "TCP", "port": 443}]
    assert vpc == {"to": [{"ipBlock": {"cidr": "10.8.0.0/16"}}], "ports": https}  # STS
    assert public == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
        "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
        "192.168.0.0/16"]}}], "ports": https}  # S3 through its gateway endpoint


def _allowed(rule: dict[str, Any], address: str) -> bool:
    """Whether an egress rule's ipBlocks admit `address`."""
    target = ipaddress.ip_address(address)
    for peer in rule["to"]:
        block = peer.get("ipBlock")
        if block and target in ipaddress.ip_network(block["cidr"]) and not any(
                target in ipaddress.ip_network(e) for e in block.get("except", [])):
            return True
    return False


@pytest.mark.parametrize(("address", "allowed"), [
    ("169.254.169.254", False),  # instance metadata: IRSA pods never need it
    ("169.254.170.23", False),  # EKS Pod Identity agent
    ("192.168.1.10", False), ("172.20.0.10", False), ("100.64.0.1", False),
    ("10.0.3.17", True),  # the VPC: the STS interface endpoint
    ("10.1.0.1", False),  # another private network
    ("52.217.10.1", True),  # S3 (public addresses, through the gateway endpoint)
])
def test_egress_addresses(build, address, allowed):
    rules = _policies(build())["demo-predictor-egress"]["spec"]["egress"]
    assert any(_allowed(rule, address) for rule in rules if "ipBlock" in rule["to"][0]) is \
        allowed


def test_only_the_configured_namespaces_call_the_model(build):
    graph = build(overrides={"serving": {"client_namespaces": ["apps", "monitoring"]}})
    ingress = _policies(graph)["demo-predictor-ingress"]["spec"]
    assert ingress == {
        "podSelector": {"matchLabels": {"serving.kserve.io/inferenceservice": "demo"}},
        "policyTypes": ["Ingress"],
        "ingress": [{
            "from": [{"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In",
                "values": ["apps", "monitoring"]}]}}],
            "ports": [{"protocol": "TCP", "port": 8080}]}]}
    # the port the predictor's container listens on
    (container,) = one(graph, ISVC).inputs["spec"]["predictor"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [8080]


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_network_policies_are_valid_kubernetes(version):
    policies = predictor_network_policies("demo", "ml-serving", vpc_cidr="10.0.0.0/16",
                                          client_namespaces=["apps"],
                                          labels={"app.kubernetes.io/part-of": "demo-dev"})
    assert [p["metadata"]["name"] for p in policies] == [
        "default-deny", "demo-predictor-ingress", "demo-predictor-egress"]
    for policy in policies:
        kubernetes_validate.validate(policy, f"{version}.0", strict=True)


@pytest.mark.parametrize(("names", "message"), [
    (["Apps"], "'Apps' is not a namespace name"),
    (["apps", "apps"], "namespace names must be unique"),
])
def test_client_namespaces_are_namespace_names(config_for, names, message):
    from mlscaffold.stacks.config import StackConfigError

    with pytest.raises(StackConfigError, match=rf"platform\.serving\.client_namespaces: "
                                               rf"{re.escape(message)}"):
        config_for("dev", {"serving": {"client_namespaces": names}}, serving="kserve")


def test_the_training_namespace(build):
    """`train --on eks` Jobs run in ml-training: restricted pod security, deny by default, and
    the service account the base stack's Pod Identity association names."""
    graph = build(overrides={"network": {"cidr": "10.8.0.0/16"}})
    namespace = graph.named("demo-training-namespace")
    labels = namespace.inputs["metadata"]["labels"]
    assert namespace.inputs["metadata"]["name"] == "ml-training"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    account = graph.named("demo-training-service-account")
    assert account.inputs["metadata"]["name"] == "trainer"
    assert account.inputs["metadata"]["namespace"] == "ml-training"
    assert account.inputs["automountServiceAccountToken"] is False
    assert namespace.urn in account.dependencies
    policies = {r.inputs["metadata"]["name"]: r for r in graph.of_type(NETWORK_POLICY)
                if r.inputs["metadata"]["namespace"] == "ml-training"}
    assert set(policies) == {"default-deny", "training-egress"}
    assert all(namespace.urn in p.dependencies for p in policies.values())
    dns, agent, vpc, public = policies["training-egress"].inputs["spec"]["egress"]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert agent == {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
                     "ports": [{"protocol": "TCP", "port": 80}]}
    assert vpc["to"] == [{"ipBlock": {"cidr": "10.8.0.0/16"}}]
    assert "169.254.0.0/16" in public["to"][0]["ipBlock"]["except"]


# ------------------------------------------------------------------ KServe Serverless (Knative)

SERVERLESS = {"serving": {"kserve_mode": "serverless"}}
CANARY = {"serving": {"kserve_mode": "serverless",
                      "rollout": {"strategy": "canary", "canary_percent": 20}}}
KNATIVE_SERVING = "kubernetes:operator.knative.dev/v1beta1:KnativeServing"


def test_serverless_installs_knative_with_kourier_inside_the_cluster(build):
    graph = build(overrides=SERVERLESS)
    found = releases(graph)
    operator = found["knative-operator"]
    assert (operator.inputs["chart"], operator.inputs["version"]) == (
        "knative-operator", KNATIVE_OPERATOR_VERSION) == ("knative-operator", "v1.18.3")
    assert operator.inputs["repositoryOpts"] == {"repo": "https://knative.github.io/operator"}
    assert operator.inputs["namespace"] == "knative-operator"
    serving = one(graph, KNATIVE_SERVING)
    assert operator.urn in serving.dependencies
    assert serving.inputs["metadata"] == {
        "name": "knative-serving", "namespace": "knative-serving",
        "annotations": {"pulumi.com/waitFor": "condition=Ready",
                        "pulumi.com/timeoutSeconds": "600"}}
    spec = serving.inputs["spec"]
    assert spec["version"] == KNATIVE_SERVING_VERSION == "1.18.2"
    # no public load balancer: Kourier's gateway Service is ClusterIP
    assert spec["ingress"] == {"kourier": {"enabled": True, "service-type": "ClusterIP"}}
    assert spec["config"]["network"] == {
        "ingress-class": "kourier.ingress.networking.knative.dev"}
    assert spec["config"]["deployment"] == {
        "registries-skipping-tag-resolving": "123456789012.dkr.ecr.us-east-1.amazonaws.com"}
    assert spec["config"]["features"] == {"kubernetes.podspec-securitycontext": "enabled",
                                          "kubernetes.podspec-nodeselector": "enabled",
                                          "kubernetes.podspec-tolerations": "enabled"}
    # KServe in Serverless mode, without Istio, once Knative is Ready
    kserve = found["kserve"]
    assert kserve.inputs["values"] == {"kserve": {"controller": {
        "deploymentMode": "Serverless",
        "gateway": {"disableIngressCreation": True, "disableIstioVirtualHost": True}}}}
    assert serving.urn in kserve.dependencies
    service = one(graph, ISVC)
    assert service.inputs["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == (
        "Serverless")
    assert service.inputs["metadata"]["labels"]["networking.knative.dev/visibility"] == (
        "cluster-local")
    assert "canaryTrafficPercent" not in service.inputs["spec"]["predictor"]


def test_standard_mode_installs_no_knative(build):
    graph = build()
    assert "knative-operator" not in releases(graph)
    assert not graph.of_type(KNATIVE_SERVING)
    # KServe refuses a new deploymentMode on an InferenceService: another mode replaces it
    options = one(graph, ISVC).options
    assert options["replace_on_changes"] == [
        'metadata.annotations["serving.kserve.io/deploymentMode"]']
    assert options["delete_before_replace"] is True


def test_serverless_admits_knatives_data_path_only(build):
    """The activator and Kourier's gateway on queue-proxy's port, the autoscaler on its
    metrics port; no client policy (callers come through Kourier)."""
    policies = _policies(build(overrides={"serving": {"kserve_mode": "serverless"}}))
    assert set(policies) == {"default-deny", "demo-predictor-knative", "demo-predictor-egress"}

    def pods(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "podSelector": {"matchLabels": labels}}

    assert policies["demo-predictor-knative"]["spec"] == {
        "podSelector": {"matchLabels": {"serving.kserve.io/inferenceservice": "demo"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [pods("knative-serving", {"app": "activator"}),
                      pods("kourier-system", {"app": "3scale-kourier-gateway"})],
             "ports": [{"protocol": "TCP", "port": 8012}]},
            {"from": [pods("knative-serving", {"app": "autoscaler"})],
             "ports": [{"protocol": "TCP", "port": 9090}]}]}
    assert policies["default-deny"]["spec"] == {"podSelector": {},
                                                "policyTypes": ["Ingress", "Egress"]}


def test_knative_policies_are_valid_kubernetes():
    for policy in predictor_network_policies("demo", "ml-serving", vpc_cidr="10.0.0.0/16",
                                             knative=True):
        kubernetes_validate.validate(policy, f"{SUPPORTED_KUBERNETES_VERSIONS[-1]}.0",
                                     strict=True)


KEY = f"models/{'ab' * 32}/model.tar.gz"


def _canary_service(config_for, run_mocked, decision: dict[str, str] | None = None
                    ) -> dict[str, Any]:
    overrides = json.loads(json.dumps(CANARY))
    if decision:
        overrides["serving"]["rollout"]["canary_decision"] = decision
    config = config_for("prod", overrides, serving="kserve")
    output = cluster_output()
    output["serving"]["model_url"] = f"s3://demo-artifacts/{KEY}"  # image tag 0.1.0

    def program() -> None:
        ClusterWorkloads("demo", ClusterWorkloadsArgs(config=config, cluster=output))

    return one(run_mocked(program, stack="prod"), ISVC).inputs["spec"]["predictor"]


def test_a_new_version_is_a_canary_until_promoted_or_rolled_back(config_for, run_mocked):
    opened = _canary_service(config_for, run_mocked)
    assert opened["canaryTrafficPercent"] == 20
    promoted = _canary_service(config_for, run_mocked, {
        "outcome": "promote", "model_key": KEY, "image_tag": "0.1.0"})
    rolled_back = _canary_service(config_for, run_mocked, {
        "outcome": "rollback", "model_key": KEY, "image_tag": "0.1.0"})
    assert (promoted["canaryTrafficPercent"], rolled_back["canaryTrafficPercent"]) == (100, 0)
    # a decision about an older version leaves the new one a canary
    assert _canary_service(config_for, run_mocked, {
        "outcome": "promote", "model_key": KEY, "image_tag": "0.0.9"})[
        "canaryTrafficPercent"] == 20
    # promoting or rolling back moves traffic only: the revision template (the spec hash on
    # the predictor's pods) stays, so Knative starts no revision for it
    hashes = {p["annotations"][SPEC_HASH_ANNOTATION] for p in (opened, promoted, rolled_back)}
    assert len(hashes) == 1


def test_the_docs_name_the_pinned_knative_and_the_ports_opened_to_it():
    from mlscaffold.stacks.workloads import QUEUE_PROXY_HTTP_PORT, QUEUE_PROXY_METRICS_PORT

    from ..conftest import REPO

    text = " ".join((REPO / "docs" / "deploy.md").read_text(encoding="utf-8").split())
    assert (f"(Helm chart `knative-operator` {KNATIVE_OPERATOR_VERSION} from "
            f"knative.github.io/operator) and Knative Serving {KNATIVE_SERVING_VERSION} with "
            f"Kourier, pinned with KServe {KSERVE_VERSION}") in text
    assert f"`app: 3scale-kourier-gateway`) reach TCP {QUEUE_PROXY_HTTP_PORT} |" in text
    assert (f"(`knative-serving`, `app: autoscaler`) reaches TCP {QUEUE_PROXY_METRICS_PORT} "
            "|") in text
