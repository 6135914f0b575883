"""The hook examples of docs/lifecycle.md work as written: a project trains, selects and predicts
with them; docs/policies.md shows the registry's rule count and a policy file the schema
accepts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from mlscaffold.policies.registry import RULES
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

from .conftest import REPO

HOOK_MODULES = ("preprocessing", "candidates", "metrics")


def _examples() -> dict[str, str]:
    """module name -> the python block that follows its `(src/<package>/NAME.py)` mention."""
    text = (REPO / "docs" / "lifecycle.md").read_text()
    found = {}
    for module in HOOK_MODULES:
        match = re.search(rf"\(`src/<package>/{module}\.py`\):\s*```python\n(.*?)```", text,
                          re.DOTALL)
        assert match, f"docs/lifecycle.md lost its {module}.py example"
        found[module] = match.group(1)
    return found


def _mlscaffold(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run([sys.executable, "-m", "mlscaffold", *args, "--project", str(root)],
                          capture_output=True, text=True, env=env, timeout=900)


def test_the_documented_hooks_train_select_and_predict(tmp_path: Path):
    spec = validate_spec({"name": "docs-demo", "serving": "none", "ci": "none"})
    root = create_project(tmp_path / "docs-demo", spec, git=False).path
    for module, code in _examples().items():
        (root / "src" / "docs_demo" / f"{module}.py").write_text(code)

    trained = _mlscaffold(root, "train", "--time", "3", "--metric", "top_decile_precision")
    assert trained.returncode == 0, trained.stderr
    leaderboard = json.loads((root / "experiments" / "exp-001" / "leaderboard.json").read_text())
    assert {row["family"] for row in leaderboard} == {"boosting"}
    assert all("top_decile_precision" in row["metrics"] for row in leaderboard)
    experiment = json.loads((root / "experiments" / "exp-001" / "experiment.json").read_text())
    assert experiment["metric"] == "top_decile_precision"

    # the pipeline pickles the hook's function by reference: a new process loads it from src/
    predicted = _mlscaffold(root, "predict", "--model", "exp-001", "--input",
                            str(root / "datasets" / "test.csv"), "--output",
                            str(tmp_path / "out.csv"))
    assert predicted.returncode == 0, predicted.stderr
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 1 + len(
        (root / "datasets" / "test.csv").read_text().splitlines()) - 1


def _section(title: str) -> str:
    text = (REPO / "docs" / "lifecycle.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    assert match, f"docs/lifecycle.md lost its section {title!r}"
    return match.group(1)


def test_the_documented_stray_rule_and_warning_are_the_code_s():
    from mlscaffold.lifecycle.schema import NUMERIC_SHARE, stray_warnings

    text = _section("Numbers with stray text")
    assert f"at least {NUMERIC_SHARE:.0%} of its non-empty values are numbers" in text
    (line,) = stray_warnings("datasets/train.csv",
                             {"horsepower": {"count": 31, "values": {"?": 29, "-": 2}}})
    assert f"warning: {line}\n" in text


def test_the_documented_plots_are_the_ones_evaluate_draws():
    from mlscaffold.lifecycle.evaluate import PLOT_CAPTIONS
    from mlscaffold.lifecycle.plots import Drawer
    from mlscaffold.packaging import pinned

    text = _section("Reports and plots")
    table = re.search(r"^\|.*?(?=\n\n)", text, re.DOTALL | re.MULTILINE).group(0)  # evaluate's
    assert set(re.findall(r"`([a-z_]+\.png)`", table)) == set(PLOT_CAPTIONS)
    said: list[str] = []
    draw = Drawer(said.append)

    def missing() -> None:
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    assert draw(missing) == []
    assert f"warning: {said[0]}".replace(pinned(), "mlscaffold-kit==X.Y.Z") in text


def test_the_policies_page_counts_the_registrys_rules():
    text = (REPO / "docs" / "policies.md").read_text()
    counts = re.findall(r"\((\d+) rules on \d+ resources\)", text)
    assert counts and all(int(count) == len(RULES) for count in counts), counts


def test_the_documented_extended_support_policy_file_is_valid(run_cli):
    import jsonschema

    text = (REPO / "docs" / "policies.md").read_text()
    section = text.split("## Extended support is never billed silently", 1)[1].split("\n## ")[0]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    document = yaml.safe_load(block)
    assert document["environments"]["prod"]["eks-upgrade-policy"] == {"allow_extended": True}
    jsonschema.validate(document, json.loads(run_cli(["policy", "schema"]).stdout))


def _layout_problems(text: str, name: str) -> list[str]:
    """What a bad merge leaves in Markdown: a code fence with an info string inside an open
    block (its opening fence was lost), a block never closed, a yaml block that does not parse,
    and a sentence that announces something ("...:") followed by a heading instead."""
    found: list[str] = []
    lines = text.splitlines()
    opened: tuple[int, str] | None = None  # (line, info string) of the open block
    block: list[str] = []
    for number, line in enumerate(lines, 1):
        fence = re.match(r"^\s*`{3,}(.*)$", line)
        if opened is None:
            if fence:
                opened, block = (number, fence.group(1).strip()), []
            elif re.match(r"^#{1,6} ", line):
                before = next((item for item in reversed(lines[:number - 1]) if item.strip()), "")
                if before.rstrip().endswith(":"):
                    found.append(f"{name}:{number}: a heading right after {before.strip()!r}")
        elif fence and not fence.group(1).strip():
            if opened[1] == "yaml":
                try:
                    yaml.safe_load("\n".join(block))
                except yaml.YAMLError as error:
                    found.append(f"{name}:{opened[0]}: the yaml block does not parse "
                                 f"({str(error).splitlines()[0]})")
            opened = None
        elif fence:
            found.append(f"{name}:{number}: {line.strip()!r} inside the block opened at line "
                         f"{opened[0]}")
        else:
            block.append(line)
    if opened is not None:
        found.append(f"{name}:{opened[0]}: a code block never closed")
    return found


def test_the_docs_have_no_broken_code_blocks_or_dangling_introductions():
    paths = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(paths) > 5
    problems = [problem for path in paths
                for problem in _layout_problems(path.read_text(), path.name)]
    assert problems == []


def test_the_layout_check_sees_a_lost_fence_and_a_dangling_introduction():
    """The check above can fail: the shapes issue 14's merge left in deploy.md."""
    garbled = ("The section sets the runs:\n\n## Next\n\n```yaml\na: 1\n```\n\n"
               "    tracking:\n      on: true\n```\n\n```bash\nls\n```\n")
    assert _layout_problems(garbled, "x.md") == [
        "x.md:3: a heading right after 'The section sets the runs:'",
        "x.md:13: '```bash' inside the block opened at line 11"]
    assert _layout_problems("```\nopen\n", "y.md") == ["y.md:1: a code block never closed"]
    assert _layout_problems("```yaml\na: [\n```\n", "z.md")[0].startswith(
        "z.md:1: the yaml block does not parse")
