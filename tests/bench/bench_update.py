"""Benchmark: `mlscaffold update` wall time on a project made like examples/churn-model.

    python tests/bench/bench_update.py [--runs N]

Each run makes a fresh copy of one project (made once, git included), commits a region change in
its mlscaffold.yaml, and times `mlscaffold update` (render, commit the pristine render, merge) as
a fresh process; the same for `--dry-run` on an unchanged copy. Beside it, `mlscaffold new` of
the same spec, the render an update repeats. Prints medians and the ratio update/new.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(command: list[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    mlscaffold = [sys.executable, "-m", "mlscaffold"]
    new_options = ["--no-input", "--task", "binary-classification", "--serving", "sagemaker",
                   "--feature-store", "sagemaker", "--ci", "github"]
    scratch = Path(tempfile.mkdtemp(prefix="mlscaffold-bench-update-"))
    try:
        subprocess.run([*mlscaffold, "new", str(scratch / "made"), *new_options], check=True,
                       stdout=subprocess.DEVNULL)
        updates, dry_runs, news = [], [], []
        for run in range(args.runs):
            copy = Path(shutil.copytree(scratch / "made", scratch / f"u{run}", symlinks=True))
            spec = copy / "mlscaffold.yaml"
            spec.write_text(spec.read_text().replace("region: us-east-1", "region: eu-west-1"))
            subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qam",
                            "region"], cwd=copy, check=True)
            updates.append(_timed([*mlscaffold, "update", str(copy)], copy))
            dry = Path(shutil.copytree(scratch / "made", scratch / f"d{run}", symlinks=True))
            dry_runs.append(_timed([*mlscaffold, "update", "--dry-run", str(dry)], dry))
            news.append(_timed([*mlscaffold, "new", str(scratch / f"n{run}"), *new_options],
                               scratch))
        update, dry_run, new = (statistics.median(x) for x in (updates, dry_runs, news))
        print(f"update (region change, merge)   median {update * 1000:7.0f} ms  of {args.runs}")
        print(f"update --dry-run (up to date)   median {dry_run * 1000:7.0f} ms")
        print(f"new (the same spec)             median {new * 1000:7.0f} ms")
        print(f"ratio update / new              {update / new:.2f}x")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
