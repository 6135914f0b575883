"""`mlscaffold train --on eks` while the Job runs: its steps, the train log, its end, Ctrl-C.

kubectl is a stand-in executable on PATH (fake_kubectl.py) that answers `get job` and `get pods`
from a scenario, one poll after another, prints the scenario's log for `logs -f` and records
every call; the tunnel is a stand-in too. moto plays S3 and ECR; the Job's upload of the model
is played by putting an experiment's files under the Job's prefix before the run. Polls do not
sleep: the pause between them is recorded instead (the sleep of eks_follow).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import mlscaffold.eks_follow as eks_follow
import mlscaffold.eks_job as eks_job
import mlscaffold.remote_train as remote_train
from mlscaffold.errors import MlscaffoldError

from . import test_remote
from .conftest import assert_error, run_cli
from .test_remote import BUCKET, JOB, eks_outputs, push_image

aws = test_remote.aws  # the fixture: moto with the bucket and the repository

POD = f"{JOB}-x7k2p"
MODEL = f"s3://{BUCKET}/training/jobs/{JOB}/output/model"
FOLLOW = f"kubectl -n ml-training logs -f job/{JOB} -c train"
DELETE = f"kubectl -n ml-training delete job {JOB} --cascade=foreground"
UNSCHEDULABLE = ("0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) had "
                 "untolerated taint {CriticalAddonsOnly: true}.")


def job(*conditions: tuple[str, str, str]) -> dict:
    """The Job with these (type, reason, message) conditions true."""
    return {"metadata": {"name": JOB, "namespace": "ml-training"}, "status": {"conditions": [
        {"type": kind, "status": "True", "reason": reason, "message": message}
        for kind, reason, message in conditions]}}


def waiting(name: str, reason: str = "PodInitializing", message: str = "") -> dict:
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}}


def running(name: str) -> dict:
    return {"name": name, "state": {"running": {"startedAt": "2026-12-02T12:01:00Z"}}}


def ended(name: str, code: int = 0, reason: str = "Completed") -> dict:
    return {"name": name, "state": {"terminated": {"exitCode": code, "reason": reason}}}


def pod(fetch: dict, train: dict, upload: dict, *, unschedulable: str | None = None) -> dict:
    scheduled = ({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                  "message": unschedulable} if unschedulable else
                 {"type": "PodScheduled", "status": "True"})
    return {"metadata": {"name": POD, "creationTimestamp": "2026-12-02T12:00:05Z"},
            "status": {"phase": "Pending", "conditions": [scheduled],
                       "initContainerStatuses": [fetch, train], "containerStatuses": [upload]}}


#: a run that completes: no pod yet, fetching, training (its log), uploading, Complete
COMPLETES = {
    "polls": [
        {"job": job(), "pods": []},
        {"job": job(), "pods": [pod(running("fetch"), waiting("train"), waiting("upload"))]},
        {"job": job(), "pods": [pod(ended("fetch"), running("train"), waiting("upload"))]},
        {"job": job(), "pods": [pod(ended("fetch"), ended("train"), running("upload"))]},
        {"job": job(("SuccessCriteriaMet", "CompletionsReached", "")),
         "pods": [pod(ended("fetch"), ended("train"), ended("upload"))]},
        {"job": job(("SuccessCriteriaMet", "CompletionsReached", ""),
                    ("Complete", "CompletionsReached", "Reached expected number of succeeded "
                                                      "pods")),
         "pods": [pod(ended("fetch"), ended("train"), ended("upload"))]}],
    "logs": ["searching 12 candidates for 30 s", "best: hist_gradient_boosting roc_auc=0.91"],
}


#: what the Job's upload step leaves under its prefix: an experiment's files as the image's
#: `train` writes them (the model itself is not read on import)
JOB_FILES = {
    "experiment.json": json.dumps({
        "id": "exp-001", "created_at": "2026-12-02T12:03:00+00:00",
        "task": "binary-classification", "metric": "roc_auc", "score": 0.91,
        "family": "hist_gradient_boosting", "params": {}, "validation": {"roc_auc": 0.91},
        "seed": 42, "time_budget_seconds": 30.0}).encode(),
    "model.joblib": b"a fitted pipeline", "model.json": b"{}", "leaderboard.json": b"[]",
    "model_card.md": b"# lc-binary exp-001\n"}
assert set(JOB_FILES) == {*remote_train.EXPERIMENT_FILES, *remote_train.OPTIONAL_EXPERIMENT_FILES}


class FakeKubectl:
    """The stand-in kubectl's folder: the scenario in, the calls out."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def play(self, scenario: dict) -> None:
        (self.root / "scenario.json").write_text(json.dumps(scenario))

    def calls(self) -> list[list[str]]:
        path = self.root / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] \
            if path.exists() else []

    def kubectl(self) -> eks_follow.Kubectl:
        return eks_follow.find_kubectl(self.root / "kubeconfig")


@pytest.fixture
def fake_kubectl(tmp_path, monkeypatch) -> FakeKubectl:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = Path(__file__).with_name("fake_kubectl.py").read_text()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f"#!{sys.executable} -IS\n{script}")  # one argument
    kubectl.chmod(0o755)
    root = tmp_path / "kubectl"
    root.mkdir()
    monkeypatch.setenv("FAKE_KUBECTL_DIR", str(root))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return FakeKubectl(root)


@pytest.fixture
def eks_run(aws, project, fake_kubectl, monkeypatch):
    """The CLI's run against the stand-ins: the tunnel does nothing, the image is pushed, the
    Job's files are in S3 (JOB_FILES), polls record their pause; yields
    (the fake kubectl, the pauses, a function raising Ctrl-C at a poll)."""
    import mlscaffold.tunnel as tunnel

    monkeypatch.setattr(tunnel, "open_tunnel", lambda target: contextlib.nullcontext())
    monkeypatch.setattr(tunnel, "tunnel_target", lambda outputs, stack: None)
    monkeypatch.setattr(tunnel, "tunnel_kubeconfig", lambda cluster: "apiVersion: v1\n")
    monkeypatch.setattr(eks_job, "job_name", lambda target, now=None: JOB)
    pauses: list[float] = []
    interrupt_at: list[int] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) in interrupt_at:
            raise KeyboardInterrupt  # what the terminal's Ctrl-C raises during the pause

    monkeypatch.setattr(eks_follow, "time", SimpleNamespace(sleep=sleep))
    push_image(aws)
    for file, body in JOB_FILES.items():
        aws.client("s3").put_object(Bucket=BUCKET, Key=f"training/jobs/{JOB}/output/model/{file}",
                                    Body=body)
    yield fake_kubectl, pauses, interrupt_at.append


def train_on_eks(project: Path, tmp_path: Path):
    return run_cli(project, "train", "--on", "eks", "--stack", "dev", "--outputs",
                   eks_outputs(tmp_path), "--time", "30")


def followed(out: str) -> list[str]:
    """The lines from the Job's start on, before the experiment is written."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("started Job"))
    end = next((i for i, line in enumerate(lines) if line.startswith("wrote ")), len(lines))
    return lines[start:end]


def test_a_run_says_its_steps_streams_the_log_and_records_the_experiment(
        project, tmp_path, eks_run, monkeypatch):
    import mlscaffold.lifecycle.tracking as tracking

    # the import is logged as the SageMaker path's is (remote_train.record_remote_run, whose
    # MLflow run test_remote checks): here the call, not MLflow's start-up again
    logged: list[str] = []
    monkeypatch.setattr(tracking, "log_experiment", lambda config, experiment, warn:
                        logged.append(experiment) or "run-1")
    kubectl, pauses, _ = eks_run
    kubectl.play(COMPLETES)
    result = train_on_eks(project, tmp_path)
    assert result.code == 0, result.err
    assert followed(result.out) == [
        f"started Job ml-training/{JOB} on the gpu pool (at most 2438 s)",
        f"{JOB}: waiting for the Job's pod",
        f"{JOB}: fetch started (downloads the data sets)",
        f"{JOB}: fetch done",
        f"{JOB}: train started (the search; its log follows)",
        "  | searching 12 candidates for 30 s",
        "  | best: hist_gradient_boosting roc_auc=0.91",
        f"{JOB}: train done",
        f"{JOB}: upload started (copies the model to {MODEL})",
        f"{JOB}: upload done",
        f"{JOB}: Complete"]
    # one pause per poll but the one after the log, which polls again at once
    assert pauses == [eks_follow.POLL_SECONDS] * 4
    calls = kubectl.calls()
    assert calls[0] == ["-n", "ml-training", "apply", "-f", "-"]
    assert ["-n", "ml-training", "get", "pods", "-l",
            f"mlscaffold.io/training-run={JOB}", "-o", "json"] in calls
    assert ["-n", "ml-training", "logs", "-f", POD, "-c", "train"] in calls
    assert json.loads((kubectl.root / "applied.json").read_text())["metadata"]["name"] == JOB
    record = json.loads((project / "experiments" / "exp-001" / "experiment.json").read_text())
    assert record["remote"]["on"] == "eks" and record["remote"]["job"] == JOB
    assert record["remote"]["model_artifacts"] == MODEL
    assert logged == ["exp-001"]
    index = json.loads((project / "experiments" / "index.json").read_text())["experiments"]
    assert [entry["id"] for entry in index] == ["exp-001"]
    assert result.out.rstrip().endswith("next: mlscaffold evaluate --experiment exp-001")


def test_a_failed_train_container_is_one_line_and_records_nothing(project, tmp_path, eks_run):
    kubectl, _, _ = eks_run
    failed = pod(ended("fetch"), ended("train", 1, "Error"), waiting("upload"))
    kubectl.play({"polls": [
        {"job": job(), "pods": [failed]},
        {"job": job(("FailureTarget", "BackoffLimitExceeded", "Job has reached the "
                                                              "specified backoff limit"),
                    ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff "
                                                       "limit")), "pods": [failed]}],
        "logs": ["error: column 'label' is missing from datasets/train.csv"]})
    result = train_on_eks(project, tmp_path)
    assert_error(result, 1, f"Job ml-training/{JOB} failed (BackoffLimitExceeded: Job has "
                            "reached the specified backoff limit); container train terminated: "
                            "Error, exit code 1; nothing was recorded",
                 f"its log, through `mlscaffold tunnel`: kubectl -n ml-training logs job/{JOB} "
                 "-c train")
    assert "  | error: column 'label' is missing from datasets/train.csv" in result.out
    assert f"{JOB}: train done" not in result.out
    assert not (project / "experiments" / "index.json").exists()
    assert not list((project / "experiments").glob("exp-*"))


def test_ctrl_c_answered_yes_deletes_the_job_with_its_pod(project, tmp_path, eks_run):
    kubectl, _, interrupt_at = eks_run
    kubectl.play({"polls": [{"job": job(), "pods": [
        pod(running("fetch"), waiting("train"), waiting("upload"))]}]})
    interrupt_at(2)
    from click.testing import CliRunner

    from mlscaffold.cli import cli

    result = CliRunner().invoke(cli, [
        "train", "--project", str(project), "--on", "eks", "--stack", "dev", "--outputs",
        str(eks_outputs(tmp_path)), "--time", "30"], input="y\n")
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines() == [
        f"delete Job ml-training/{JOB} and its pod? [Y/n]: y",
        f"error: deleted Job ml-training/{JOB} and its pod; nothing was recorded"]
    assert f"deleting Job ml-training/{JOB} and its pod…" in result.stdout
    assert kubectl.calls()[-1] == ["-n", "ml-training", "delete", "job", JOB,
                                   "--cascade=foreground", "--ignore-not-found",
                                   "--timeout=120s"]
    assert not list((project / "experiments").glob("exp-*"))


def test_ctrl_c_answered_no_leaves_the_job_and_says_how_to_follow_it(project, tmp_path,
                                                                    eks_run):
    kubectl, _, interrupt_at = eks_run
    kubectl.play(COMPLETES)
    interrupt_at(1)
    from click.testing import CliRunner

    from mlscaffold.cli import cli

    result = CliRunner().invoke(cli, [
        "train", "--project", str(project), "--on", "eks", "--stack", "dev", "--outputs",
        str(eks_outputs(tmp_path)), "--time", "30"], input="n\n")
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines() == [
        f"delete Job ml-training/{JOB} and its pod? [Y/n]: n",
        f"error: stopped following Job ml-training/{JOB}, which keeps running; nothing was "
        f"recorded here; through `mlscaffold tunnel`, follow it: {FOLLOW}; delete it: {DELETE}"]
    assert not [call for call in kubectl.calls() if "delete" in call]
    assert not list((project / "experiments").glob("exp-*"))


# ------------------------------------------------------------------ the follower alone


def follow(kubectl: FakeKubectl) -> tuple[eks_follow.JobOutcome, list[str], list[float]]:
    lines: list[str] = []
    pauses: list[float] = []
    outcome = eks_follow.follow_job(kubectl.kubectl(), JOB, pod_label="run", upload_uri=MODEL,
                                    echo=lines.append, sleep=pauses.append, poll_seconds=0.5)
    return outcome, lines, pauses


def test_a_pod_that_cannot_be_scheduled_is_said_at_once_and_the_deadline_fails_the_job(
        fake_kubectl):
    pending = pod(waiting("fetch"), waiting("train"), waiting("upload"),
                  unschedulable=UNSCHEDULABLE)
    deadline = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
    # the scheduler's message changes as nodes come and go: said once all the same
    later = pod(waiting("fetch"), waiting("train"), waiting("upload"),
                unschedulable="0/4 nodes are available: 4 Insufficient nvidia.com/gpu.")
    fake_kubectl.play({"polls": [
        {"job": job(), "pods": [pending]}, {"job": job(), "pods": [later]},
        {"job": job(("FailureTarget", *deadline[1:])), "pods": [later]},
        {"job": job(("FailureTarget", *deadline[1:]), deadline), "pods": []}]})
    outcome, lines, pauses = follow(fake_kubectl)
    assert lines == [
        f"{JOB}: pod {POD} is not scheduled yet (Unschedulable: {UNSCHEDULABLE}); Karpenter "
        "may be launching a node for it, Ctrl-C stops waiting",
        f"{JOB}: Failed"]
    assert pauses == [0.5, 0.5, 0.5]  # FailureTarget alone is not the end: the pod terminates
    assert (outcome.condition, outcome.reason) == ("Failed", "DeadlineExceeded")
    assert outcome.failed_step() is None


KARPENTER_WARNING = ('Failed to schedule pod, incompatible with nodepool "gpu", no instance '
                     'type satisfied resources {"nvidia.com/gpu":"1"}')


def _event(source: str, kind: str, reason: str, message: str) -> dict:
    return {"type": kind, "reason": reason, "message": message, "reportingComponent": source}


def _pending_until_the_deadline(fake_kubectl, **events) -> None:
    """Two polls of a pod that cannot be scheduled, then the Job fails; `events`: the
    scenario's "events" or "events_error"."""
    pending = pod(waiting("fetch"), waiting("train"), waiting("upload"),
                  unschedulable=UNSCHEDULABLE)
    fake_kubectl.play({"polls": [
        {"job": job(), "pods": [pending]}, {"job": job(), "pods": [pending]},
        {"job": job(("Failed", "DeadlineExceeded", "")), "pods": [pending]}], **events})


def test_a_pending_pod_says_karpenters_warning_once_not_the_schedulers_again(fake_kubectl):
    _pending_until_the_deadline(fake_kubectl, events=[
        _event("default-scheduler", "Warning", "FailedScheduling", UNSCHEDULABLE),
        _event("karpenter", "Warning", "FailedScheduling", KARPENTER_WARNING),
        _event("karpenter", "Normal", "Nominated", "Pod should schedule on: x")])
    _, lines, _ = follow(fake_kubectl)
    assert lines == [
        f"{JOB}: pod {POD} is not scheduled yet (Unschedulable: {UNSCHEDULABLE}); Karpenter "
        "may be launching a node for it, Ctrl-C stops waiting",
        f"{JOB}: karpenter warns: FailedScheduling: {KARPENTER_WARNING}",
        f"{JOB}: Failed"]
    asked = [call for call in fake_kubectl.calls() if call[2:4] == ["get", "events"]]
    assert len(asked) == 2  # while the Job runs and the pod waits; not once it has ended
    assert asked[0][4:6] == ["--field-selector",
                             f"involvedObject.kind=Pod,involvedObject.name={POD}"]


def test_events_that_cannot_be_read_are_one_line_and_not_asked_again(fake_kubectl):
    _pending_until_the_deadline(
        fake_kubectl, events_error='events is forbidden: cannot list resource "events"')
    _, lines, _ = follow(fake_kubectl)
    assert lines[1] == (
        f"{JOB}: the pod's events could not be read (kubectl get failed: Error from server "
        '(Forbidden): events is forbidden: cannot list resource "events"); '
        f"`kubectl -n ml-training describe pod {POD}` shows them")
    assert lines[-1] == f"{JOB}: Failed"
    assert sum(call[2:4] == ["get", "events"] for call in fake_kubectl.calls()) == 1


def test_an_image_that_cannot_be_pulled_is_said_once(fake_kubectl):
    message = ('Back-off pulling image "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:0.1.0"')
    stuck = pod(ended("fetch"), waiting("train", "ImagePullBackOff", message), waiting("upload"))
    fake_kubectl.play({"polls": [
        {"job": job(), "pods": [stuck]}, {"job": job(), "pods": [stuck]},
        {"job": job(("Failed", "DeadlineExceeded", "")), "pods": [stuck]}]})
    outcome, lines, _ = follow(fake_kubectl)
    assert lines == [f"{JOB}: fetch started (downloads the data sets)", f"{JOB}: fetch done",
                     f"{JOB}: train waits: ImagePullBackOff: {message}", f"{JOB}: Failed"]
    assert outcome.reason == "DeadlineExceeded"


def test_a_log_that_cannot_be_read_is_one_line_and_the_run_goes_on(fake_kubectl):
    scenario = {**COMPLETES, "logs": [], "logs_error": 'container "train" in pod "x" is '
                                                       "waiting to start: PodInitializing"}
    fake_kubectl.play(scenario)
    outcome, lines, _ = follow(fake_kubectl)
    assert (f"{JOB}: the train log could not be read (Error from server: container \"train\" in "
            "pod \"x\" is waiting to start: PodInitializing)") in lines
    assert outcome.condition == "Complete" and lines[-1] == f"{JOB}: Complete"


def test_a_delete_that_fails_says_the_job_may_still_run(fake_kubectl):
    fake_kubectl.play({"polls": [], "fail": {"delete": "Unauthorized"}})
    error = eks_follow.interrupted(fake_kubectl.kubectl(), JOB, confirm=lambda _: True,
                                   echo=lambda _: None)
    assert isinstance(error, eks_follow.JobInterrupted) and error.exit_code == 130
    assert str(error) == (f"Job ml-training/{JOB} may still be running: kubectl delete failed: "
                          "Error from server: Unauthorized; nothing was recorded here; through "
                          f"`mlscaffold tunnel`: {DELETE}")


def test_a_job_that_uploaded_no_model_records_nothing(aws, project, tmp_path, eks_run):
    kubectl, _, _ = eks_run
    kubectl.play(COMPLETES)
    aws.client("s3").delete_object(Bucket=BUCKET,
                                   Key=f"training/jobs/{JOB}/output/model/model.joblib")
    result = train_on_eks(project, tmp_path)
    assert_error(result, 1, f"{MODEL}/model.joblib does not exist: the Job's image did not "
                            "write an experiment", "rebuild and push the image")
    assert not list((project / "experiments").glob("exp-*"))


def test_losing_the_api_while_following_names_the_job_and_records_nothing(project, tmp_path,
                                                                          eks_run):
    kubectl, _, _ = eks_run
    kubectl.play({"polls": [], "fail": {"get": "the server is currently unable to handle the "
                                               "request"}})
    result = train_on_eks(project, tmp_path)
    assert_error(result, 1, f"lost track of Job ml-training/{JOB}, which may still be running "
                            "(kubectl get failed: Error from server: the server is currently "
                            "unable to handle the request); nothing was recorded here",
                 f"follow it: {FOLLOW}; delete it: {DELETE}")
    assert not list((project / "experiments").glob("exp-*"))


def test_kubectl_missing_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MlscaffoldError) as raised:
        eks_follow.find_kubectl(tmp_path / "kubeconfig")
    assert raised.value.exit_code == 2 and "`kubectl` is not on PATH" in str(raised.value)
    assert shutil.which("kubectl") is None


def test_the_failed_step_is_the_first_that_ended_badly():
    fetch_failed = pod(ended("fetch", 1, "Error"), waiting("train"), waiting("upload"))
    outcome = eks_follow.JobOutcome("Failed", "BackoffLimitExceeded", "", fetch_failed)
    assert outcome.failed_step() == ("fetch", "container fetch terminated: Error, exit code 1")
    upload_failed = pod(ended("fetch"), ended("train"), ended("upload", 2, "Error"))
    assert eks_follow.JobOutcome("Failed", "", "", upload_failed).failed_step() == (
        "upload", "container upload terminated: Error, exit code 2")
