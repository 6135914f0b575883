"""How mlscaffold is distributed, and what each use of it installs.

``pip install mlscaffold-kit`` gives the whole tool. A project's serving and training image needs
only the lifecycle runtime: it installs the distribution without dependencies plus the project's
package, whose dependencies are the runtime requirements below (requirements/runtime.txt, which
pyproject.toml also reads: one list for both). The rest of the tool's libraries
(requirements/platform.txt) are optional there: :func:`optional_modules` names them, so that a
command that needs one says what to install instead of failing with a traceback.

Imports stay light (the CLI reads this module when a command lacks a library).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from . import DISTRIBUTION, __version__

__all__ = ["DISTRIBUTION", "install_hint", "installed_from", "missing_library",
           "optional_modules", "pinned", "runtime_requirements"]

# Modules we import that come with a platform.txt distribution without being named by it
# (import name -> the distribution that brings it).
_BROUGHT_ALONG = {"botocore": "boto3"}
# distributions imported under another name than their own (distribution -> import name)
_IMPORT_NAMES = {"sagemaker-core": "sagemaker", "mlflow-skinny": "mlflow"}


def installed_from() -> str | None:
    """Where this mlscaffold-kit was installed from when not from a package index, as pip takes
    it again: a checkout's folder (editable or not) or a wheel's path, a VCS URL at its commit,
    an archive's URL. None when it came from an index, whose projects' `make install` finds the
    same version there. From the installer's record (direct_url.json, PEP 610)."""
    import json
    from importlib import metadata
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    try:
        record = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return None
    if not record:
        return None
    direct = json.loads(record)
    url = direct.get("url", "")
    if "vcs_info" in direct:
        vcs = direct["vcs_info"]
        return f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    parts = urlsplit(url)
    return url2pathname(parts.path) if parts.scheme == "file" else url or None


def release_of(version: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a release version (a pre-release suffix is ignored); None if
    `version` does not start with one."""
    import re

    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def pinned() -> str:
    """The requirement that pins mlscaffold to this very version."""
    return f"{DISTRIBUTION}=={__version__}"


def _requirements(name: str) -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("requirements", name).read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#"))


@cache
def runtime_requirements() -> tuple[str, ...]:
    """The lifecycle runtime's requirements (PEP 508 strings), in file order."""
    return _requirements("runtime.txt")


@cache
def optional_modules() -> dict[str, str]:
    """{top-level import name: distribution} of the libraries beyond the lifecycle runtime.

    They are requirements/platform.txt's distributions (imported as their names with ``-``
    read as ``_``, or as :data:`_IMPORT_NAMES` says) and the modules that come along with them;
    an image that installs only the runtime lacks every one.
    """
    modules = {}
    for line in _requirements("platform.txt"):
        distribution = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if distribution:
            name = distribution.group(0)
            modules[_IMPORT_NAMES.get(name.lower(), name.lower().replace("-", "_"))] = name
    return {**modules, **_BROUGHT_ALONG}


def missing_library(error: ModuleNotFoundError) -> str | None:
    """The distribution an optional module that failed to import belongs to, else None.

    Only the module itself missing counts (``error.name`` is the top-level name): a submodule
    missing from an installed library is a broken installation, not an optional part.
    """
    return optional_modules().get(error.name or "")


def install_hint() -> str:
    """What to run for the whole tool, at this version."""
    return f"pip install '{pinned()}'"
