"""Benchmark: CLI start-up and `mlscaffold new` against a plain `copier copy`.

    python tests/bench/bench_new.py [--runs N]

Prints medians of N runs (default 7) of:
- `python -c pass` (the interpreter's own start-up, for reference),
- `mlscaffold --help`,
- `mlscaffold new DEST --no-input` (render + spec + sample data + git commit),
- `copier copy` of the same blueprint with the same answers (render only),
and the ratio new/copier. Each run is a fresh process, as a user would run it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from timing import run_command, timed

BIN = Path(sys.executable).parent


def _line(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f"  {label:<44} median {median * 1000:8.1f} ms   "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, n={len(times)})")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    from mlscaffold.project import bundled_blueprint
    from mlscaffold.spec import validate_spec

    scratch = Path(tempfile.mkdtemp(prefix="mlscaffold-bench-"))
    try:
        print(f"mlscaffold benchmarks ({runs} runs each, fresh processes)")
        _line("python -c pass", timed(lambda: run_command([sys.executable, "-c", "pass"]), runs))
        help_command = [str(BIN / "mlscaffold"), "--help"]
        help_median = _line("mlscaffold --help", timed(lambda: run_command(help_command), runs))

        new_times, copier_times = [], []
        answers = scratch / "answers.yml"
        answers.write_text(yaml.safe_dump(validate_spec({"name": "bench"}).blueprint_answers()))
        for index in range(runs):  # interleaved, so both see the same machine state
            for kind, bucket in (("new", new_times), ("copier", copier_times)):
                dest = scratch / f"{kind}-{index}" / "bench"
                command = (
                    [str(BIN / "mlscaffold"), "new", str(dest), "--no-input"] if kind == "new"
                    else [str(BIN / "copier"), "copy", "--quiet", "--defaults", "--data-file",
                          str(answers), str(bundled_blueprint()), str(dest)]
                )
                bucket.extend(timed(lambda command=command: run_command(command), 1))
        new_median = _line("mlscaffold new (render, data, git commit)", new_times)
        copier_median = _line("copier copy (render only)", copier_times)
        print(f"\n  ratio new / copier copy: {new_median / copier_median:.2f}x")
        print(f"  --help under 0.5 s: {'yes' if help_median < 0.5 else 'NO'} "
              f"({help_median * 1000:.0f} ms)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
