"""Following a training Job on EKS with ``kubectl``: its steps, the ``train`` log, its end.

:func:`follow_job` polls the Job and its pod (``kubectl get -o json``) and says, once each:
the pod waiting to be scheduled or for its image (from the pod's ``PodScheduled`` condition
and its containers' waiting reasons, as they happen, not at the Job's deadline), the warnings
among its events that the condition does not carry while it waits to be scheduled (Karpenter's,
when no node pool can take it), each step
(the ``fetch``, ``train`` and ``upload`` containers) starting and ending, and streams the
``train`` container's log with ``kubectl logs -f`` while it runs. It returns when the Job has
one of its two terminal conditions, ``Complete`` or ``Failed`` (Kubernetes docs, "Jobs":
"Terminal Job conditions"); ``Failed`` covers ``BackoffLimitExceeded`` and
``DeadlineExceeded`` alike. It polls rather than run ``kubectl wait --for=condition=Complete``,
which waits for a failed Job until its timeout, as it waits for one condition only
(cilium/cilium-cli#451, kubernetes/kubernetes#100248).

:func:`interrupted` is Ctrl-C's answer: delete the Job with its pod, or leave it running and
say how to follow and delete it. The core prints nothing: lines go to the caller's ``echo``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MlscaffoldError, UsageError
from .stacks.training_layout import TRAINING_NAMESPACE

__all__ = ["JobInterrupted", "JobOutcome", "Kubectl", "find_kubectl", "follow_job",
           "interrupted"]

POLL_SECONDS = 10.0
#: the pod's steps in the order they run (eks_job.job_manifest), and what each does; upload
#: names where it copies the model
STEPS = {"fetch": "downloads the data sets", "train": "the search; its log follows",
         "upload": "copies the model to {upload_uri}"}
#: a container's waiting reasons that need someone's attention, said when they happen; the
#: others (ContainerCreating, PodInitializing) are the way to running
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff")
#: how long `kubectl delete` waits for the pod to be gone before it gives up
DELETE_TIMEOUT = "120s"
#: the scheduler's warnings repeat the PodScheduled condition's message, said already; others'
#: are said: Karpenter's FailedScheduling says why no node pool can take the pod ("incompatible
#: with nodepool gpu, ... no instance type satisfied resources"; kubernetes-sigs/karpenter,
#: provisioning/scheduling events)
SCHEDULER = "default-scheduler"


class JobInterrupted(MlscaffoldError):
    """Ctrl-C while following a Job: the shell's status for SIGINT, whatever the answer."""

    exit_code = 130


@dataclass(frozen=True)
class Kubectl:
    """``kubectl`` with one kubeconfig (the tunnel's) in the training namespace."""

    executable: str
    kubeconfig: Path
    namespace: str = TRAINING_NAMESPACE

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        return [self.executable, "--kubeconfig", str(self.kubeconfig), "-n", self.namespace,
                *args]

    def run(self, *args: str, stdin: str | None = None) -> str:
        """Its output; a failure as one line naming the verb and kubectl's last line."""
        done = subprocess.run(self._argv(args), input=stdin, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise MlscaffoldError(f"kubectl {args[0]} failed: {reason}")
        return done.stdout

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("get", *args, "-o", "json"))

    def stream(self, *args: str, line: Callable[[str], None]) -> str | None:
        """Each line of a long-running command (``logs -f``) as it comes; None when it ends
        well, else kubectl's last line."""
        # stderr to a file: a pipe nobody reads while stdout is read could fill and stall it
        with tempfile.TemporaryFile("w+") as errors, \
                subprocess.Popen(self._argv(args), stdout=subprocess.PIPE, stderr=errors,
                                 text=True) as process:
            try:
                assert process.stdout is not None
                for text in process.stdout:
                    line(text.rstrip("\n"))
            finally:  # Ctrl-C: kubectl, in our process group, had it too; make sure
                if process.poll() is None:
                    process.kill()
                process.wait()
            errors.seek(0)
            error = errors.read()
        if process.returncode == 0:
            return None
        return (error.strip().splitlines() or ["no message"])[-1]


def find_kubectl(kubeconfig: Path) -> Kubectl:
    executable = shutil.which("kubectl")
    if executable is None:
        raise UsageError("`kubectl` is not on PATH; --on eks applies the Job with it",
                         hint="install it (https://kubernetes.io/docs/tasks/tools/)")
    return Kubectl(executable, kubeconfig)


@dataclass
class JobOutcome:
    """How a Job ended: its terminal condition and the pod's last description."""

    condition: str  # Complete | Failed
    reason: str
    message: str
    pod: Mapping[str, Any] | None

    def failed_step(self) -> tuple[str, str] | None:
        """The first step that failed and how: ('train', 'container train terminated: Error,
        exit code 1')."""
        for status in _container_statuses(self.pod or {}):
            ended = status.get("state", {}).get("terminated")
            if ended and ended.get("exitCode", 0) != 0:
                return status["name"], (
                    f"container {status['name']} terminated: "
                    f"{ended.get('reason') or 'no reason'}, exit code {ended['exitCode']}")
        return None


@dataclass
class _Said:
    """What has been said already: each line (or each line of a `key`) once."""

    echo: Callable[[str], None]
    said: set[str] = field(default_factory=set)

    def __call__(self, line: str, key: str | None = None) -> None:
        if (key or line) not in self.said:
            self.said.add(key or line)
            self.echo(line)


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status", {})
    return [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]


def _terminal(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Job's Complete or Failed condition when it has one. FailureTarget and
    SuccessCriteriaMet (1.31+) come first, while the pod still terminates: the Job is over
    once Complete or Failed is there (Kubernetes docs, "Jobs": "Termination of Job pods")."""
    for condition in job.get("status", {}).get("conditions", []):
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition
    return None


def _newest_pod(pods: Mapping[str, Any]) -> Mapping[str, Any] | None:
    items = list(pods.get("items", []))
    if not items:
        return None
    return max(items, key=lambda pod: pod.get("metadata", {}).get("creationTimestamp", ""))


def _pod_lines(name: str, pod: Mapping[str, Any], upload_uri: str
               ) -> list[tuple[str, str | None]]:
    """The pod's state as status lines, in order, each with the key that says it once (a
    reason, whose message may change: the scheduler's counts nodes)."""
    lines: list[tuple[str, str | None]] = []
    pod_name = pod["metadata"]["name"]
    condition = _unscheduled(pod)
    # the scheduler says why no node fits (Unschedulable: "0/3 nodes are available: 3
    # Insufficient nvidia.com/gpu"); Karpenter may be launching one for the pod
    if condition is not None:
        lines.append((f"{name}: pod {pod_name} is not scheduled yet "
                      f"({condition.get('reason') or 'no reason'}: "
                      f"{condition.get('message') or 'no message'}); Karpenter may be "
                      "launching a node for it, Ctrl-C stops waiting",
                      f"PodScheduled {condition.get('reason')}"))
    for status in _container_statuses(pod):
        step, state = status["name"], status.get("state", {})
        waiting, ended = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason") in STUCK_REASONS:
            lines.append((f"{name}: {step} waits: {waiting['reason']}: "
                          f"{waiting.get('message') or 'no message'}",
                          f"{step} {waiting['reason']}"))
        if state.get("running") or ended:
            what = STEPS.get(step, "the {step} step").format(step=step, upload_uri=upload_uri)
            lines.append((f"{name}: {step} started ({what})", None))
        if ended and ended.get("exitCode") == 0:
            lines.append((f"{name}: {step} done", None))
    return lines


def _unscheduled(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod's PodScheduled condition while it is False (no node has taken the pod)."""
    return next((condition for condition in pod.get("status", {}).get("conditions", [])
                 if condition.get("type") == "PodScheduled"
                 and condition.get("status") == "False"), None)


def _event_lines(name: str, events: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The pod's warning events from others than the scheduler, each with the key that says
    it once (its source and reason: Karpenter's message is repeated as it retries)."""
    lines = []
    for event in events.get("items", []):
        source = (event.get("reportingComponent")
                  or event.get("source", {}).get("component") or "unknown")
        if event.get("type") != "Warning" or source == SCHEDULER:
            continue
        reason = event.get("reason") or "no reason"
        lines.append((f"{name}: {source} warns: {reason}: {event.get('message') or 'no message'}",
                      f"event {source} {reason}"))
    return lines


def _train_state(pod: Mapping[str, Any]) -> str | None:
    for status in _container_statuses(pod):
        if status["name"] == "train":
            state = status.get("state", {})
            return next((key for key in ("running", "terminated") if key in state), None)
    return None


def follow_job(kubectl: Kubectl, name: str, *, pod_label: str, upload_uri: str,
               echo: Callable[[str], None], sleep: Callable[[float], None] | None = None,
               poll_seconds: float | None = None) -> JobOutcome:
    """Say the Job's progress and stream the train log until Complete or Failed; `sleep`
    and `poll_seconds` (default time.sleep and POLL_SECONDS) pace the polls."""
    say = _Said(echo)
    streamed, events_read = False, True
    while True:
        job = kubectl.get("job", name)
        pod = _newest_pod(kubectl.get("pods", "-l", f"{pod_label}={name}"))
        ended = _terminal(job)
        if pod is None:
            if ended is None:  # a Job past its deadline has deleted its pod
                say(f"{name}: waiting for the Job's pod")
        else:
            for line, key in _pod_lines(name, pod, upload_uri):
                say(line, key)
            if events_read and ended is None and _unscheduled(pod) is not None:
                pod_name = pod["metadata"]["name"]
                try:
                    events = kubectl.get("events", "--field-selector",
                                         f"involvedObject.kind=Pod,involvedObject.name={pod_name}")
                except MlscaffoldError as error:  # a role that may not list events
                    events_read = False
                    say(f"{name}: the pod's events could not be read ({error}); "
                        f"`kubectl -n {kubectl.namespace} describe pod {pod_name}` shows them")
                else:
                    for line, key in _event_lines(name, events):
                        say(line, key)
            if not streamed and _train_state(pod):
                streamed = True
                # `logs -f` ends when the container does; before it starts kubectl refuses
                # ("is waiting to start: PodInitializing", kubernetes/kubernetes#79547)
                problem = kubectl.stream("logs", "-f", pod["metadata"]["name"], "-c", "train",
                                         line=lambda text: echo(f"  | {text}"))
                if problem:
                    say(f"{name}: the train log could not be read ({problem})")
                continue  # the state after the log, at once
        if ended is not None:
            say(f"{name}: {ended['type']}")
            return JobOutcome(ended["type"], ended.get("reason") or "",
                              ended.get("message") or "", pod)
        (sleep or time.sleep)(POLL_SECONDS if poll_seconds is None else poll_seconds)


def follow_command(name: str, namespace: str = TRAINING_NAMESPACE) -> str:
    return f"kubectl -n {namespace} logs -f job/{shlex.quote(name)} -c train"


def delete_command(name: str, namespace: str = TRAINING_NAMESPACE) -> str:
    return f"kubectl -n {namespace} delete job {shlex.quote(name)} --cascade=foreground"


def interrupted(kubectl: Kubectl, name: str, *, confirm: Callable[[str], bool],
                echo: Callable[[str], None]) -> JobInterrupted:
    """Ctrl-C while following: ask, delete the Job (yes) or leave it; the error to raise."""
    job = f"{kubectl.namespace}/{name}"
    if not confirm(f"delete Job {job} and its pod?"):
        return JobInterrupted(
            f"stopped following Job {job}, which keeps running; nothing was recorded here",
            hint=f"through `mlscaffold tunnel`, follow it: {follow_command(name)}; "
                 f"delete it: {delete_command(name)}")
    echo(f"deleting Job {job} and its pod…")
    try:
        # foreground: the Job stays, with the foregroundDeletion finalizer, until the garbage
        # collector has deleted its pod, and `kubectl delete` waits for finalizers (--wait,
        # on by default); so when this returns the search has stopped and the GPU node is
        # free. Background, kubectl's default, deletes the Job at once and the pod later,
        # unseen (Kubernetes docs, "Use Cascading Deletion in a Cluster")
        kubectl.run("delete", "job", name, "--cascade=foreground", "--ignore-not-found",
                    f"--timeout={DELETE_TIMEOUT}")
    except MlscaffoldError as error:
        return JobInterrupted(f"Job {job} may still be running: {error}; nothing was recorded "
                              "here", hint=f"through `mlscaffold tunnel`: {delete_command(name)}")
    return JobInterrupted(f"deleted Job {job} and its pod; nothing was recorded")
