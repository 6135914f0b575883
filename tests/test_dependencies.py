"""Version ranges that must agree between mlscaffold and the projects it makes."""

from __future__ import annotations

import tomllib

from .conftest import BLUEPRINT, REPO


def _requirements(items: list[str]) -> dict[str, str]:
    parsed = {}
    for item in items:
        name = item.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
        parsed[name] = item
    return parsed


def test_project_extra_matches_the_blueprints_dependencies():
    """mlscaffold's tests run generated projects with the `project` extra: same ranges."""
    ours = tomllib.loads((REPO / "pyproject.toml").read_text())
    theirs = (BLUEPRINT / "template" / "pyproject.toml.jinja").read_text()
    blueprint_deps = _requirements(tomllib.loads(
        theirs.replace("{{ project_name }}", "x").replace("{{ package_name }}", "x")
        .replace("{{ task | replace('-', ' ') | capitalize }}", "x"))["project"]["dependencies"])
    extra = _requirements(ours["project"]["optional-dependencies"]["project"])
    core = _requirements(ours["project"]["dependencies"])
    for name, requirement in blueprint_deps.items():
        assert extra.get(name, core.get(name)) == requirement, name
