"""How a candidate is scored: k-fold cross-validation on small data, a hold-out set on large.

Below CV_MAX_ROWS rows (train and validation together), one validation split of a few dozen
rows picks winners by luck: every candidate is scored by k-fold cross-validation over train and
validation together (stratified for classification), and the chosen model is refitted on all of
those rows. Below REPEATS_MAX_ROWS rows the folds are drawn REPEATS times (a new shuffle each
time, the same shuffles for every candidate), and a candidate's prediction for a row is the mean
of its predictions from the repeats. Above CV_MAX_ROWS, candidates fit on the training set and
are scored on the validation set, after a screening fit on a quarter of the training rows.

Each protocol is a list of views (rows to fit on, rows to score); the preprocessing of each view
is fitted once and shared by every candidate. After each view but the last, a candidate may be
stopped for scoring poorly (see search.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    train_test_split,
)

from .text import plain

# cross-validated selection up to this many rows of train + validation
CV_MAX_ROWS = 10_000
# folds: more on small data, where each fold's score is noisy, fewer where fits cost more
FOLDS_SMALL, FOLDS_LARGE, FOLDS_SMALL_MAX_ROWS = 5, 3, 2000
# up to this many rows, the folds are drawn this many times: on a few hundred rows one shuffle's
# luck moves a score by more than the candidates differ (diabetes, 353 rows: the default ridge
# scored r2 0.476 to 0.501 over four shuffles, and a single shuffle ranked a mix above it that
# lost to it on the test rows)
REPEATS, REPEATS_MAX_ROWS = 3, 500
# hold-out: a first fit on this share of the training rows screens a candidate, if that share
# holds at least SCREEN_MIN_ROWS rows
SCREEN_SHARE, SCREEN_MIN_ROWS = 0.25, 2000


@dataclass(frozen=True)
class View:
    """Rows a candidate is fitted on and rows it is scored on (positions in all the rows)."""

    fit: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class Protocol:
    """The views a candidate goes through and which of them make its predictions."""

    method: str  # "cross-validation" | "hold-out"
    views: tuple[View, ...]
    output_views: tuple[int, ...]  # views whose predictions, together, are the candidate's
    rows: int  # rows of train + validation
    refit: bool  # the chosen model is refitted on all rows
    scored: np.ndarray = field(repr=False)  # positions that get a prediction, in order
    repeats: int = 1  # shuffles of the folds; the views are `folds` per shuffle, shuffle by shuffle
    reason: str = ""  # why hold-out on rows cross-validation would score, else ""

    @property
    def folds(self) -> int:
        """Folds of one shuffle (views of one shuffle, for hold-out)."""
        return len(self.views) // self.repeats

    def standard_error(self, scores: list[float | None]) -> float:
        """The standard error of per-view `scores` (views in order, shuffle by shuffle), per
        shuffle, averaged; 0.0 when a shuffle has fewer than two folds or a fold has no score."""
        return float(np.mean([_standard_error(scores[start:start + self.folds])
                              for start in range(0, len(scores), self.folds)]))

    def describe(self) -> dict:
        """For experiment.json."""
        if self.method == "cross-validation":
            repeated = f", repeated {self.repeats} times" if self.repeats > 1 else ""
            text = (f"{self.folds}-fold cross-validation{repeated} on train + validation "
                    f"({self.rows} rows); the chosen model is refitted on all of them")
        else:
            text = (f"hold-out: fitted on train ({len(self.views[-1].fit)} rows), scored on "
                    f"validation ({len(self.scored)} rows)")
            if self.reason:
                text += f" ({self.reason})"
        return {"method": self.method, "folds": self.folds, "repeats": self.repeats,
                "rows": self.rows, "refit_on_train_and_validation": self.refit,
                "description": text}


def plan(train_rows: int, y: np.ndarray, classification: bool, seed: int) -> Protocol:
    """The protocol for `y` (train labels first, then validation labels)."""
    rows = len(y)
    folds = _folds(y, classification, FOLDS_SMALL if rows <= FOLDS_SMALL_MAX_ROWS
                   else FOLDS_LARGE)
    if rows <= CV_MAX_ROWS and folds >= 2:
        repeats = REPEATS if rows <= REPEATS_MAX_ROWS else 1
        if repeats > 1:  # its first shuffle is the folds of one (the same seeded shuffle)
            splitter = (RepeatedStratifiedKFold if classification else RepeatedKFold)(
                n_splits=folds, n_repeats=repeats, random_state=seed)
        else:
            splitter = (StratifiedKFold if classification else KFold)(
                n_splits=folds, shuffle=True, random_state=seed)
        views = tuple(View(np.sort(fit), np.sort(score))
                      for fit, score in splitter.split(np.zeros(rows), y))
        scored = np.concatenate([view.score for view in views[:folds]])
        return Protocol("cross-validation", views, tuple(range(len(views))), rows, True, scored,
                        repeats)
    train, validation = np.arange(train_rows), np.arange(train_rows, rows)
    views = [View(train, validation)]
    screen_rows = int(train_rows * SCREEN_SHARE)
    if screen_rows >= SCREEN_MIN_ROWS:
        views.insert(0, View(_subsample(train, y[:train_rows], screen_rows, classification,
                                        seed), validation))
    reason = _single_row_classes(y) if rows <= CV_MAX_ROWS and classification else ""
    return Protocol("hold-out", tuple(views), (len(views) - 1,), rows, False, validation,
                    reason=reason)


def _single_row_classes(y: np.ndarray) -> str:
    """Why stratified folds cannot be drawn: the classes with one row, named."""
    counts = pd.Series(y).value_counts()
    single = [repr(plain(name))
              for name in counts.index[counts < 2]]
    shown = ", ".join(single[:3]) + (", ..." if len(single) > 3 else "")
    return (f"class(es) {shown} have 1 row in train + validation, and cross-validation needs at "
            "least 2 per class")


def _folds(y: np.ndarray, classification: bool, wanted: int) -> int:
    """`wanted`, or fewer when the rarest class has fewer rows (at least 2 per class)."""
    if not classification:
        return min(wanted, len(y))
    rarest = int(pd.Series(y).value_counts().min())
    return min(wanted, rarest)


def _subsample(rows: np.ndarray, y: np.ndarray, size: int, classification: bool,
               seed: int) -> np.ndarray:
    try:
        chosen, _ = train_test_split(rows, train_size=size, random_state=seed,
                                     stratify=y if classification else None)
    except ValueError:  # a class too rare to stratify
        chosen, _ = train_test_split(rows, train_size=size, random_state=seed)
    return np.sort(chosen)


def _standard_error(scores: list[float | None]) -> float:
    present = [score for score in scores if score is not None]
    if len(present) < 2 or len(present) != len(scores):
        return 0.0
    return float(np.std(present, ddof=1) / math.sqrt(len(present)))
