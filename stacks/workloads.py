"""What runs inside the EKS cluster: the in-cluster program's one component.

A project's ``infra/`` makes every AWS resource (``MlPlatform``) and needs nothing but the AWS
APIs. What runs inside the cluster (the NVIDIA device plugin, Karpenter and its GPU pools, KServe
and the InferenceService, Prometheus) needs the Kubernetes API, whose endpoint is private: it is
``infra/cluster/``, a second Pulumi program applied through `mlscaffold tunnel` (an SSM
port-forwarding session through the base stack's API relay) once the base stack is up. Its
inputs are the base stack's ``cluster`` output (endpoint, roles, image and model), read with a
StackReference, and the environment's config for everything it decides itself.

The Kubernetes provider's kubeconfig points at the tunnel's local port, with the endpoint's host
name for TLS, and never changes between runs: pulumi-kubernetes replaces every resource of a
provider whose cluster server changes (pulumi/pulumi-kubernetes#4019).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s

from ._common import child_options, token
from .cluster import SYSTEM_POOL
from .config import (
    GPU_NODE_SELECTOR,
    GPU_POOL_LABEL,
    GPU_TOLERATION,
    KARPENTER_VERSION,
    PlatformConfig,
)
from .karpenter import (
    KARPENTER_NAMESPACE,
    KARPENTER_SERVICE_ACCOUNT,
    NODE_CLASS_KIND,
    NODE_POOL_KIND,
    ec2_node_class,
    node_pool,
)
from .monitoring import ALERTMANAGER_SERVICE_ACCOUNT, MONITORING_NAMESPACE, NODE_CPU_ALARM_PERCENT
from .serving import PREDICTOR_NAMESPACE, inference_service_manifest, predictor_service_account

__all__ = [
    "CERT_MANAGER_VERSION",
    "DCGM_EXPORTER_VERSION",
    "KARPENTER_CHARTS",
    "KSERVE_VERSION",
    "KUBE_PROMETHEUS_STACK_VERSION",
    "NVIDIA_DEVICE_PLUGIN_CHART",
    "ClusterWorkloads",
    "ClusterWorkloadsArgs",
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
KSERVE_VERSION = "v0.15.2"
KUBE_PROMETHEUS_STACK_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_VERSION = "88.6.4"
DCGM_EXPORTER_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_EXPORTER_VERSION = "4.1.1"


def tunnel_kubeconfig(cluster: Mapping[str, Any]) -> str:
    """A kubeconfig (JSON) for the cluster through `mlscaffold tunnel`: the server is the
    tunnel's local port, TLS is checked against the endpoint's own host name, and tokens come
    from ``aws eks get-token``."""
    name = cluster["name"]
    host = urlparse(cluster["endpoint"]).netloc  # as EKS writes it (hostname would lower-case)
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": f"https://127.0.0.1:{cluster['tunnel_port']}",
            "tls-server-name": host,
            "certificate-authority-data": cluster["certificate_authority"]}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", cluster["region"]],
            "interactiveMode": "Never",
        }}}],
    })


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
    EC2NodeClass and a NodePool per GPU pool of the config. KServe serving: cert-manager,
    KServe (RawDeployment, no Knative or Istio), the model's namespace, its service account
    bound to the predictor's IRSA role, and the InferenceService; kube-prometheus-stack
    (Alertmanager to the alert topic) and dcgm-exporter for GPU alerts.
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
        with EKS Pod Identity) and each GPU pool's EC2NodeClass and NodePool."""
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
        for pool in cluster.gpu_pools:
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
        """cert-manager, KServe's CRDs and controller, the namespace, the predictor's service
        account and the InferenceService."""
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
        kserve = k8s.helm.v3.Release(
            f"{name}-kserve", name="kserve", chart=f"{KSERVE_CHARTS}/kserve",
            version=KSERVE_VERSION, namespace="kserve",
            values={"kserve": {"controller": {
                "deploymentMode": "RawDeployment",
                # in-cluster Service only; exposing the model is a separate decision
                "gateway": {"disableIngressCreation": True}}}},
            opts=self._options(cert_manager, crds))

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
        gpu_pool = config.cluster.gpu_pools[0]
        manifest = inference_service_manifest(
            config.project, namespace_name, self._field("serving", "image_uri"),
            config.serving, storage_uri=self._field("serving", "model_url"),
            service_account_name=account_name, gpu_node_group=gpu_pool)
        service = k8s.apiextensions.CustomResource(
            f"{name}-inference-service", api_version=manifest["apiVersion"],
            kind=manifest["kind"], metadata=manifest["metadata"], spec=manifest["spec"],
            opts=self._options(kserve, namespace, account))
        return service.metadata["name"]

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
