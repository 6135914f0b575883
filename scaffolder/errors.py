"""The errors mlscaffold's core raises. The CLI turns them into one-line messages and exit codes."""

from __future__ import annotations

from .yamlfiles import describe_yaml_error  # re-exported: where the core's readers find it

__all__ = [
    "BlueprintError",
    "DestinationError",
    "MlscaffoldError",
    "OutputExists",
    "SpecError",
    "UsageError",
    "caused_by_interrupt",
    "describe_yaml_error",
]


class MlscaffoldError(Exception):
    """Base of every error the core raises on purpose.

    ``message`` says what is wrong and names the value; ``hint`` says how to fix it.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: more lines for the user (a traceback of their own code), printed after the message
        self.details = details

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(MlscaffoldError):
    """The user's input is wrong (an option, a file, a destination): exit status 2."""

    exit_code = 2


class SpecError(UsageError):
    """A project spec value is invalid; ``field`` lets the CLI name the option that set it."""

    def __init__(self, field: str, value: object, message: str, *,
                 hint: str | None = None, source: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.value = value
        self.source = source


class DestinationError(UsageError):
    """The destination folder cannot take a new project."""


class OutputExists(UsageError):
    """An output option names an existing file the command did not write."""


class BlueprintError(MlscaffoldError):
    """The blueprint could not be found or failed to render."""

    exit_code = 2


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether Ctrl-C caused `error`: a compiled module's initialisation that a KeyboardInterrupt
    ends raises ImportError("initialization failed") from it (pybind11's module init, as in
    scipy's _highspy, which `import sklearn` loads)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
