"""Benchmark: a thin project against a project that carried its own lifecycle, side by side.

    python tests/bench/bench_project.py [--before REF] [--runs N] [--time SECONDS]

"Before" is the blueprint at git REF (default: the last commit whose projects held the lifecycle
code, run as `python -m <package>`), rendered with Copier and the same answers and sample data;
"after" is `mlscaffold new` now, run as `mlscaffold <command>` (`python -m mlscaffold`).
Prints, per task:
- lines of Python in the project outside infra/ (all lines of every .py file);
- median wall time of `list` in a fresh process (the command line's start-up, nothing to train);
- median wall time of `train --time SECONDS` in a fresh process, and the ratio after/before.
The two sides alternate run by run, so that both meet the same machine load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BEFORE = "67e5219"  # the last commit before the lifecycle moved into mlscaffold


def python_lines(root: Path) -> int:
    return sum(len(path.read_text().splitlines()) for path in root.rglob("*.py")
               if "infra" not in path.relative_to(root).parts)


def old_project(ref: str, new_root: Path, target: Path) -> Path:
    """The blueprint at `ref` rendered with the new project's answers and data."""
    import copier
    import yaml

    from mlscaffold.spec import load_spec

    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "blueprints/ml-project"],
                             check=True, capture_output=True).stdout
    source = target.parent / f"blueprint-{ref}"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(source, filter="data")
    spec = load_spec(new_root / "mlscaffold.yaml")
    copier_yml = source / "blueprints" / "ml-project" / "copier.yml"
    questions = next(yaml.safe_load_all(copier_yml.read_text()))
    answers = {key: value for key, value in spec.blueprint_answers().items() if key in questions}
    answers["mlscaffold_version"] = "0.1.0"
    copier.run_copy(str(source / "blueprints" / "ml-project"), target, data=answers,
                    defaults=True, quiet=True, unsafe=False)
    shutil.copytree(new_root / "datasets", target / "datasets", dirs_exist_ok=True)
    shutil.copy(new_root / "mlscaffold.yaml", target / "mlscaffold.yaml")
    return target


def walls(sides: dict[str, tuple[Path, dict[str, str], list[str]]], args: list[str],
          runs: int) -> dict[str, float]:
    """Median wall time of `args` per side, the sides alternating run by run (so both meet the
    same machine load)."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, (cwd, env, command) in sides.items():
            started = time.perf_counter()
            subprocess.run([*command, *args], cwd=cwd, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, metavar="REF")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--time", type=float, default=30.0)
    args = parser.parse_args()

    from mlscaffold import catalog
    from mlscaffold.project import create_project
    from mlscaffold.spec import validate_spec

    scratch = Path(tempfile.mkdtemp(prefix="mlscaffold-bench-project-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
    try:
        print(f"before: blueprint at {args.before} (python -m <package>); after: this checkout "
              f"(mlscaffold); medians of {args.runs} fresh processes")
        for task in catalog.TASKS:
            spec = validate_spec({"name": f"bench-{task.split('-')[0]}", "task": task})
            new = create_project(scratch / "after" / spec.name, spec, git=False).path
            old = old_project(args.before, new, scratch / "before" / spec.name)
            old_env = {**env, "PYTHONPATH": str(old / "src")}
            runs = {
                "before": (old, old_env, [sys.executable, "-m", spec.package]),
                "after": (new, env, [sys.executable, "-m", "mlscaffold"]),
            }
            lines = {name: python_lines(root) for name, (root, _, _) in runs.items()}
            startup = walls(runs, ["list"], max(args.runs, 5))
            train = walls(runs, ["train", "--time", str(args.time)], args.runs)
            print(f"{task}")
            print(f"  lines of Python outside infra/  before {lines['before']:>5}  "
                  f"after {lines['after']:>4}")
            print(f"  `list` start-up                 before {startup['before'] * 1000:5.0f} ms  "
                  f"after {startup['after'] * 1000:5.0f} ms  "
                  f"ratio {startup['after'] / startup['before']:.2f}")
            print(f"  `train --time {args.time:g}` wall          before {train['before']:5.1f} s   "
                  f"after {train['after']:5.1f} s   ratio {train['after'] / train['before']:.3f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
