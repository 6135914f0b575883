"""What runs inside the EKS cluster: the in-cluster program's one component.

A project's ``infra/`` makes every AWS resource (``MlPlatform``) and needs nothing but the AWS
APIs. What runs inside the cluster (the NVIDIA device plugin, Karpenter and its pools, KServe
and the InferenceService, Prometheus) needs the Kubernetes API, whose endpoint is private: it is
``infra/cluster/``, a second Pulumi program applied through `mlscaffold tunnel` (an SSM
port-forwarding session through the base stack's API relay) once the base stack is up. Its
inputs are the base stack's ``cluster`` output (endpoint, roles, image and model), read with a
StackReference, and the environment's config for everything it decides itself.

The Kubernetes provider's kubeconfig points at the tunnel's local port, with the endpoint's host
name for TLS, and never changes between runs: pulumi-kubernetes replaces every resource of a
provider whose cluster server changes (pulumi/pulumi-kubernetes#4019).

KServe in operation: ``pulumi up`` waits for the InferenceService's ``Ready`` condition (the
provider's ``pulumi.com/waitFor`` annotation) for at most :data:`READY_TIMEOUT_SECONDS`, so an
image that does not pull or a model that does not load fails the deploy. The model's namespace
denies all traffic by default (NetworkPolicies of :func:`predictor_network_policies`, enforced
once the VPC CNI add-on runs with ``enableNetworkPolicy``); the predictor admits the namespaces
of ``serving.client_namespaces`` on its port, and reaches only CoreDNS and HTTPS to the AWS APIs
(STS in the VPC, S3), never the instance metadata service.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..tunnel import tunnel_kubeconfig
from ._common import child_options, token
from .cluster import SYSTEM_POOL
from .config import GPU_POOL_LABEL, GPU_TOLERATION, KARPENTER_VERSION, PlatformConfig
from .constants import (
    GPU_NODE_SELECTOR,
    INFERENCE_SERVICE_LABEL,
    KNATIVE_SERVING_KIND,
    NODE_CLASS_KIND,
    NODE_POOL_KIND,
)
from .karpenter import KARPENTER_NAMESPACE, KARPENTER_SERVICE_ACCOUNT, ec2_node_class, node_pool
from .model_keys import deployed_version
from .monitoring import ALERTMANAGER_SERVICE_ACCOUNT, MONITORING_NAMESPACE, NODE_CPU_ALARM_PERCENT
from .serving import (
    PREDICTOR_NAMESPACE,
    SERVING_PORT,
    inference_service_manifest,
    predictor_service_account,
)
from .training_layout import TRAINING_NAMESPACE, TRAINING_SERVICE_ACCOUNT

__all__ = [
    "CERT_MANAGER_VERSION",
    "DCGM_EXPORTER_VERSION",
    "KARPENTER_CHARTS",
    "KNATIVE_OPERATOR_VERSION",
    "KNATIVE_SERVING_VERSION",
    "KSERVE_VERSION",
    "KUBE_PROMETHEUS_STACK_VERSION",
    "NVIDIA_DEVICE_PLUGIN_CHART",
    "READY_TIMEOUT_SECONDS",
    "SPEC_HASH_ANNOTATION",
    "ClusterWorkloads",
    "ClusterWorkloadsArgs",
    "inference_service_readiness",
    "predictor_network_policies",
    "training_network_policies",
    "tunnel_kubeconfig",
]

NVIDIA_DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"
NVIDIA_DEVICE_PLUGIN_CHART = "0.19.3"
# Karpenter's charts (public ECR, OCI): the CRDs in a chart of their own, which Helm upgrades
# with the release (CRDs in the controller chart are only ever installed, never upgraded:
# Karpenter docs, "Upgrade Guide", CRD upgrades); both at KARPENTER_VERSION
KARPENTER_CHARTS = "oci://public.ecr.aws/karpenter"
CERT_MANAGER_REPO = "https://charts.jetstack.io"
CERT_MANAGER_VERSION = "v1.19.1"
KSERVE_CHARTS = "oci://ghcr.io/kserve/charts"
# v0.20.0 (the newest release) adds spec.canary, but it sends a canary no share of the model's
# traffic (config.py, ServingConfig._delivery); moving there also means its controller chart
# `kserve-resources` (was `kserve`) and the mode name `Standard` (was `RawDeployment`)
KSERVE_VERSION = "v0.15.2"
# Knative Serving for KServe's Serverless mode (serving.kserve_mode), installed by the Knative
# Operator's chart and a KnativeServing resource, with Kourier as its networking layer (no
# Istio). KServe's v0.15 docs ("Serverless Installation Guide", recommended version matrix)
# pair Kubernetes 1.32, the newest row, with Knative 1.17 or 1.18; Knative 1.18 needs
# Kubernetes 1.31 or later (knative.dev/pkg's minimum at that release), so it runs on every
# EKS version of KUBERNETES_VERSIONS. Knative 1.19+ is untested with KServe 0.15 (KServe
# v0.20.0 installs 1.21.1) and 1.21+ needs Kubernetes 1.33 or later: moving on goes with a
# KServe upgrade. Operator v1.18.3 bundles Serving 1.18.0-1.18.2 and Kourier 1.18
# (knative/operator cmd/operator/kodata); its chart is published at KNATIVE_OPERATOR_REPO
KNATIVE_OPERATOR_REPO = "https://knative.github.io/operator"
KNATIVE_OPERATOR_VERSION = "v1.18.3"
KNATIVE_SERVING_VERSION = "1.18.2"
KNATIVE_OPERATOR_NAMESPACE = "knative-operator"
KNATIVE_SERVING_NAMESPACE = "knative-serving"
KOURIER_NAMESPACE = "kourier-system"
KNATIVE_READY_TIMEOUT_SECONDS = 10 * 60
# what reaches a Knative revision's pods (Knative Serving's networking constants, and the
# pod labels of serving-core.yaml and kourier.yaml 1.18): the activator and the Kourier gateway
# send requests to the queue-proxy sidecar's HTTP/1 port; the autoscaler reads its metrics
KNATIVE_ACTIVATOR_LABELS = {"app": "activator"}
KNATIVE_AUTOSCALER_LABELS = {"app": "autoscaler"}
KOURIER_GATEWAY_LABELS = {"app": "3scale-kourier-gateway"}
QUEUE_PROXY_HTTP_PORT = 8012
QUEUE_PROXY_METRICS_PORT = 9090
KUBE_PROMETHEUS_STACK_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_VERSION = "88.6.4"
DCGM_EXPORTER_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_EXPORTER_VERSION = "4.1.1"

# How long `pulumi up` waits for a new or changed InferenceService to be Ready before it fails
# the deploy (pulumi-kubernetes >= 4.18: the `pulumi.com/waitFor` and `pulumi.com/timeoutSeconds`
# annotations of its generic await; 4.18.4 made them take precedence, pulumi/pulumi-kubernetes
# #3329). A first start is: a node from Karpenter (a GPU node is launched and joins within
# minutes, longer when spot capacity is short and it falls back to other types), the storage
# initializer image and the serving image pulled onto it, the model downloaded from S3, the
# readiness probe. A CPU predictor lands on the system nodes, or on a node Karpenter launches in
# the CPU pool when they are full; a GPU predictor waits for a GPU node (SPOT in dev), the NVIDIA
# device plugin on it, and images of several GB.
READY_TIMEOUT_SECONDS: dict[str, int] = {"cpu": 15 * 60, "gpu": 30 * 60}
_WAIT_FOR = "pulumi.com/waitFor"
_TIMEOUT = "pulumi.com/timeoutSeconds"
# KServe 0.15 copies the Deployment's observedGeneration into the InferenceService's status
# (kserve/kserve#6081), and Pulumi waits until that reaches the InferenceService's generation:
# a change that leaves the Deployment alone (replica bounds: the HPA's) would wait until the
# timeout. A hash of the spec on the predictor's pods makes every change reach the Deployment.
# Serverless mode copies the Knative Service's observedGeneration instead (kserve v0.15.2
# PropagateStatus), and the hash makes every change reach its revision template, but
# canaryTrafficPercent: that one changes the Knative Service's traffic (a new generation too),
# and in the template it would start a revision of its own on every promotion or rollback.
SPEC_HASH_ANNOTATION = "mlscaffold.io/spec-hash"
# the InferenceService's mode, as a Pulumi property path (brackets: the key holds dots)
DEPLOYMENT_MODE_PATH = 'metadata.annotations["serving.kserve.io/deploymentMode"]'

# what the predictor reaches: CoreDNS, and HTTPS to the AWS APIs. Its storage initializer reads
# the model with IRSA: STS through the VPC's interface endpoint (an address of the VPC), S3
# through its gateway endpoint, whose addresses are S3's public ones; a NetworkPolicy cannot name
# the endpoint's prefix list, so HTTPS goes to every address but private and link-local ones.
# 169.254.0.0/16 holds the instance metadata service: IRSA pods never need it (AWS docs, EKS
# user guide: "Limit Pod traffic with Kubernetes network policies", considerations).
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}  # the CoreDNS add-on's pods
NON_PUBLIC_CIDRS: tuple[str, ...] = ("10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16",
                                     "172.16.0.0/12", "192.168.0.0/16")
# the label Kubernetes puts on every namespace (its value: the namespace's name)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def inference_service_readiness(gpus: int) -> dict[str, str]:
    """The annotations that make `pulumi up` wait for an InferenceService's Ready condition."""
    return {_WAIT_FOR: "condition=Ready",
            _TIMEOUT: str(READY_TIMEOUT_SECONDS["gpu" if gpus else "cpu"])}


def predictor_network_policies(model: str, namespace: str, *, vpc_cidr: str,
                               client_namespaces: Sequence[str] = (),
                               labels: Mapping[str, str] | None = None,
                               knative: bool = False) -> list[dict[str, Any]]:
    """The NetworkPolicies of a model's namespace, as plain manifests.

    ``default-deny`` isolates every pod of `namespace` both ways. ``<model>-predictor-ingress``
    (only with `client_namespaces`) admits their pods on the serving port; kubelet probes come
    from the node and are always admitted. ``<model>-predictor-egress`` lets the predictor
    (and its storage initializer) reach CoreDNS, HTTPS in the VPC (the STS interface endpoint)
    and HTTPS to public addresses (S3 through the gateway endpoint), nothing private or
    link-local besides.

    With `knative` (KServe Serverless) callers never reach the pods themselves: they call the
    Kourier gateway, which forwards to the queue-proxy sidecar, directly or through Knative's
    activator. ``<model>-predictor-knative`` admits those two on the queue-proxy's port and
    Knative's autoscaler on its metrics port, and there is no client policy.
    """
    predictor = {"matchLabels": {INFERENCE_SERVICE_LABEL: model}}

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": metadata, "spec": spec}

    def https(cidr: str, *, except_: Sequence[str] = ()) -> dict[str, Any]:
        block: dict[str, Any] = {"cidr": cidr}
        if except_:
            block["except"] = list(except_)
        return {"to": [{"ipBlock": block}], "ports": [{"protocol": "TCP", "port": 443}]}

    def pods(namespace: str, pod_labels: Mapping[str, str]) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
                "podSelector": {"matchLabels": dict(pod_labels)}}

    policies = [policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})]
    if knative:
        policies.append(policy(f"{model}-predictor-knative", {
            "podSelector": predictor, "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [pods(KNATIVE_SERVING_NAMESPACE, KNATIVE_ACTIVATOR_LABELS),
                          pods(KOURIER_NAMESPACE, KOURIER_GATEWAY_LABELS)],
                 "ports": [{"protocol": "TCP", "port": QUEUE_PROXY_HTTP_PORT}]},
                {"from": [pods(KNATIVE_SERVING_NAMESPACE, KNATIVE_AUTOSCALER_LABELS)],
                 "ports": [{"protocol": "TCP", "port": QUEUE_PROXY_METRICS_PORT}]},
            ]}))
    elif client_namespaces:
        policies.append(policy(f"{model}-predictor-ingress", {
            "podSelector": predictor, "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"namespaceSelector": {"matchExpressions": [{
                    "key": NAMESPACE_NAME_LABEL, "operator": "In",
                    "values": list(client_namespaces)}]}}],
                "ports": [{"protocol": "TCP", "port": SERVING_PORT}]}]}))
    policies.append(policy(f"{model}-predictor-egress", {
        "podSelector": predictor, "policyTypes": ["Egress"],
        "egress": [
            {"to": [pods(DNS_NAMESPACE, DNS_POD_LABELS)],
             "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            https(vpc_cidr),
            https("0.0.0.0/0", except_=NON_PUBLIC_CIDRS),
        ]}))
    return policies


#: where EKS Pod Identity's agent serves credentials on every node (AWS docs, "Understand how
#: EKS Pod Identity works": 169.254.170.23, port 80)
POD_IDENTITY_AGENT = "169.254.170.23/32"
#: the label of a training Job's pods (`mlscaffold train --on eks`)
TRAINING_POD_LABEL = "mlscaffold.io/training-run"


def training_network_policies(namespace: str, *, vpc_cidr: str,
                              labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The NetworkPolicies of the training namespace, as plain manifests: ``default-deny``
    both ways, and ``training-egress``, which lets a training Job's pods reach CoreDNS, the Pod
    Identity agent of their node and HTTPS (S3 and STS) as a predictor does; nothing reaches
    them."""
    metadata: dict[str, Any] = {"namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, **metadata}, "spec": spec}

    https = [{"protocol": "TCP", "port": 443}]
    return [
        policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        policy("training-egress", {
            "podSelector": {"matchExpressions": [
                {"key": TRAINING_POD_LABEL, "operator": "Exists"}]},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"namespaceSelector": {"matchLabels": {
                    NAMESPACE_NAME_LABEL: DNS_NAMESPACE}},
                    "podSelector": {"matchLabels": dict(DNS_POD_LABELS)}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}],
                 "ports": [{"protocol": "TCP", "port": 80}]},
                {"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": https},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(NON_PUBLIC_CIDRS)}}],
                 "ports": https},
            ]}),
    ]


def _spec_hash(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class ClusterWorkloadsArgs:
    """Inputs of :class:`ClusterWorkloads`."""

    config: PlatformConfig
    """The environment's config (the same one the base stack was built from)."""
    cluster: pulumi.Input[Mapping[str, Any]]
    """The base stack's ``cluster`` output: connection, IRSA role ARNs (``roles``), and with
    KServe the image and model (``serving``) and the alert topic."""


class ClusterWorkloads(pulumi.ComponentResource):
    """Everything inside the cluster, in dependency order.

    Always: the NVIDIA device plugin on the GPU nodes; Karpenter on the system nodes, with an
    EC2NodeClass and a NodePool per GPU pool and for the CPU pool of the config. KServe
    serving: cert-manager, KServe (Standard mode: no Knative or Istio; Serverless mode: the
    Knative Operator and Knative Serving with Kourier first), the model's namespace
    with its NetworkPolicies (deny by default), its service account bound to the predictor's
    IRSA role, and the InferenceService, which `pulumi up` waits to be Ready;
    kube-prometheus-stack (Alertmanager to the alert topic) and dcgm-exporter for GPU alerts.
    """

    inference_service_name: pulumi.Output[str] | None = None

    def __init__(self, name: str, args: ClusterWorkloadsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(token("ClusterWorkloads"), name, None, opts)
        self._name, self._args = name, args
        self._cluster = pulumi.Output.from_input(args.cluster)
        self._provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self._cluster.apply(tunnel_kubeconfig),
            opts=child_options(self))
        self._node_addons()
        self._training()
        if args.config.serving.platform == "kserve":
            self.inference_service_name = self._kserve()
            self._prometheus()
        self.register_outputs({"inference_service_name": self.inference_service_name})

    def _field(self, *path: str) -> pulumi.Output[Any]:
        def pick(cluster: Mapping[str, Any]) -> Any:
            value: Any = cluster
            for key in path:
                value = value[key]
            return value

        return self._cluster.apply(pick)

    def _options(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return child_options(self, provider=self._provider, depends_on=list(depends_on))

    def _node_addons(self) -> None:
        """The NVIDIA device plugin (GPU nodes only; AL2023's NVIDIA AMIs need it to offer
        ``nvidia.com/gpu``), Karpenter (its CRDs, then the controller on the system nodes,
        with EKS Pod Identity) and the EC2NodeClass and NodePool of each GPU pool and of the
        CPU pool."""
        name, config = self._name, self._args.config
        k8s.helm.v3.Release(
            f"{name}-nvidia-device-plugin", name="nvidia-device-plugin",
            chart="nvidia-device-plugin", version=NVIDIA_DEVICE_PLUGIN_CHART,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=NVIDIA_DEVICE_PLUGIN_REPO),
            namespace="kube-system",
            values={"tolerations": [GPU_TOLERATION], "nodeSelector": dict(GPU_NODE_SELECTOR)},
            opts=self._options())
        crds = k8s.helm.v3.Release(
            f"{name}-karpenter-crd", name="karpenter-crd",
            chart=f"{KARPENTER_CHARTS}/karpenter-crd", version=KARPENTER_VERSION,
            namespace=KARPENTER_NAMESPACE, opts=self._options())
        karpenter = k8s.helm.v3.Release(
            f"{name}-karpenter", name="karpenter", chart=f"{KARPENTER_CHARTS}/karpenter",
            version=KARPENTER_VERSION, namespace=KARPENTER_NAMESPACE, skip_crds=True,
            values=self._karpenter_values(), opts=self._options(crds))
        cluster = config.cluster
        for pool in cluster.pools:
            node_class = ec2_node_class(
                pool, cluster_name=f"{config.prefix}-eks",
                instance_profile=self._field("karpenter", "instance_profile"),
                ami_release=cluster.node_image_version, tags=config.tags)
            node_class_resource = k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}-node-class", api_version=NODE_CLASS_KIND[0],
                kind=NODE_CLASS_KIND[1], metadata=node_class["metadata"],
                spec=node_class["spec"], opts=self._options(karpenter))
            manifest = node_pool(pool)
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}-node-pool", api_version=NODE_POOL_KIND[0],
                kind=NODE_POOL_KIND[1], metadata=manifest["metadata"], spec=manifest["spec"],
                opts=self._options(karpenter, node_class_resource))

    def _training(self) -> None:
        """The namespace of `mlscaffold train --on eks` Jobs, its NetworkPolicies (deny by
        default) and the service account the base stack's Pod Identity association gives the
        training role to."""
        name, config = self._name, self._args.config
        part_of = {"app.kubernetes.io/part-of": config.prefix}
        namespace = k8s.core.v1.Namespace(
            f"{name}-training-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TRAINING_NAMESPACE, labels={
                    **part_of,
                    # the Jobs mlscaffold writes meet the restricted profile
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted"}),
            opts=self._options())
        for manifest in training_network_policies(TRAINING_NAMESPACE,
                                                  vpc_cidr=config.network.cidr, labels=part_of):
            k8s.networking.v1.NetworkPolicy(
                f"{name}-training-{manifest['metadata']['name']}",
                metadata=manifest["metadata"], spec=manifest["spec"],
                opts=self._options(namespace))
        # EKS Pod Identity projects its own token into the pods it serves: no API token here
        k8s.core.v1.ServiceAccount(
            f"{name}-training-service-account", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TRAINING_SERVICE_ACCOUNT, namespace=TRAINING_NAMESPACE, labels=part_of),
            automount_service_account_token=False, opts=self._options(namespace))

    def _karpenter_values(self) -> dict[str, Any]:
        """Karpenter's chart values: this cluster, its interruption queue, two replicas on the
        system nodes (one where the system group has a single node)."""
        system = self._args.config.cluster.system_node_group
        return {
            "settings": {"clusterName": self._field("name"),
                         "clusterEndpoint": self._field("endpoint"),
                         "interruptionQueue": self._field("karpenter", "interruption_queue")},
            # EKS Pod Identity gives it its role (the base stack's association): no annotation
            "serviceAccount": {"create": True, "name": KARPENTER_SERVICE_ACCOUNT},
            "replicas": min(2, system.desired_size),
            # replaces the chart's own selector, which holds kubernetes.io/os: linux
            "nodeSelector": {"kubernetes.io/os": "linux", GPU_POOL_LABEL: SYSTEM_POOL},
            "controller": {"resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                         "limits": {"cpu": "1", "memory": "1Gi"}}},
        }

    def _kserve(self) -> pulumi.Output[str]:
        """cert-manager, KServe's CRDs and controller, the namespace and its NetworkPolicies,
        the predictor's service account and the InferenceService (awaited until Ready)."""
        name, config = self._name, self._args.config
        cert_manager = k8s.helm.v3.Release(
            f"{name}-cert-manager", name="cert-manager", chart="cert-manager",
            version=CERT_MANAGER_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CERT_MANAGER_REPO),
            namespace="cert-manager", create_namespace=True,
            values={"crds": {"enabled": True}}, opts=self._options())
        crds = k8s.helm.v3.Release(
            f"{name}-kserve-crd", name="kserve-crd", chart=f"{KSERVE_CHARTS}/kserve-crd",
            version=KSERVE_VERSION, namespace="kserve", create_namespace=True,
            opts=self._options())
        serverless = config.serving.kserve_mode == "serverless"
        # in-cluster addresses only; exposing the model is a separate decision
        gateway: dict[str, Any] = {"disableIngressCreation": True}
        before_kserve: list[pulumi.Resource] = [cert_manager, crds]
        if serverless:
            # Kourier, not Istio: no VirtualService of KServe's, the model's address is its
            # Knative Service's (KServe docs, "Deploy InferenceService with Alternative
            # Networking Layer"; the chart's kserve.controller.gateway values)
            gateway["disableIstioVirtualHost"] = True
            before_kserve.append(self._knative())
        kserve = k8s.helm.v3.Release(
            f"{name}-kserve", name="kserve", chart=f"{KSERVE_CHARTS}/kserve",
            version=KSERVE_VERSION, namespace="kserve",
            values={"kserve": {"controller": {
                "deploymentMode": "Serverless" if serverless else "RawDeployment",
                "gateway": gateway}}},
            opts=self._options(*before_kserve))

        namespace_name = PREDICTOR_NAMESPACE
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=namespace_name, labels={
                    "app.kubernetes.io/part-of": config.prefix,
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted"}),
            opts=self._options())
        account_name = predictor_service_account(config.project)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=account_name, namespace=namespace.metadata.name,
                annotations={"eks.amazonaws.com/role-arn": self._field("roles", "predictor")}),
            automount_service_account_token=False, opts=self._options())
        # deny by default before anything runs in the namespace, then what the predictor needs
        policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{manifest['metadata']['name']}", metadata=manifest["metadata"],
                spec=manifest["spec"], opts=self._options(namespace))
            for manifest in predictor_network_policies(
                config.project, namespace_name, vpc_cidr=config.network.cidr,
                client_namespaces=config.serving.client_namespaces,
                labels={"app.kubernetes.io/part-of": config.prefix}, knative=serverless)]
        # A GPU predictor selects the first GPU pool and tolerates its taint. A CPU predictor
        # selects no pool: the scheduler puts its replicas on the system nodes while they have
        # room, and Karpenter launches a CPU-pool node only for a replica that fits nowhere
        # (the pool is untainted). Pinning it to the CPU pool would keep one more node running
        # in every dev stack, beside system nodes paid for anyway. The system nodes stay the
        # controllers' all the same: a replica requests what it may use (requests = limits),
        # and Karpenter's own pods, at system-cluster-critical priority (its chart's default)
        # and never on nodes it launched, preempt a replica rather than wait.
        gpu_pool = config.cluster.gpu_pools[0]
        manifest = inference_service_manifest(
            config.project, namespace_name, self._field("serving", "image_uri"),
            config.serving, storage_uri=self._field("serving", "model_url"),
            service_account_name=account_name, gpu_node_group=gpu_pool,
            canary_traffic_percent=self._canary_traffic_percent())
        metadata = {**manifest["metadata"], "annotations": {
            **manifest["metadata"]["annotations"],
            **inference_service_readiness(config.serving.gpus)}}
        predictor = manifest["spec"]["predictor"]
        hashed = {**manifest["spec"], "predictor": {
            k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}}
        spec = {**manifest["spec"], "predictor": {**predictor, "annotations": {
            **predictor.get("annotations", {}),
            SPEC_HASH_ANNOTATION: pulumi.Output.from_input(hashed).apply(_spec_hash),
        }}}
        # KServe refuses to change an InferenceService's deploymentMode ("update rejected:
        # deploymentMode cannot be changed", kserve v0.15.2 inference_service_validation.go):
        # a new serving.kserve_mode replaces it, the old one deleted first (same name)
        service = k8s.apiextensions.CustomResource(
            f"{name}-inference-service", api_version=manifest["apiVersion"],
            kind=manifest["kind"], metadata=metadata, spec=spec,
            opts=pulumi.ResourceOptions.merge(
                self._options(kserve, namespace, account, *policies),
                pulumi.ResourceOptions(replace_on_changes=[DEPLOYMENT_MODE_PATH],
                                       delete_before_replace=True)))
        return service.metadata["name"]

    def _canary_traffic_percent(self) -> pulumi.Output[int] | None:
        """The InferenceService's canaryTrafficPercent for the version the base stack deploys
        (None unless KServe Serverless with a canary rollout)."""
        serving = self._args.config.serving
        if not serving.kserve_canary:
            return None
        return self._field("serving").apply(lambda urls: serving.canary_traffic_percent(
            *deployed_version(urls["model_url"], urls["image_uri"])))

    def _knative(self) -> pulumi.Resource:
        """Knative Serving with Kourier for KServe's Serverless mode: the Knative Operator
        (Helm) and a KnativeServing resource, which `pulumi up` waits to be Ready."""
        name = self._name
        operator = k8s.helm.v3.Release(
            f"{name}-knative-operator", name="knative-operator", chart="knative-operator",
            version=KNATIVE_OPERATOR_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=KNATIVE_OPERATOR_REPO),
            namespace=KNATIVE_OPERATOR_NAMESPACE, create_namespace=True,
            opts=self._options())
        namespace = k8s.core.v1.Namespace(
            f"{name}-knative-serving-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KNATIVE_SERVING_NAMESPACE,
                labels={"app.kubernetes.io/part-of": self._args.config.prefix,
                        # Knative's own pods run as non-root with no privileges
                        "pod-security.kubernetes.io/enforce": "baseline",
                        "pod-security.kubernetes.io/warn": "restricted",
                        "pod-security.kubernetes.io/audit": "restricted"}),
            opts=self._options())
        # the image's registry (ECR, private): Knative's controller resolves image tags to
        # digests by reading the registry with its own credentials (Knative docs, "Tag
        # resolution"), which it has none of for ECR; the repository's tags are immutable, so
        # the tag already names one image
        registry = self._field("serving", "image_uri").apply(lambda uri: uri.split("/")[0])
        return k8s.apiextensions.CustomResource(
            f"{name}-knative-serving", api_version=KNATIVE_SERVING_KIND[0],
            kind=KNATIVE_SERVING_KIND[1],
            metadata={"name": "knative-serving", "namespace": KNATIVE_SERVING_NAMESPACE,
                      "annotations": {_WAIT_FOR: "condition=Ready",
                                      _TIMEOUT: str(KNATIVE_READY_TIMEOUT_SECONDS)}},
            spec={
                "version": KNATIVE_SERVING_VERSION,
                # Kourier's gateway Service is a LoadBalancer by default (kourier.yaml):
                # ClusterIP keeps the model inside the cluster, as in Standard mode
                "ingress": {"kourier": {"enabled": True, "service-type": "ClusterIP"}},
                "config": {
                    "network": {"ingress-class": "kourier.ingress.networking.knative.dev"},
                    "deployment": {"registries-skipping-tag-resolving": registry},
                    # the predictor's pod security context, and a GPU predictor's node
                    # selector and toleration, are behind Knative feature flags (all
                    # disabled by default in config-features)
                    "features": {"kubernetes.podspec-securitycontext": "enabled",
                                 "kubernetes.podspec-nodeselector": "enabled",
                                 "kubernetes.podspec-tolerations": "enabled"},
                },
            },
            opts=self._options(operator, namespace))

    def _prometheus(self) -> None:
        """kube-prometheus-stack (Alertmanager -> SNS with its IRSA role) and dcgm-exporter."""
        name, config = self._name, self._args.config
        monitoring = config.monitoring
        non_root = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 2000,
                    "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}}
        stack = k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack", name="kube-prometheus-stack",
            chart="kube-prometheus-stack", version=KUBE_PROMETHEUS_STACK_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=KUBE_PROMETHEUS_STACK_REPO),
            namespace=MONITORING_NAMESPACE, create_namespace=True,
            values={
                "prometheus": {"prometheusSpec": {
                    # also scrape ServiceMonitors and rules of other releases (dcgm-exporter)
                    "serviceMonitorSelectorNilUsesHelmValues": False,
                    "ruleSelectorNilUsesHelmValues": False,
                    "retention": "15d", "securityContext": non_root}},
                "alertmanager": {
                    "serviceAccount": {
                        "create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT,
                        "annotations": {"eks.amazonaws.com/role-arn": self._field(
                            "roles", "alertmanager")}},
                    "alertmanagerSpec": {"securityContext": non_root},
                    "config": _alertmanager_config(self._field("alert_topic_arn"),
                                                   config.region, config.prefix)},
                # empty: the chart generates a random password instead of its well-known one
                "grafana": {"adminPassword": ""},
                "additionalPrometheusRulesMap": {
                    "gpu": {"groups": [{"name": "gpu", "rules": [{
                        "alert": "GpuUtilizationHigh",
                        "expr": f"DCGM_FI_DEV_GPU_UTIL > {monitoring.gpu_utilization_percent}",
                        "for": "15m", "labels": {"severity": "warning"},
                        "annotations": {"summary": (
                            f"GPU utilisation above {monitoring.gpu_utilization_percent}% "
                            "for 15 minutes: add GPU nodes or replicas")}}]}]},
                    # the same threshold as the CloudWatch node alarm of the other platforms,
                    # from the chart's node-exporter
                    "nodes": {"groups": [{"name": "nodes", "rules": [{
                        "alert": "NodeCpuUtilizationHigh",
                        "expr": ("100 * (1 - avg by (instance) (rate(node_cpu_seconds_total"
                                 f'{{mode="idle"}}[5m]))) > {NODE_CPU_ALARM_PERCENT}'),
                        "for": "15m", "labels": {"severity": "warning"},
                        "annotations": {"summary": (
                            f"node CPU above {NODE_CPU_ALARM_PERCENT}% for 15 minutes: check "
                            "the predictors' CPU requests or add nodes")}}]}]}},
            },
            opts=self._options())
        k8s.helm.v3.Release(
            f"{name}-dcgm-exporter", name="dcgm-exporter", chart="dcgm-exporter",
            version=DCGM_EXPORTER_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=DCGM_EXPORTER_REPO),
            namespace=MONITORING_NAMESPACE,
            # the chart's container runs as root with SYS_ADMIN: DCGM needs them for its
            # profiling metrics, so its security context is left as the chart sets it
            values={"nodeSelector": dict(GPU_NODE_SELECTOR),
                    "tolerations": [dict(GPU_TOLERATION)],
                    "serviceMonitor": {"enabled": True, "interval": "30s"},
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                  "limits": {"cpu": "500m", "memory": "512Mi"}}},
            # the ServiceMonitor kind comes with kube-prometheus-stack
            opts=self._options(stack))


def _alertmanager_config(topic_arn: pulumi.Input[str], region: str,
                         prefix: str) -> dict[str, Any]:
    """Every alert but the always-firing Watchdog goes to the SNS topic (SigV4, IRSA)."""
    return {
        "route": {"receiver": "sns", "group_by": ["alertname", "namespace"],
                  "routes": [{"receiver": "null", "matchers": ['alertname = "Watchdog"']}]},
        "receivers": [
            {"name": "null"},
            {"name": "sns", "sns_configs": [{"topic_arn": topic_arn, "sigv4": {"region": region},
                                             "subject": f"{prefix}: cluster alert"}]},
        ],
    }
