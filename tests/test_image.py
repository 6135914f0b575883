"""The generated Dockerfile builds an image that serves and trains.

Every serving mode that has an image renders the same Dockerfile and .dockerignore (checked
here without podman), so one build stands for all: a KServe project made under umask 077, as on
a hardened machine (files 0600, folders 0700). `mlscaffold new --no-input`, `train`, `promote`
the best experiment; the project's own `make image` with podman and an index serving this
checkout's wheel (tests/tools/images.py); then `IMAGE serve` on 127.0.0.1, /ping, a CSV
/invocations round trip (SageMaker's contract) and the README's KServe v2 request, whose
predictions must equal `mlscaffold predict`'s on the host with the same model. The image then
runs as a SageMaker training job (`IMAGE train` on an /opt/ml tree) and serves the model it
wrote. Slow tier; skipped, with the reason, where podman, root or the base image (made from the
machine's Debian mirrors) is missing.
The helpers' parsing (base image name, apt sources) is tested here without podman.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import shutil
from pathlib import Path

import pytest

from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

from .conftest import blueprint_choices
from .tools import images

SERVING_WITH_IMAGE = [mode for mode in blueprint_choices("serving") if mode != "none"]
# the non-root user the Dockerfile serves as, which must be able to read the model
IMAGE_USER = "10001:10001"
ROWS = 5


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory) -> dict[str, str]:
    reason = images.unavailable()
    if reason:
        pytest.skip(reason)
    return images.podman_environment(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, podman_env) -> Path:
    return images.build_wheel(tmp_path_factory.mktemp("wheel"))


def _predictions(rows: str) -> list[str]:
    """The prediction column of a CSV text, as text."""
    return [row["prediction"] for row in csv.DictReader(io.StringIO(rows))]


def test_every_serving_mode_builds_the_same_image(tmp_path):
    """What the build reads besides the project's own files is one for every mode, so the one
    image built below stands for each."""
    built = {}
    for serving in SERVING_WITH_IMAGE:
        root = create_project(tmp_path / serving, validate_spec(
            {"name": "same", "serving": serving, "ci": "none"}), git=False).path
        built[serving] = [(root / name).read_text() for name in ("Dockerfile", ".dockerignore")]
    assert len(SERVING_WITH_IMAGE) >= 2
    assert all(files == built[SERVING_WITH_IMAGE[0]] for files in built.values())


@pytest.mark.slow
def test_the_generated_image_serves_and_trains(tmp_path, podman_env, wheel):
    serving = "kserve"  # made under umask 077: the Dockerfile makes what it copies readable
    root = images.make_project(tmp_path, f"image-{serving}", serving, umask=0o077)
    base = images.base_image(root / "Dockerfile")
    reason = images.ensure_base_image(podman_env, base)
    if reason:
        pytest.skip(reason)
    # what the model answers on the host, for the rows the image will be asked about
    rows = tmp_path / "rows.csv"
    rows.write_text("".join((root / "datasets" / "test.csv").open().readlines()[:ROWS + 1]))
    images.mlscaffold("predict", "--input", str(rows), "--output", str(tmp_path / "host.csv"),
                      cwd=root)
    expected = _predictions((tmp_path / "host.csv").read_text())
    assert len(expected) == ROWS

    tag = f"mlscaffold-test-image:{serving}-{secrets.token_hex(4)}"
    index = images.package_index(tmp_path, wheel, root, base.python)
    with images.served(index) as port:
        built = images.build_image(podman_env, root, tag, port, tmp_path)
    assert built.returncode == 0, f"{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    try:
        assert images.podman(podman_env, "image", "inspect", "--format", "{{.Config.User}}",
                             tag).stdout.strip() == IMAGE_USER
        size = images.image_size(podman_env, tag)
        base_size = images.image_size(podman_env, base.name)
        # shown by pytest -rP: the image, and its own layers above the base image
        print(f"{serving} image: {size / 1e6:.0f} MB, {(size - base_size) / 1e6:.0f} MB above "
              f"the base image")
        with images.container(podman_env, tag, "serve") as server:
            assert images.wait_until_serving(server), server.logs()[-3000:]
            status, content_type, answer = images.post(
                f"{server.url}/invocations", rows.read_bytes(), "text/csv", accept="text/csv")
            assert status == 200, f"{status}: {answer}\n{server.logs()[-3000:]}"
            assert content_type.startswith("text/csv")
            assert answer.split() == expected
            assert _readme_v2_prediction(server.url, root) == expected[0]
            name = server.name
        exists = images.podman(podman_env, "container", "exists", name, check=False)
        assert exists.returncode == 1, "the container is removed"
        _trains_then_serves_its_model(podman_env, tag, root, tmp_path, rows)
    finally:
        images.podman(podman_env, "rmi", "-f", tag, check=False)


def _readme_v2_prediction(url: str, root: Path) -> str:
    """The answer to the project README's KServe v2 request (the first test row), as text."""
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = re.search(r"curl -s localhost:8080(/v2/models/\S+/infer) .*?-d '\n(.*?)'\n",
                        readme, re.DOTALL)
    assert example, "the README lost its KServe v2 request example"
    status, _, answer = images.post(f"{url}{example.group(1)}", example.group(2).encode(),
                                    "application/json")
    assert status == 200, f"{status}: {answer}"
    outputs = {output["name"]: output["data"] for output in json.loads(answer)["outputs"]}
    return str(outputs["predict"][0])


def _trains_then_serves_its_model(podman_env, tag: str, root: Path, tmp_path: Path,
                                  rows: Path) -> None:
    """The image as a SageMaker training job (`IMAGE train` on an /opt/ml tree: channels and
    hyperparameters in, the model out), then the same image serving the model it wrote."""
    job = tmp_path / "opt-ml"
    for folder in ("input/data/train", "input/data/validation", "input/config", "model",
                   "output/data", "checkpoints"):
        (job / folder).mkdir(parents=True)
    for channel in ("train", "validation"):
        shutil.copy(root / "datasets" / f"{channel}.csv",
                    job / "input" / "data" / channel / f"{channel}.csv")
    # as SageMaker passes hyperparameters: strings
    (job / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"time": "3", "seed": "7"}))
    for path in [job, *job.rglob("*")]:  # the image's user (10001) reads and writes the tree
        path.chmod(0o777 if path.is_dir() else 0o644)
    trained = images.podman(podman_env, "run", "--rm", "-v", f"{job}:/opt/ml", tag, "train",
                            check=False)
    failure = job / "output" / "failure"
    assert trained.returncode == 0, (
        f"{failure.read_text() if failure.exists() else ''}\n{trained.stderr[-3000:]}")
    assert not failure.exists()
    written = {path.name for path in (job / "model").iterdir()}
    assert {"model.joblib", "model.json", "experiment.json"} <= written, written
    metrics = json.loads((job / "output" / "data" / "metrics.json").read_text())
    labels = {line.rsplit(",", 1)[-1].strip()
              for line in (root / "datasets" / "train.csv").read_text().splitlines()[1:]}
    with images.container(podman_env, tag, "serve", "--model-dir", "/opt/ml/model",
                          options=["-v", f"{job / 'model'}:/opt/ml/model:ro"]) as server:
        assert images.wait_until_serving(server), server.logs()[-3000:]
        status, _, answer = images.post(f"{server.url}/invocations", rows.read_bytes(),
                                        "text/csv", accept="text/csv")
        assert status == 200, f"{status}: {answer}\n{server.logs()[-3000:]}"
    predictions = answer.split()
    assert len(predictions) == ROWS and set(predictions) <= labels, (predictions, labels)
    assert metrics["metric"] in metrics["validation"]


# ---------------------------------------------------------------- the helpers, without podman


def test_the_base_image_is_the_dockerfiles_from(tmp_path):
    spec = validate_spec({"name": "based", "serving": "kserve", "ci": "none"})
    root = create_project(tmp_path / "based", spec, git=False).path
    base = images.base_image(root / "Dockerfile")
    assert base.name == f"docker.io/library/python:{base.python}-slim"
    assert f"ARG PYTHON_VERSION={base.python}\n" in (root / "Dockerfile").read_text()


def test_the_mirrors_are_the_machines_deb_sources(tmp_path):
    """deb822 stanzas (every URI x suite) and one-line entries; deb-src and disabled ones not."""
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: trixie trixie-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        "\nTypes: deb-src\nURIs: http://mirror.invalid/debian\nSuites: trixie\n"
        "Components: main\n\nTypes: deb\nURIs: http://off.invalid/debian\nSuites: trixie\n"
        "Components: main\nEnabled: no\n")
    (tmp_path / "sources.list").write_text(
        "# a comment\ndeb [signed-by=/k.gpg] http://security.invalid/debian-security "
        "trixie-security main\ndeb-src http://mirror.invalid/debian trixie main\n")
    assert images.apt_mirrors(tmp_path) == ("trixie", [
        "deb http://mirror.invalid/debian trixie main contrib",
        "deb http://mirror.invalid/debian trixie-updates main contrib",
        "deb http://security.invalid/debian-security trixie-security main"])
    with pytest.raises(LookupError):
        images.apt_mirrors(tmp_path / "nothing")
