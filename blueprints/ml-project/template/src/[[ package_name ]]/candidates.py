"""The estimator families the model search tries, each with its hyperparameter distribution.

The default is scikit-learn's linear models, k-nearest neighbours, histogram gradient boosting,
random forests and extra trees. To add one, append a Family:

    Family("svm", build=lambda params, seed: SVC(probability=True, random_state=seed, **params),
           sample=lambda rng: {"C": 10 ** rng.uniform(-2, 2)}, baseline={"C": 1.0})
"""

from mlscaffold.lifecycle.hooks import Family, default_families

__all__ = ["Family", "families"]


def families(task: str) -> list[Family]:
    """The families for `task` (binary-classification, multiclass-classification, regression)."""
    return default_families(task)
