"""examples/ and docs/cli.md are exactly what the current code generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from .tools.regenerate import EXAMPLES, REPO, cli_reference, render_example


def _tree(root: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def test_the_answers_hold_no_machine_local_path_and_record_the_version(tmp_path: Path):
    from mlscaffold import __version__

    answers = (render_example("churn-model", tmp_path) / ".copier-answers.yml").read_text()
    assert "_src_path" not in answers and str(REPO) not in answers
    assert f"mlscaffold_version: {__version__}" in answers


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_matches_a_fresh_render(tmp_path: Path, name: str):
    fresh = _tree(render_example(name, tmp_path))
    committed = _tree(REPO / "examples" / name)
    assert sorted(committed) == sorted(fresh), "run `make examples`"
    drifted = [name for name in fresh if fresh[name] != committed[name]]
    assert drifted == [], f"examples differ from `mlscaffold new` in {drifted}: run `make examples`"


def test_cli_reference_is_current():
    assert (REPO / "docs" / "cli.md").read_text() == cli_reference(), "run `make docs`"
