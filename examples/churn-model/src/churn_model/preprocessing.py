"""How raw columns become model inputs. `mlscaffold train` calls this once per candidate model.

Column kinds come from `mlscaffold analyze`: "numeric", "categorical", "date" (ISO 8601 text) or
"dropped" (identifiers and constants). The default imputes and scales numbers, one-hot encodes
categories and reads dates as numbers (days since 1970, month, weekday, day, hour). Anything
you return must be an unfitted scikit-learn transformer; code of this package that it uses is
pickled by reference, so the serving image installs the package.
"""

from mlscaffold.lifecycle.hooks import default_preprocessor


def build_preprocessor(features: dict[str, str]):
    """An unfitted transformer for the columns in `features` (column name -> kind)."""
    return default_preprocessor(features)
