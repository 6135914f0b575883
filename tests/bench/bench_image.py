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

With ``--image`` (rootful podman; tests/tools/images.py makes the base image from the machine's
Debian mirrors when podman lacks it, and a containers.conf unless CONTAINERS_CONF is set):

(c) renders a project (SageMaker serving), trains it for a few seconds and promotes the best
    experiment to production, then runs the project's own ``make image``, with ``docker`` on
    PATH standing for ``podman build --network=host`` and PIP_INDEX_URL pointing at a package
    index served on 127.0.0.1: the wheel built here plus the runtime's wheels (``pip download``
    from PyPI), so the build installs mlscaffold-kit as it would from an organisation's index.
    Prints the image's size (``podman image inspect``) beside the base image's and beside the
    same image installing the whole tool (the Dockerfile without ``--no-deps``: the size before
    the runtime split), starts it (``podman run ... serve`` on a 127.0.0.1 port), POSTs a CSV
    row to /invocations and prints the answer, or the container's log when it does not serve.
    Removes what it made (the images too, unless --keep; a base image it made stays).

The same steps, with assertions, are the slow-tier test tests/test_image.py.

Exit status 1 if an install fails or, with --image, the image does not build or serve.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run as a script: the repository's root on the path makes the tests package importable
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.tools import images

IMAGE_TAG = "mlscaffold-bench:image"
FULL_IMAGE_TAG = "mlscaffold-bench:whole-tool"
MB = 1_000_000  # podman reports decimal megabytes; so does this script


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, **kwargs)


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


def serve_and_ask(env: dict[str, str], root: Path) -> tuple[bool, str]:
    """Run the image, POST the first test row to /invocations; (served, answer or log)."""
    with images.container(env, IMAGE_TAG, "serve") as server:
        if not images.wait_until_serving(server):
            return False, server.logs()
        header, row = (root / "datasets" / "test.csv").read_text().splitlines()[:2]
        status, _, answer = images.post(f"{server.url}/invocations",
                                        f"{header}\n{row}\n".encode(), "text/csv")
        return status == 200, answer.strip() if status == 200 else f"HTTP {status}: {answer}"


def bench_image(workdir: Path, wheel: Path, keep: bool) -> bool:
    reason = images.unavailable()
    if reason:
        print(f"\n(c) skipped: {reason}")
        return True
    env = images.podman_environment(workdir)
    root = images.make_project(workdir, "bench-image", "sagemaker")
    base = images.base_image(root / "Dockerfile")
    reason = images.ensure_base_image(env, base)
    if reason:
        print(f"\n(c) skipped: {reason}")
        return True
    index = images.package_index(workdir, wheel, root, base.python)
    with images.served(index) as port:
        started = time.perf_counter()
        built = images.build_image(env, root, IMAGE_TAG, port, workdir)
        seconds = time.perf_counter() - started
    if built.returncode != 0:
        print(f"\n(c) the image did not build:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
        return False
    try:
        base_size, size = images.image_size(env, base.name), images.image_size(env, IMAGE_TAG)
        command = next(line for line in built.stdout.splitlines() if "docker build" in line)
        print(f"\n(c) the serving image: `make image` with PIP_INDEX_URL set ran `{command}`")
        _line(f"base image ({base.name} stand-in)", base_size)
        _line("serving image: --no-deps wheel + runtime", size, seconds, "built")
        _line("  of which its own layers", size - base_size)
        full = whole_tool_image(env, workdir, root, index, wheel, base.python)
        if full is not None:
            _line("the same image installing the whole tool (before)", full)
            _line("  of which its own layers", full - base_size)
            print("  ratio whole tool / runtime, own layers: "
                  f"{(full - base_size) / (size - base_size):.2f}x")
        served_ok, answer = serve_and_ask(env, root)
        print(f"  serves: {'yes' if served_ok else 'NO'}")
        shown = answer[:2000] if served_ok else answer[-2000:]  # a failure's last lines
        print("  " + shown.replace("\n", "\n  "))
        return served_ok
    finally:
        if not keep:
            images.podman(env, "rmi", "-f", IMAGE_TAG, FULL_IMAGE_TAG, check=False)


def whole_tool_image(env: dict[str, str], workdir: Path, root: Path, index: Path, wheel: Path,
                     python: str) -> int | None:
    """Size of the project's image built with mlscaffold's dependencies (no --no-deps)."""
    # every wheel the whole tool needs, into the same index
    files = (index / "files").resolve()
    images.download_wheels(files, [str(wheel)], python)
    shutil.rmtree(index)
    index.mkdir()
    images.simple_index(files, index)
    variant = workdir / "whole-tool"
    shutil.copytree(root, variant, symlinks=True)
    dockerfile = variant / "Dockerfile"
    text = dockerfile.read_text()
    assert "pip install --no-deps " in text
    dockerfile.write_text(text.replace("pip install --no-deps ", "pip install "))
    with images.served(index) as port:
        built = images.podman(
            env, "build", "--pull=never", "--format", "docker", "--network=host",
            "--layers=false", "--build-arg", f"PIP_INDEX_URL=http://{images.LOOPBACK}:{port}"
            "/simple/", "-t", FULL_IMAGE_TAG, ".", cwd=variant, check=False)
    if built.returncode != 0:
        print(f"  (the whole-tool image did not build: {built.stderr[-1500:]})")
        return None
    return images.image_size(env, FULL_IMAGE_TAG)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", action="store_true", help="also build and run (c) with podman")
    parser.add_argument("--keep", action="store_true", help="keep the image and the work folder")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mlscaffold-bench-image-"))
    try:
        wheel = images.build_wheel(workdir)
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
