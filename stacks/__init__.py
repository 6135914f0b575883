"""Pulumi components of the ML platform (``mlscaffold.stacks``).

``from mlscaffold.stacks import MlPlatform, platform_config`` is all a project's
``infra/__main__.py`` needs. Components import Pulumi; :mod:`.config` does not.
"""
