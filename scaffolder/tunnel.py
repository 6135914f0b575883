"""`mlscaffold tunnel`: a stack's private EKS API endpoint on a local port.

The in-cluster program (``infra/cluster/``) talks to the cluster through
``https://127.0.0.1:<tunnel_port>``; this module makes that address real for as long as it is
needed: an AWS Systems Manager port-forwarding session (``aws ssm start-session`` with the
document ``AWS-StartPortForwardingSessionToRemoteHost``, which needs the Session Manager plugin)
through the base stack's API relay instance to the endpoint's port 443. Everything it needs is
in the base stack's ``cluster`` output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .aws import aws_errors
from .errors import MlscaffoldError, UsageError
from .outputs import require_output

__all__ = ["PORT_FORWARDING_DOCUMENT", "TunnelTarget", "open_tunnel", "start_session_command",
           "tunnel_kubeconfig", "tunnel_target", "wait_for_relay"]

PORT_FORWARDING_DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"
LOCALHOST = "127.0.0.1"
_PLUGIN = "session-manager-plugin"
_PLUGIN_DOCS = ("https://docs.aws.amazon.com/systems-manager/latest/userguide/"
                "session-manager-working-with-install-plugin.html")


@dataclass(frozen=True)
class TunnelTarget:
    """Where a stack's tunnel goes: the cluster's endpoint host, through its relay."""

    stack: str
    cluster: str
    region: str
    relay_instance_id: str
    host: str
    port: int

    @property
    def local_url(self) -> str:
        return f"https://{LOCALHOST}:{self.port}"


def tunnel_target(outputs: Mapping[str, Any], stack: str) -> TunnelTarget:
    """The tunnel of `stack` from its outputs (``pulumi stack output --json``)."""
    cluster = require_output(dict(outputs), "cluster", stack,
                             "describes its EKS cluster (a stack has one with serving: kserve "
                             "or cluster.enabled)")
    try:
        host = urlparse(cluster["endpoint"]).netloc
        target = TunnelTarget(stack=stack, cluster=str(cluster["name"]),
                              region=str(cluster["region"]),
                              relay_instance_id=str(cluster["relay_instance_id"]),
                              host=host, port=int(cluster["tunnel_port"]))
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"stack {stack}'s output 'cluster' lacks {error}",
                         hint="deploy the stack with this mlscaffold version first "
                              "(make deploy STACK=...)") from None
    if not host:
        raise UsageError(f"stack {stack}'s cluster endpoint {cluster['endpoint']!r} has no host")
    return target


def start_session_command(target: TunnelTarget, aws: str = "aws") -> list[str]:
    """The AWS CLI command that forwards ``127.0.0.1:<port>`` to the endpoint's port 443."""
    parameters = {"host": [target.host], "portNumber": ["443"],
                  "localPortNumber": [str(target.port)]}
    return [aws, "ssm", "start-session", "--region", target.region,
            "--target", target.relay_instance_id, "--document-name", PORT_FORWARDING_DOCUMENT,
            "--parameters", json.dumps(parameters)]


def wait_for_relay(ssm: Any, target: TunnelTarget, *, timeout: float = 300.0,
                   interval: float = 5.0, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait until the relay's agent is online in Session Manager (a relay made or replaced by
    the deploy just before takes a minute or two to register)."""
    deadline = clock() + timeout
    while True:
        with aws_errors(f"ask Session Manager about the API relay {target.relay_instance_id}",
                        "ssm:DescribeInstanceInformation"):
            found = ssm.describe_instance_information(Filters=[
                {"Key": "InstanceIds", "Values": [target.relay_instance_id]}])
        statuses = [i.get("PingStatus") for i in found.get("InstanceInformationList", [])]
        if "Online" in statuses:
            return
        if clock() >= deadline:
            state = statuses[0] if statuses else "not registered"
            raise MlscaffoldError(
                f"the API relay {target.relay_instance_id} of stack {target.stack} is {state} in"
                f" Session Manager after {timeout:.0f} s",
                hint="a new relay registers within minutes; check that it runs and that its "
                     "subnet reaches the internet through the NAT gateway")
        sleep(interval)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((LOCALHOST, port)) == 0


def _executable(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UsageError(f"`{name}` is not on PATH; the tunnel needs it", hint=hint)
    return path


def _stop(process: subprocess.Popen[str]) -> None:
    """End the session (its plugin runs in the same process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def open_tunnel(target: TunnelTarget, *, ssm: Any | None = None,
                ready_timeout: float = 60.0, relay_timeout: float = 300.0,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> Iterator[TunnelTarget]:
    """Forward ``127.0.0.1:<port>`` to the cluster's endpoint while the block runs.

    Checks first that the AWS CLI and the Session Manager plugin are installed and the local
    port is free, and (given an SSM client) that the relay is online; then starts the session
    and waits until the local port accepts connections. The session ends with the block.
    """
    aws = _executable("aws", "install the AWS CLI (https://aws.amazon.com/cli/)")
    _executable(_PLUGIN, f"install the Session Manager plugin ({_PLUGIN_DOCS})")
    if _port_open(target.port):
        raise UsageError(f"port {target.port} on {LOCALHOST} is already in use (another tunnel "
                         f"to stack {target.stack}?)",
                         hint="stop what listens there; the in-cluster program's kubeconfig "
                              "expects the tunnel on exactly this port (cluster.tunnel_port)")
    if ssm is not None:
        wait_for_relay(ssm, target, timeout=relay_timeout, clock=clock, sleep=sleep)
    # its own process group: Ctrl-C reaches the command run through the tunnel, which then
    # finishes (Pulumi cancels cleanly) before the session is closed here
    process = subprocess.Popen(start_session_command(target, aws), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = clock() + ready_timeout
        while not _port_open(target.port):
            if process.poll() is not None:
                _, error = process.communicate()
                last = (error.strip().splitlines() or ["no message"])[-1]
                raise MlscaffoldError(
                    f"the Session Manager session to the API relay {target.relay_instance_id} "
                    f"ended: {last}",
                    hint="your identity needs ssm:StartSession on the relay instance and on "
                         f"the document {PORT_FORWARDING_DOCUMENT} (docs/deploy.md lists the "
                         "permissions)")
            if clock() >= deadline:
                raise MlscaffoldError(
                    f"the tunnel to stack {target.stack} did not open {LOCALHOST}:{target.port} "
                    f"within {ready_timeout:.0f} s",
                    hint="run the printed `aws ssm start-session` command by hand to see why")
            sleep(0.25)
        yield target
    finally:
        _stop(process)


def tunnel_kubeconfig(cluster: Mapping[str, Any]) -> str:
    """A kubeconfig (JSON) for the cluster through `mlscaffold tunnel`: the server is the
    tunnel's local port, TLS is checked against the endpoint's own host name, and tokens come
    from ``aws eks get-token``."""
    name = cluster["name"]
    host = urlparse(cluster["endpoint"]).netloc  # as EKS writes it (hostname would lower-case)
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": f"https://127.0.0.1:{cluster['tunnel_port']}",
            "tls-server-name": host,
            "certificate-authority-data": cluster["certificate_authority"]}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", cluster["region"]],
            "interactiveMode": "Never",
        }}}],
    })
