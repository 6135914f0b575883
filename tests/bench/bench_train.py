"""Benchmark: `train --time 30` wall time of a new project, per task.

    python tests/bench/bench_train.py [--runs N] [--time SECONDS]

For each task, makes a project with the sample data and runs `mlscaffold train` as a
fresh process N times (default 3); prints the median wall time, how far it went past the
budget, the number of candidates fitted and the best validation score.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--time", type=float, default=30.0)
    args = parser.parse_args()

    from mlscaffold import catalog
    from mlscaffold.project import create_project
    from mlscaffold.spec import validate_spec

    scratch = Path(tempfile.mkdtemp(prefix="mlscaffold-bench-"))
    try:
        print(f"train --time {args.time:g}: median of {args.runs} runs, fresh processes")
        for task in catalog.TASKS:
            spec = validate_spec({"name": f"bench-{task.split('-')[0]}", "task": task})
            root = create_project(scratch / spec.name, spec, git=False).path
            env = dict(os.environ)
            walls = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "mlscaffold", "train", "--time",
                                str(args.time)], cwd=root, env=env, check=True,
                               stdout=subprocess.DEVNULL)
                walls.append(time.perf_counter() - started)
            index = json.loads((root / "experiments" / "index.json").read_text())["experiments"]
            last = index[-1]
            board = json.loads((root / "experiments" / last["id"] / "leaderboard.json")
                               .read_text())
            wall = statistics.median(walls)
            print(f"  {task:<27} wall {wall:6.1f} s  ({wall - args.time:+.1f} s over budget)  "
                  f"{len(board):>3} candidates  best {last['family']} "
                  f"{spec.metric}={last['score']:.4f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
