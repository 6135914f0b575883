"""PNG plots of an evaluation (matplotlib is imported only when a plot is drawn)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .files import atomic_write


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


def regression_plot(actual: np.ndarray, predicted: np.ndarray, title: str, path: Path) -> Path:
    """Predicted against actual values beside residuals against predicted values."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.scatter(actual, predicted, s=10, alpha=0.6)
    left.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    left.set(xlabel="actual", ylabel="predicted", title="predicted vs actual")
    right.scatter(predicted, actual - predicted, s=10, alpha=0.6)
    right.axhline(0, color="grey", linestyle="--", linewidth=1)
    right.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="residuals")
    figure.suptitle(title)
    return _save(figure, path)
