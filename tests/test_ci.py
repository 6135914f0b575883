"""CI pipelines: schema-valid for every option combination, every command they run exists in
the generated project, no secrets, least privilege; and `mlscaffold ci` on existing repos."""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
import yaml

from mlscaffold.ci import (
    ACTIONS,
    DOWNLOADS,
    PIPELINE_FILES,
    deploy_stages,
    make_targets_called,
    makefile_targets,
    pipeline_commands,
)
from mlscaffold.ci import render_pipeline as render_with_copier
from mlscaffold.cli import cli
from mlscaffold.errors import SpecError
from mlscaffold.project import create_project
from mlscaffold.spec import SPEC_FILENAME, load_spec, validate_spec

from .conftest import blueprint_choices
from .test_generated_projects import COVERING
from .test_new import TEMPLATE_SYNTAX

PROVIDERS = [p for p in blueprint_choices("ci") if p != "none"]
SERVINGS = blueprint_choices("serving")
ENVIRONMENTS = [["dev", "staging", "prod"], ["dev", "prod"], ["qa"]]
FEATURE_STORES = blueprint_choices("feature_store")
COMBOS = list(itertools.product(SERVINGS, ENVIRONMENTS, FEATURE_STORES))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
# a commit pin with its release in a comment, or an exact release tag
PINNED_USES = re.compile(r"^[\w.-]+/[\w./-]+@(?:[0-9a-f]{40} # v\d+\.\d+\.\d+|v\d+\.\d+\.\d+)$")


_RENDERED: dict[tuple[str, str | None], dict[Path, str]] = {}


def render_pipeline(spec, provider: str | None = None) -> dict[Path, str]:
    """mlscaffold.ci.render_pipeline, once per spec and provider in this module: each call
    renders a whole project with Copier, and many tests read the same pipelines (a new dict
    each call, so a test cannot change another's)."""
    key = (spec.model_dump_json(), provider)
    if key not in _RENDERED:
        _RENDERED[key] = render_with_copier(spec, provider)
    return dict(_RENDERED[key])


def _spec(provider: str, serving: str = "sagemaker", environments: list[str] | None = None,
          feature_store: str = "none", **extra):
    return validate_spec({"name": "ci-proj", "ci": provider, "serving": serving,
                          "feature_store": feature_store,
                          "environments": environments or ["dev", "staging", "prod"], **extra})


def _combo_id(combo) -> str:
    serving, environments, feature_store = combo
    return f"{serving}-{'+'.join(environments)}-fs_{feature_store}"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[tuple[str, str], dict[Path, Path]]:
    """Every provider x combination rendered to disk: {(provider, combo id): {rel: file}}."""
    root = tmp_path_factory.mktemp("pipelines")
    out = {}
    for provider, combo in itertools.product(PROVIDERS, COMBOS):
        serving, environments, feature_store = combo
        folder = root / provider / _combo_id(combo)
        files = {}
        for relative, text in render_pipeline(_spec(provider, serving, environments,
                                                     feature_store)).items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text, encoding="utf-8")
            files[relative] = folder / relative
        out[provider, _combo_id(combo)] = files
    return out


def _documents(provider: str, **spec_values) -> dict[str, dict]:
    return {path.name: yaml.safe_load(text)
            for path, text in render_pipeline(_spec(provider, **spec_values)).items()}


# ---------------------------------------------------------------- schema and rendering


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_combination_validates_against_the_providers_schema(rendered, provider):
    files = [str(path) for (p, _), paths in rendered.items() if p == provider
             for path in paths.values()]
    assert len(files) == len(COMBOS) * len(PIPELINE_FILES[provider])
    completed = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", SCHEMAS[provider],
                                *files], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_schema_check_does_reject_a_broken_pipeline(tmp_path, provider):
    """The validation above is not vacuous: one misspelt key fails it."""
    text = next(iter(render_pipeline(_spec(provider)).values()))
    broken = text.replace("timeout-minutes:", "timeout-minute:", 1) if provider == "github" \
        else text.replace("  script:\n", "  scripts:\n", 1)
    assert broken != text
    (tmp_path / "broken.yml").write_text(broken)
    completed = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", SCHEMAS[provider],
                                str(tmp_path / "broken.yml")], capture_output=True, text=True)
    assert completed.returncode == 1, completed.stdout


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("combo", COMBOS, ids=_combo_id)
def test_rendering_leaves_no_template_syntax(rendered, provider, combo):
    for relative, path in rendered[provider, _combo_id(combo)].items():
        text = path.read_text()
        leftover = TEMPLATE_SYNTAX.search(text)
        assert leftover is None, f"{relative}: {text[leftover.start():][:60]!r}"
        assert "\n\n\n" not in text, f"{relative}: stray blank lines"
        assert isinstance(yaml.safe_load(text), dict)


def test_pipeline_files_per_provider():
    assert set(render_pipeline(_spec("github"))) == {Path(".github/workflows/ci.yml"),
                                                     Path(".github/workflows/drift.yml")}
    assert set(render_pipeline(_spec("gitlab"))) == {Path(".gitlab-ci.yml")}
    assert render_pipeline(_spec("none")) == {}


@pytest.mark.parametrize(("environments", "production"), [
    (["dev", "staging", "prod"], ["prod"]),
    (["dev", "prod"], ["prod"]),
    (["dev", "qa"], ["qa"]),
    (["dev", "live", "sandbox"], ["live"]),
    (["qa"], []),
])
def test_deploy_stages_mark_production(environments, production):
    stages = deploy_stages(environments)
    assert [s.name for s in stages] == environments
    assert [s.name for s in stages if s.production] == production
    assert [s.previous for s in stages] == [None, *environments[:-1]]
    assert {s.model_stage for s in stages if s.production} <= {"production"}


# ---------------------------------------------------------------- GitHub Actions


def _jobs(doc: dict) -> dict[str, dict]:
    return doc["jobs"]


def _run_lines(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


@pytest.mark.parametrize("combo", COMBOS, ids=_combo_id)
def test_github_least_privilege_timeouts_and_pins(combo):
    serving, environments, feature_store = combo
    docs = _documents("github", serving=serving, environments=environments,
                      feature_store=feature_store)
    for name, doc in docs.items():
        assert doc["permissions"] == {"contents": "read"}, name
        for job_id, job in _jobs(doc).items():
            assert isinstance(job.get("timeout-minutes"), int), (name, job_id)
            permissions = job.get("permissions", {})
            assert set(permissions.values()) <= {"read", "write", "none"}
            uses = [step["uses"] for step in job.get("steps", []) if "uses" in step]
            oidc = any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
            sarif = any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
            assert (permissions.get("id-token") == "write") == oidc, (name, job_id)
            assert (permissions.get("security-events") == "write") == sarif, (name, job_id)
            assert permissions.get("actions") != "write" or job_id == "retrain"
            assert "contents" not in permissions or permissions["contents"] == "read"
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/setup-python@"):
                    assert step["with"]["cache"] == "pip"
    text = "\n".join(render_pipeline(_spec("github", serving=serving,
                                            environments=environments)).values())
    for line in re.findall(r"uses: (.+)", text):
        assert PINNED_USES.match(line.strip()), line
        action = line.split("@")[0]
        assert action in {a for a, _, _ in ACTIONS.values()}, action


def test_github_pins_come_from_the_actions_table():
    for action, commit, release in ACTIONS.values():
        assert re.fullmatch(r"v\d+\.\d+\.\d+", release), action
        assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit), action


@pytest.mark.parametrize(("serving", "environments"),
                         [("sagemaker", ["dev", "staging", "prod"]), ("none", ["dev", "prod"]),
                          ("kserve", ["qa"])])
def test_github_main_path_deploys_in_order_with_approval_and_no_overlap(serving, environments):
    jobs = _jobs(_documents("github", serving=serving, environments=environments)["ci.yml"])
    stages = deploy_stages(environments)
    assert ("image" in jobs) == (serving != "none")
    if serving != "none":
        assert "make image-archive" in _run_lines(jobs["image"])
    train = _run_lines(jobs["train"])
    assert train.index("make train") < train.index("make evaluate") \
        < train.index("STAGE=staging")
    for stage in stages:
        job = jobs[f"deploy-{stage.name}"]
        assert job["environment"] == {"name": stage.name}
        assert job["concurrency"] == {"group": f"deploy-{stage.name}",
                                      "cancel-in-progress": False}
        expected_needs = {"train"} | ({"image"} if serving != "none" else set()) \
            | ({f"deploy-{stage.previous}"} if stage.previous else set())
        assert set(job["needs"]) == expected_needs
        assert "vars.AWS_ROLE_ARN != ''" in job["if"]
        runs = _run_lines(job)
        # the deploy registers the experiment in the stack's model registry (approved for
        # production, behind the environment's reviewers) and deploys what it approves
        assert (f'make deploy STACK={stage.name} STAGE={stage.model_stage} EXP="$EXP" '
                'IMAGE_TAG="$IMAGE_TAG"') in runs
        (deploy_step,) = [step for step in job["steps"] if "make deploy" in step.get("run", "")]
        assert deploy_step["env"]["EXP"] == "${{ needs.train.outputs.experiment }}"
        assert "make promote" not in runs and "make install install-infra" in runs
        # the quotas are checked with the stack's credentials, after the install, before up
        names = [step.get("name", "") for step in job["steps"]]
        preflight = names.index("Service quotas (preflight)")
        credentials = next(i for i, step in enumerate(job["steps"])
                           if "aws-actions" in step.get("uses", ""))
        install = max(i for i, step in enumerate(job["steps"])
                      if "install-infra" in step.get("run", ""))
        deploy = next(i for i, step in enumerate(job["steps"])
                      if "make deploy" in step.get("run", ""))
        assert credentials < install < preflight < deploy
        assert job["steps"][preflight]["run"] == f"make preflight STACK={stage.name}"
        # SageMaker: the drift baseline follows the deploy, in the same approved job
        baseline = f"make baseline STACK={stage.name}"
        assert (baseline in runs.split("make deploy")[1]) == (serving == "sagemaker")
        assert job["timeout-minutes"] == 90
    assert not any(name.startswith("deploy-") for name in set(jobs) - {
        f"deploy-{s.name}" for s in stages})


def test_github_pull_requests_preview_every_stack_only_with_a_role():
    jobs = _jobs(_documents("github", environments=["dev", "qa", "prod"])["ci.yml"])
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "qa", "prod"]
    assert "github.event_name == 'pull_request'" in preview["if"]
    assert "vars.AWS_ROLE_ARN != ''" in preview["if"]
    step = next(s for s in preview["steps"] if "aws-actions" in s.get("uses", ""))
    assert step["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert "make preview" in _run_lines(preview)
    assert "make train TIME=" in _run_lines(jobs["test"])
    policy = _run_lines(jobs["policy"])
    assert "make check SARIF=mlscaffold.sarif" in policy and "make -s cost" in policy


def test_github_runs_on_the_main_branch_share_one_concurrency_group():
    """A push and the drift retrain (workflow_dispatch) on main must not train and deploy at
    once: the group is the ref's alone; a pull request's run (its own ref) is cancelled by a
    newer push."""
    doc = _documents("github")["ci.yml"]
    assert doc["concurrency"] == {"group": "ci-${{ github.ref }}",
                                  "cancel-in-progress": "${{ github.event_name == "
                                                        "'pull_request' }}"}


def test_github_drift_schedule_starts_retraining():
    doc = _documents("github")["drift.yml"]
    assert "schedule" in doc[True] and "workflow_dispatch" in doc[True]  # `on` reads as True
    retrain = doc["jobs"]["retrain"]
    assert retrain["needs"] == "drift"
    assert retrain["if"] == "needs.drift.outputs.drifted == 'true'"
    assert doc["jobs"]["drift"]["outputs"] == {"drifted": "${{ steps.drift.outputs.drifted }}"}
    assert retrain["permissions"] == {"actions": "write"}
    assert "gh workflow run ci.yml" in _run_lines(retrain)
    assert "make drift-incoming" in _run_lines(doc["jobs"]["drift"])
    ci = _documents("github")["ci.yml"]
    assert "workflow_dispatch" in ci[True]


def _rendered_with(provider: str, train_on: str | None = None) -> dict[str, dict]:
    """The pipeline files of a spec with `train_on` (None: a spec that leaves it out), parsed."""
    spec = _spec(provider, environments=["dev", "prod"],
                 **({} if train_on is None else {"train_on": train_on}))
    return {str(path): yaml.safe_load(text)
            for path, text in render_pipeline(spec, provider).items()}


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_the_main_branch_trains_where_the_spec_says(provider):
    """train_on sagemaker or eks: the train job assumes the AWS role and trains on the first
    stack (`make train TRAIN_ON=... STACK=...`, the Makefile passes --on and --stack); local:
    no cloud access at all. The pull request's smoke run stays local."""
    for train_on in ("sagemaker", "eks", "local", None):  # None: a spec that leaves it out
        docs = _rendered_with(provider, train_on=train_on)
        remote = train_on not in ("local", None)
        if provider == "github":
            job = docs[".github/workflows/ci.yml"]["jobs"]["train"]
            runs = _run_lines(job)
            assert (job.get("permissions", {}).get("id-token") == "write") == remote
            assert any("aws-actions" in step.get("uses", "") for step in job["steps"]) == remote
            train = next(step for step in job["steps"] if "make train" in step.get("run", ""))
            assert ("PULUMI_CONFIG_PASSPHRASE" in train.get("env", {})) == remote
            smoke = _run_lines(docs[".github/workflows/ci.yml"]["jobs"]["test"])
        else:
            doc = docs[".gitlab-ci.yml"]
            job = _resolved(doc, doc["train"])
            runs = "\n".join(job["script"])
            assert ("id_tokens" in job) == remote
            smoke = "\n".join(doc["train-smoke"]["script"])
        expected = (f"TRAIN_ON={train_on} STACK=dev" if remote else "")
        assert re.search(r'make train TIME="?\$\{?TRAIN_TIME\}?"?' + (" " + expected if remote
                                                                      else "$"),
                         runs, re.MULTILINE), runs
        assert ("install-infra" in runs) == remote
        assert "TRAIN_ON" not in smoke
        if provider == "github":
            _github_trains_on_the_commits_image(docs[".github/workflows/ci.yml"], remote)
        else:
            _gitlab_trains_on_the_commits_image(docs[".gitlab-ci.yml"], remote)


def _github_trains_on_the_commits_image(doc: dict, remote: bool) -> None:
    """Remotely, the image job builds the commit's image before train, and train pushes it
    to the stack (tagged with the commit, as the deploys tag it) and runs the job on that tag;
    locally, the image follows the gate. A dispatched run (the drift retrain) takes the same
    path as a push."""
    jobs = doc["jobs"]
    train, image = jobs["train"], jobs["image"]
    needs = {image["needs"]} if isinstance(image["needs"], str) else set(image["needs"])
    assert ("image" in train["needs"]) == remote
    assert ("train" in needs) == (not remote)
    steps = train["steps"]
    names = [step.get("run", step.get("uses", "")) for step in steps]
    train_at = next(i for i, run in enumerate(names) if run.startswith("make train"))
    if not remote:
        assert "IMAGE_TAG" not in names[train_at] and not any("make push" in n for n in names)
        return
    # the image job runs only where train does: on the default branch, pushes and dispatches
    assert image["if"] == train["if"]
    assert "github.event_name != 'pull_request'" in image["if"]
    assert "make image-archive" in _run_lines(image)
    assert image["steps"][-2]["env"]["IMAGE_TAG"] == "${{ github.sha }}"
    download = next(i for i, step in enumerate(steps)
                    if "download-artifact" in step.get("uses", ""))
    assert steps[download]["with"] == {"name": "image", "path": "dist"}
    push = next(i for i, run in enumerate(names) if run.startswith("make push"))
    credentials = next(i for i, step in enumerate(steps)
                       if "aws-actions" in step.get("uses", ""))
    assert credentials < download < push < train_at
    assert names[push] == 'make push STACK=dev IMAGE_TAG="$IMAGE_TAG"'
    assert names[train_at].endswith(' STACK=dev IMAGE_TAG="$IMAGE_TAG"')
    for at in (push, train_at):
        assert steps[at]["env"]["IMAGE_TAG"] == "${{ github.sha }}"
        assert "PULUMI_BACKEND_URL" in steps[at]["env"]


def _gitlab_trains_on_the_commits_image(doc: dict, remote: bool) -> None:
    """The same on GitLab: the package stage comes before train, which needs build-image (its
    dist/image.tar), pushes it as $CI_COMMIT_SHA and trains on it; a triggered pipeline (the
    drift retrain) runs both, as a push does."""
    stages = doc["stages"]
    build, train = _resolved(doc, doc["build-image"]), _resolved(doc, doc["train"])
    assert (stages.index("package") < stages.index("train")) == remote
    assert build["stage"] == "package" and train["stage"] == "train"
    script = train["script"]
    train_at = next(i for i, line in enumerate(script) if line.startswith("make train"))
    assert "make image-archive IMAGE_TAG=$CI_COMMIT_SHA" in build["script"]
    if not remote:
        assert build["needs"] == ["train"] and "needs" not in train
        assert "IMAGE_TAG" not in script[train_at]
        return
    assert "needs" not in build  # after the test and check stages, as train was
    assert train["needs"] == ["build-image"]
    push = script.index("make push STACK=dev IMAGE_TAG=$CI_COMMIT_SHA")
    assert push < train_at and script[train_at].endswith(" STACK=dev IMAGE_TAG=$CI_COMMIT_SHA")
    assert "skopeo" in " ".join(train["before_script"])  # make push copies the archive
    assert build["rules"] == train["rules"] == doc[".default-branch"]["rules"]
    retrain = doc["retrain"]["trigger"]
    assert retrain == {"project": "$CI_PROJECT_PATH", "branch": "$CI_DEFAULT_BRANCH"}
    # a triggered pipeline's source is "pipeline": the default-branch rule admits it
    assert build["rules"] == [{"if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && '
                                     '$CI_PIPELINE_SOURCE != "schedule"'}]


@pytest.mark.parametrize("train_on", ["sagemaker", "eks"])
def test_remote_training_without_an_image_is_refused(train_on):
    """serving: none builds no image, so the spec cannot train remotely with it."""
    with pytest.raises(SpecError) as raised:
        _spec("github", serving="none", train_on=train_on)
    # the key once: the CLI names it (`mlscaffold.yaml: train_on: 'eks' runs ...`)
    assert raised.value.field == "train_on"
    assert str(raised.value) == (f"{train_on!r} runs the project's image, which serving: none "
                                 "does not build; choose serving sagemaker or kserve, or "
                                 "train_on: local")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_remote_training_pipelines_validate_against_the_providers_schema(tmp_path, provider):
    files = []
    for train_on in ("sagemaker", "eks"):
        for relative, text in render_pipeline(_spec(provider, train_on=train_on)).items():
            path = tmp_path / train_on / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            assert TEMPLATE_SYNTAX.search(text) is None and "\n\n\n" not in text
            files.append(str(path))
    completed = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", SCHEMAS[provider],
                                *files], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]


def _secret_locations(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _secret_locations(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _secret_locations(value, (*path, index))
    elif isinstance(node, str) and "secrets." in node:
        yield path, node


# make targets that install with pip: pip itself, `pulumi install` (infra/venv and the policy
# packs' venvs) or the image build; test_pip_targets_are_the_ones_whose_recipes_install checks it
PIP_TARGETS = frozenset({"install", "install-infra", "preview", "deploy", "image-archive"})
_PIP_ENV = "${{ secrets.PIP_INDEX_URL }}"


def _calls(step: dict, targets) -> bool:
    return any(re.search(rf"make (?:\S+ )*{target}\b", step.get("run", "")) for target in targets)


@pytest.mark.parametrize("serving", SERVINGS)
def test_github_secrets_only_referenced_in_the_env_of_steps_that_need_them(serving):
    for name, doc in _documents("github", serving=serving).items():
        for path, value in _secret_locations(doc):
            assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", value), (name, path, value)
            assert path[0] == "jobs" and path[2] == "steps" and path[4] == "env", (name, path)
            step = doc["jobs"][path[1]]["steps"][path[3]]
            if path[5] == "PIP_INDEX_URL":  # the package index: steps that install
                assert _calls(step, PIP_TARGETS), (name, path)
            else:  # Pulumi's secrets: steps that run pulumi
                assert re.search(r"make (preview|deploy|baseline)\b", step["run"]), (name, path)


@pytest.mark.parametrize("combo", COMBOS, ids=_combo_id)
def test_github_every_step_that_installs_gets_the_package_index(combo):
    serving, environments, feature_store = combo
    docs = _documents("github", serving=serving, environments=environments,
                      feature_store=feature_store)
    installing = 0
    for name, doc in docs.items():
        for job_id, job in _jobs(doc).items():
            for step in job.get("steps", []):
                given = step.get("env", {}).get("PIP_INDEX_URL")
                assert given == (_PIP_ENV if _calls(step, PIP_TARGETS) else None), \
                    (name, job_id, step.get("name"))
                installing += given is not None
        assert "secrets.PIP_INDEX_URL" in _header_of(name, serving, environments)
    # test, policy, preview (install, preview), train, drift; the image; each deploy (install, up)
    assert installing == 6 + (serving != "none") + 2 * len(environments)


def _header_of(name: str, serving: str, environments: list[str]) -> str:
    """The header comment of a rendered GitHub file (where its settings are listed)."""
    files = render_pipeline(_spec("github", serving, environments))
    text = next(text for path, text in files.items() if path.name == name)
    return "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))


def test_gitlab_documents_the_package_index_and_leaves_it_to_the_project_variable():
    text = render_pipeline(_spec("gitlab"))[Path(".gitlab-ci.yml")]
    header = text.split("\nworkflow:", 1)[0]
    assert re.search(r"^#   PIP_INDEX_URL +the package index that serves mlscaffold-kit",
                     header, re.MULTILINE)
    doc = yaml.safe_load(text)
    # a variable in the file would only hide the project's from readers; none
    for name, job in doc.items():
        if isinstance(job, dict):
            assert "PIP_INDEX_URL" not in (job.get("variables") or {}), name
    assert "make image-archive" in "\n".join(doc["build-image"]["script"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_static_cloud_keys_or_literal_secrets(provider):
    for text in render_pipeline(_spec(provider)).values():
        for forbidden in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "aws-access-key-id",
                          "aws-secret-access-key", "password:", "BEGIN "):
            assert forbidden not in text
        assert not re.search(r"(?<![\d.])\d{12}(?![\d.])", text)
        assert not re.search(r"arn:aws[\w-]*:", text)
        # no host but the pinned official downloads of the tools table
        for url in DOWNLOADS.values():
            text = text.replace(url, "")
        assert not re.search(r"https?://", text)


# ---------------------------------------------------------------- GitLab CI


def _gitlab_jobs(doc: dict) -> dict[str, dict]:
    reserved = {"workflow", "stages", "variables", "default", "include"}
    return {k: v for k, v in doc.items() if k not in reserved and not k.startswith(".")}


def _resolved(doc: dict, job: dict) -> dict:
    merged: dict = {}
    extends = job.get("extends", [])
    for parent in [extends] if isinstance(extends, str) else extends:
        merged.update(_resolved(doc, doc[parent]))
    merged.update({k: v for k, v in job.items() if k != "extends"})
    return merged


@pytest.mark.parametrize("combo", COMBOS, ids=_combo_id)
def test_gitlab_jobs_have_timeouts_rules_and_oidc(combo):
    serving, environments, feature_store = combo
    doc = _documents("gitlab", serving=serving, environments=environments,
                     feature_store=feature_store)[".gitlab-ci.yml"]
    jobs = {name: _resolved(doc, job) for name, job in _gitlab_jobs(doc).items()}
    stages = deploy_stages(environments)
    for name, job in jobs.items():
        assert "rules" in job, name
        assert job["stage"] in doc["stages"], name
        if "trigger" in job:  # GitLab allows no timeout on trigger jobs
            continue
        assert re.fullmatch(r"\d+m", job["timeout"]), name
        script = "\n".join(job["script"])
        if re.search(r"make (preview|deploy)\b", script):
            assert job["id_tokens"] == {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}}, name
            assert "AWS_WEB_IDENTITY_TOKEN_FILE" in "\n".join(job["before_script"])
    assert ("build-image" in jobs) == (serving != "none")
    for stage in stages:
        job = jobs[f"deploy:{stage.name}"]
        assert job["resource_group"] == stage.name
        assert job["environment"] == {"name": stage.name}
        assert job["interruptible"] is False
        assert "$AWS_ROLE_ARN" in job["rules"][0]["if"]
        assert (job["rules"][0].get("when") == "manual") == stage.production
        needs = {n["job"] for n in job["needs"]}
        assert needs == {"train"} | ({"build-image"} if serving != "none" else set()) \
            | ({f"deploy:{stage.previous}"} if stage.previous else set())
        deploy = [line for line in job["script"] if line.startswith("make deploy ")]
        assert deploy == [f"make deploy STACK={stage.name} STAGE={stage.model_stage} "
                          "EXP=$EXPERIMENT IMAGE_TAG=$CI_COMMIT_SHA"]
        assert not any(line.startswith("make promote") for line in job["script"])
        # the quotas are checked right before pulumi up, after the install
        preflight = job["script"].index(f"make preflight STACK={stage.name}")
        assert job["script"][preflight + 1] == deploy[0]
        assert "install-infra" in " ".join(job["script"][:preflight])
        # SageMaker: the drift baseline follows the deploy, in the same approved job
        baseline = f"make baseline STACK={stage.name}"
        assert (job["script"][-1] == baseline) == (serving == "sagemaker")
        # a first deploy with a cluster takes up to an hour; SageMaker updates bake 15-25 min
        assert job["timeout"] == "90m"
    assert jobs["preview"]["parallel"]["matrix"] == [{"STACK": environments}]
    assert jobs["preview"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event" && $AWS_ROLE_ARN'}]
    for cached in ("test", "policy", "train"):
        assert jobs[cached]["cache"] == {"key": {"files": ["pyproject.toml",
                                                         "infra/requirements.txt"]},
                                         "paths": [".cache/pip"]}


def test_gitlab_schedule_runs_drift_and_retrains_on_failure():
    doc = _documents("gitlab")[".gitlab-ci.yml"]
    jobs = {name: _resolved(doc, job) for name, job in _gitlab_jobs(doc).items()}
    assert jobs["drift"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert jobs["drift"]["script"][-1].startswith("make drift-incoming || ")
    assert jobs["retrain"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"',
                                         "when": "on_failure"}]
    # on_failure of a job with needs looks at those jobs alone: drifted fails on drift only
    assert jobs["retrain"]["needs"] == ["drifted"]
    assert jobs["drifted"]["needs"] == [{"job": "drift", "artifacts": True}]
    assert jobs["retrain"]["trigger"]["branch"] == "$CI_DEFAULT_BRANCH"
    assert doc["stages"].index("retrain") > doc["stages"].index("drift")
    scheduled = [n for n, j in jobs.items()
                 if any("schedule" in r.get("if", "") and "!=" not in r.get("if", "")
                        for r in j["rules"])]
    assert sorted(scheduled) == ["drift", "drifted", "retrain"]
    assert jobs["policy"]["artifacts"]["paths"] == ["mlscaffold.sarif"]
    assert jobs["policy"]["artifacts"]["when"] == "always"
    assert jobs["data-drift"]["allow_failure"] is True


# ---------------------------------------------------------------- commands exist

_PROJECT_COMBOS = [(p, s) for p in PROVIDERS for s in SERVINGS]
@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("ci-projects")
    return {(provider, serving): create_project(
        root / f"{provider}-{serving}", _spec(provider, serving), git=False).path
        for provider, serving in _PROJECT_COMBOS}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MAKE"))}


def _expanded_recipes(root: Path, target: str) -> list[str]:
    """`make -n TARGET`: the commands make would run, variables expanded."""
    completed = subprocess.run(
        ["make", "-n", "--no-print-directory", target, "PY=python3", "MLSCAFFOLD=mlscaffold",
         "PULUMI=pulumi", "EXP=exp-001", "IMAGE_TAG=abc123"],
        cwd=root, capture_output=True, text=True, env=_clean_env(), timeout=60)
    assert completed.returncode == 0, f"make -n {target}: {completed.stderr}"
    return re.sub(r"[ \t]*\\\n\s*", " ", completed.stdout).splitlines()


def _click_errors(argv: list[str]) -> str | None:
    """Parse `mlscaffold ARGV` as the CLI would, without running it; the error if any."""
    command: click.Command = cli
    # contexts as the CLI makes them (click caches each command's help option from them)
    ctx = click.Context(cli, info_name="mlscaffold", **cli.context_settings)
    while isinstance(command, click.Group):
        if argv[:1] in (["--version"], ["-V"], ["--help"], ["-h"]):  # the group's own options
            return None
        if not argv or argv[0] not in command.commands:
            return f"{ctx.command_path} has no command {argv[:1]}"
        name, argv = argv[0], argv[1:]
        command = command.commands[name]
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=name, parent=ctx)
    try:
        command.make_context(name, list(argv), parent=ctx)
    except click.UsageError as error:
        return f"{ctx.command_path} {name}: {error.format_message()}"
    return None


def test_make_train_passes_the_image_tag_to_a_remote_run(tmp_path):
    """IMAGE_TAG given (command line or environment, as CI passes the commit's) reaches `train
    --image-tag`; left at the Makefile's default, the stack's serving.image_tag applies."""
    root = create_project(tmp_path / "tagged", _spec("github", train_on="sagemaker"),
                          git=False).path

    def train_line(*args: str, env: dict[str, str] | None = None) -> str:
        completed = subprocess.run(
            ["make", "-n", "--no-print-directory", "train", "MLSCAFFOLD=mlscaffold", *args],
            cwd=root, capture_output=True, text=True, env={**_clean_env(), **(env or {})},
            timeout=60)
        assert completed.returncode == 0, completed.stderr
        return next(line for line in completed.stdout.splitlines() if " train " in line)

    remote = ("TRAIN_ON=sagemaker", "STACK=dev")
    assert train_line(*remote, "IMAGE_TAG=abc123").endswith(
        "--on sagemaker --stack dev --image-tag abc123")
    assert train_line(*remote, env={"IMAGE_TAG": "def456"}).endswith("--image-tag def456")
    assert train_line(*remote).endswith("--on sagemaker --stack dev")
    assert "--image-tag" not in train_line("IMAGE_TAG=abc123")  # a local run has no image


@pytest.mark.parametrize(("provider", "serving"), _PROJECT_COMBOS)
def test_every_command_the_pipeline_runs_exists_in_the_project(projects, provider, serving,
                                                              tmp_path, monkeypatch):
    root = projects[provider, serving]
    spec = load_spec(root / SPEC_FILENAME)
    files = {path: (root / path).read_text() for path in render_pipeline(spec)}
    commands = pipeline_commands(files)
    called = make_targets_called(commands)
    assert {"install", "lint", "test", "analyze", "train", "check", "cost", "preview",
            "evaluate", "promote", "preflight", "deploy", "drift-incoming", "best"} <= called
    assert ("image-archive" in called) == (serving != "none")
    defined = makefile_targets((root / "Makefile").read_text())
    assert called <= defined, sorted(called - defined)

    # expand every target the pipeline calls; collect the mlscaffold invocations (`mlscaffold`
    # or `python -m mlscaffold`, as the Makefile runs it)
    recipe_lines = commands + [line for target in sorted(called)
                               for line in _expanded_recipes(root, target)]
    mlscaffold_calls = []
    for line in recipe_lines:
        line = re.sub(r"\$\(basename [^)]*\)", "name", line)  # a file's name in a loop
        for part in re.split(r"\$\(|\)|&&|\|\||[;|`]", line):
            try:
                words = shlex.split(part)
            except ValueError:  # quotes cut apart by the split: words are still words
                words = part.split()
            if words[:1] == ["mlscaffold"]:
                mlscaffold_calls.append(words[1:])
            for index in range(len(words) - 2):
                if words[index] == "-m" and words[index + 1] == "mlscaffold":
                    mlscaffold_calls.append(words[index + 2:])
    assert spec.package not in " ".join(recipe_lines).split(), "the project has no CLI of its own"
    assert {c[0] for c in mlscaffold_calls} >= {"check", "cost", "policy", "preflight", "analyze",
                                                "train", "evaluate", "promote", "drift", "list"}
    # parsed where the recipes' own `mkdir -p` made their folders (an output file's folder
    # must exist)
    monkeypatch.chdir(tmp_path)
    for line in recipe_lines:
        for made in re.findall(r"mkdir -p ([\w./-]+)", line):
            (tmp_path / made).mkdir(parents=True, exist_ok=True)
    errors = [error for argv in mlscaffold_calls if (error := _click_errors(argv))]
    assert errors == []


def test_the_command_checks_catch_wrong_commands():
    assert _click_errors(["check", "--format", "sarif", "--output", "x.sarif"]) is None
    assert _click_errors(["policy", "config", "--stack", "dev", "--pack", "cost"]) is None
    assert _click_errors(["preflight", "--stack", "dev"]) is None
    assert "no such option" in _click_errors(["check", "--colour"]).lower()
    assert "has no command" in _click_errors(["policy", "show"])
    assert "has no command" in _click_errors(["deploy"])
    assert _click_errors(["train", "--time", "5"]) is None
    assert _click_errors(["retrain"]) is not None
    assert "missing option" in _click_errors(["drift"]).lower()  # --input is required


@pytest.mark.parametrize(("provider", "serving"), _PROJECT_COMBOS)
def test_pip_targets_are_the_ones_whose_recipes_install(projects, provider, serving):
    """PIP_TARGETS (the steps that get the package index) are exactly the targets the pipeline
    calls whose recipes run pip: pip itself, `pulumi install` or the image build."""
    root = projects[provider, serving]
    files = {path: (root / path).read_text() for path in render_pipeline(load_spec(
        root / SPEC_FILENAME))}
    installing = {target for target in make_targets_called(pipeline_commands(files))
                  if re.search(r"pip install|pulumi --cwd infra(/cluster)? install|docker build",
                               "\n".join(_expanded_recipes(root, target)))}
    assert installing == PIP_TARGETS - (set() if serving != "none" else {"image-archive"})


def test_make_target_helpers_on_small_inputs():
    makefile = textwrap.dedent("""\
        PY := python
        export PATH := x
        .PHONY: a b
        a b: ## two targets
        \techo a
        c: a
        %.o: %.c
        not-a-rule = x:y
        """)
    assert makefile_targets(makefile) == {"a", "b", "c"}
    lines = ["make install lint TIME=3", 'echo "x=$(make -s best)" >> out',
             "make --no-print-directory cost | tee c", "FOO=1 make -s deploy STACK=dev",
             "python -m pkg train", "echo make-believe"]
    assert make_targets_called(lines) == {"install", "lint", "best", "cost", "deploy"}
    files = {Path("x.yml"): "jobs:\n  a:\n    steps:\n      - run: |\n          make a \\\n"
                            "            B=1\n          # comment\n"}
    assert pipeline_commands(files) == ["make a B=1"]


# ---------------------------------------------------------------- the deploy recipe


_STUB = textwrap.dedent("""\
    #!{python}
    import json, os, socket, sys
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(os.path.basename(sys.argv[0]) + " " + " ".join(sys.argv[1:]) + "\\n")
    args = sys.argv[1:]
    state = os.environ["STUB_LOG"] + ".deployed"
    cluster = json.loads(os.environ.get("STUB_CLUSTER") or "null")
    # more outputs (the endpoint) after each `up` of this run: STUB_OUTPUTS[number of ups]
    upped = os.environ["STUB_LOG"] + ".ups"
    ups = len(open(upped).read()) if os.path.exists(upped) else 0
    extras = json.loads(os.environ.get("STUB_OUTPUTS") or "[{{}}]")
    extra = extras[min(ups, len(extras) - 1)]
    if "output" in args:
        if not os.path.exists(state):
            sys.exit(1)
        if "--json" in args:  # every output, as mlscaffold tunnel, model and endpoint read them
            print(json.dumps({{"artifact_bucket": "ci-proj-dev-artifacts", "cluster": cluster,
                              "model_package_group": "ci-proj-dev",
                              "repository_url":
                                  "stub.dkr.ecr.eu-west-1.example/ci-proj-dev-serving",
                              **extra}}))
        elif "cluster" in args:
            sys.exit(0 if cluster else 255)  # no such output without a cluster
        elif "model_key" in args or "endpoint" in args:
            name = "model_key" if "model_key" in args else "endpoint"
            if name not in extra:
                sys.exit(255)  # no such output
            value = extra[name]
            print(value if isinstance(value, str) else json.dumps(value))
        else:
            print("stub.dkr.ecr.eu-west-1.example/ci-proj-dev-serving"
                  if "repository_url" in args else "ci-proj-dev-artifacts")
    if args[:1] == ["up"] or (len(args) > 2 and args[2] == "up"):
        open(state, "w").close()
        with open(upped, "a") as count:
            count.write("u")
    if "describe-images" in args:
        sys.exit(254)
    if "get-login-password" in args:
        print("token")
    if args[:2] == ["ssm", "start-session"]:  # the Session Manager plugin's local listener
        port = json.loads(args[args.index("--parameters") + 1])["localPortNumber"][0]
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", int(port)))
        server.listen()
        while True:
            server.accept()[0].close()
    """)


# mlscaffold's model, endpoint and promote commands run against moto, started in each such
# process by a sitecustomize with the account the test describes (MOTO_WORLD): the artifact
# bucket with its KMS default encryption, the model package group with the versions of
# `packages` (kept from one process to the next in MOTO_STATE: `promote` registers, `model
# served` reads), the serving image's tags and, if given, SageMaker versions, an endpoint (on
# `running`; `running_before` for `endpoint prepare`, which runs before pulumi up) and its
# target
_AWS_HOOK = textwrap.dedent("""\
    import atexit, json, os, sys
    _argv = sys.orig_argv
    _at = _argv.index("mlscaffold") if "mlscaffold" in _argv else -1
    if _at >= 0 and _argv[_at + 1:_at + 2] in (["model"], ["endpoint"], ["promote"]) \
            and _argv[_at + 1:_at + 3] != ["endpoint", "canary"]:  # that one calls no AWS API
        import boto3, moto
        from moto.sagemaker.models import SageMakerModelBackend
        moto.mock_aws().start()
        _update = SageMakerModelBackend.update_model_package
        def _keep_metadata(self, model_package_arn, **fields):  # as AWS does (moto clears it)
            package = self.model_packages.get(
                self.model_package_name_mapping.get(model_package_arn, model_package_arn))
            if fields.get("customer_metadata_properties") is None and package is not None:
                fields["customer_metadata_properties"] = package.customer_metadata_properties
            return _update(self, model_package_arn=model_package_arn, **fields)
        SageMakerModelBackend.update_model_package = _keep_metadata
        world = json.loads(os.environ["MOTO_WORLD"])
        region = world["region"]
        key = boto3.client("kms", region_name=region).create_key()["KeyMetadata"]["Arn"]
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(Bucket=world["bucket"])
        s3.put_bucket_encryption(Bucket=world["bucket"], ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
        sagemaker = boto3.client("sagemaker", region_name=region)
        ecr = boto3.client("ecr", region_name=region)
        ecr.create_repository(repositoryName="ci-proj-dev-serving")
        for tag in world.get("images", []):
            ecr.put_image(repositoryName="ci-proj-dev-serving", imageTag=tag,
                          imageManifest=json.dumps({
                              "schemaVersion": 2, "mediaType": "application/vnd.oci.image."
                              "manifest.v1+json", "layers": [{"digest": "sha256:" + "a" * 64,
                                                              "size": 1}]}))
        group = world.get("group", "ci-proj-dev")
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
        _state = os.environ["MOTO_STATE"]
        for package in (json.load(open(_state)) if os.path.exists(_state)
                        else world.get("packages", [])):
            sagemaker.create_model_package(
                ModelPackageGroupName=group, ModelApprovalStatus=package["status"],
                CustomerMetadataProperties=package["metadata"])
        def _save():
            listed = sagemaker.list_model_packages(ModelPackageGroupName=group)[
                "ModelPackageSummaryList"]
            described = [sagemaker.describe_model_package(ModelPackageName=item["ModelPackageArn"])
                         for item in sorted(listed, key=lambda i: i["ModelPackageVersion"])]
            with open(_state, "w") as state:
                json.dump([{"status": d["ModelApprovalStatus"],
                            "metadata": d.get("CustomerMetadataProperties", {})}
                           for d in described], state)
        atexit.register(_save)
        for version in world.get("versions", []):
            sagemaker.create_model(ModelName=version["model"], ExecutionRoleArn=world["role"],
                                   PrimaryContainer={"Image": version["image"],
                                                     "ModelDataUrl": version["url"]})
            sagemaker.create_endpoint_config(
                EndpointConfigName=version["config"], ProductionVariants=[{
                    "VariantName": "primary", "ModelName": version["model"],
                    "InstanceType": version["type"], "InitialInstanceCount": 1}])
        if world.get("endpoint"):  # what runs before (prepare) and after pulumi up
            before = _argv[_at + 1:_at + 3] == ["endpoint", "prepare"]
            running = world.get("running_before", world["running"]) if before else \
                world["running"]
            sagemaker.create_endpoint(EndpointName=world["endpoint"],
                                      EndpointConfigName=running)
            # only `endpoint` commands read the scaling; moto's application-autoscaling
            # imports its ECS and EC2 models, a second in every other process
            if _argv[_at + 1] == "endpoint":
                scaling = boto3.client("application-autoscaling", region_name=region)
                scaling.register_scalable_target(
                    ServiceNamespace="sagemaker", MinCapacity=1, MaxCapacity=2,
                    ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                    ResourceId=f"endpoint/{world['endpoint']}/variant/primary")
    """)


def _stage_model(root: Path) -> str:
    """The experiment exp-001 (roc_auc 0.8), promoted to staging as v1, and an image archive
    built; the model's key."""
    from mlscaffold.lifecycle.config import Layout
    from mlscaffold.lifecycle.experiments import get_experiment, record_experiment
    from mlscaffold.lifecycle.metrics import get_metric
    from mlscaffold.lifecycle.registry import ARTIFACTS, promote
    from mlscaffold.model import current_model

    layout = Layout(root)
    (layout.experiments / "exp-001").mkdir(parents=True)
    for name in ARTIFACTS:
        (layout.experiments / "exp-001" / name).write_text(json.dumps({"file": name}))
    record_experiment(layout, {"id": "exp-001", "validation": {"roc_auc": 0.8}})
    promote(layout, get_experiment(layout, "exp-001"), "staging",
            get_metric("roc_auc", "binary-classification"), None)
    (root / "dist").mkdir()
    (root / "dist" / "image.tar").write_text("image")
    return current_model(root, "staging").key


def _registered(key: str, status: str = "PendingManualApproval", stage: str = "staging",
                image_tag: str | None = None) -> dict:
    """A version of the stack's model package group, as `promote --stack` registers it."""
    metadata = {"mlscaffold:stage": stage, "mlscaffold:experiment": "exp-001",
                "mlscaffold:model-key": key, "mlscaffold:metric": "roc_auc",
                "metric:validation:roc_auc": "0.8"}
    if image_tag:
        metadata["mlscaffold:image-tag"] = image_tag
    return {"status": status, "metadata": metadata}


def _deploy_env(tmp_path: Path, tools: tuple[str, ...], world: dict | None = None,
                hooks: str = "", **extra: str) -> dict[str, str]:
    """Stand-ins of `tools` on PATH and moto's `world` for mlscaffold's AWS calls: the
    environment `make deploy` runs in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).write_text(_STUB.format(python=sys.executable))
        (bin_dir / tool).chmod(0o755)
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    (hooks_dir / "sitecustomize.py").write_text(_AWS_HOOK + textwrap.dedent(hooks))
    world = {"region": "us-east-1", "bucket": "ci-proj-dev-artifacts",
             "role": "arn:aws:iam::123456789012:role/serving", "images": ["abc123"],
             **(world or {})}
    return {**_clean_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "STUB_LOG": str(tmp_path / "calls.log"), "PULUMI_CONFIG_PASSPHRASE": "",
            "PYTHONPATH": str(hooks_dir), "MOTO_WORLD": json.dumps(world),
            "MOTO_STATE": str(tmp_path / "model-registry.json"), **extra}


_IMAGE = "stub.dkr.ecr.eu-west-1.example/ci-proj-dev-serving"


def _version(n: int, model_key: str, instance_type: str = "ml.t2.medium") -> dict[str, str]:
    suffix = f"{n:07x}"
    return {"model": f"ci-proj-dev-serving-model-{suffix}",
            "config": f"ci-proj-dev-serving-config-{suffix}", "type": instance_type,
            "url": f"s3://ci-proj-dev-artifacts/{model_key}", "image": f"{_IMAGE}:old"}


def _endpoint_outputs(version: dict[str, str], model_key: str) -> dict:
    """The stack's outputs once its endpoint runs `version` (stacks/serving.py `deployment`)."""
    return {"repository_url": _IMAGE, "endpoint_name": "ci-proj-dev", "model_key": model_key,
            "endpoint": {"name": "ci-proj-dev", "config_name": version["config"],
                         "model_name": version["model"], "model_key": model_key,
                         "variant": "primary",
                         "rollback_alarms": ["ci-proj-dev-rollback-5xx",
                                             "ci-proj-dev-rollback-latency-p99"],
                         "config_name_base": "ci-proj-dev-serving-config",
                         "model_name_base": "ci-proj-dev-serving-model"}}


def _make_deploy(root: Path, env: dict[str, str], *args: str, expect: int = 0
                 ) -> subprocess.CompletedProcess[str]:
    """`make deploy` of the dev stack with the staging model, asserting its exit status."""
    completed = subprocess.run(
        ["make", "deploy", "STACK=dev", "STAGE=staging", "IMAGE_TAG=abc123",
         f"MLSCAFFOLD={sys.executable} -m mlscaffold", *args], cwd=root, capture_output=True,
        text=True, env=env, timeout=300)
    assert (completed.returncode == 0) == (expect == 0), completed.stdout + completed.stderr
    return completed


def test_deploy_bootstraps_pushes_uploads_and_updates_with_the_policy_packs(projects, tmp_path):
    """`make deploy` against stand-ins of pulumi, aws and skopeo that record their calls."""
    root = shutil.copytree(projects["github", "sagemaker"], tmp_path / "project")
    key = _stage_model(root)
    deployed = _version(1, key)  # what the endpoint runs once `up` created it
    env = _deploy_env(tmp_path, ("pulumi", "aws", "skopeo", "docker"),
                      {"versions": [deployed], "endpoint": "ci-proj-dev",
                       "running": deployed["config"]},
                      # bootstrap (no serving), then the endpoint
                      STUB_OUTPUTS=json.dumps([{}, {}, _endpoint_outputs(deployed, key)]))
    log = tmp_path / "calls.log"
    completed = _make_deploy(root, env, "EXP=exp-001")
    calls = log.read_text().splitlines()
    pulumi = [c for c in calls if c.startswith("pulumi ")]
    assert pulumi[0] == "pulumi --cwd infra install"
    assert pulumi[1] == "pulumi --cwd infra stack select --create dev"
    ups = [c for c in pulumi if " up " in c]
    assert len(ups) == 2  # the first deployment makes the platform without serving first
    for up in ups:
        assert up.count("--policy-pack ") == 2 and up.count("--policy-pack-config ") == 2
        assert "dist/policy/dev-security.json" in up and "dist/policy/dev-cost.json" in up
    config_sets = [c for c in pulumi if " config set " in c]
    assert "--path platform.serving.platform none" in config_sets[0]
    assert "--path platform.serving.image_tag abc123" in config_sets[1]
    # EXP: registered in the stack's model registry (moto), its model uploaded under its
    # content's key; then what the registry serves for staging is deployed
    assert config_sets[2].endswith(f"--path platform.serving.model_key {key}")
    assert (f"registered exp-001 for staging in stack dev: v1 of ci-proj-dev "
            f"(PendingManualApproval; roc_auc=0.8000; {key}); model uploaded") in completed.stdout
    assert ("model: stack dev serves v1 PendingManualApproval (exp-001, roc_auc=0.8000) for "
            "staging") in completed.stderr
    (registered,) = json.loads((tmp_path / "model-registry.json").read_text())
    assert registered["metadata"]["mlscaffold:image-tag"] == "abc123"
    assert registered["metadata"]["mlscaffold:model-key"] == key
    # a new endpoint: nothing to prepare, the stack config's instance count
    assert "stack dev has no SageMaker endpoint (yet): nothing to prepare" in completed.stderr
    assert len(config_sets) == 3 and "--refresh" not in ups[1]
    order = [c.split()[0] + (" up" if " up " in c else "") for c in calls]
    assert order.index("skopeo") < len(order) - 1 - order[::-1].index("pulumi up")
    last_up = max(i for i, c in enumerate(calls) if c.startswith("pulumi --cwd infra up "))
    assert calls.index(config_sets[1]) < calls.index(config_sets[2]) < last_up
    assert "skopeo copy docker-archive:dist/image.tar " \
           "docker://stub.dkr.ecr.eu-west-1.example/ci-proj-dev-serving:abc123" in calls
    assert not any(c.startswith("aws s3") for c in calls)
    assert not any("--region example" in c for c in calls)
    text = (root / "infra" / "Pulumi.dev.yaml").read_text()
    assert text.count("image_tag") == text.count("model_key") == 0
    # after `up`: the endpoint runs what the stack deployed, nothing old to delete
    assert (f"endpoint ci-proj-dev is InService on endpoint config {deployed['config']}, "
            f"serving {key}") in completed.stdout
    assert (f"kept endpoint configs: {deployed['config']}; models: {deployed['model']}"
            in completed.stdout)
    # no cluster in this stack: nothing in-cluster, no tunnel
    assert not any("infra/cluster" in c or "start-session" in c for c in calls)
    assert "stack dev has no EKS cluster (yet): nothing runs in-cluster" in completed.stdout


@pytest.mark.parametrize("rolled_back", [False, True], ids=["new-model", "type-rolled-back"])
def test_deploy_prepares_verifies_and_cleans_up_the_endpoint(projects, tmp_path, rolled_back):
    """A stack whose endpoint runs an older model: the new one goes through `endpoint
    prepare` (the fleet's size; an instance type change leaves autoscaling and makes pulumi up
    refresh), `pulumi up`, `endpoint verify` and, only when it passed, `endpoint cleanup`."""
    root = shutil.copytree(projects["github", "sagemaker"], tmp_path / "project")
    key = _stage_model(root)
    older = _version(1, f"models/{'1' * 64}/model.tar.gz")
    running = _version(2, f"models/{'2' * 64}/model.tar.gz")
    new = _version(3, key)
    if rolled_back:  # the stack asks for another instance type; the update rolls back
        path = root / "infra" / "Pulumi.dev.yaml"
        path.write_text(path.read_text().replace("instance_type: ml.t2.medium",
                                                 "instance_type: ml.m5.large"))
    world = {"versions": [older, running, new], "endpoint": "ci-proj-dev",
             "running_before": running["config"],
             "running": running["config"] if rolled_back else new["config"],
             "packages": [_registered(key)]}
    env = _deploy_env(tmp_path, ("pulumi", "aws", "skopeo", "docker"), world,
                      STUB_OUTPUTS=json.dumps([_endpoint_outputs(running, running["url"][-77:]),
                                               _endpoint_outputs(new, key)]))
    (tmp_path / "calls.log.deployed").touch()  # deployed before: no bootstrap
    completed = subprocess.run(
        ["make", "deploy", "STACK=dev", "STAGE=staging", "IMAGE_TAG=abc123",
         f"MLSCAFFOLD={sys.executable} -m mlscaffold"], cwd=root, capture_output=True,
        text=True, env=env, timeout=300)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    (up,) = [c for c in calls if c.startswith("pulumi --cwd infra up ")]
    config_sets = [c for c in calls if " config set " in c]
    assert [c.split(" --path ")[1] for c in config_sets] == [
        "platform.serving.image_tag abc123", f"platform.serving.model_key {key}",
        "platform.serving.initial_instance_count 1"]
    assert max(calls.index(c) for c in config_sets) < calls.index(up)
    assert ("--refresh" in up.split()) is rolled_back
    if not rolled_back:
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert (f"endpoint ci-proj-dev is InService on endpoint config {new['config']}, "
                f"serving {key}") in completed.stdout
        # the previous version stays for a rollback, the one before goes
        assert (f"deleted endpoint config {older['config']}\ndeleted model {older['model']}\n"
                f"kept endpoint configs: {running['config']}, {new['config']}; models: "
                f"{running['model']}, {new['model']}\n") in completed.stdout
        return
    assert completed.returncode != 0
    assert ("endpoint: the instance type changes from ml.t2.medium to ml.m5.large: "
            "deregistered endpoint/ci-proj-dev/variant/primary from autoscaling") \
        in completed.stderr
    assert (f"error: endpoint ci-proj-dev rolled back to endpoint config {running['config']} "
            "(rollback alarms: ci-proj-dev-rollback-5xx missing, "
            "ci-proj-dev-rollback-latency-p99 missing); "
            f"the new model {key} (endpoint config {new['config']}) did not deploy") \
        in completed.stderr
    assert "kept endpoint configs" not in completed.stdout  # no cleanup after a rollback


def test_deploy_verifies_nothing_in_a_stack_without_an_endpoint(projects, tmp_path):
    """A SageMaker project whose stack serves nothing (serving.platform: none in its file)."""
    root = shutil.copytree(projects["github", "sagemaker"], tmp_path / "project")
    key = _stage_model(root)
    path = root / "infra" / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("platform: sagemaker", "platform: none"))
    env = _deploy_env(tmp_path, ("pulumi", "aws", "skopeo", "docker"),
                      {"packages": [_registered(key)]},
                      STUB_OUTPUTS=json.dumps([{"repository_url": _IMAGE}]))
    (tmp_path / "calls.log.deployed").touch()
    completed = _make_deploy(root, env)
    assert "stack dev has no SageMaker endpoint (yet): nothing to prepare" in completed.stderr
    assert "stack dev has no SageMaker endpoint: nothing to verify" in completed.stdout
    assert "kept endpoint configs" not in completed.stdout


def test_deploy_serves_the_approved_version_with_its_own_image(projects, tmp_path):
    """Production deploys the newest Approved version (not a newer candidate), with the image
    it was registered with: nothing is pushed (after `make rollback-stack`, the same)."""
    root = shutil.copytree(projects["github", "sagemaker"], tmp_path / "project")
    candidate = _stage_model(root)
    approved = f"models/{'7' * 64}/model.tar.gz"
    env = _deploy_env(tmp_path, ("pulumi", "aws", "skopeo", "docker"), {"packages": [
        _registered(approved, "Approved", "production", image_tag="old123"),
        _registered(candidate)]}, STUB_OUTPUTS=json.dumps([{"repository_url": _IMAGE}]))
    (tmp_path / "calls.log.deployed").touch()
    path = root / "infra" / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("platform: sagemaker", "platform: none"))
    _make_deploy(root, env, "STAGE=production")
    calls = (tmp_path / "calls.log").read_text().splitlines()
    sets = [c.split(" --path ")[1] for c in calls if " config set " in c]
    assert sets == ["platform.serving.image_tag old123",
                    f"platform.serving.model_key {approved}"]
    assert not any(c.startswith(("skopeo", "docker")) for c in calls)


def test_deploy_without_a_registered_version_stops_before_pulumi_up(projects, tmp_path):
    root = shutil.copytree(projects["github", "sagemaker"], tmp_path / "project")
    _stage_model(root)
    env = _deploy_env(tmp_path, ("pulumi", "aws", "skopeo", "docker"),
                      STUB_OUTPUTS=json.dumps([{"repository_url": _IMAGE}]))
    (tmp_path / "calls.log.deployed").touch()
    completed = _make_deploy(root, env, expect=2)
    assert ("error: model package group ci-proj-dev of stack dev has no registered (and not "
            "rejected) staging version to deploy; register one: mlscaffold promote exp-NNN --to "
            "staging --stack dev, or make deploy STACK=dev STAGE=staging EXP=exp-NNN\n"
            ) in completed.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert not any(" up " in c for c in calls)


@pytest.mark.parametrize("deployed", [False, True])
def test_preview_plans_with_the_deployed_model(projects, tmp_path, deployed):
    """`make preview` shows the change of the checkout with the model the stack serves (its
    output model_key), or a stand-in before any model was deployed."""
    root = shutil.copytree(projects["github", "sagemaker"], tmp_path / "project")
    key = f"models/{'5' * 64}/model.tar.gz"
    env = _deploy_env(tmp_path, ("pulumi",), STUB_OUTPUTS=json.dumps([{"model_key": key}]))
    if deployed:
        (tmp_path / "calls.log.deployed").touch()
    completed = subprocess.run(
        ["make", "preview", "STACK=dev", f"MLSCAFFOLD={sys.executable} -m mlscaffold"],
        cwd=root, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    (preview,) = [c for c in calls if c.startswith("pulumi --cwd infra preview ")]
    assert "--config-file " in preview and preview.count("--policy-pack ") == 2
    sets = [c for c in calls if " config set " in c]
    if deployed:
        assert [c.split(" --path ")[1] for c in sets] == [f"platform.serving.model_key {key}"]
        assert calls.index(sets[0]) < calls.index(preview)
    else:
        assert sets == []
        assert "stack dev serves no model yet: previewing serving with a stand-in model" in \
            completed.stdout
    assert "model_key" not in (root / "infra" / "Pulumi.dev.yaml").read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_deploy_applies_the_in_cluster_program_through_the_tunnel(projects, tmp_path):
    """A KServe stack: the base `pulumi up` (AWS APIs only) from outside the VPC, then the
    in-cluster program through `mlscaffold tunnel`, with its own stack and the policy packs."""
    root = shutil.copytree(projects["github", "kserve"], tmp_path / "project")
    key = _stage_model(root)
    port = _free_port()
    cluster = {"name": "ci-proj-dev-eks", "endpoint": "https://ABC.gr7.eu-west-1.eks.example",
               "region": "eu-west-1", "relay_instance_id": "i-0relay", "tunnel_port": port,
               "certificate_authority": "Y2E=", "node_groups": ["system"], "roles": {},
               "kubernetes_version": "1.34"}
    log = tmp_path / "calls.log"
    # the relay is online: the tunnel's Session Manager check is answered by a sitecustomize
    # that stubs boto3's SSM client inside `mlscaffold tunnel`
    env = _deploy_env(tmp_path, ("pulumi", "aws", "skopeo", "docker", "session-manager-plugin"),
                      {"packages": [_registered(key)]}, hooks="""\
        import boto3
        class _Ssm:
            def describe_instance_information(self, **_):
                return {"InstanceInformationList": [{"PingStatus": "Online"}]}
        _client = boto3.client
        boto3.client = lambda name, *a, **k: _Ssm() if name == "ssm" else _client(name, *a, **k)
        """, STUB_CLUSTER=json.dumps(cluster))
    completed = _make_deploy(root, env)
    calls = log.read_text().splitlines()
    in_cluster = [c for c in calls if c.startswith("pulumi --cwd infra/cluster")]
    assert in_cluster[:2] == ["pulumi --cwd infra/cluster install",
                              "pulumi --cwd infra/cluster stack select --create dev"]
    (up,) = [c for c in in_cluster if " up " in c]
    assert up.startswith("pulumi --cwd infra/cluster up --yes --stack dev --non-interactive")
    assert up.count("--policy-pack ") == 2
    # the tunnel was opened to the relay before, and the base stack was up before that
    session = next(i for i, c in enumerate(calls) if "ssm start-session" in c)
    assert f'"localPortNumber": ["{port}"]' in calls[session]
    assert "--target i-0relay" in calls[session]
    last_base_up = max(i for i, c in enumerate(calls) if c.startswith("pulumi --cwd infra up"))
    assert last_base_up < session < calls.index(up)
    assert f"tunnel: https://127.0.0.1:{port} -> ci-proj-dev-eks" in completed.stderr
    # the model version reaches the predictor through the base stack (its `cluster` output);
    # no SageMaker endpoint to prepare or verify
    assert any(c.endswith(f"--path platform.serving.model_key {key}")
               for c in calls[:last_base_up])
    assert "endpoint:" not in completed.stderr and "InService" not in completed.stdout


def test_canary_promote_records_the_decision_then_applies_the_in_cluster_program(projects,
                                                                               tmp_path):
    """`make canary-promote` on a KServe Serverless canary: the decision names the version the
    base stack's `cluster` output hands to the cluster, then the in-cluster program runs (its
    tunnel and `up`: test_deploy_applies_the_in_cluster_program_through_the_tunnel; here the
    stand-in says the cluster is not up, which keeps this test fast)."""
    root = shutil.copytree(projects["github", "kserve"], tmp_path / "project")
    stack_file = root / "infra" / "Pulumi.dev.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["ci-proj:platform"]["serving"].update(
        {"kserve_mode": "serverless", "rollout": {"strategy": "canary"}})
    stack_file.write_text(yaml.safe_dump(document))
    key = f"models/{'ab' * 32}/model.tar.gz"
    cluster = {"name": "ci-proj-dev-eks", "serving": {
        "model_url": f"s3://ci-proj-dev-artifacts/{key}", "image_uri": f"{_IMAGE}:abc123"}}
    env = _deploy_env(tmp_path, ("pulumi",), STUB_OUTPUTS=json.dumps([{"cluster": cluster}]))
    (tmp_path / "calls.log.deployed").touch()  # the base stack is up
    completed = subprocess.run(
        ["make", "canary-promote", "STACK=dev", f"MLSCAFFOLD={sys.executable} -m mlscaffold"],
        cwd=root, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    decision = "pulumi --cwd infra config set --stack dev --path " \
        "platform.serving.rollout.canary_decision."
    assert [c for c in calls if c.startswith(decision)] == [
        f"{decision}outcome promote", f"{decision}model_key {key}",
        f"{decision}image_tag abc123"]
    in_cluster = calls.index("pulumi --cwd infra stack output cluster --stack dev")
    assert calls.index(f"{decision}image_tag abc123") < in_cluster
    assert not any(" up " in c for c in calls)  # the base stack is left alone
    assert "nothing runs in-cluster" in completed.stdout


# ---------------------------------------------------------------- mlscaffold ci


def _project(tmp_path: Path, ci: str = "github", **extra) -> Path:
    spec = validate_spec({"name": "ci-cmd", "ci": ci, **extra})
    return create_project(tmp_path / "ci-cmd", spec, git=False).path


def test_ci_writes_the_pipeline_into_a_project_without_one(tmp_path, run_cli):
    root = _project(tmp_path, ci="none")
    result = run_cli(["ci", str(root), "--provider", "github"])
    assert result.exit_code == 0, result.stderr
    spec = load_spec(root / SPEC_FILENAME)
    for relative, text in render_pipeline(spec, "github").items():
        assert (root / relative).read_text() == text
        assert f"created: {relative.as_posix()}" in result.stdout
    assert "says ci: none" in result.stdout
    again = run_cli(["ci", str(root), "--provider", "github"])
    assert again.exit_code == 0 and "unchanged: .github/workflows/ci.yml" in again.stdout


def test_ci_agrees_with_what_new_wrote(tmp_path, run_cli):
    root = _project(tmp_path, ci="gitlab")
    result = run_cli(["ci", str(root)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "unchanged: .gitlab-ci.yml"
    assert "lacks" not in result.stdout  # the generated Makefile has every target


def test_ci_refuses_a_changed_file_and_shows_the_diff(tmp_path, run_cli):
    root = _project(tmp_path)
    workflow = root / ".github" / "workflows" / "ci.yml"
    edited = workflow.read_text().replace("timeout-minutes: 30", "timeout-minutes: 45", 1)
    workflow.write_text(edited)
    result = run_cli(["ci", str(root)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert ".github/workflows/ci.yml differs" in result.stderr
    assert "--force" in result.stderr
    assert "-    timeout-minutes: 45\n+    timeout-minutes: 30\n" in result.stdout
    assert result.stdout.startswith("--- a/.github/workflows/ci.yml")
    assert workflow.read_text() == edited


def test_ci_force_overwrites(tmp_path, run_cli):
    root = _project(tmp_path)
    workflow = root / ".github" / "workflows" / "drift.yml"
    workflow.write_text("name: mine\n")
    result = run_cli(["ci", str(root), "--force"])
    assert result.exit_code == 0, result.stderr
    assert "overwritten: .github/workflows/drift.yml" in result.stdout
    spec = load_spec(root / SPEC_FILENAME)
    assert workflow.read_text() == render_pipeline(spec)[Path(".github/workflows/drift.yml")]


def test_ci_dry_run_writes_nothing(tmp_path, run_cli):
    root = _project(tmp_path, ci="none")
    (root / ".gitlab-ci.yml").write_text("stages: [x]\n")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = run_cli(["ci", str(root), "--provider", "gitlab", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "-stages: [x]" in result.stdout and "+workflow:" in result.stdout
    assert "differs (--force overwrites): .gitlab-ci.yml" in result.stdout
    assert "nothing written" in result.stdout
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_ci_on_a_foreign_repository_writes_the_spec_and_names_missing_targets(tmp_path,
                                                                                run_cli):
    repo = tmp_path / "fraud-model"
    repo.mkdir()
    (repo / "Makefile").write_text("test:\n\tpytest\n\nlint install:\n\truff check .\n")
    result = run_cli(["ci", str(repo), "--provider", "gitlab", "--task", "regression",
                      "--environments", "dev, prod", "--region", "eu-west-1",
                      "--serving", "none"])
    assert result.exit_code == 0, result.stderr
    spec = load_spec(repo / SPEC_FILENAME)
    assert (spec.name, spec.task, spec.environments, spec.region, spec.serving, spec.ci) == (
        "fraud-model", "regression", ["dev", "prod"], "eu-west-1", "none", "gitlab")
    assert (repo / ".gitlab-ci.yml").read_text() == render_pipeline(spec)[Path(".gitlab-ci.yml")]
    assert "created: mlscaffold.yaml" in result.stdout
    note = next(line for line in result.stdout.splitlines() if "lacks targets" in line)
    missing = set(note.split(": ", 2)[-1].split(", "))
    assert {"deploy", "check", "cost", "train", "drift-incoming"} <= missing
    assert not {"test", "lint", "install"} & missing
    assert "infra/ has no Pulumi program" in result.stdout


def test_ci_never_overwrites_a_spec_and_needs_a_provider_without_one(tmp_path, run_cli):
    root = _project(tmp_path)
    spec_text = (root / SPEC_FILENAME).read_text()
    result = run_cli(["ci", str(root), "--task", "regression"])
    assert result.exit_code == 2
    assert "--task applies only to a repository without one" in result.stderr
    assert (root / SPEC_FILENAME).read_text() == spec_text
    bare = tmp_path / "bare"
    bare.mkdir()
    result = run_cli(["ci", str(bare)])
    assert result.exit_code == 2 and "pass --provider github" in result.stderr
    result = run_cli(["ci", str(bare), "--provider", "github", "--environments", "Prod"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --environments:")
    assert list(bare.iterdir()) == []
    result = run_cli(["ci", str(tmp_path / "missing"), "--provider", "github"])
    assert result.exit_code == 2 and "is not a folder" in result.stderr


# ---------------------------------------------------------------- the PR pipeline, for real


def _shifted(source: Path, target: Path, label: str) -> None:
    """`source` with every numeric feature scaled: data that drifted."""
    with source.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if key != label:
                with contextlib.suppress(ValueError):
                    row[key] = str(float(value) * 10 + 100)
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.slow
def test_the_local_steps_of_the_pipeline_run_in_a_generated_project(tmp_path):
    root = _project(tmp_path, ci="github", serving="sagemaker")
    spec = load_spec(root / SPEC_FILENAME)
    base = ["make", "--no-print-directory", f"PY={sys.executable}",
            f"MLSCAFFOLD={sys.executable} -m mlscaffold"]

    def make(*args: str, expect: int = 0) -> str:
        completed = subprocess.run([*base, *args], cwd=root, capture_output=True, text=True,
                                   env=_clean_env(), timeout=900)
        assert completed.returncode == expect, \
            f"make {' '.join(args)}:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        return completed.stdout

    # pull request: lint, tests, data report, drift of new data, smoke run, policies, cost
    # (`make test` of this very project, binary-classification served by SageMaker with GitHub
    # Actions, runs in tests/test_generated_projects.py)
    assert ("binary-classification", "sagemaker", "github") in COVERING
    make("lint")
    make("analyze")
    assert "no new data" in make("drift-incoming")
    incoming = root / "datasets" / "incoming"
    incoming.mkdir()
    shutil.copy(root / "datasets" / "test.csv", incoming / "same.csv")
    make("drift-incoming")
    _shifted(root / "datasets" / "test.csv", incoming / "shifted.csv", spec.label)
    make("drift-incoming", expect=2)
    report = json.loads((root / "experiments" / "drift" / "shifted.json").read_text())
    assert report["drifted"]  # the features that drifted
    make("train", "TIME=5")
    make("check", "SARIF=mlscaffold.sarif")
    sarif = json.loads((root / "mlscaffold.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"]
    assert "TOTAL" in make("cost")
    # main: the best experiment, the quality gate, promotion to staging
    experiment = make("-s", "best").strip()
    assert re.fullmatch(r"exp-\d+", experiment)
    assert "quality gate passed" in make("evaluate", f"EXP={experiment}")
    make("promote", f"EXP={experiment}", "STAGE=staging")
    registry = json.loads((root / "models" / "registry.json").read_text())
    assert registry["stages"]["staging"]["current"] == 1


def _fake_make(tmp_path: Path, status: int, outcome: str | None) -> dict[str, str]:
    """An environment whose `make` writes `outcome` to experiments/drift/outcome (none: no
    file, as when make fails before the recipe) and exits `status`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    write = ("" if outcome is None else
             f"mkdir -p experiments/drift && echo {outcome} > experiments/drift/outcome\n")
    (bin_dir / "make").write_text(f"#!/bin/sh\n{write}exit {status}\n")
    (bin_dir / "make").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_OUTPUT": str(tmp_path / "github-output")}


DRIFT_OUTCOMES = [(0, "none", 0, False), (2, "drifted", 0, True), (2, "failed", 2, False),
                  (2, None, 2, False)]


@pytest.mark.parametrize(("status", "outcome", "exit_code", "retrains"), DRIFT_OUTCOMES)
def test_github_drift_retrains_on_drift_and_fails_on_errors(tmp_path, status, outcome,
                                                            exit_code, retrains):
    """make exits 2 for a drift and for an error alike: the step reads the outcome file, so a
    failed install or fetch fails the run without starting the retraining."""
    doc = _documents("github")["drift.yml"]
    step = next(s for s in doc["jobs"]["drift"]["steps"] if s.get("id") == "drift")
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=work, capture_output=True,
                            text=True, env=_fake_make(tmp_path, status, outcome))
    assert result.returncode == exit_code, result.stderr
    written = (tmp_path / "github-output").read_text() if retrains else ""
    assert ("drifted=true" in written) is retrains


@pytest.mark.parametrize(("status", "outcome", "exit_code", "retrains"), DRIFT_OUTCOMES)
def test_gitlab_drift_retrains_on_drift_and_fails_on_errors(tmp_path, status, outcome,
                                                            exit_code, retrains):
    doc = _documents("gitlab")[".gitlab-ci.yml"]
    jobs = {name: _resolved(doc, job) for name, job in _gitlab_jobs(doc).items()}
    work = tmp_path / "work"
    work.mkdir()
    env = _fake_make(tmp_path, status, outcome)
    drift = subprocess.run(["bash", "-e", "-c", jobs["drift"]["script"][-1]], cwd=work,
                           capture_output=True, text=True, env=env)
    assert (drift.returncode == 0) is (exit_code == 0), drift.stderr
    if drift.returncode == 0:  # the drifted job runs, and fails (retraining) on drift only
        drifted = subprocess.run(["bash", "-e", "-c", "\n".join(jobs["drifted"]["script"])],
                                 cwd=work, capture_output=True, text=True, env=env)
        assert (drifted.returncode != 0) is retrains


@pytest.mark.parametrize(("codes", "outcome", "fails"), [
    ((0, 0), "none", False), ((1, 0), "drifted", True), ((1, 2), "failed", True),
    ((2, 1), "failed", True)])
def test_make_drift_incoming_tells_drift_from_errors(tmp_path, codes, outcome, fails):
    """`mlscaffold drift` exits 1 on drift and 2 on an error; the target fails on either and
    writes which it was to experiments/drift/outcome."""
    project = create_project(tmp_path / "p", _spec("github"), git=False).path
    incoming = project / "datasets" / "incoming"
    incoming.mkdir(parents=True)
    fake = tmp_path / "fake-mlscaffold"
    cases = "".join(f"  *a{index}.json) exit {code};;\n" for index, code in enumerate(codes))
    fake.write_text(f'#!/bin/sh\nfor arg; do last="$arg"; done\ncase "$last" in\n{cases}'
                    "  *) exit 0;;\nesac\n")
    fake.chmod(0o755)
    for index in range(len(codes)):
        (incoming / f"a{index}.csv").write_text("x\n1\n")
    result = subprocess.run(["make", "-s", "drift-incoming", f"MLSCAFFOLD={fake}"],
                            cwd=project, capture_output=True, text=True)
    assert (result.returncode != 0) is fails, result.stderr
    assert (project / "experiments" / "drift" / "outcome").read_text() == f"{outcome}\n"


def test_docs_name_every_make_target_the_pipelines_run():
    """docs/ci.md lists the targets `mlscaffold ci` asks a repository's Makefile for."""
    from mlscaffold.ci import make_targets_called, pipeline_commands

    text = " ".join((Path(__file__).parents[1] / "docs" / "ci.md").read_text().split())
    listed = set(re.search(r"The targets are: `([^`]+)`", text).group(1).split())
    extra = set(re.findall(r"(?:plus|and) `([a-z-]+)` with", text))
    called = set()
    for provider in PROVIDERS:
        for serving in SERVINGS:
            called |= make_targets_called(pipeline_commands(render_pipeline(_spec(
                provider, serving=serving))))
    assert listed | extra == called
