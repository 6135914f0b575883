"""Cost rules and the monthly cost estimator; importing this package registers the rules."""

from . import rules  # noqa: F401
