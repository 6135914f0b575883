"""YAML errors on one line: what is wrong and where. A leaf module: the policies, which must not
import the CLI's error types, read their files with it too."""

from __future__ import annotations

__all__ = ["describe_yaml_error"]


def describe_yaml_error(error: Exception) -> str:
    """A YAML parser error on one line: what is wrong and where."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem
