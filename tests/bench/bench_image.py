#!/usr/bin/env python3
"""Benchmark: what each use of mlscaffold installs, by size, and whether the serving image serves.

    python tests/bench/bench_image.py [--image] [--keep]

Prints, side by side:

(a) the whole tool: a fresh venv with ``pip install mlscaffold_kit-<version>.whl`` and all its
    dependencies (what a laptop or CI installs);
(b) the lifecycle runtime only: a fresh venv with the wheel installed ``--no-deps`` plus the
    runtime requirements (scaffolder/requirements/runtime.txt), the way a project's Dockerfile
    installs it;

each as ``du`` of the venv with its largest packages, and the ratio (a)/(b). Sizes do not vary
between runs (the same wheels resolve), so each is measured once; install times are printed for
information.

With ``--image`` (root, podman, and a base image tagged ``docker.io/library/python:3.11-slim``;
set CONTAINERS_CONF as the machine needs):

(c) renders a project (SageMaker serving), trains it for a few seconds and promotes the best
    experiment to production, then runs the project's own ``make image``, with ``docker`` on
    PATH standing for ``podman build --network=host`` and PIP_INDEX_URL pointing at a package
    index served on 127.0.0.1: the wheel built here plus the runtime's wheels (``pip download``
    from PyPI), so the build installs mlscaffold-kit as it would from an organisation's index.
    Prints the image's size (``podman image inspect``) beside the base image's and beside the
    same image installing the whole tool (the Dockerfile without ``--no-deps``: the size before
    the runtime split), starts it (``podman run ... serve`` on a 127.0.0.1 port), POSTs a CSV
    row to /invocations and prints the answer, or the container's log when it does not serve.
    Removes what it made (the images too, unless --keep).

Exit status 1 if an install fails or, with --image, the image does not build or serve.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
IMAGE_TAG = "mlscaffold-bench:image"
FULL_IMAGE_TAG = "mlscaffold-bench:whole-tool"
CONTAINER = "mlscaffold-bench-serve"
BASE_IMAGE = "docker.io/library/python:3.11-slim"
MB = 1_000_000  # podman reports decimal megabytes; so does this script


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, **kwargs)


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


def disk_usage(path: Path) -> int:
    """Bytes on disk under `path`, as `du` counts them."""
    kilobytes = _run(["du", "-sk", str(path)], capture_output=True).stdout.split()[0]
    return int(kilobytes) * 1024


def largest_packages(venv: Path, count: int = 6) -> list[tuple[str, int]]:
    """The biggest top-level entries of the venv's site-packages, by disk usage."""
    site = next(venv.glob("lib/python*/site-packages"))
    sizes = {entry.name: disk_usage(entry) for entry in site.iterdir()
             if not entry.name.endswith((".dist-info", ".pth")) and entry.name != "__pycache__"}
    return sorted(sizes.items(), key=lambda item: -item[1])[:count]


def make_venv(path: Path, *installs: list[str]) -> float:
    """A fresh venv at `path` with each pip install of `installs` run in order; seconds taken."""
    started = time.perf_counter()
    _run([sys.executable, "-m", "venv", str(path)])
    for arguments in installs:
        _run([str(path / "bin" / "python"), "-m", "pip", "install", "-q",
              "--disable-pip-version-check", *arguments], capture_output=True)
    return time.perf_counter() - started


def runtime_requirements() -> list[str]:
    from mlscaffold.packaging import runtime_requirements as requirements

    return list(requirements())


def _line(label: str, size: int, seconds: float | None = None, verb: str = "installed") -> None:
    took = f"   ({verb} in {seconds:.0f} s)" if seconds is not None else ""
    print(f"  {label:<52} {size / MB:8.1f} MB{took}")


def _packages(venv: Path) -> None:
    print("      largest: " + ", ".join(f"{name} {size / MB:.0f}"
                                       for name, size in largest_packages(venv)))


# ---------------------------------------------------------------- (c) the serving image


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


def make_project(workdir: Path) -> Path:
    """A SageMaker-serving project with a production model, made with this checkout."""
    from mlscaffold.project import create_project
    from mlscaffold.spec import validate_spec

    spec = validate_spec({"name": "bench-image", "serving": "sagemaker", "ci": "none",
                          "environments": ["dev"]})
    root = create_project(workdir / "bench-image", spec, git=False).path
    cli = [sys.executable, "-m", "mlscaffold"]
    _run([*cli, "train", "--time", "5"], cwd=root, capture_output=True)
    best = json.loads(_run([*cli, "list", "--format", "json"], cwd=root,
                           capture_output=True).stdout)["experiments"][0]["id"]
    _run([*cli, "promote", best, "--to", "production", "--force"], cwd=root,
         capture_output=True)
    return root


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=True)


def image_size(tag: str) -> int:
    return int(_podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def serve_and_ask(root: Path) -> tuple[bool, str]:
    """Run the image, POST the first test row to /invocations; (served, answer or log)."""
    port = _free_port()
    _podman("run", "-d", "--name", CONTAINER, "-p", f"{LOOPBACK}:{port}:8080", IMAGE_TAG,
            "serve")
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            running = _podman("inspect", "--format", "{{.State.Running}}", CONTAINER).stdout
            if running.strip() != "true" or time.monotonic() > deadline:
                logs = _podman("logs", CONTAINER, check=False)
                return False, (logs.stdout + logs.stderr).strip()
            time.sleep(0.5)
        header, row = (root / "datasets" / "test.csv").read_text().splitlines()[:2]
        request = urllib.request.Request(f"{base}/invocations",
                                         data=f"{header}\n{row}\n".encode(),
                                         headers={"Content-Type": "text/csv"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status == 200, response.read().decode().strip()
        except urllib.error.HTTPError as error:
            return False, f"HTTP {error.code}: {error.read().decode().strip()}"
    finally:
        _podman("rm", "-f", "-t", "5", CONTAINER, check=False)


def bench_image(workdir: Path, wheel: Path, keep: bool) -> bool:
    if shutil.which("podman") is None or os.geteuid() != 0:
        print("\n(c) skipped: needs rootful podman")
        return True
    if _podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        print(f"\n(c) skipped: no base image {BASE_IMAGE} (podman import one)")
        return True
    files = workdir / "index-files"
    files.mkdir()
    shutil.copy2(wheel, files)
    # what the build installs besides mlscaffold: the runtime, and the project's build backend
    _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(files),
          *runtime_requirements(), "setuptools>=77"], capture_output=True)
    index = workdir / "index"
    index.mkdir()
    simple_index(files, index)
    root = make_project(workdir)
    shim = workdir / "bin" / "docker"  # `make image` runs docker build: podman does it here
    shim.parent.mkdir()
    shim.write_text('#!/bin/sh\n[ "$1" = build ] && shift && '
                    'exec podman build --pull=never --format docker --network=host "$@"\n'
                    'exec podman "$@"\n')
    shim.chmod(0o755)
    dangling = _dangling_images()
    with served(index) as port:
        env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
               "PIP_INDEX_URL": f"http://{LOOPBACK}:{port}/simple/"}
        started = time.perf_counter()
        built = subprocess.run(["make", "image", f"IMAGE={IMAGE_TAG.split(':')[0]}",
                                f"IMAGE_TAG={IMAGE_TAG.split(':')[1]}"], cwd=root, env=env,
                               capture_output=True, text=True)
        seconds = time.perf_counter() - started
    if built.returncode != 0:
        print(f"\n(c) the image did not build:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
        return False
    try:
        base, size = image_size(BASE_IMAGE), image_size(IMAGE_TAG)
        command = next(line for line in built.stdout.splitlines() if "docker build" in line)
        print(f"\n(c) the serving image: `make image` with PIP_INDEX_URL set ran `{command}`")
        _line("base image (python:3.11-slim stand-in)", base)
        _line("serving image: --no-deps wheel + runtime", size, seconds, "built")
        _line("  of which its own layers", size - base)
        full = whole_tool_image(workdir, root, files, index, wheel)
        if full is not None:
            _line("the same image installing the whole tool (before)", full)
            _line("  of which its own layers", full - base)
            print(f"  ratio whole tool / runtime, own layers: {(full - base) / (size - base):.2f}x")
        served_ok, answer = serve_and_ask(root)
        print(f"  serves: {'yes' if served_ok else 'NO'}")
        shown = answer[:2000] if served_ok else answer[-2000:]  # a failure's last lines
        print("  " + shown.replace("\n", "\n  "))
        return served_ok
    finally:
        if not keep:
            _podman("rmi", "-f", IMAGE_TAG, FULL_IMAGE_TAG, check=False)
            made = _dangling_images() - dangling  # the build stages of this run's images
            if made:
                _podman("rmi", *made, check=False)


def _dangling_images() -> set[str]:
    listed = _podman("images", "--quiet", "--filter", "dangling=true").stdout
    return set(listed.split())


def whole_tool_image(workdir: Path, root: Path, files: Path, index: Path,
                     wheel: Path) -> int | None:
    """Size of the project's image built with mlscaffold's dependencies (no --no-deps)."""
    # every wheel the whole tool needs, into the same index
    _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(files),
          str(wheel)], capture_output=True)
    shutil.rmtree(index)
    index.mkdir()
    simple_index(files, index)
    variant = workdir / "whole-tool"
    shutil.copytree(root, variant, symlinks=True)
    dockerfile = variant / "Dockerfile"
    text = dockerfile.read_text()
    assert "pip install --no-deps " in text
    dockerfile.write_text(text.replace("pip install --no-deps ", "pip install "))
    with served(index) as port:
        built = subprocess.run(
            ["podman", "build", "--pull=never", "--format", "docker", "--network=host",
             "--build-arg", f"PIP_INDEX_URL=http://{LOOPBACK}:{port}/simple/", "-t",
             FULL_IMAGE_TAG, "."], cwd=variant, capture_output=True, text=True)
    if built.returncode != 0:
        print(f"  (the whole-tool image did not build: {built.stderr[-1500:]})")
        return None
    return image_size(FULL_IMAGE_TAG)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", action="store_true", help="also build and run (c) with podman")
    parser.add_argument("--keep", action="store_true", help="keep the image and the work folder")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mlscaffold-bench-image-"))
    try:
        wheel = build_wheel(workdir)
        print(f"mlscaffold installed by use ({wheel.name}; du of each venv, MB = 10^6 bytes)")
        full, runtime = workdir / "full", workdir / "runtime"
        full_seconds = make_venv(full, [str(wheel)])
        runtime_seconds = make_venv(runtime, ["--no-deps", str(wheel)],
                                    list(runtime_requirements()))
        full_size, runtime_size = disk_usage(full), disk_usage(runtime)
        _line("(a) the whole tool: pip install <wheel>", full_size, full_seconds)
        _packages(full)
        _line("(b) the runtime: --no-deps <wheel> + runtime.txt", runtime_size, runtime_seconds)
        _packages(runtime)
        print(f"\n  ratio (a) / (b): {full_size / runtime_size:.2f}x; the runtime saves "
              f"{(full_size - runtime_size) / MB:.0f} MB")
        ok = bench_image(workdir, wheel, options.keep) if options.image else True
        if options.keep:
            print(f"\nwork folder kept: {workdir}")
        return 0 if ok else 1
    except subprocess.CalledProcessError as error:
        print(f"failed: {' '.join(map(str, error.cmd))}\n{error.stdout or ''}{error.stderr or ''}")
        return 1
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
