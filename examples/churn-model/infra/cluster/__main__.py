"""In-cluster program of this project's platform: what runs inside the stack's EKS cluster.

It is applied after ../ (the AWS resources) and needs the Kubernetes API, whose endpoint is
private: `make deploy` runs it through `mlscaffold tunnel`, which forwards a local port to the
endpoint through the base stack's API relay. Its inputs are the base stack's `cluster` output
and the same ../Pulumi.<stack>.yaml. A stack without a cluster has nothing to run here.
"""

from pathlib import Path

import pulumi
import yaml
from mlscaffold.stacks import ClusterWorkloads, ClusterWorkloadsArgs, platform_config, project_spec

INFRA = Path(__file__).resolve().parent.parent
PROJECT = INFRA.parent

spec = project_spec(PROJECT)
stack = pulumi.get_stack()
stack_file = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
config = platform_config(spec, stack, stack_file["config"].get(f"{spec.name}:platform"),
                         config_keys=stack_file["config"])
if config.cluster.enabled:
    base = pulumi.StackReference(f"{pulumi.get_organization()}/{spec.name}/{stack}")
    workloads = ClusterWorkloads(config.prefix, ClusterWorkloadsArgs(
        config=config, cluster=base.require_output("cluster")))
    if workloads.inference_service_name is not None:
        pulumi.export("inference_service", workloads.inference_service_name)
