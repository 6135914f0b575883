"""Timing helpers shared by the benchmark scripts: medians of repeated runs, linear fits."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Mapping

__all__ = ["median_ms", "run_command", "slope", "timed"]


def timed(function: Callable[[], object], runs: int) -> list[float]:
    """Wall times in seconds of `runs` calls."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def run_command(command: list[str]) -> None:
    """Run a command to completion, quietly; fail loudly."""
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def slope(points: Mapping[int, float]) -> float:
    """Least-squares slope of y over x."""
    mean_x = statistics.mean(points)
    mean_y = statistics.mean(points.values())
    return (sum((x - mean_x) * (y - mean_y) for x, y in points.items())
            / sum((x - mean_x) ** 2 for x in points))
