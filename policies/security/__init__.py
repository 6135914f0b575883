"""Security rules, grouped by domain; importing this package registers them."""

from . import compute, iam, kubernetes, logging, ml, network, storage  # noqa: F401
