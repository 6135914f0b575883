"""Errors a user can cause and fix; the CLI prints them as one line, without a traceback."""

from __future__ import annotations

COMMAND = f"python -m {__package__}"  # how messages tell users to run this package


class ProjectError(Exception):
    """Base class: a problem with the project, its inputs or the command line (exit code 2)."""

    exit_code = 2


class ConfigError(ProjectError):
    """mlscaffold.yaml is missing or invalid."""


class DataError(ProjectError, ValueError):
    """An input file or record set cannot be used as given."""


class NotFoundError(ProjectError, LookupError):
    """An experiment, model version or file the command needs does not exist."""


class GateError(ProjectError):
    """A quality gate refused the operation (exit code 1)."""

    exit_code = 1
