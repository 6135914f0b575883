"""Jinja's compilations memoized across the renders of a test run.

Copier makes a new Jinja environment for each render and compiles every path, file and
question default from source again: about 400 compilations per project, over a third of a
render, and the suite renders hundreds of projects from the same few templates. The code Jinja
compiles depends only on the source and the environment's syntax settings, extensions and the
names of its filters and tests; executed, it binds to the environment that loads it. So an
environment whose settings match reuses the code another compiled. Products of the code are
untouched: only the time to make them goes.
"""

from __future__ import annotations

from typing import Any

import jinja2

_compile = jinja2.Environment.compile
_compiled: dict[tuple, Any] = {}


def _settings(environment: jinja2.Environment) -> tuple:
    """What the compiled code depends on besides the source."""
    return (type(environment), environment.block_start_string, environment.block_end_string,
            environment.variable_start_string, environment.variable_end_string,
            environment.comment_start_string, environment.comment_end_string,
            environment.line_statement_prefix, environment.line_comment_prefix,
            environment.trim_blocks, environment.lstrip_blocks, environment.newline_sequence,
            environment.keep_trailing_newline, tuple(sorted(environment.extensions)),
            environment.optimized, environment.is_async, environment.finalize,
            environment.autoescape, tuple(sorted(environment.filters)),
            tuple(sorted(environment.tests)))


def _memoized(self: jinja2.Environment, source: Any, name: str | None = None,
              filename: str | None = None, raw: bool = False, defer_init: bool = False) -> Any:
    if not isinstance(source, str):  # a parsed template: nothing to key it by
        return _compile(self, source, name, filename, raw, defer_init)
    try:
        key = (_settings(self), source, name, filename, raw, defer_init)
        hash(key)
    except TypeError:  # an unhashable setting (a callable autoescape made per render)
        return _compile(self, source, name, filename, raw, defer_init)
    if key not in _compiled:
        _compiled[key] = _compile(self, source, name, filename, raw, defer_init)
    return _compiled[key]


def install() -> None:
    """Memoize every Jinja environment's compile in this process."""
    jinja2.Environment.compile = _memoized  # type: ignore[method-assign]
