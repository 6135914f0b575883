"""The requirement lists: one file each, read by pyproject.toml and by what `new` renders."""

from __future__ import annotations

from importlib.metadata import requires

from packaging.requirements import Requirement

from mlscaffold import DISTRIBUTION
from mlscaffold.packaging import runtime_requirements

from .conftest import REPO

REQUIREMENTS = REPO / "scaffolder" / "requirements"


def _names(lines: list[str] | tuple[str, ...]) -> set[str]:
    return {Requirement(line).name.lower() for line in lines}


def _file(name: str) -> list[str]:
    return [line.strip() for line in (REQUIREMENTS / name).read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_the_distribution_requires_the_runtime_and_the_platform_lists():
    installed = [r for r in requires(DISTRIBUTION) or [] if "extra ==" not in r]
    assert sorted(map(str, map(Requirement, installed))) == sorted(
        map(str, map(Requirement, _file("runtime.txt") + _file("platform.txt"))))


def test_the_runtime_holds_no_tool_library():
    """The serving and training image installs the runtime list: no Pulumi, Copier or boto3."""
    assert not _names(runtime_requirements()) & {"pulumi", "pulumi-aws", "pulumi-kubernetes",
                                                  "pulumi-policy", "copier", "boto3", "jinja2"}
    assert not _names(_file("runtime.txt")) & _names(_file("platform.txt"))
