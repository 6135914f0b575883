"""Benchmark: `check` of the full platform, and how evaluation grows with resources.

    python tests/bench/bench_check.py [--runs N]

Prints medians of N runs (default 5) of:
- `mlscaffold check --stack all` of each example project against a single `mlscaffold preview`
  of its first stack, both as fresh processes run in turn, and their ratio (what checking
  every stack costs over the one preview a user would otherwise run: the start-up and the
  project load are paid once);
- the policy evaluation alone (both packs, every rule) of each stack's graph, in-process;
- the evaluation of synthetic graphs of 250 to 2,000 resources (buckets with their
  configuration, node groups, launch templates, log groups, IAM policies, workloads), with
  the marginal cost per resource and the 2,000/250 ratio (linear growth: 8.0x); the garbage
  collector is paused while these run, as timeit does.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
from pathlib import Path

from timing import median_ms, run_command, slope, timed

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _synthetic_graph(count: int):  # type: ignore[no-untyped-def]
    """A graph of `count` custom resources, in groups of eight policy-relevant ones."""
    from mlscaffold.graph import GraphResource, ResourceGraph

    tags = {"project": "bench", "env": "dev", "owner": "o", "cost-center": "c"}
    resources = []

    def add(kind: str, name: str, inputs: dict) -> None:
        resources.append(GraphResource(f"urn:pulumi:dev::bench::{kind}::{name}", kind, name,
                                       True, None, (), inputs))

    for i in range(count // 8):
        bucket = f"bucket-{i}"
        add("aws:s3/bucket:Bucket", bucket, {"tags": tags})
        add("aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration", f"{bucket}-enc",
            {"bucket": f"{bucket}-id", "rules": [{
                "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                       "kmsMasterKeyId": "arn:key"},
                "bucketKeyEnabled": True}]})
        add("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{bucket}-pab",
            {"bucket": f"{bucket}-id", "blockPublicAcls": True, "blockPublicPolicy": True,
             "ignorePublicAcls": True, "restrictPublicBuckets": True})
        add("aws:eks/nodeGroup:NodeGroup", f"ng-{i}", {
            "instanceTypes": ["m6i.large"], "capacityType": "ON_DEMAND", "tags": tags,
            "scalingConfig": {"minSize": 1, "desiredSize": 1, "maxSize": 2},
            "launchTemplate": {"id": f"lt-{i}-id", "version": "1"}})
        add("aws:ec2/launchTemplate:LaunchTemplate", f"lt-{i}", {
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
            "blockDeviceMappings": [{"ebs": {"encrypted": True, "volumeSize": 50}}],
            "tags": tags})
        add("aws:cloudwatch/logGroup:LogGroup", f"logs-{i}",
            {"retentionInDays": 30, "kmsKeyId": "arn:key", "tags": tags})
        add("aws:iam/rolePolicy:RolePolicy", f"policy-{i}", {"policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                    "Action": "s3:GetObject",
                                                    "Resource": f"arn:aws:s3:::{bucket}/*"}]})})
        add("kubernetes:apps/v1:Deployment", f"deploy-{i}", {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"d{i}", "namespace": "ml"},
            "spec": {"template": {"spec": {"containers": [{
                "name": "c", "image": "repo/app:1.0",
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                              "limits": {"cpu": "1", "memory": "1Gi"}},
                "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True}}]}}}})
    return ResourceGraph("bench", "dev", resources)


def _check_against_preview(project: Path, runs: int) -> None:
    """`check --stack all` and one `preview` of the same project, in turn run by run so that
    both see the same machine load."""
    from mlscaffold.spec import load_spec

    spec = load_spec(project / "mlscaffold.yaml")
    mlscaffold = str(BIN / "mlscaffold")
    check, preview = [], []
    for _ in range(runs):
        check += timed(lambda: run_command([mlscaffold, "check", str(project), "--stack", "all"]),
                       1)
        preview += timed(lambda: run_command([mlscaffold, "preview", str(project), "--stack",
                                              spec.environments[0]]), 1)
    print(f"  {project.name}: check --stack all ({len(spec.environments)} stacks) "
          f"{median_ms(check):7.0f} ms; preview --stack {spec.environments[0]} "
          f"{median_ms(preview):7.0f} ms; ratio {median_ms(check) / median_ms(preview):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    from mlscaffold.checks import policy_configs
    from mlscaffold.infra import open_infra_project, preview_stack
    from mlscaffold.policies.engine import evaluate

    print(f"check benchmarks (median of {runs} runs)")
    for example in ("churn-model", "lifetime-value"):
        _check_against_preview(REPO / "examples" / example, runs)
        project = open_infra_project(REPO / "examples" / example)
        for stack in project.spec.environments:
            graph = preview_stack(project, stack)
            configs = policy_configs(project, stack)
            warm = timed(lambda graph=graph, configs=configs: evaluate(graph, configs), runs)
            rules = evaluate(graph, configs).rules
            print(f"    {stack:<8} {sum(r.custom for r in graph.resources):>4} resources x "
                  f"{rules} rules: evaluation {median_ms(warm):6.1f} ms")

    configs = policy_configs(open_infra_project(REPO / "examples" / "churn-model"), "dev")
    medians = {}
    gc.disable()  # as timeit does: collections triggered by a growing heap are noise here
    try:
        for size in (250, 500, 1000, 2000):
            graph = _synthetic_graph(size)
            medians[size] = statistics.median(
                timed(lambda graph=graph: evaluate(graph, configs), runs))
            print(f"  synthetic {size:>5} resources: evaluation {medians[size] * 1000:7.1f} ms "
                  f"({medians[size] / size * 1000:.3f} ms per resource)")
    finally:
        gc.enable()
    print(f"\n  marginal cost {slope(medians) * 1000:.3f} ms per resource; "
          f"2,000 / 250 resources: {medians[2000] / medians[250]:.2f}x (linear: 8.00x)")


if __name__ == "__main__":
    main()
