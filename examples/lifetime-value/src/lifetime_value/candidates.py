"""The estimator families the model search tries, each with its hyperparameter distribution.

The default is scikit-learn's linear models, k-nearest neighbours, support vector machines,
extra trees, random forests and histogram gradient boosting, cheapest first: the search fits
their baselines in this order. To add one, append a Family:

    Family("naive_bayes", build=lambda params, seed: GaussianNB(**params),
           sample=lambda rng: {"var_smoothing": 10 ** rng.uniform(-11, -7)}, baseline={})
"""

from mlscaffold.lifecycle.hooks import Family, default_families

__all__ = ["Family", "families"]


def families(task: str) -> list[Family]:
    """The families for `task` (binary-classification, multiclass-classification, regression)."""
    return default_families(task)
