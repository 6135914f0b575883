"""Errors a user can cause and fix in a project; the CLI prints them as one line, no traceback."""

from __future__ import annotations

from ..errors import MlscaffoldError, UsageError

COMMAND = "mlscaffold"  # how messages tell users to run a lifecycle command


class ProjectError(UsageError):
    """A problem with the project, its inputs or the command line (exit code 2)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)


class ConfigError(ProjectError):
    """mlscaffold.yaml is missing, invalid or made by another mlscaffold version."""


class HookError(ProjectError):
    """The team's hook code (src/<package>/) failed to import, raised or returned a wrong type."""


class DataError(ProjectError, ValueError):
    """An input file or record set cannot be used as given."""


class NotFoundError(ProjectError, LookupError):
    """An experiment, model version or file the command needs does not exist."""


class GateError(ProjectError):
    """A quality gate refused the operation (exit code 1)."""

    exit_code = 1


class TrackingError(MlscaffoldError):
    """The MLflow tracking store could not be reached or refused a run (exit code 1); what
    the command made locally is kept."""
