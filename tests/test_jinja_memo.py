"""The test run's memo of Jinja compilations (tools/jinja_memo.py) reuses code only where the
environment would compile the same, and renders what a fresh compilation renders."""

from __future__ import annotations

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .tools import jinja_memo


def test_the_memo_is_installed_and_reuses_code_for_the_same_settings():
    assert jinja2.Environment.compile is jinja_memo._memoized
    source = "{{ name | upper }}-memo-test"
    first, second = SandboxedEnvironment(), SandboxedEnvironment()
    assert first.compile(source) is second.compile(source)
    assert second.from_string(source).render(name="a") == "A-memo-test"


def test_other_settings_compile_again_and_render_their_own_way():
    source = "[[ name ]] {{ name }}-memo-test"
    plain = jinja2.Environment()
    brackets = jinja2.Environment(variable_start_string="[[", variable_end_string="]]")
    assert plain.compile(source) is not brackets.compile(source)
    assert plain.from_string(source).render(name="x") == "[[ name ]] x-memo-test"
    assert brackets.from_string(source).render(name="x") == "x {{ name }}-memo-test"
    filtered = jinja2.Environment()
    filtered.filters["shout"] = lambda value: f"{value}!"
    assert filtered.from_string("{{ 'a' | shout }}").render() == "a!"
    assert filtered.compile("{{ 'a' }}") is not plain.compile("{{ 'a' }}")  # other filters
