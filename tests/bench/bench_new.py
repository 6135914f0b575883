"""Benchmark: CLI start-up and `mlscaffold new` against a plain `copier copy`.

    python tests/bench/bench_new.py [--runs N]

Prints medians of N runs (default 5) of:
- `python -c pass` (the interpreter's own start-up, for reference),
- `mlscaffold --help`,
- `mlscaffold new DEST --no-input` (render, spec, stack configs, CI, sample data, the README's
  diagram, git commit),
- `copier copy` of the same blueprint with the same answers (render only),
and the ratio new / copier copy, whose target is 1.2 at most. `new` and `copier copy` run side
by side: each round runs both, so both see the same machine. Wall time is what a user waits
for; CPU time (user + system, child processes included) is shown too, as a shared machine's
load moves wall time much more.

Every run is a fresh process, as a user would run it, with bytecode cached as after an install:
children read and write .pyc files under a scratch PYTHONPYCACHEPREFIX, warmed by one untimed run
of each command. (An editable install under PYTHONDONTWRITEBYTECODE=1 would compile mlscaffold's
modules on every run, while copier's come compiled from its wheel.)
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

import yaml
from timing import run_command, timed

BIN = Path(sys.executable).parent
TARGET_RATIO = 1.2


def _line(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f"  {label:<44} median {median * 1000:8.1f} ms   "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, n={len(times)})")
    return median


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command` (CPU: user + system, children included)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise subprocess.CalledProcessError(status, command)
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    from mlscaffold.answers import blueprint_data
    from mlscaffold.project import bundled_blueprint
    from mlscaffold.spec import validate_spec

    scratch = Path(tempfile.mkdtemp(prefix="mlscaffold-bench-"))
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    try:
        print(f"mlscaffold benchmarks ({runs} runs each, fresh processes)")
        _line("python -c pass", timed(lambda: run_command([sys.executable, "-c", "pass"]), runs))
        help_command = [str(BIN / "mlscaffold"), "--help"]
        help_median = _line("mlscaffold --help", timed(lambda: run_command(help_command), runs))

        answers = scratch / "answers.yml"
        # the same answers `new` passes: the spec's and what mlscaffold derives from them
        answers.write_text(yaml.safe_dump(blueprint_data(validate_spec({"name": "bench"}))))

        def command(kind: str, dest: Path) -> list[str]:
            if kind == "new":
                return [str(BIN / "mlscaffold"), "new", str(dest), "--no-input"]
            return [str(BIN / "copier"), "copy", "--quiet", "--defaults", "--data-file",
                    str(answers), str(bundled_blueprint()), str(dest)]

        kinds = ("new", "copier")
        for kind in kinds:  # untimed: fills the bytecode cache and the file cache
            _run(command(kind, scratch / f"{kind}-warm" / "bench"), env)
        wall: dict[str, list[float]] = {kind: [] for kind in kinds}
        cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
        for index in range(runs):  # interleaved, so both see the same machine state
            for kind in kinds:
                seconds, cpu_seconds = _run(command(kind, scratch / f"{kind}-{index}" / "bench"),
                                            env)
                wall[kind].append(seconds)
                cpu[kind].append(cpu_seconds)
        new_median = _line("mlscaffold new (derive, render, data, git)", wall["new"])
        copier_median = _line("copier copy (render only)", wall["copier"])
        new_cpu = _line("  CPU time of mlscaffold new", cpu["new"])
        copier_cpu = _line("  CPU time of copier copy", cpu["copier"])
        ratio = new_median / copier_median
        print(f"\n  ratio new / copier copy: {ratio:.2f}x wall, {new_cpu / copier_cpu:.2f}x CPU "
              f"(target: at most {TARGET_RATIO}x: {'yes' if ratio <= TARGET_RATIO else 'NO'})")
        print(f"  --help under 0.5 s: {'yes' if help_median < 0.5 else 'NO'} "
              f"({help_median * 1000:.0f} ms)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
