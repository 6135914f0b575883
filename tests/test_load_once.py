"""Each command opens the project once: one parse of mlscaffold.yaml, at most one of the policy
file, whatever the number of stacks (and of programs each stack runs)."""

from __future__ import annotations

import builtins
import pathlib
import shutil
from collections import Counter
from pathlib import Path

import pytest

from mlscaffold.spec import load_spec
from mlscaffold.stacks import project_spec
from mlscaffold.stacks.program import spec_provided

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class _NoQuotas:
    """A service-quotas client that lists nothing: preflight reports every quota not found."""

    def get_paginator(self, operation):
        return self

    def paginate(self, **arguments):
        return [{"Quotas": []}]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """lifetime-value (KServe: each stack runs the base and the in-cluster program, 2 stacks)
    with an organisation policy file."""
    root = tmp_path_factory.mktemp("p") / "lifetime-value"
    shutil.copytree(EXAMPLES / "lifetime-value", root)
    (root / "policy.yaml").write_text("version: 1\nrules:\n"
                                      "  s3-bucket-versioning: {enforcementLevel: advisory}\n")
    with (root / "mlscaffold.yaml").open("a") as spec:
        spec.write("policy_config: policy.yaml\n")
    return root


@pytest.fixture
def opened(monkeypatch) -> Counter:
    """Counts every opening of a file named mlscaffold.yaml or policy.yaml, however it is read
    (Path.read_text and Path.open, or open())."""
    counts: Counter = Counter()
    watched = {"mlscaffold.yaml", "policy.yaml"}
    path_open, plain_open = pathlib.Path.open, builtins.open

    def counting_path_open(self, *args, **kwargs):
        if self.name in watched:
            counts[self.name] += 1
        return path_open(self, *args, **kwargs)

    def counting_open(file, *args, **kwargs):
        if isinstance(file, str | Path) and Path(file).name in watched:
            counts[Path(file).name] += 1
        return plain_open(file, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", counting_path_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    return counts


@pytest.mark.parametrize(("args", "policy_reads"), [
    (["check"], 1),
    (["check", "--format", "sarif"], 1),
    (["cost"], 0),
    (["preflight"], 0),
    (["preview"], 0),
    (["preview", "--stack", "prod"], 0),
    (["graph", "--stack", "prod"], 0),
    (["policy", "config", "--stack", "prod", "--pack", "cost"], 1),
], ids=lambda value: " ".join(value) if isinstance(value, list) else str(value))
def test_one_spec_parse_per_command(run_cli, project, opened, monkeypatch, args, policy_reads):
    monkeypatch.setattr("mlscaffold.preflight.quota_client", lambda region: _NoQuotas())
    position = 2 if args[0] == "policy" else 1  # after the (sub)command: the project
    result = run_cli([*args[:position], str(project), *args[position:]])
    assert result.exit_code == 0, result.stderr
    assert opened["mlscaffold.yaml"] == 1
    assert opened["policy.yaml"] == policy_reads


def test_the_program_reads_the_spec_itself_outside_mlscaffold(project, opened):
    spec = project_spec(project)  # as under `pulumi up`: from the file, validated
    assert spec == load_spec(project / "mlscaffold.yaml")
    assert opened["mlscaffold.yaml"] == 2
    provided = spec.model_copy(update={"owner": "someone-else"})
    with spec_provided(project / "infra" / "..", provided):
        assert project_spec(project) is provided
        with spec_provided(project, spec):
            assert project_spec(project) is spec
        assert project_spec(project) is provided
    assert opened["mlscaffold.yaml"] == 2
    assert project_spec(project) == spec and opened["mlscaffold.yaml"] == 3
