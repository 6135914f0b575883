"""What a generated project installs, and what an installation without the tool's libraries says.

Every requirement a project installs (its pyproject, infra/ requirement files, Dockerfile, CI,
Makefile, and the policy packs pulumi installs) names our distribution pinned to this version, or
a library in ALLOWED with the range of the list that owns it. A runtime-only installation (a
project's image: the wheel without dependencies plus runtime.txt) answers a command that needs
another library with one line naming it and what to install.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
import tomllib
from importlib.util import find_spec
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlscaffold import DISTRIBUTION, __version__
from mlscaffold.ci import TOOLS, pipeline_commands
from mlscaffold.packaging import optional_modules, pinned, runtime_requirements
from mlscaffold.policies import PACKS, pack_directory
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

from .conftest import REPO, blueprint_choices

# Libraries a project installs other than mlscaffold, each on purpose; the range each must have
# comes from the list that owns it (_OWNED_RANGES), never from here. The lifecycle runtime's
# requirements (scaffolder/requirements/runtime.txt, which the project's package depends on) are
# allowed too, each for that reason.
ALLOWED: dict[str, str] = {
    "pulumi": "infra/'s Pulumi SDK, the range of mlscaffold's own (platform.txt): the stacks "
              "are built against it",
    "pulumi-policy": "the policy packs' engine, which pulumi installs beside mlscaffold in each "
                     "pack's venv",
    "pyyaml": "infra/__main__.py reads mlscaffold.yaml (a runtime requirement as well)",
    "pytest": "the project's tests (dev extra), the range mlscaffold's own tests use",
    "ruff": "the project's lint (dev extra), the range mlscaffold's own lint uses",
    "awscli": "GitLab jobs install AWS CLI v1 with pip (scaffolder/ci.py TOOLS); GitHub's "
              "runners ship v2",
    "pip": "`make install` upgrades the installer in the new venv before anything else",
    "setuptools": "the project's build backend (build-system.requires), as mlscaffold's own",
}
RUNTIME = {canonicalize_name(Requirement(line).name): "the lifecycle runtime (runtime.txt)"
           for line in runtime_requirements()}
WHY = {**RUNTIME, **ALLOWED}


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _owned_ranges() -> dict[str, str]:
    """{distribution: specifier} from the lists that own each range."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    lines = [*_lines(REPO / "scaffolder" / "requirements" / "runtime.txt"),
             *_lines(REPO / "scaffolder" / "requirements" / "platform.txt"),
             *pyproject["project"]["optional-dependencies"]["test"],
             *pyproject["build-system"]["requires"], f"awscli{TOOLS['awscli']}", "pip"]
    return {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, lines)}


_OWNED_RANGES = _owned_ranges()

# pip install options that take a value: (kind of value, option names)
_VALUED_OPTIONS = {
    "file": {"-r", "--requirement", "-c", "--constraint"},
    "local": {"-e", "--editable"},
    "other": {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-t", "--target",
              "--prefix", "--root", "--platform", "--python-version"},
}


def _pip_install_arguments(line: str) -> list[tuple[str, str]]:
    """[(kind, value)] of every `pip install` in a shell line: kind is requirement, file,
    local (a folder, the project itself), source (MLSCAFFOLD_SOURCE, where the user has
    mlscaffold-kit) or other (an option's value)."""
    found = []
    for part in re.split(r"&&|\|\||;|\|", line):
        if not re.search(r"pip\s+install", part):
            continue
        words = shlex.split(part, comments=True)
        starts = [i for i in range(len(words) - 1)
                  if words[i].endswith("pip") and words[i + 1] == "install"]
        for start in starts:
            rest = iter(words[start + 2:])
            for word in rest:
                kind = next((k for k, names in _VALUED_OPTIONS.items() if word in names), None)
                if kind is not None:
                    found.append((kind, next(rest)))
                elif word.startswith("-"):
                    assert "=" not in word, f"{line}: write {word} as two words"
                elif word == "$(MLSCAFFOLD_SOURCE_ARG)":  # the user's checkout or wheel
                    found.append(("source", word))
                elif word.startswith((".", "/")):
                    found.append(("local", word))
                else:
                    found.append(("requirement", word))
    return found


def _logical_lines(text: str) -> list[str]:
    return re.sub(r"[ \t]*\\\n\s*", " ", text).splitlines()


def _requirement_file(path: Path, root: Path, seen: dict[str, list[str]]) -> None:
    where = path.relative_to(root).as_posix()
    if where in seen:
        return
    seen[where] = []
    for line in _lines(path):
        if line.startswith(("-r ", "--requirement ")):
            _requirement_file((path.parent / line.split(None, 1)[1]).resolve(), root, seen)
        else:
            assert not line.startswith("-"), f"{where}: unexpected option {line!r}"
            seen[where].append(line)


def installed_requirements(root: Path) -> dict[str, list[str]]:
    """{where: [requirement]} of everything the project at `root` installs with pip."""
    found: dict[str, list[str]] = {}
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    found["pyproject.toml build-system"] = list(pyproject["build-system"]["requires"])
    found["pyproject.toml dependencies"] = list(pyproject["project"]["dependencies"])
    for extra, lines in pyproject["project"].get("optional-dependencies", {}).items():
        found[f"pyproject.toml [{extra}]"] = list(lines)
    for path in sorted(root.rglob("requirements*.txt")):
        _requirement_file(path.resolve(), root.resolve(), found)
    commands = {"Dockerfile": [line for line in _logical_lines(
                    (root / "Dockerfile").read_text()) if line.startswith("RUN ")]
                if (root / "Dockerfile").is_file() else [],
                "Makefile": [line.strip() for line in _logical_lines(
                    (root / "Makefile").read_text()) if line.startswith("\t")]}
    ci_files = [path for path in (*root.glob(".github/workflows/*.yml"), root / ".gitlab-ci.yml")
                if path.is_file()]
    for path in ci_files:
        commands[path.relative_to(root).as_posix()] = pipeline_commands(
            {path.relative_to(root): path.read_text()})
    for where, lines in commands.items():
        for line in lines:
            for kind, value in _pip_install_arguments(line):
                if kind == "requirement":
                    found.setdefault(f"{where} pip install", []).append(value)
                elif kind == "file":
                    assert (root / value).resolve().relative_to(root.resolve()).as_posix() \
                        in found, f"{where}: pip install -r {value}, a file not collected"
                elif kind == "local":
                    assert value.split("[")[0] in (".", "./"), f"{where}: installs {value}"
                elif kind == "source":  # mlscaffold-kit from where the user says, held to the
                    # dev extra's pin by installing it in the same pip run
                    assert where == "Makefile" and "-e .[dev]" in " ".join(shlex.split(line)), \
                        f"{where}: `{line}` installs MLSCAFFOLD_SOURCE without the pin beside it"
                else:
                    pytest.fail(f"{where}: `{line}` sets where pip looks ({value}); the "
                                "environment's PIP_INDEX_URL decides that")
    return found


def pack_requirements() -> dict[str, list[str]]:
    return {f"policy pack {pack}": _lines(pack_directory(pack) / "requirements.txt")
            for pack in PACKS}


def _problems(found: dict[str, list[str]]) -> list[str]:
    problems = []
    for where, lines in found.items():
        for line in lines:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name == "mlscaffold":
                problems.append(f"{where}: {line} is the bare name, another project on PyPI; "
                                f"use {pinned()}")
            elif name == DISTRIBUTION:
                if str(requirement.specifier) != f"=={__version__}" or requirement.marker:
                    problems.append(f"{where}: {line}, not {pinned()}")
            elif name not in WHY:
                problems.append(f"{where}: {line} is not in ALLOWED (say why it is installed)")
            elif str(requirement.specifier) != _OWNED_RANGES.get(name):
                problems.append(f"{where}: {line}, but its list has "
                                f"{name}{_OWNED_RANGES.get(name)}")
    return problems


# every serving x CI provider, the tasks taking turns: the task changes no requirement (the
# task x serving x CI matrix is rendered whole in tests/test_new.py)
REQUIREMENT_MATRIX = [
    (blueprint_choices("task")[index % len(blueprint_choices("task"))], serving, ci)
    for index, (serving, ci) in enumerate(itertools.product(blueprint_choices("serving"),
                                                            blueprint_choices("ci")))]


@pytest.mark.parametrize(("task", "serving", "ci"), REQUIREMENT_MATRIX)
def test_every_requirement_a_project_installs_is_ours_pinned_or_allowed(tmp_path, task,
                                                                        serving, ci):
    spec = validate_spec({"name": "dist-proj", "task": task, "serving": serving, "ci": ci})
    root = create_project(tmp_path / "dist-proj", spec, git=False).path
    found = {**installed_requirements(root), **pack_requirements()}
    assert _problems(found) == []
    # the places that pin mlscaffold do pin it (the check above cannot pass on their absence)
    pinning = {where for where, lines in found.items() if pinned() in lines}
    assert {"infra/requirements.txt", "pyproject.toml [dev]", "policy pack security",
            "policy pack cost"} <= pinning
    assert ("Dockerfile pip install" in pinning) == (serving != "none")
    assert "infra/cluster/requirements.txt" in found  # followed to infra/requirements.txt
    if ci == "gitlab":
        assert found[".gitlab-ci.yml pip install"] == [f"awscli{TOOLS['awscli']}"] * 2
    # no second index beside PIP_INDEX_URL (pip would take the highest version of any)
    settings = [line for path in root.rglob("*")
                if path.is_file() and path.suffix != ".csv" and ".git" not in path.parts
                for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert [line for line in settings if re.search(r"EXTRA_INDEX_URL\s*[:=]", line)] == []


@pytest.mark.parametrize(("record", "source"), [
    ('{"url": "file:///home/me/mlscaffold", "dir_info": {"editable": true}}',
     "/home/me/mlscaffold"),
    ('{"url": "file:///home/me/my%20kits/mlscaffold_kit-1.0-py3-none-any.whl", '
     '"archive_info": {}}', "/home/me/my kits/mlscaffold_kit-1.0-py3-none-any.whl"),
    ('{"url": "https://git.example.com/ml/mlscaffold.git", '
     '"vcs_info": {"vcs": "git", "commit_id": "0123abc"}}',
     "git+https://git.example.com/ml/mlscaffold.git@0123abc"),
    (None, None),  # from a package index: no record
])
def test_installed_from_reads_the_installers_record(monkeypatch, record, source):
    from importlib import metadata
    from types import SimpleNamespace

    from mlscaffold.packaging import installed_from

    def distribution(name: str) -> SimpleNamespace:
        assert name == DISTRIBUTION
        return SimpleNamespace(read_text=lambda file: record if file == "direct_url.json"
                               else None)

    monkeypatch.setattr(metadata, "distribution", distribution)
    assert installed_from() == source


@pytest.mark.parametrize("source", ["/home/me/my kits/mlscaffold_kit-1.0-py3-none-any.whl",
                                    None])
def test_new_says_where_make_install_takes_mlscaffold_from(monkeypatch, run_cli, tmp_path,
                                                           source):
    from mlscaffold import packaging

    monkeypatch.setattr(packaging, "installed_from", lambda: source)
    result = run_cli(["new", str(tmp_path / "p"), "--no-input", "--no-git"])
    assert result.exit_code == 0, result.stderr
    install = next(line for line in result.stdout.splitlines() if "make install" in line)
    if source is None:  # from an index: the project's pin finds it there
        assert install.split("#")[0].strip() == "make install"
    else:
        quoted = shlex.quote(source)
        assert install.split("#")[0].strip() == f"make install MLSCAFFOLD_SOURCE={quoted}"


def test_the_packs_pin_this_version():
    for pack in PACKS:
        assert pinned() in _lines(pack_directory(pack) / "requirements.txt"), pack


def test_the_check_names_each_kind_of_wrong_requirement():
    found = {"a": ["mlscaffold==0.2.0", f"{DISTRIBUTION}>=0.2", "requests>=2", "pulumi>=3",
                   f"{DISTRIBUTION}=={__version__}", "pytest>=8"]}
    assert _problems(found) == [
        f"a: mlscaffold==0.2.0 is the bare name, another project on PyPI; use {pinned()}",
        f"a: {DISTRIBUTION}>=0.2, not {pinned()}",
        "a: requests>=2 is not in ALLOWED (say why it is installed)",
        f"a: pulumi>=3, but its list has pulumi{_OWNED_RANGES['pulumi']}",
    ]
    assert _pip_install_arguments(
        "python -m pip install -q -r infra/requirements.txt 'x==1' && pip install -e '.[dev]'"
    ) == [("file", "infra/requirements.txt"), ("requirement", "x==1"), ("local", ".[dev]")]


def test_allowed_libraries_each_have_an_owning_list():
    assert set(ALLOWED) <= set(_OWNED_RANGES), set(ALLOWED) - set(_OWNED_RANGES)
    assert all(len(why) > 20 for why in WHY.values())


# ---------------------------------------------------------------- the organisation's index


def test_the_image_build_takes_the_package_index_from_the_environment(tmp_path):
    spec = validate_spec({"name": "indexed", "serving": "kserve", "ci": "none"})
    root = create_project(tmp_path / "indexed", spec, git=False).path
    instructions = [line for line in _logical_lines((root / "Dockerfile").read_text())
                    if line.strip() and not line.startswith("#")]
    stages = [i for i, line in enumerate(instructions) if line.startswith("FROM ")]
    assert len(stages) == 2
    build, runtime = instructions[stages[0]:stages[1]], instructions[stages[1]:]
    # declared without a default in the build stage, before its first pip install
    assert "ARG PIP_INDEX_URL" in build
    first_pip = next(i for i, line in enumerate(build) if "pip install" in line)
    assert build.index("ARG PIP_INDEX_URL") < first_pip
    assert [line for line in runtime if "PIP_" in line and "INDEX" in line] == []

    def make_image(**environment: str) -> str:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MAKE", "PIP_INDEX"))} | environment
        return subprocess.run(["make", "-n", "--no-print-directory", "image"], cwd=root,
                              env=env, capture_output=True, text=True, check=True).stdout

    token_url = "https://aws:s3cr3t-token@index.invalid/pypi/ml/simple/"
    assert make_image(PIP_INDEX_URL=token_url).splitlines() == [
        "docker build --build-arg PIP_INDEX_URL -t indexed:latest ."]  # by name, no value
    assert make_image().splitlines() == ["docker build -t indexed:latest ."]
    assert make_image(PIP_INDEX_URL="").splitlines() == ["docker build -t indexed:latest ."]


# ---------------------------------------------------------------- without the tool's libraries

# installs a meta-path finder that refuses the named top-level modules, then runs the CLI
_BLOCKED_CLI = """\
import sys
blocked = set(sys.argv[1].split(","))

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
from mlscaffold.cli import main
sys.argv = ["mlscaffold", *sys.argv[2:]]
main()
"""


def _run_without(modules: str, *args: str, cwd: Path | None = None,
                 stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _BLOCKED_CLI, modules, *args], cwd=cwd,
                          input=stdin, capture_output=True, text=True, timeout=300)


def _lacks(command: str, library: str) -> str:
    return (f"error: mlscaffold {command} needs {library}, which this installation lacks (an "
            f"image installs only the lifecycle runtime); pip install '{pinned()}'\n")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "thin", "serving": "sagemaker", "environments": ["dev"]})
    return create_project(tmp_path_factory.mktemp("thin") / "thin", spec, git=False).path


BASELINE_OUTPUTS = ('{"drift_baseline": {"region": "us-east-1", "bucket": "b", "role_arn": "r", '
                    '"image_uri": "i", "kms_key_arn": "k", "subnet_ids": ["s"], '
                    '"security_group_ids": ["g"], "instance_type": "ml.m5.xlarge", '
                    '"data_prefix": "d", "runs_prefix": "r", "baseline_prefix": "p"}}')


@pytest.mark.parametrize(("blocked", "args", "command", "library"), [
    ("copier", ["new", "{tmp}/made", "--no-input"], "new", "copier"),
    ("pulumi", ["check", "{project}"], "check", "pulumi"),
    ("pulumi", ["preview", "{project}"], "preview", "pulumi"),
    ("boto3,botocore", ["baseline", "--project", "{project}"], "baseline", "boto3"),
    ("boto3,botocore", ["preflight", "{project}", "--stack", "dev"], "preflight", "boto3"),
    ("jinja2", ["ci", "{tmp}/repo", "--provider", "gitlab", "--name", "repo"], "ci", "jinja2"),
    ("pulumi", ["cost", "{project}"], "cost", "pulumi"),
], ids=lambda value: value if isinstance(value, str) and " " not in value else None)
def test_a_command_without_its_library_says_what_to_install(project, tmp_path, blocked, args,
                                                            command, library):
    (tmp_path / "repo").mkdir()
    argv = [arg.format(tmp=tmp_path, project=project) for arg in args]
    completed = _run_without(blocked, *argv, stdin=BASELINE_OUTPUTS)
    assert (completed.returncode, completed.stderr) == (2, _lacks(command, library)), \
        completed.stdout
    assert not (tmp_path / "made").exists()
    assert list((tmp_path / "repo").iterdir()) == []


def test_a_runtime_library_missing_is_not_disguised(project):
    """Only the tool's optional libraries get the one line; a runtime one is a real failure."""
    completed = _run_without("sklearn", "analyze", "--project", str(project))
    assert completed.returncode == 1
    assert "ModuleNotFoundError: No module named 'sklearn'" in completed.stderr
    assert "which this installation lacks" not in completed.stderr


def test_help_and_the_lifecycle_need_none_of_the_optional_libraries(project):
    everything = ",".join(optional_modules())
    assert _run_without(everything, "--help").returncode == 0
    listed = _run_without(everything, "list", "--project", str(project))
    assert (listed.returncode, listed.stderr) == (0, ""), listed.stderr


def _trained(project: Path, run_cli) -> None:
    if not (project / "experiments" / "exp-001" / "model.joblib").is_file():
        trained = run_cli(["train", "--project", str(project), "--time", "3"])
        assert trained.exit_code == 0, trained.stderr


def test_a_promoted_model_is_readable_by_the_images_user(project, run_cli):
    """The image copies models/ as they are and serves as another user: files and folders get
    the umask's modes (0644, 0755 here), not the 0600 and 0700 of mkstemp and mkdtemp, even from
    an experiment whose files are 0600 (as an older mlscaffold wrote them)."""
    _trained(project, run_cli)
    for artifact in (project / "experiments" / "exp-001").iterdir():
        artifact.chmod(0o600 if artifact.is_file() else 0o700)
    old_umask = os.umask(0o022)
    try:
        promoted = run_cli(["promote", "exp-001", "--project", str(project), "--to",
                            "production", "--force"])
    finally:
        os.umask(old_umask)
    assert promoted.exit_code == 0, promoted.stderr
    paths = [project / "models" / "registry.json",
             *(project / "models" / "production").rglob("*")]
    modes = {path.relative_to(project).as_posix(): oct(path.stat().st_mode & 0o777)
             for path in paths if path.name != ".gitkeep"}
    assert "models/production/v1/model.joblib" in modes
    assert modes == {name: "0o755" if (project / name).is_dir() else "0o644" for name in modes}


def test_optional_modules_are_the_platform_libraries_by_import_name():
    modules = optional_modules()
    platform = {canonicalize_name(Requirement(line).name)
                for line in _lines(REPO / "scaffolder" / "requirements" / "platform.txt")}
    assert {canonicalize_name(d) for d in modules.values()} == platform
    for module in modules:  # each is importable under that name in the full installation
        assert find_spec(module) is not None, module
    assert not set(modules) & {"sklearn", "pandas", "numpy", "yaml", "click", "pydantic"}


# ---------------------------------------------------------------- docs/publishing.md

PUBLISHING = REPO / "docs" / "publishing.md"
# the AWS CLI's `codeartifact login`, a customization outside the API model: its options
_LOGIN_OPTIONS = {"--tool", "--domain", "--domain-owner", "--repository", "--duration-seconds",
                  "--namespace", "--endpoint-type", "--dry-run"}
_GLOBAL_OPTIONS = {"--query", "--output", "--region", "--profile"}


def _codeartifact_commands(text: str) -> list[list[str]]:
    """Every `aws codeartifact ...` of the document's code blocks, as words."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    commands = []
    for line in _logical_lines("".join(blocks)):
        for match in re.finditer(r"aws codeartifact ([^)\n]*)", line):
            commands.append(shlex.split(match.group(1)))
    return commands


def test_the_publishing_doc_runs_real_codeartifact_calls():
    """Each command is an operation of the CodeArtifact API (or `login`), with its required
    options and no option it lacks."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("codeartifact")
    commands = _codeartifact_commands(PUBLISHING.read_text())
    verbs = [words[0] for words in commands]
    assert {"login", "get-authorization-token", "get-repository-endpoint", "create-domain",
            "create-repository", "associate-external-connection", "describe-package"} <= set(verbs)
    for verb, *words in commands:
        options = {word for word in words if word.startswith("--")}
        if verb == "login":
            assert options <= _LOGIN_OPTIONS, options - _LOGIN_OPTIONS
            assert words[words.index("--tool") + 1] in ("pip", "twine")
            continue
        operation = model.operation_model("".join(part.title() for part in verb.split("-")))
        members = {"--" + re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower(): name
                   for name in operation.input_shape.members}
        assert options - _GLOBAL_OPTIONS <= set(members), (verb, options - set(members))
        required = {option for option, name in members.items()
                    if name in operation.input_shape.required_members}
        assert required <= options, (verb, required - options)


def test_the_publishing_doc_names_what_the_generated_files_read(tmp_path):
    text = PUBLISHING.read_text()
    spec = validate_spec({"name": "documented", "serving": "sagemaker", "ci": "github"})
    root = create_project(tmp_path / "documented", spec, git=False).path
    workflow = (root / ".github" / "workflows" / "ci.yml").read_text()
    assert "PIP_INDEX_URL: ${{ secrets.PIP_INDEX_URL }}" in workflow
    assert "| GitHub Actions | Settings > Secrets and variables > Actions" in text
    assert re.search(r"^\| GitLab CI \|.*\| `PIP_INDEX_URL` \|$", text, re.MULTILINE)
    assert "ARG PIP_INDEX_URL" in (root / "Dockerfile").read_text()
    assert "docker build --build-arg PIP_INDEX_URL" in text
    # the four places that pin mlscaffold, as the requirement test finds them
    for where in ("`infra/requirements.txt`", "`pyproject.toml`, extra `dev`", "`Dockerfile` (",
                  "the policy packs' `requirements.txt`"):
        assert f"\n| {where}" in text, where
    wheel = f"{DISTRIBUTION.replace('-', '_')}-<version>-py3-none-any.whl"
    assert wheel in text
    assert "(docs/publishing.md)" in (REPO / "README.md").read_text()
