"""The mocked runner records the whole graph; diagrams and the preview tree are stable."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from mlscaffold.diagram import key_inputs, short_type, to_dot, to_mermaid
from mlscaffold.graph import MOCK_ACCOUNT_ID, ProgramError, run_program, run_under_mocks


class _Store(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlscaffold:stacks:Store", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(f"{name}-key", enable_key_rotation=True, opts=child)
        self.bucket = aws.s3.Bucket(f"{name}-bucket", tags={"env": "dev"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {
                "sse_algorithm": "aws:kms", "kms_master_key_id": self.key.arn}}], opts=child)
        self.register_outputs({"bucket": self.bucket.bucket})


def _program() -> None:
    store = _Store("store")
    identity = aws.get_caller_identity_output()
    aws.sns.Topic("alerts", kms_master_key_id=store.key.arn,
                  opts=pulumi.ResourceOptions(depends_on=[store]))
    pulumi.export("bucket", store.bucket.bucket)
    pulumi.export("account", identity.account_id)


def test_graph_records_types_parents_dependencies_inputs_and_outputs():
    graph = run_under_mocks(_program, project="demo", stack="dev")
    store = graph.named("store")
    assert store.component and store.type == "mlscaffold:stacks:Store"
    encryption = graph.named("store-encryption")
    assert encryption.parent == store.urn
    assert {graph.named("store-key").urn, graph.named("store-bucket").urn} <= set(
        encryption.dependencies)
    rule = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "aws:kms"
    assert rule["kmsMasterKeyId"].startswith("arn:aws:kms:us-east-1:")
    assert graph.named("alerts").parent is None
    assert graph.outputs == {"bucket": "store-bucket", "account": MOCK_ACCOUNT_ID}



def test_a_program_runs_after_asyncio_run_left_no_event_loop():
    """asyncio.run() (a server, a test) unsets the thread's loop; Pulumi's runtime needs one."""
    async def nothing() -> None:
        return None

    asyncio.run(nothing())
    graph = run_under_mocks(_program, project="demo", stack="dev")
    assert graph.resources


def test_a_run_skips_what_was_loaded_before_it_and_hands_it_back_to_the_collector():
    """The objects that exist before a run are frozen during it (the collector's full scans
    skip the SDKs' objects) and unfrozen after it, even when the program fails; a caller's own
    freeze is left as it was."""
    seen = []

    def program() -> None:
        seen.append(gc.get_freeze_count())
        _program()

    def failing() -> None:
        seen.append(gc.get_freeze_count())
        raise RuntimeError("the program failed")

    assert gc.get_freeze_count() == 0
    run_under_mocks(program, project="demo", stack="dev")
    with pytest.raises(RuntimeError, match="the program failed"):
        run_under_mocks(failing, project="demo", stack="dev")
    assert seen[0] > 10_000 and seen[1] > 10_000
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        run_under_mocks(program, project="demo", stack="dev")
        assert gc.get_freeze_count() > 10_000  # still the caller's
    finally:
        gc.unfreeze()


def test_runs_are_repeatable():
    first = run_under_mocks(_program, project="demo", stack="dev")
    second = run_under_mocks(_program, project="demo", stack="dev")
    assert first.to_json() == second.to_json()
    assert json.loads(first.to_json())["resources"][0]["urn"].startswith("urn:pulumi:dev::demo")


def test_tree_puts_parents_before_children():
    graph = run_under_mocks(_program, project="demo", stack="dev")
    tree = [(depth, r.name) for depth, r in graph.tree()]
    assert tree == [(0, "alerts"), (0, "store"), (1, "store-bucket"),
                    (1, "store-encryption"), (1, "store-key")]


def test_diagrams_group_main_resources_by_component():
    graph = run_under_mocks(_program, project="demo", stack="dev")
    mermaid = to_mermaid(graph)
    assert mermaid.startswith("flowchart LR\n")
    assert 'subgraph store_' in mermaid and '["Store: store"]' in mermaid
    assert "S3 bucket<br/>store-bucket" in mermaid and "SNS alerts<br/>alerts" in mermaid
    assert "store-encryption" not in mermaid  # plumbing is hidden
    # alerts depends on the whole component, lifted to the drawn resources
    alerts_id = next(line.split("[")[0].strip() for line in mermaid.splitlines()
                     if "SNS alerts" in line)
    assert sum(line.strip().startswith(f"{alerts_id} -->") for line in mermaid.splitlines()) == 2
    dot = to_dot(graph)
    assert dot.startswith("digraph platform {") and "subgraph cluster_store_" in dot
    assert to_mermaid(run_under_mocks(_program, project="demo", stack="dev")) == mermaid


def test_key_inputs_and_short_types():
    graph = run_under_mocks(_program, project="demo", stack="dev")
    assert key_inputs(graph.named("store-bucket")) == {}  # name is computed, not an input
    assert short_type("aws:eks/nodeGroup:NodeGroup") == "aws:eks:NodeGroup"


def test_program_errors_name_the_users_file_and_line(tmp_path: Path):
    program = tmp_path / "__main__.py"
    program.write_text("import pulumi\n\nraise ValueError('bad setting')\n")
    with pytest.raises(ProgramError) as caught:
        run_program(program, project="demo", stack="dev", config={}, region="us-east-1")
    assert caught.value.location == f"{program}:3"
    assert "ValueError: bad setting" in str(caught.value)
    assert caught.value.traceback == (f'  File "{program}", line 3, in <module>\n'
                                      "    raise ValueError('bad setting')\n")


def test_lifecycle_options_are_recorded():
    import pulumi
    import pulumi_aws as aws

    from mlscaffold.graph import run_under_mocks

    def program() -> None:
        aws.s3.Bucket("kept", opts=pulumi.ResourceOptions(
            protect=True, retain_on_delete=True, ignore_changes=["tags"]))
        aws.s3.Bucket("plain")

    graph = run_under_mocks(program)
    assert graph.named("kept").options == {"protect": True, "retain_on_delete": True,
                                           "ignore_changes": ["tags"]}
    assert graph.named("plain").options == {}


def test_merged_graphs_link_in_cluster_objects_to_the_cluster():
    import pulumi
    import pulumi_aws as aws
    import pulumi_kubernetes as k8s

    from mlscaffold.graph import merge_graphs, run_under_mocks, stack_reference_name

    def base_program() -> None:
        cluster = aws.eks.Cluster("eks", role_arn="arn", vpc_config={"subnet_ids": ["s"]})
        pulumi.export("cluster", {"name": cluster.name})

    base = run_under_mocks(base_program, project="demo", stack="dev")

    def inner_program() -> None:
        name = pulumi.StackReference(stack_reference_name("demo", "dev")).require_output(
            "cluster").apply(lambda c: c["name"])
        namespace = k8s.core.v1.Namespace("ns", metadata={"name": name})
        k8s.core.v1.ServiceAccount("sa", metadata={"namespace": namespace.metadata.name},
                                   opts=pulumi.ResourceOptions(depends_on=[namespace]))

    inner = run_under_mocks(inner_program, project="demo-cluster", stack="dev",
                            stack_references={stack_reference_name("demo", "dev"):
                                              base.outputs})
    merged = merge_graphs(base, inner)
    cluster = merged.named("eks")
    assert merged.named("ns").inputs["metadata"]["name"] == "eks"  # read through the reference
    assert cluster.urn in merged.named("ns").dependencies
    # reaches the cluster through the namespace: no direct edge of its own
    assert cluster.urn not in merged.named("sa").dependencies
    assert merged.outputs == base.outputs and len(merged.resources) == 3
