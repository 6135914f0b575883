"""The platform commands' tables and progress: plain text off a terminal, wrapped on one;
per-stack progress on stderr only on a terminal and only for the table format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlscaffold import cli_tables
from mlscaffold.checks import StackCheck
from mlscaffold.policies.engine import CheckResult

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "churn-model"


@pytest.fixture
def stacks_checked(monkeypatch) -> list[str]:
    """`check` evaluates nothing: each stack passes at once; the stacks asked for, in order."""
    asked: list[str] = []

    def check_stack(project, environment):
        asked.append(environment)
        return StackCheck(CheckResult(project.spec.name, environment, 0, 61), {})

    monkeypatch.setattr("mlscaffold.checks.check_stack", check_stack)
    return asked


@pytest.fixture
def terminal(monkeypatch):
    """stdout and stderr are terminals of 100 columns."""
    monkeypatch.setattr(cli_tables, "_stdout_is_terminal", lambda: True)
    monkeypatch.setattr(cli_tables, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a: os.terminal_size((100, 24)))


def test_check_shows_each_stack_on_a_terminal(run_cli, stacks_checked, terminal):
    result = run_cli(["check", str(EXAMPLE)])
    assert result.exit_code == 0, result.stderr
    assert stacks_checked == ["dev", "staging", "prod"]
    for stack in stacks_checked:
        assert f"checking {stack}… " in result.stderr
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines()
             if line.endswith(" s") and "checking" in line]
    assert [line.split("checking ")[1].split("…")[0] for line in lines] == stacks_checked
    assert all(float(line.rsplit(" ", 2)[1]) >= 0 for line in lines)
    assert result.stdout.splitlines()[0] == "dev: passed: 0 mandatory, 0 advisory (61 rules on 0 " \
                                            "resources)"


@pytest.mark.parametrize("args", [["--format", "json"], ["--format", "sarif"]])
def test_no_progress_for_machines(run_cli, stacks_checked, terminal, args):
    result = run_cli(["check", str(EXAMPLE), *args])
    assert result.exit_code == 0 and result.stderr == ""


def test_no_progress_off_a_terminal(run_cli, stacks_checked):
    result = run_cli(["check", str(EXAMPLE), "--stack", "prod"])
    assert result.exit_code == 0 and result.stderr == "" and stacks_checked == ["prod"]


def test_preview_shows_its_stack_on_a_terminal(run_cli, terminal, monkeypatch):
    from mlscaffold.graph import ResourceGraph

    monkeypatch.setattr("mlscaffold.infra.preview_stack",
                        lambda project, stack: ResourceGraph(project.spec.name, stack, []))
    result = run_cli(["preview", str(EXAMPLE), "--stack", "staging"])
    assert result.exit_code == 0, result.stderr
    assert "previewing staging… " in result.stderr
    assert result.stdout.splitlines()[0] == "TYPE  NAME  KEY INPUTS"
    json_run = run_cli(["preview", str(EXAMPLE), "--format", "json"])
    assert json_run.stderr == "" and '"stack": "dev"' in json_run.stdout


def test_rule_table_is_plain_off_a_terminal(run_cli):
    lines = run_cli(["policy", "list", "--pack", "cost"]).stdout.splitlines()
    assert lines[0] == ("RULE                            PACK      LEVEL      SEVERITY  "
                        "DESCRIPTION")
    # sorted by name; a description stays on its line however long
    assert lines[1] == ("athena-scan-cutoff              cost      mandatory  medium    "
                        "Athena workgroups cancel a query that scans more than a cutoff "
                        "(bytesScannedCutoffPerQuery, at most the environment's maximum): Athena "
                        "bills per terabyte scanned, and a query over a whole table bills all of "
                        "it.")
    assert lines[2].startswith("cpu-instance-types              cost      mandatory  medium    "
                               "EKS node groups and Karpenter CPU NodePools use CPU instance "
                               "types from the environment's allow-list.")
    from mlscaffold.policies.registry import rules_of

    assert lines[-2:] == ["", f"{len(rules_of('cost'))} rules"]
    assert all(line == line.rstrip() for line in lines)


def test_rule_table_wraps_its_descriptions_on_a_terminal(run_cli, terminal):
    lines = run_cli(["policy", "list", "--pack", "cost"]).stdout.splitlines()
    assert lines[0].split() == ["RULE", "PACK", "LEVEL", "SEVERITY", "DESCRIPTION"]
    assert max(len(line) for line in lines) <= 100
    description = lines[0].index("DESCRIPTION")
    continued = [line for line in lines[1:-2] if line[:description].strip() == ""]
    assert continued and all(line[description] != " " for line in continued)
    assert len(lines) > 11 + 3


def test_a_table_too_wide_for_the_terminal_is_printed_whole(capsys, monkeypatch, terminal):
    rows = [("x" * 70, "y" * 30, "a value that would wrap")]
    cli_tables.echo_table([cli_tables.Column("A"), cli_tables.Column("B"),
                           cli_tables.Column("C", wrap=True)], rows)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].endswith("a value that would wrap")


def test_values_are_printed_as_they_are(capsys):
    cli_tables.echo_table([cli_tables.Column("LEVEL"), cli_tables.Column("NOTE", wrap=True)],
                          [("[advisory/high]", ":gpu: [bold]not markup[/bold]")])
    assert capsys.readouterr().out.splitlines()[1] == (
        "[advisory/high]  :gpu: [bold]not markup[/bold]")
