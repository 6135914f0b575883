"""The report options (`check -o`, `graph -o`, `policy config -o`) replace their own earlier
report and refuse any other file, which stays as it was."""

from __future__ import annotations

import json

import pytest

from mlscaffold.errors import OutputExists
from mlscaffold.report_outputs import mark_image, refuse_unless_report

from .conftest import REPO

EXAMPLE = REPO / "examples" / "churn-model"
DATA = "customer_id,tenure_months,label\nC1,12,yes\n"

COMMANDS = {
    "check table": ["check", str(EXAMPLE), "--stack", "dev"],
    "check json": ["check", str(EXAMPLE), "--stack", "dev", "--format", "json"],
    "check sarif": ["check", str(EXAMPLE), "--stack", "dev", "--format", "sarif"],
    "graph mermaid": ["graph", str(EXAMPLE), "--stack", "dev", "--format", "mermaid"],
    "graph dot": ["graph", str(EXAMPLE), "--stack", "dev", "--format", "dot"],
    "policy config": ["policy", "config", str(EXAMPLE), "--stack", "dev", "--pack", "cost"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_report_replaces_its_own_earlier_report_and_no_other_file(run_cli, tmp_path, command):
    report = tmp_path / "report"
    for _ in range(2):
        result = run_cli([*command, "--output", str(report)])
        assert result.exit_code == 0, result.stderr
        assert result.stdout == ""  # the report went to the file
    written = report.read_text()
    assert written.strip()
    data = tmp_path / "train.csv"
    data.write_text(DATA)
    result = run_cli([*command, "--output", str(data)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {data} exists and is not a ")
    assert result.stderr.rstrip().endswith("choose another --output, or move that file")
    assert data.read_text() == DATA


def test_check_writes_its_table_to_the_output_file(run_cli, tmp_path):
    report = tmp_path / "check.txt"
    result = run_cli([*COMMANDS["check table"], "-o", str(report)])
    assert result.exit_code == 0, result.stderr
    assert report.read_text().startswith("dev: passed: 0 mandatory, 0 advisory (")


DIAGRAMS = ("mermaid", "dot", "svg", "png")


def test_each_format_is_recognised_by_its_start_and_nothing_else_is(tmp_path):
    svg = (b'<?xml version="1.0" encoding="utf-8" standalone="no"?>\n<!DOCTYPE svg PUBLIC '
           b'"-//W3C//DTD SVG 1.1//EN"\n  "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
           b'\n<svg xmlns="http://www.w3.org/2000/svg" width="460pt">')
    png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(17) + b"\0\0\0\0IEND"
    heads = {
        "svg": mark_image(svg, "svg"),
        "png": mark_image(png, "png"),
        "mermaid": b"flowchart LR\n  subgraph a\n",
        "dot": b"digraph platform {\n  rankdir=LR;\n",
        "table": b"prod: FAILED: 1 mandatory, 0 advisory (73 rules on 85 resources)\n",
        "json": b"[]\n",
        "sarif": json.dumps({"version": "2.1.0", "$schema": "https://json.schemastore.org/"
                                                            "sarif-2.1.0.json"}).encode(),
        "policy-config": b'{\n  "athena-scan-cutoff": {\n    "enforcementLevel": "mandatory"',
    }
    for output_format, head in heads.items():
        path = tmp_path / f"report.{output_format}"
        path.write_bytes(head)
        refuse_unless_report(path, output_format)  # its own kind: replaced
        for other in heads:
            if output_format in DIAGRAMS and other in DIAGRAMS:
                refuse_unless_report(path, other)  # a diagram replaces an earlier diagram
            elif heads[other] != head and other != output_format:
                with pytest.raises(OutputExists, match="exists and is not a"):
                    refuse_unless_report(path, other)
    # images mlscaffold did not draw (unmarked) are a user's own
    for output_format, image in (("svg", svg), ("png", png)):
        path = tmp_path / f"logo.{output_format}"
        path.write_bytes(image)
        with pytest.raises(OutputExists, match="is not a diagram `mlscaffold graph` wrote"):
            refuse_unless_report(path, output_format)
    empty = tmp_path / "empty"
    empty.touch()
    for output_format in heads:
        refuse_unless_report(empty, output_format)  # nothing to lose
        refuse_unless_report(tmp_path / "new", output_format)
        refuse_unless_report(None, output_format)  # standard output
    with pytest.raises(OutputExists, match="is a directory"):
        refuse_unless_report(tmp_path, "png")


OUTPUT_OPTIONS = {
    **{name: [*command, "--output"] for name, command in COMMANDS.items()},
    "predict": ["predict", "--input", "rows.csv", "--output"],
    "drift": ["drift", "--input", "rows.csv", "--report"],
}


@pytest.mark.parametrize("command", OUTPUT_OPTIONS.values(), ids=OUTPUT_OPTIONS.keys())
def test_an_output_in_a_missing_folder_is_refused_and_no_folder_made(run_cli, tmp_path, command):
    typo = tmp_path / "reprots"
    result = run_cli([*command, str(typo / "out.json")])
    assert result.exit_code == 2
    assert f"the folder {typo} does not exist" in result.stderr
    assert not typo.exists()
    afile = tmp_path / "notes.txt"
    afile.write_text("mine\n")
    result = run_cli([*command, str(afile / "out.json")])
    assert result.exit_code == 2
    assert f"{afile} is a file, not a folder" in result.stderr
    assert afile.read_text() == "mine\n"
