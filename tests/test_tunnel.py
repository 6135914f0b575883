"""`mlscaffold tunnel`: the target from the stack's outputs, the relay check (botocore Stubber),
and a real port-forwarding session of a stand-in AWS CLI that listens where the real one would."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from mlscaffold.errors import MlscaffoldError, UsageError
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec
from mlscaffold.tunnel import (
    PORT_FORWARDING_DOCUMENT,
    open_tunnel,
    start_session_command,
    tunnel_target,
    wait_for_relay,
)

HOST = "ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com"

FAKE_AWS = """#!{python}
# A stand-in for `aws ssm start-session ... AWS-StartPortForwardingSessionToRemoteHost`: listens
# on the local port the way the Session Manager plugin does, answering every connection.
import json, os, socket, sys
args = sys.argv[1:]
log = os.environ.get("FAKE_AWS_LOG")
if log:
    with open(log, "a") as handle:
        handle.write(json.dumps(args) + "\\n")
if os.environ.get("FAKE_AWS_DENY"):
    print("An error occurred (AccessDeniedException) when calling the StartSession operation: "
          "User is not authorized to perform: ssm:StartSession", file=sys.stderr)
    sys.exit(255)
port = int(json.loads(args[args.index("--parameters") + 1])["localPortNumber"][0])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
print("Waiting for connections...", flush=True)
while True:
    connection, _ = server.accept()
    connection.sendall(b"through the relay")
    connection.close()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def outputs(port: int) -> dict:
    return {"artifact_bucket": "b", "cluster": {
        "name": "demo-dev-eks", "endpoint": f"https://{HOST}", "region": "us-east-1",
        "relay_instance_id": "i-0123456789abcdef0", "tunnel_port": port,
        "certificate_authority": "Y2E=", "node_groups": [], "kubernetes_version": "1.34",
        "roles": {}}}


@pytest.fixture
def fake_aws(tmp_path, monkeypatch) -> Path:
    """`aws` and `session-manager-plugin` stand-ins first on PATH; returns the call log."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in (("aws", FAKE_AWS.format(python=sys.executable)),
                       ("session-manager-plugin", "#!/bin/sh\nexit 0\n")):
        path = folder / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "aws-calls.jsonl"
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_AWS_LOG", str(log))
    return log


def ssm_client(*statuses: str) -> tuple[object, Stubber]:
    client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
    stubber = Stubber(client)
    for status in statuses:
        information = [] if status == "missing" else [
            {"InstanceId": "i-0123456789abcdef0", "PingStatus": status}]
        stubber.add_response(
            "describe_instance_information", {"InstanceInformationList": information},
            {"Filters": [{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}]})
    stubber.activate()
    return client, stubber


def test_the_target_comes_from_the_cluster_output():
    target = tunnel_target(outputs(9443), "dev")
    assert (target.host, target.port, target.region) == (HOST, 9443, "us-east-1")
    assert target.local_url == "https://127.0.0.1:9443"
    command = start_session_command(target)
    assert command[:8] == ["aws", "ssm", "start-session", "--region", "us-east-1", "--target",
                           "i-0123456789abcdef0", "--document-name"]
    assert command[8] == PORT_FORWARDING_DOCUMENT == "AWS-StartPortForwardingSessionToRemoteHost"
    assert json.loads(command[10]) == {"host": [HOST], "portNumber": ["443"],
                                       "localPortNumber": ["9443"]}


def test_a_stack_without_a_cluster_is_named():
    with pytest.raises(UsageError, match="stack dev has no output 'cluster', which describes its"
                                         " EKS cluster"):
        tunnel_target({"artifact_bucket": "b"}, "dev")
    broken = outputs(1)
    del broken["cluster"]["relay_instance_id"]
    with pytest.raises(UsageError, match="output 'cluster' lacks 'relay_instance_id'"):
        tunnel_target(broken, "dev")


def test_the_relay_check_waits_for_the_agent_to_come_online():
    client, stubber = ssm_client("missing", "ConnectionLost", "Online")
    waits: list[float] = []
    wait_for_relay(client, tunnel_target(outputs(1), "dev"), interval=5, sleep=waits.append,
                   clock=lambda: 0.0)
    stubber.assert_no_pending_responses()
    assert waits == [5, 5]


def test_a_relay_that_never_comes_online_fails_naming_it():
    client, _ = ssm_client("ConnectionLost", "ConnectionLost")
    times = iter([0.0, 100.0, 400.0])
    with pytest.raises(MlscaffoldError, match=r"relay i-0123456789abcdef0 of stack dev is "
                                              r"ConnectionLost in Session Manager after 300 s"):
        wait_for_relay(client, tunnel_target(outputs(1), "dev"), timeout=300,
                       sleep=lambda _: None, clock=lambda: next(times))


def test_an_aws_error_on_the_relay_check_is_one_line():
    client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
    stubber = Stubber(client)
    stubber.add_client_error("describe_instance_information", "AccessDeniedException",
                             "not authorized")
    stubber.activate()
    with pytest.raises(MlscaffoldError, match=r"AWS denied DescribeInstanceInformation: cannot "
                                              r"ask Session Manager about the API relay "
                                              r"i-0123456789abcdef0 \(not authorized\)") as caught:
        wait_for_relay(client, tunnel_target(outputs(1), "dev"))
    assert caught.value.hint == "allow ssm:DescribeInstanceInformation for this identity"


def test_the_tunnel_forwards_the_port_while_open_and_closes_after(fake_aws):
    port = free_port()
    client, stubber = ssm_client("Online")
    with open_tunnel(tunnel_target(outputs(port), "dev"), ssm=client) as target, \
            socket.create_connection(("127.0.0.1", target.port), timeout=30) as connection:
        assert connection.recv(100) == b"through the relay"
    stubber.assert_no_pending_responses()
    # the session is gone: nothing listens any more
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    (call,) = [json.loads(line) for line in fake_aws.read_text().splitlines()]
    assert call[:3] == ["ssm", "start-session", "--region"]


def test_a_busy_port_is_refused_before_any_session(fake_aws):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is already in use"), \
                open_tunnel(tunnel_target(outputs(port), "dev")):
            pass
    assert not fake_aws.exists()


def test_a_denied_session_reports_the_reason_and_the_permission(fake_aws, monkeypatch):
    monkeypatch.setenv("FAKE_AWS_DENY", "1")
    with pytest.raises(MlscaffoldError, match=r"session to the API relay i-0123456789abcdef0 "
                                              r"ended: An error occurred \(AccessDeniedException\)"
                       ) as caught, open_tunnel(tunnel_target(outputs(free_port()), "dev")):
        pass
    assert "ssm:StartSession on the relay instance" in str(caught.value)


def test_missing_tools_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match="`aws` is not on PATH"), \
            open_tunnel(tunnel_target(outputs(free_port()), "dev")):
        pass


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "tunnelled", "serving": "kserve", "ci": "none"})
    return create_project(tmp_path_factory.mktemp("p") / "tunnelled", spec, git=False).path


def test_the_command_runs_through_the_tunnel_with_its_exit_status(run_cli, project, fake_aws,
                                                                  tmp_path, monkeypatch):
    port = free_port()
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps(outputs(port)))
    client, _ = ssm_client("Online", "Online")
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    probe = (f"import socket, sys; c = socket.create_connection(('127.0.0.1', {port}), "
             "timeout=30); sys.exit(0 if c.recv(100) == b'through the relay' else 3)")
    result = run_cli(["tunnel", "--project", str(project), "--stack", "dev", "--outputs",
                      str(source), "--", sys.executable, "-c", probe])
    assert result.exit_code == 0, result.stderr
    assert f"tunnel: https://127.0.0.1:{port} -> demo-dev-eks" in result.stderr
    assert "tunnel: closed" in result.stderr
    failing = run_cli(["tunnel", "--project", str(project), "--stack", "dev", "--outputs",
                       str(source), "--", sys.executable, "-c", "raise SystemExit(7)"])
    assert failing.exit_code == 7


@pytest.mark.parametrize("stack", ["qa", "all"])
def test_an_unknown_stack_is_a_usage_error(run_cli, project, stack):
    result = run_cli(["tunnel", "--project", str(project), "--stack", stack, "--", "true"])
    assert result.exit_code == 2
    assert result.stderr == (f"error: --stack {stack!r} is not an environment of the project; "
                             "use one of: dev, staging, prod\n")
