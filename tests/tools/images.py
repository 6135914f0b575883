"""Build and run a generated project's serving image with podman, offline from any registry.

Shared by the slow-tier image test (tests/test_image.py) and the image benchmark
(tests/bench/bench_image.py). What it assumes of the machine, and does about it:

- Rootful podman. No container registry needs to be reachable: the Dockerfile's base image
  (``python:<PYTHON_VERSION>-slim``) is made from Debian packages with mmdebstrap, from the
  mirrors of the machine's own apt configuration (read at run time; no host is written here),
  and imported under the name the Dockerfile pulls, so the Dockerfile builds unchanged.
- ``mlscaffold-kit==<version>``, which the Dockerfile installs, is served to the build by a
  PEP 503 index on 127.0.0.1: the wheel of this checkout plus the wheels of what the project's
  package needs (``pip download`` from PyPI), as an organisation's index would serve them
  (docs/publishing.md). The build uses the host's network to reach it.
- ``CONTAINERS_CONF`` when set; otherwise a containers.conf with the two settings sandboxed
  machines of this kind need (crun cannot set the default rlimits there, nor handle their
  cgroups): open-file limits equal to this process's hard limit, and runc when installed.
- Ports are published on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import http.server
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
APT_SOURCES = Path("/etc/apt")
# what the base image holds: the Python the Dockerfile's stages run, venv for /opt/venv, and
# `python` (the HEALTHCHECK and the build call it by that name)
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, **kwargs)


# ---------------------------------------------------------------- podman on this machine


def unavailable() -> str | None:
    """Why images cannot be built and run here, or None when they can (so far as can be told
    without building one)."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc iptables mmdebstrap)"
    if os.geteuid() != 0:
        return "needs rootful podman (run as root)"
    return None


def podman_environment(workdir: Path) -> dict[str, str]:
    """os.environ with CONTAINERS_CONF: the caller's, or one written into `workdir`."""
    env = dict(os.environ)
    if env.get("CONTAINERS_CONF"):
        return env
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = hard if hard != resource.RLIM_INFINITY else 1 << 20
    lines = ["[containers]", f'default_ulimits = ["nofile={nofile}:{nofile}", '
             '"nproc=32768:32768"]']
    if shutil.which("runc"):
        lines += ["[engine]", 'runtime = "runc"']
    conf = workdir / "containers.conf"
    conf.write_text("\n".join(lines) + "\n")
    env["CONTAINERS_CONF"] = str(conf)
    return env


def podman(env: Mapping[str, str], *args: str, check: bool = True,
           **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=True,
                          env=dict(env), **kwargs)


def image_size(env: Mapping[str, str], tag: str) -> int:
    """Bytes, as podman reports them (decimal units in its listings)."""
    return int(podman(env, "image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


# ---------------------------------------------------------------- the base image


@dataclass(frozen=True)
class BaseImage:
    """The image the Dockerfile's FROM names, and the Python version it must hold."""

    name: str
    python: str


def base_image(dockerfile: Path) -> BaseImage:
    """The FROM of the Dockerfile's stages (one, for both), with its ARG defaults substituted,
    as podman names it."""
    text = dockerfile.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    images = {re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
              for image in re.findall(r"^FROM (\S+)", text, re.MULTILINE)}
    assert len(images) == 1, f"one base image expected, found {sorted(images)}"
    image = images.pop()
    if "/" not in image.split(":")[0]:
        image = f"docker.io/library/{image}"
    return BaseImage(image, args["PYTHON_VERSION"])


def apt_mirrors(root: Path = APT_SOURCES) -> tuple[str, list[str]]:
    """(suite, ["deb URI SUITE COMPONENTS", ...]) of the machine's Debian sources: the suite of
    the first entry, and every `deb` entry (deb822 .sources files or one-line .list files)."""
    entries: list[tuple[str, str, str]] = []
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
            if "deb" not in fields.get("Types", "").split() \
                    or fields.get("Enabled", "yes") == "no":
                continue
            for uri in fields.get("URIs", "").split():
                for suite in fields.get("Suites", "").split():
                    entries.append((uri, suite, fields.get("Components", "main")))
    lists = [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]
    for path in filter(Path.is_file, lists):
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], words[2], " ".join(words[3:]) or "main"))
    if not entries:
        raise LookupError(f"no deb entry in {root}'s sources")
    return entries[0][1], [f"deb {uri} {suite} {components}"
                           for uri, suite, components in entries]


def _python_of(env: Mapping[str, str], image: str) -> str:
    return podman(env, "run", "--rm", "--network=none", image, "python3", "-c",
                  "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()


def ensure_base_image(env: Mapping[str, str], wanted: BaseImage) -> str | None:
    """Make `wanted` from Debian packages unless podman has it; None, or why it cannot be had.

    An image made here is kept (it is the build's cache, like a pulled base image). Callers in
    other processes wait for each other on a lock file."""
    lock = Path(tempfile.gettempdir()) / "mlscaffold-base-image.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        if podman(env, "image", "exists", wanted.name, check=False).returncode != 0:
            reason = _make_base_image(env, wanted.name)
            if reason:
                return reason
        python = _python_of(env, wanted.name)
        if python != wanted.python:
            return (f"{wanted.name} here holds Python {python}, the Dockerfile wants "
                    f"{wanted.python} (the machine's Debian suite decides; podman rmi it)")
    return None


def _make_base_image(env: Mapping[str, str], name: str) -> str | None:
    if shutil.which("mmdebstrap") is None:
        return f"no base image {name}, and mmdebstrap (to make one) is not installed"
    try:
        suite, mirrors = apt_mirrors()
    except LookupError as error:
        return f"no base image {name}, and no Debian mirror to make one from: {error}"
    strap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
         suite, "-", *mirrors], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imported = subprocess.run(["podman", "import", "-q", "--change", 'CMD ["python3"]', "-",
                               name], stdin=strap.stdout, capture_output=True, text=True,
                              env=dict(env))
    strap.stdout.close()
    strap_error = strap.stderr.read().decode(errors="replace")
    strap.stderr.close()
    if strap.wait() != 0 or imported.returncode != 0:
        podman(env, "rmi", "-f", name, check=False)
        return (f"no base image {name}, and mmdebstrap {suite} | podman import failed: "
                f"{(strap_error + imported.stderr).strip()[-800:]}")
    return None


# ---------------------------------------------------------------- the package index


def build_wheel(workdir: Path) -> Path:
    """The wheel of the tracked files (a copy, so the repository gets no build/ folder)."""
    source = workdir / "source"
    tracked = _run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True).stdout.split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    wheels = workdir / "wheel"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
          str(source)], capture_output=True)
    return next(wheels.glob("mlscaffold_kit-*.whl"))


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def simple_index(files: Path, root: Path) -> None:
    """A PEP 503 index under root/simple/ of the distributions in `files` (linked, not copied)."""
    projects: dict[str, list[str]] = {}
    for path in sorted(files.iterdir()):
        name = path.name.split("-")[0] if path.suffix == ".whl" else \
            path.name.rsplit("-", 1)[0]
        projects.setdefault(_normalized(name), []).append(path.name)
    (root / "files").symlink_to(files)
    for project, names in projects.items():
        page = root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True)
        links = "".join(f'<a href="../../files/{name}">{name}</a>\n' for name in names)
        page.write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    (root / "simple" / "index.html").write_text(
        "<!DOCTYPE html>\n<html><body>\n" + "".join(
            f'<a href="{project}/">{project}</a>\n' for project in sorted(projects))
        + "</body></html>\n")


def download_wheels(files: Path, requirements: list[str], python: str) -> None:
    """Wheels of `requirements` and their dependencies for Python `python` into `files`."""
    _run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
          "--only-binary=:all:", "--python-version", python, "-d", str(files), *requirements],
         capture_output=True)


def project_requirements(root: Path) -> list[str]:
    """What the Dockerfile's `pip install .` fetches: the project's build backend and its
    package's dependencies (the lifecycle runtime)."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    return [*pyproject["build-system"]["requires"], *pyproject["project"]["dependencies"]]


def package_index(workdir: Path, wheel: Path, root: Path, python: str) -> Path:
    """An index folder (serve it with :func:`served`) of `wheel` and what the project at
    `root` installs besides, for Python `python`."""
    files = workdir / "index-files"
    files.mkdir()
    shutil.copy2(wheel, files)
    download_wheels(files, project_requirements(root), python)
    index = workdir / "index"
    index.mkdir()
    simple_index(files, index)
    return index


@contextlib.contextmanager
def served(directory: Path) -> Iterator[int]:
    """An HTTP server of `directory` on a free 127.0.0.1 port while in the block; its port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        (LOOPBACK, 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- the project and its image


def mlscaffold(*args: str, cwd: Path, umask: int | None = None) -> str:
    """Run this checkout's `mlscaffold ARGS` in `cwd`; its stdout (raises when it fails)."""
    completed = subprocess.run([sys.executable, "-m", "mlscaffold", *args], cwd=cwd,
                               capture_output=True, text=True, umask=-1 if umask is None else umask)
    if completed.returncode != 0:
        raise AssertionError(f"mlscaffold {' '.join(args)} exited {completed.returncode}: "
                             f"{completed.stderr.strip()[-1500:]}")
    return completed.stdout


def make_project(parent: Path, name: str, serving: str, *, umask: int | None = None) -> Path:
    """`mlscaffold new --no-input` with `serving`, trained for a few seconds, its experiment
    promoted to production; all under `umask` when given."""
    root = parent / name
    mlscaffold("new", str(root), "--no-input", "--serving", serving, "--ci", "none",
               "--environments", "dev", "--no-git", cwd=parent, umask=umask)
    mlscaffold("train", "--time", "3", cwd=root, umask=umask)  # the project's one experiment
    mlscaffold("promote", "exp-001", "--to", "production", "--force", cwd=root, umask=umask)
    return root


def build_image(env: Mapping[str, str], root: Path, tag: str, index_port: int,
                workdir: Path) -> subprocess.CompletedProcess[str]:
    """The project's own `make image` (PIP_INDEX_URL set) with `docker` on PATH standing for
    podman: the build on the host's network (to reach the index), no pulls, docker format (it
    keeps HEALTHCHECK), no intermediate images left behind."""
    shim = workdir / "bin" / "docker"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text('#!/bin/sh\n[ "$1" = build ] && shift && exec podman build --pull=never '
                    '--format docker --network=host --layers=false "$@"\nexec podman "$@"\n')
    shim.chmod(0o755)
    image, _, image_tag = tag.partition(":")
    build_env = {**env, "PATH": f"{shim.parent}{os.pathsep}{env['PATH']}",
                 "PIP_INDEX_URL": f"http://{LOOPBACK}:{index_port}/simple/"}
    return subprocess.run(["make", "image", f"IMAGE={image}", f"IMAGE_TAG={image_tag}"],
                          cwd=root, env=build_env, capture_output=True, text=True)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@dataclass
class Container:
    name: str
    url: str
    env: Mapping[str, str]

    def running(self) -> bool:
        state = podman(self.env, "inspect", "--format", "{{.State.Running}}", self.name,
                       check=False)
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        logs = podman(self.env, "logs", self.name, check=False)
        return (logs.stdout + logs.stderr).strip()


@contextlib.contextmanager
def container(env: Mapping[str, str], tag: str, *args: str,
              options: Sequence[str] = ()) -> Iterator[Container]:
    """`podman run -d [OPTIONS] IMAGE ARGS` with port 8080 on a free 127.0.0.1 port; removed
    after."""
    name = f"mlscaffold-serve-{secrets.token_hex(4)}"
    port = _free_port()
    podman(env, "run", "-d", "--name", name, "-p", f"{LOOPBACK}:{port}:8080", *options, tag,
           *args)
    try:
        yield Container(name, f"http://{LOOPBACK}:{port}", env)
    finally:
        podman(env, "rm", "-f", "-t", "5", name, check=False)


def wait_until_serving(server: Container, attempts: int = 240, pause: float = 0.5) -> bool:
    """Poll /ping until it answers 200 (True), the container stops, or `attempts` are spent."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"{server.url}/ping", timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if not server.running():
            return False
        time.sleep(pause)
    return False


def post(url: str, body: bytes, content_type: str,
         accept: str | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of a POST; HTTP errors are answers too."""
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), \
                response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()
