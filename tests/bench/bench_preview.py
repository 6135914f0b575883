"""Benchmark: `preview` of the full platform per stack, and a synthetic program's scaling.

    python tests/bench/bench_preview.py [--runs N]

Prints medians of N runs (default 5) of:
- `mlscaffold preview --stack ENV` as a fresh process (what a user waits for), per stack,
  for a SageMaker project and a KServe project;
- the same run in-process once Pulumi is imported (the graph build alone);
- a synthetic program of 250, 500 and 1,000 resources in-process, with the marginal cost
  per resource (least-squares slope) and the ratio of the 1,000 to the 250 case.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from timing import median_ms, run_command, slope, timed

BIN = Path(sys.executable).parent


def _synthetic(count: int) -> None:
    import pulumi_aws as aws

    # half buckets, half their encryption configs: each config depends on its bucket
    for index in range(count // 2):
        bucket = aws.s3.Bucket(f"bucket-{index}", tags={"env": "bench"})
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"bucket-{index}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    from mlscaffold.graph import run_under_mocks
    from mlscaffold.infra import preview_stack
    from mlscaffold.project import create_project
    from mlscaffold.spec import validate_spec

    scratch = Path(tempfile.mkdtemp(prefix="mlscaffold-bench-"))
    try:
        print(f"preview benchmarks (median of {runs} runs)")
        for serving in ("sagemaker", "kserve"):
            spec = validate_spec({"name": f"bench-{serving}", "serving": serving,
                                  "feature_store": "sagemaker"})
            project = create_project(scratch / spec.name, spec, git=False).path
            for stack in spec.environments:
                cold = timed(lambda stack=stack, project=project: run_command(
                    [str(BIN / "mlscaffold"), "preview", str(project), "--stack", stack]), runs)
                graph = preview_stack(project, stack)
                warm = timed(lambda stack=stack, project=project: preview_stack(project, stack),
                              runs)
                print(f"  {serving:<9} {stack:<8} {len(graph.resources):>4} resources   "
                      f"mlscaffold preview {median_ms(cold):7.0f} ms   "
                      f"graph in-process {median_ms(warm):6.0f} ms")

        sizes = (250, 500, 1000)
        medians = {}
        for size in sizes:
            samples = timed(lambda size=size: run_under_mocks(lambda: _synthetic(size)), runs)
            medians[size] = statistics.median(samples)
            print(f"  synthetic {size:>5} resources   {medians[size] * 1000:7.0f} ms   "
                  f"({medians[size] / size * 1000:.2f} ms per resource)")
        print(f"\n  marginal cost: {slope(medians) * 1000:.2f} ms per resource; "
              f"1,000 / 250 resources: {medians[1000] / medians[250]:.2f}x (linear: 4.00x)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
