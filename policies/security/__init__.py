"""Security rules, one module per domain (storage, logging, iam, network, compute, kubernetes,
ml); :mod:`mlscaffold.policies.registry` lists them."""
