"""PNG plots of an evaluation or an analysis (matplotlib is imported only when a plot is drawn,
with the Agg backend: no display needed)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .files import atomic_write


class Drawer:
    """Draws plots while matplotlib is there: `draw(function, *args)` is [the path
    `function(*args)` wrote], or [] once matplotlib turned out missing (said once through
    `warn`, kept in `skipped`)."""

    def __init__(self, warn: Callable[[str], None]):
        self.warn = warn
        self.skipped = ""  # why plots were skipped, for the report

    def __call__(self, plot: Callable[..., Path], *args: object) -> list[Path]:
        from ..packaging import install_hint, missing_library

        if self.skipped:
            return []
        try:
            return [plot(*args)]
        except ModuleNotFoundError as error:
            library = missing_library(error)
            if library is None:
                raise
            self.skipped = (f"plots skipped: {library} is not installed here (an image installs "
                            f"only the lifecycle runtime); {install_hint()} draws them")
            self.warn(self.skipped)
            return []


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return atomic_write(path, lambda stream: stream.write(buffer.getvalue()))


def confusion_matrix_plot(matrix: np.ndarray, classes: list, title: str, path: Path) -> Path:
    """Heatmap of a confusion matrix (rows: actual, columns: predicted) with counts in the cells."""
    plt = _pyplot()
    size = 1.2 + 0.7 * len(classes)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    labels = [str(label) for label in classes]
    axes.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="actual",
        title=title,
    )
    middle = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if count > middle else "black",
        )
    return _save(figure, path)


MAX_CURVES = 10  # one-vs-rest curves drawn for a multiclass model at most (the largest classes)
CALIBRATION_BINS = 10
MAX_IMPORTANCE_BARS = 20


def _one_vs_rest(y_true: np.ndarray, probabilities: np.ndarray, classes: list) -> list[tuple]:
    """(label, is_class, score) per curve: the positive class of a binary model, else one per
    class present with both outcomes, the largest classes first, at most MAX_CURVES."""
    y_true = np.asarray(y_true)
    if len(classes) == 2:
        chosen = [len(classes) - 1]
    else:
        counts = [int(np.sum(y_true == label)) for label in classes]
        chosen = sorted(range(len(classes)), key=lambda i: -counts[i])[:MAX_CURVES]
    curves = []
    for index in chosen:
        is_class = y_true == classes[index]
        if is_class.any() and not is_class.all():
            curves.append((str(classes[index]), is_class, probabilities[:, index]))
    return curves


def roc_plot(y_true: np.ndarray, probabilities: np.ndarray, classes: list, title: str,
             path: Path) -> Path:
    """ROC curve of the positive class (binary) or one-vs-rest per class, with their AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 5))
    for label, is_class, score in _one_vs_rest(y_true, probabilities, classes):
        false_positive, true_positive, _ = roc_curve(is_class, score)
        axes.plot(false_positive, true_positive,
                  label=f"{label} (AUC {roc_auc_score(is_class, score):.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}",
             xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def precision_recall_plot(y_true: np.ndarray, probabilities: np.ndarray, classes: list,
                          title: str, path: Path) -> Path:
    """Precision against recall of the positive class (or per class), with average precision;
    a dotted line marks each class's share, the precision of guessing."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 5))
    for label, is_class, score in _one_vs_rest(y_true, probabilities, classes):
        precision, recall, _ = precision_recall_curve(is_class, score)
        line = axes.plot(recall, precision, drawstyle="steps-post", label=f"{label} (AP "
                         f"{average_precision_score(is_class, score):.3f})")[0]
        axes.axhline(is_class.mean(), color=line.get_color(), linestyle=":", linewidth=1)
    axes.set(xlabel="recall", ylabel="precision", title=f"precision-recall: {title}",
             xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower left", fontsize="small")
    return _save(figure, path)


def calibration_plot(y_true: np.ndarray, probabilities: np.ndarray, classes: list, title: str,
                     path: Path) -> Path:
    """Observed share of the class against the mean predicted probability, in equal-width bins
    (a well calibrated model follows the diagonal), over a histogram of the probabilities."""
    from sklearn.calibration import calibration_curve

    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for label, is_class, score in _one_vs_rest(y_true, probabilities, classes):
        observed, predicted = calibration_curve(is_class, score, n_bins=CALIBRATION_BINS)
        top.plot(predicted, observed, marker="o", markersize=3, label=label)
        bottom.hist(score, bins=CALIBRATION_BINS, range=(0, 1), histtype="step", label=label)
    top.set(ylabel="observed share", title=f"calibration: {title}", xlim=(0, 1), ylim=(0, 1.02))
    top.legend(loc="upper left", fontsize="small")
    bottom.set(xlabel="predicted probability", ylabel="rows")
    return _save(figure, path)


def importance_plot(importance: list[dict], metric: str, title: str, path: Path) -> Path:
    """Horizontal bars of the permutation importance (mean and spread over the repeats)."""
    plt = _pyplot()
    shown = importance[:MAX_IMPORTANCE_BARS][::-1]
    figure, axes = plt.subplots(figsize=(7, 1.2 + 0.32 * len(shown)))
    axes.barh([row["feature"] for row in shown], [row["mean"] for row in shown],
              xerr=[row["std"] for row in shown], color="tab:blue", alpha=0.8)
    axes.axvline(0, color="grey", linewidth=1)
    axes.set(xlabel=f"drop in {metric} when the column is shuffled",
             title=f"permutation importance: {title}")
    return _save(figure, path)


def predicted_vs_actual_plot(actual: np.ndarray, predicted: np.ndarray, title: str,
                             path: Path) -> Path:
    """Predicted against actual values; the dashed diagonal is a perfect model."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 5))
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.scatter(actual, predicted, s=10, alpha=0.6)
    axes.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel="actual", ylabel="predicted", title=f"predicted vs actual: {title}")
    return _save(figure, path)


def residuals_plot(actual: np.ndarray, predicted: np.ndarray, title: str, path: Path) -> Path:
    """Residuals against predicted values beside their histogram."""
    plt = _pyplot()
    residuals = actual - predicted
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.scatter(predicted, residuals, s=10, alpha=0.6)
    left.axhline(0, color="grey", linestyle="--", linewidth=1)
    left.set(xlabel="predicted", ylabel="residual (actual - predicted)",
             title="residuals vs predicted")
    right.hist(residuals, bins=30)
    right.axvline(0, color="grey", linestyle="--", linewidth=1)
    right.set(xlabel="residual", ylabel="rows", title="distribution of residuals")
    figure.suptitle(f"residuals: {title}")
    return _save(figure, path)


MAX_CATEGORIES_SHOWN = 20


def distribution_plot(values, kind: str, name: str, path: Path) -> Path:
    """A numeric column's histogram, or a categorical column's most frequent values as bars;
    the title counts the missing values."""
    import pandas as pd

    plt = _pyplot()
    values = pd.Series(values)
    present = values.dropna()
    missing = len(values) - len(present)
    if kind in ("numeric", "date"):
        figure, axes = plt.subplots(figsize=(5.5, 3.6))
        if kind == "date":
            from .schema import parse_dates

            present = parse_dates(present).dropna()
            figure.autofmt_xdate()
        axes.hist(present.to_numpy(dtype=float) if kind == "numeric" else present, bins=30,
                  color="tab:blue", alpha=0.85)
        axes.set(xlabel=name, ylabel="rows")
    else:
        counts = present.astype(str).value_counts()
        shown = counts.head(MAX_CATEGORIES_SHOWN)
        if len(counts) > len(shown):
            shown = pd.concat([shown, pd.Series({f"({len(counts) - len(shown)} others)":
                                                 int(counts.iloc[len(shown):].sum())})])
        figure, axes = plt.subplots(figsize=(5.5, 1.2 + 0.3 * len(shown)))
        axes.barh([str(label) for label in shown.index[::-1]], shown.to_numpy()[::-1],
                  color="tab:blue", alpha=0.85)
        axes.set(xlabel="rows")
    axes.set_title(f"{name} ({kind}; {missing} missing of {len(values)})")
    return _save(figure, path)


def correlation_plot(frame, title: str, path: Path) -> Path:
    """Heatmap of the Spearman rank correlations between the columns of `frame` (numbers)."""
    plt = _pyplot()
    matrix = frame.corr(method="spearman").to_numpy()
    names = [str(name) for name in frame.columns]
    size = 2.5 + 0.45 * len(names)
    figure, axes = plt.subplots(figsize=(size + 1.2, size))
    image = axes.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    figure.colorbar(image, ax=axes, shrink=0.8)
    axes.set(xticks=range(len(names)), yticks=range(len(names)), title=title)
    axes.set_xticklabels(names, rotation=45, ha="right")
    axes.set_yticklabels(names)
    if len(names) <= 15:
        for (row, column), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if abs(value) > 0.6 else "black")
    return _save(figure, path)
