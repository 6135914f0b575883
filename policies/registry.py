"""The rule table: every rule of both packs, listed by domain. Nothing registers itself.

A rule is defined in its domain's module (:mod:`.security.storage`, …, :mod:`.cost.rules`) and
is in a pack only once it is listed here. :func:`rule_table` refuses a name listed twice when
this module is imported; a test fails when a domain module defines a rule that is not listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .cost import rules as cost
from .rule import Pack, Rule
from .security import compute, iam, kubernetes, logging, ml, naming, network, storage

__all__ = ["DOMAINS", "RULES", "rule_table", "rules_of"]

#: domain -> its rules (the security domains, then cost), in the order they are defined
DOMAINS: dict[str, tuple[Rule, ...]] = {
    "storage": (
        storage.s3_bucket_kms_encryption,
        storage.s3_bucket_public_access_block,
        storage.s3_bucket_tls_only,
        storage.s3_bucket_versioning,
        storage.kms_key_rotation,
        storage.kms_key_service_conditions,
        storage.s3_cross_account_read_scoped,
        storage.ecr_scan_on_push,
        storage.ecr_immutable_tags,
        storage.ecr_kms_encryption,
        storage.athena_workgroup_encrypted_results,
    ),
    "logging": (
        logging.cloudwatch_log_retention,
        logging.cloudwatch_log_group_kms,
        logging.sns_topic_kms,
        logging.s3_bucket_access_logging,
        logging.s3_data_events_audited,
    ),
    "iam": (
        iam.iam_no_wildcard_admin,
        iam.iam_no_service_wildcard,
        iam.iam_no_admin_managed_policy,
        iam.iam_network_interface_scoped,
        iam.iam_service_trust_conditions,
        iam.iam_pass_role_scoped,
        iam.iam_pod_identity_trust_scoped,
    ),
    "network": (
        network.sg_no_public_ingress,
    ),
    "naming": (
        naming.aws_name_limits,
    ),
    "compute": (
        compute.eks_private_endpoint,
        compute.eks_public_endpoint_restricted,
        compute.eks_secrets_encryption,
        compute.eks_control_plane_logging,
        compute.eks_supported_version,
        compute.eks_standard_support,
        compute.eks_node_group_no_ssh,
        compute.eks_node_group_launch_template,
        compute.launch_template_imdsv2,
        compute.launch_template_imds_hop_limit,
        compute.launch_template_no_ssh_key,
        compute.launch_template_encrypted_volumes,
        compute.ec2_instance_imdsv2,
        compute.ec2_instance_encrypted_volumes,
    ),
    "kubernetes": (
        kubernetes.k8s_resource_limits,
        kubernetes.k8s_run_as_non_root,
        kubernetes.k8s_no_privilege_escalation,
        kubernetes.k8s_read_only_root_filesystem,
        kubernetes.k8s_image_pinned,
        kubernetes.k8s_no_default_namespace,
        kubernetes.k8s_network_policy,
        kubernetes.gpu_workload_schedulable,
        kubernetes.k8s_namespace_pod_security,
        kubernetes.knative_kourier_cluster_ip,
    ),
    "ml": (
        ml.sagemaker_endpoint_kms,
        ml.sagemaker_data_capture_kms,
        ml.sagemaker_data_capture,
        ml.sagemaker_endpoint_auto_rollback,
        ml.sagemaker_endpoint_rollback_window,
        ml.sagemaker_model_network_isolation,
        ml.sagemaker_model_vpc,
        ml.sagemaker_feature_group_kms,
        ml.sagemaker_monitoring_job_kms,
        ml.sagemaker_monitoring_job_network,
        ml.sagemaker_mlflow_artifacts_in_stack_bucket,
        ml.sagemaker_mlflow_no_automatic_registration,
    ),
    "cost": (
        cost.cpu_instance_types,
        cost.gpu_instance_types,
        cost.sagemaker_instance_types,
        cost.max_nodes,
        cost.max_gpus,
        cost.gpu_spot_outside_prod,
        cost.gpu_scale_to_zero_outside_prod,
        cost.required_tags,
        cost.endpoint_instance_count,
        cost.log_retention_bounded,
        cost.athena_scan_cutoff,
        cost.eks_upgrade_policy,
        cost.monthly_budget,
        cost.mlflow_server_size,
    ),
}


def rule_table(domains: Mapping[str, Sequence[Rule]]) -> dict[str, Rule]:
    """{name: rule} of every listed rule; a name listed twice raises ValueError naming both
    domains."""
    table: dict[str, Rule] = {}
    where: dict[str, str] = {}
    for domain, rules in domains.items():
        for entry in rules:
            if not isinstance(entry, Rule):
                raise TypeError(f"domain {domain!r} lists {entry!r}, which is not a Rule "
                                "(decorate its check with @rule or @stack_rule)")
            if entry.name in table:
                raise ValueError(f"rule {entry.name!r} is listed twice (domains "
                                 f"{where[entry.name]!r} and {domain!r}); rule names are unique")
            table[entry.name] = entry
            where[entry.name] = domain
    return table


#: every rule by name
RULES: dict[str, Rule] = rule_table(DOMAINS)


def rules_of(pack: Pack) -> list[Rule]:
    """The rules of a pack, in name order."""
    return sorted((r for r in RULES.values() if r.pack == pack), key=lambda r: r.name)
