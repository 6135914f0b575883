"""Regenerate what the repo keeps as generated output: examples/, docs/cli.md, and the
version literals of the files that cannot ask Python for it (copier.yml, the policy packs).

    python tests/tools/regenerate.py examples|docs|version

Tests compare the committed copies with a fresh render and fail when they drift.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[2]

# example folder -> the options `mlscaffold new` is run with
EXAMPLES: dict[str, dict[str, object]] = {
    "churn-model": {"task": "binary-classification", "serving": "sagemaker", "ci": "github",
                    "feature_store": "sagemaker"},
    "lifetime-value": {"task": "regression", "label": "revenue", "serving": "kserve",
                       "ci": "gitlab", "environments": ["dev", "prod"], "region": "eu-west-1"},
}


def render_example(name: str, parent: Path) -> Path:
    """Render example `name` into `parent/name` exactly as `mlscaffold new --no-git` would."""
    from mlscaffold.project import create_project
    from mlscaffold.spec import validate_spec

    spec = validate_spec({"name": name, **EXAMPLES[name]})
    return create_project(parent / name, spec, git=False).path


def cli_reference() -> str:
    """docs/cli.md: every command's --help, as the CLI prints it."""
    from mlscaffold.cli import cli

    lines = ["# CLI reference", "",
             "Generated from `mlscaffold --help` (`make docs`); every command takes `--help`.", ""]

    def walk(command: click.Command, path: list[str], parent: click.Context | None) -> None:
        # a fixed width keeps the page the same on every terminal
        settings = {**command.context_settings, "terminal_width": 100}
        ctx = click.Context(command, info_name=path[-1], parent=parent, **settings)
        lines.extend([f"## `{' '.join(path)}`", "", "```text", command.get_help(ctx), "```", ""])
        if isinstance(command, click.Group):
            for name in sorted(command.commands):
                walk(command.commands[name], [*path, name], ctx)

    walk(cli, ["mlscaffold"], None)
    return "\n".join(lines)


# file -> (pattern of its version literal, its replacement given the version)
_VERSION_LITERALS: dict[str, tuple[str, str]] = {
    "blueprints/ml-project/copier.yml":
        (r'(mlscaffold_version:\n(?:  .*\n)*?  default: )"[^"]*"', r'\g<1>"{version}"'),
    **{f"policies/packs/{pack}/PulumiPolicy.yaml": (r"(?m)^version: .*$", "version: {version}")
       for pack in ("security", "cost")},
    **{f"policies/packs/{pack}/requirements.txt":
       (r"(?m)^mlscaffold-kit==.*$", "mlscaffold-kit=={version}") for pack in ("security", "cost")},
}


def version_holders() -> list[Path]:
    """Write mlscaffold.__version__ into every file that holds it literally (a release bump
    changes scaffolder/__init__.py, then runs this)."""
    import re

    from mlscaffold import __version__

    paths = []
    for name, (pattern, replacement) in _VERSION_LITERALS.items():
        path = REPO / name
        text, count = re.subn(pattern, replacement.format(version=__version__),
                              path.read_text(encoding="utf-8"))
        if count != 1:
            raise SystemExit(f"{name}: expected one version literal, found {count}")
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(what: str) -> None:
    if what == "examples":
        target = REPO / "examples"
        for name in EXAMPLES:
            with tempfile.TemporaryDirectory(dir=target) as scratch:
                fresh = render_example(name, Path(scratch))
                shutil.rmtree(target / name, ignore_errors=True)
                fresh.rename(target / name)
            print(f"examples/{name} regenerated")
    elif what == "docs":
        (REPO / "docs" / "cli.md").write_text(cli_reference(), encoding="utf-8")
        print("docs/cli.md regenerated")
    elif what == "version":
        for path in version_holders():
            print(f"{path.relative_to(REPO)} holds mlscaffold's version")
    else:
        raise SystemExit("usage: regenerate.py examples|docs|version")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
