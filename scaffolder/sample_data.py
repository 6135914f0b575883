"""Deterministic sample datasets for a new project, so it trains on the first command.

The data describe customers of a subscription service. The same features serve all three
tasks; only the label differs:

- binary-classification: did the customer churn (0/1)
- multiclass-classification: value segment (bronze/silver/gold)
- regression: twelve-month revenue

A few columns exist to give `analyze` something to find: ``customer_id`` is ID-like,
``country`` is constant, ``signup_channel`` and ``avg_session_minutes`` have missing values.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator
from pathlib import Path

__all__ = ["FEATURE_COLUMNS", "SPLITS", "sample_rows", "write_sample_datasets"]

FEATURE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "tenure_months",
    "monthly_spend",
    "support_tickets",
    "plan",
    "region",
    "signup_channel",
    "avg_session_minutes",
    "country",
)

# split name -> (rows, seed); fixed so every new project gets byte-identical data
SPLITS: dict[str, tuple[int, int]] = {
    "train": (800, 1001),
    "validation": (200, 2002),
    "test": (200, 3003),
}

_PLANS = {"basic": 0.0, "standard": 1.0, "premium": 2.0}
_REGIONS = ("north", "south", "east", "west")
_CHANNELS = ("web", "mobile", "partner", "store")


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small rates used here
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _label(task: str, rng: random.Random, tenure: int, spend: float, tickets: int, plan: float,
           region: str, minutes: float) -> str:
    if task == "binary-classification":
        logit = 1.2 - 0.065 * tenure + 0.025 * (spend - 60) + 0.55 * tickets - 0.5 * plan
        logit += 0.4 if region == "south" else 0.0
        return "1" if rng.random() < 1.0 / (1.0 + math.exp(-logit)) else "0"
    if task == "multiclass-classification":
        score = 0.035 * spend + 0.02 * tenure + 0.6 * plan + 0.01 * minutes + rng.gauss(0, 0.45)
        return "bronze" if score < 3.0 else "silver" if score < 4.2 else "gold"
    if task == "regression":
        revenue = 12 * spend * (0.55 + 0.006 * tenure) + 140 * plan - 35 * tickets
        return f"{revenue + rng.gauss(0, 60):.2f}"
    raise ValueError(f"unknown task {task!r}")


def sample_rows(task: str, rows: int, seed: int) -> Iterator[dict[str, str]]:
    """Yield `rows` deterministic records for `task`: strings, '' for missing, label under ''."""
    rng = random.Random(seed)
    for i in range(rows):
        tenure = rng.randint(1, 72)
        plan_name = rng.choices(list(_PLANS), weights=(5, 3, 2))[0]
        plan = _PLANS[plan_name]
        spend = max(9.0, rng.gauss(35 + 20 * plan, 12))
        tickets = _poisson(rng, 0.6 + 0.4 * (plan == 0))
        region = rng.choice(_REGIONS)
        channel = "" if rng.random() < 0.05 else rng.choice(_CHANNELS)
        minutes = max(1.0, rng.gauss(22 + 6 * plan, 7))
        minutes_text = "" if rng.random() < 0.03 else f"{minutes:.1f}"
        yield {
            "customer_id": f"C{seed:04d}{i:05d}",
            "tenure_months": str(tenure),
            "monthly_spend": f"{spend:.2f}",
            "support_tickets": str(tickets),
            "plan": plan_name,
            "region": region,
            "signup_channel": channel,
            "avg_session_minutes": minutes_text,
            "country": "US",
            "": _label(task, rng, tenure, spend, tickets, plan, region, minutes),
        }


def write_sample_datasets(directory: Path, task: str, label: str) -> list[Path]:
    """Write train/validation/test CSVs for `task` with the label column named `label`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for split, (rows, seed) in SPLITS.items():
        path = directory / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow([*FEATURE_COLUMNS, label])
            for record in sample_rows(task, rows, seed):
                writer.writerow([*(record[c] for c in FEATURE_COLUMNS), record[""]])
        written.append(path)
    return written
