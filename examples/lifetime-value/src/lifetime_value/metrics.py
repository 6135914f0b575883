"""Metrics of your own: computed next to the built-in ones, and selectable with --metric.

Each Metric gets an Outcome (y_true, y_pred, and for classifiers probabilities and classes;
for a binary label, positive_class and its probability column, positive_column: the spec's
positive_class, else the class that sorts last):

    Metric("top_decile_precision", higher_is_better=True, tasks=("binary-classification",),
           compute=lambda outcome: ..., description="precision in the top 10% of scores")
"""

from mlscaffold.lifecycle.hooks import Metric

__all__ = ["Metric", "custom_metrics"]


def custom_metrics() -> list[Metric]:
    """None by default."""
    return []
