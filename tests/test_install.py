"""The built wheel in fresh venvs: the whole tool makes and checks a project from anywhere; the
lifecycle runtime alone (a project's image) runs the lifecycle and names what else to install.

Both venvs take their dependencies from this test run's environment (linked, not downloaded:
installing Pulumi, MLflow and the SageMaker SDK again took five minutes, the runtime's libraries
half a minute, and `make install` already resolves the same requirements from the index); the
wheel itself is installed for real and `pip check` proves its declared requirements are met. The
runtime's venv links only what the runtime requirements need, transitively, as a resolver
installs them: what it must not contain is the point (tests/test_image.py installs the same
requirements from an index, in the image)."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlscaffold.packaging import optional_modules, pinned, runtime_requirements
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

from .conftest import REPO
from .test_distribution import BASELINE_OUTPUTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of the tracked files, built from a copy (the repo gets no build/ or egg-info)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((REPO / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(work / "dist"), str(source)], check=True, capture_output=True)
    return next((work / "dist").glob("mlscaffold_kit-*.whl"))


def _closure(requirements: Iterable[str]) -> set[str]:
    """The distributions of this environment that `requirements` need, transitively (markers
    evaluated here, extras followed): what a resolver installs for them."""
    todo = [(Requirement(line), frozenset()) for line in requirements]
    needed: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement, parent_extras = todo.pop()
        if requirement.marker and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in parent_extras or {""}):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in needed:
            continue
        needed.add(key)
        installed = metadata.distribution(name)
        assert requirement.specifier.contains(installed.version, prereleases=True), \
            f"{requirement} is not met here ({name} {installed.version})"
        todo += [(Requirement(line), key[1]) for line in installed.requires or []]
    return {name for name, _ in needed}


def _venv_linking(path: Path, wheel: Path, distributions: set[str] | None = None) -> Path:
    """A venv whose site-packages links this environment's `distributions` and pip, with
    `wheel` installed into it without dependencies; when None, every distribution but
    mlscaffold's own (an editable install of the checkout), and the wheel's requirements are
    checked."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    here = Path(sysconfig.get_paths()["purelib"])
    if distributions is None:
        entries = {entry.name for entry in here.iterdir()
                   if "mlscaffold" not in entry.name and entry.name != "__pycache__"}
    else:
        entries = set()
        for name in {*distributions, "pip"}:
            installed = metadata.distribution(name)
            entries |= {Path(file).parts[0] for file in installed.files or []
                        if Path(file).parts[0] not in ("..", "__pycache__")}
    for entry in entries:
        (site / entry).symlink_to(here / entry)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True)
    if distributions is None:  # the whole tool: the wheel's requirements are all met
        checked = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True,
                                 text=True)
        assert checked.returncode == 0, checked.stdout
    return path / "bin"


def test_wheel_install_makes_a_project_from_another_directory(tmp_path: Path, wheel: Path):
    bin_dir = _venv_linking(tmp_path / "venv", wheel)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    completed = subprocess.run([str(bin_dir / "mlscaffold"), "new", "churn", "--no-input",
                                "--serving", "kserve", "--ci", "gitlab"],
                               cwd=workdir, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    # installed from a wheel, not an index: the project's `make install` is told to take it
    assert f"make install MLSCAFFOLD_SOURCE={wheel}   #" in completed.stdout
    project = workdir / "churn"
    for name in ("mlscaffold.yaml", "Dockerfile", ".gitlab-ci.yml", "src/churn/preprocessing.py",
                 "datasets/train.csv", "infra/Pulumi.yaml"):
        assert (project / name).is_file(), name
    site = subprocess.run([str(bin_dir / "python"), "-c",
                           "import mlscaffold, os; print(os.path.dirname(mlscaffold.__file__))"],
                          capture_output=True, text=True, check=True, cwd=workdir).stdout.strip()
    assert "site-packages" in site, "the installed package, not the source tree, was used"
    answers = (project / ".copier-answers.yml").read_text()
    assert "_src_path" not in answers and str(workdir) not in answers  # no machine-local path
    # the packs, the price table and the stacks ship in the wheel too
    checked = subprocess.run([str(bin_dir / "mlscaffold"), "check", "churn", "--stack",
                              "dev"], cwd=workdir, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    pack = subprocess.run([str(bin_dir / "mlscaffold"), "policy", "path", "security"],
                          cwd=workdir, capture_output=True, text=True, check=True).stdout.strip()
    assert "site-packages" in pack
    assert {p.name for p in Path(pack).iterdir()} >= {"PulumiPolicy.yaml", "requirements.txt",
                                                      "__main__.py"}
    # an organisation's policy file with rule settings is validated (jsonschema is declared)
    policy = workdir / "org.yaml"
    policy.write_text("version: 1\nrules:\n  nope: {}\n")
    refused = subprocess.run([str(bin_dir / "mlscaffold"), "new", "other", "--no-input",
                              "--org-config", str(policy)], cwd=workdir, capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "unknown rule 'nope'" in refused.stderr, refused.stderr


def test_the_runtime_alone_runs_the_lifecycle_and_names_what_else_to_install(tmp_path: Path,
                                                                            wheel: Path):
    """The Dockerfile's install: the wheel without dependencies, plus the runtime's."""
    bin_dir = _venv_linking(tmp_path / "venv", wheel, _closure(runtime_requirements()))
    installed = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format",
                                "freeze"], capture_output=True, text=True, check=True).stdout
    names = {line.split("==")[0].lower() for line in installed.splitlines()}
    assert not names & {"pulumi", "copier", "boto3", "matplotlib", "jinja2"}, names
    project = create_project(tmp_path / "thin", validate_spec(
        {"name": "thin", "serving": "sagemaker", "environments": ["dev"]}), git=False).path

    def mlscaffold(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir / "mlscaffold"), *args], cwd=project,
                              input=BASELINE_OUTPUTS, capture_output=True, text=True,
                              timeout=600)

    assert mlscaffold("--help").returncode == 0
    trained = mlscaffold("train", "--time", "3")
    assert trained.returncode == 0, trained.stderr
    evaluated = mlscaffold("evaluate")
    assert evaluated.returncode in (0, 1), evaluated.stderr  # 1: the quality gate said no
    assert evaluated.stderr.startswith("warning: plots skipped: matplotlib is not installed")
    assert (project / "experiments" / "exp-001" / "confusion_matrix.csv").is_file()
    # each names the first library it lacks (check loads the policy engine before Pulumi)
    for args, command in ((["new", str(tmp_path / "x"), "--no-input"], "new"),
                          (["check", "."], "check"), (["preview", "."], "preview"),
                          (["baseline", "--outputs", "-"], "baseline")):
        completed = mlscaffold(*args)
        lacking = re.fullmatch(
            rf"error: mlscaffold {command} needs (\S+), which this installation lacks \(an image "
            rf"installs only the lifecycle runtime\); pip install '{re.escape(pinned())}'\n",
            completed.stderr)
        assert completed.returncode == 2 and lacking, completed.stderr
        assert lacking.group(1) in optional_modules().values()
    assert not (tmp_path / "x").exists()


def test_a_projects_make_install_takes_mlscaffold_from_a_wheel_that_no_index_has(tmp_path: Path,
                                                                                 wheel: Path):
    """Before mlscaffold-kit is published: `make install MLSCAFFOLD_SOURCE=WHEEL`, as `new`
    says. pip meets the dev extra's pin (mlscaffold-kit==this version, on no index here) with
    the wheel and takes everything else from the package index (the network: this is the one
    test that installs the whole tool for real, as a user's laptop does); the project's venv
    then trains. The plain `make install` finds no such version, and says so."""
    project = create_project(tmp_path / "fresh", validate_spec(
        {"name": "fresh", "serving": "none", "ci": "none", "environments": ["dev"]}),
        git=False).path

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", *args, f"PYTHON={sys.executable}"], cwd=project,
                              capture_output=True, text=True, timeout=1800)

    plain = make("install")
    assert plain.returncode != 0
    assert f"No matching distribution found for {pinned()}" in plain.stderr, plain.stderr
    installed = make("install", f"MLSCAFFOLD_SOURCE={wheel}")
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    python = project / ".venv" / "bin" / "python"
    source = subprocess.run([str(python), "-c", "from mlscaffold.packaging import "
                             "installed_from; print(installed_from())"], cwd=project,
                            capture_output=True, text=True, check=True).stdout.strip()
    assert source == str(wheel)  # the wheel itself, not a build from an index
    trained = make("train", "TIME=3", "SEED=0")
    assert trained.returncode == 0, trained.stderr
    assert (project / "experiments" / "exp-001" / "model.joblib").is_file()
