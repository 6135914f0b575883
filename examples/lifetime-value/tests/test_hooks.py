"""The team's code: the hooks in src/lifetime_value/, checked as `mlscaffold train` calls them."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlscaffold.lifecycle.hooks import load_hooks

ROOT = Path(__file__).resolve().parents[1]
TASK = "regression"
LABEL = "revenue"


@pytest.fixture(scope="module")
def hooks():
    return load_hooks(ROOT, "lifetime_value")  # fails naming the file and line


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(ROOT / "datasets" / "train.csv").head(200)
    return frame.drop(columns=[LABEL]), frame[LABEL]


def _kinds(frame: pd.DataFrame) -> dict[str, str]:
    return {name: "numeric" if pd.api.types.is_numeric_dtype(frame[name]) else "categorical"
            for name in frame.columns}


def test_preprocessor_turns_every_row_into_finite_numbers(hooks, sample):
    features, _ = sample
    matrix = np.asarray(hooks.preprocessor(_kinds(features)).fit_transform(features), dtype=float)
    assert matrix.shape[0] == len(features)
    assert np.isfinite(matrix).all()


def test_every_candidate_family_fits_the_sample(hooks, sample):
    features, labels = sample
    for family in hooks.families(TASK):
        model = family.build(dict(family.baseline), 0)
        model.fit(hooks.preprocessor(_kinds(features)).fit_transform(features), labels)


def test_custom_metrics_fit_the_task(hooks):
    for metric in hooks.metrics():
        assert TASK in metric.tasks, f"{metric.name} does not apply to {TASK}"
