"""Where a model version lives in the artifact bucket: one key per content.

A version's key is ``models/<sha256 of its files>/model.tar.gz``: the same files always get
the same key (re-deploying them uploads nothing and changes nothing), different files a new
key (a new SageMaker model and a blue/green update, or a rolling update of the KServe
predictor). No Pulumi import here: the stack config, the stacks and the upload command all
read these facts from this one module.
"""

from __future__ import annotations

import re

__all__ = ["MODELS_PREFIX", "MODEL_ARCHIVE", "MODEL_KEY_PATTERN", "STAND_IN_MODEL_KEY",
           "deployed_version", "model_key"]

# the artifact bucket's folder of published models: the only one the production account may
# read, and the only one serving roles read
MODELS_PREFIX = "models"
MODEL_ARCHIVE = "model.tar.gz"
MODEL_KEY_PATTERN = re.compile(
    rf"^{MODELS_PREFIX}/[0-9a-f]{{64}}/{re.escape(MODEL_ARCHIVE)}$")
# what a preview (mlscaffold's offline runs, `pulumi preview`) plans with when a stack has no
# model key yet: the shape of a real key, pointing at no model
STAND_IN_MODEL_KEY = f"{MODELS_PREFIX}/{'0' * 64}/{MODEL_ARCHIVE}"


def model_key(digest: str) -> str:
    """The key of the model version whose files have the SHA-256 `digest` (64 hex digits)."""
    key = f"{MODELS_PREFIX}/{digest}/{MODEL_ARCHIVE}"
    if not MODEL_KEY_PATTERN.match(key):
        raise ValueError(f"{digest!r} is not a SHA-256 digest (64 lower-case hex digits)")
    return key


def deployed_version(model_url: str, image_uri: str) -> tuple[str, str]:
    """(model key, image tag) of the version a stack deploys, from the URLs of its ``cluster``
    output's ``serving``: ``s3://<bucket>/<key>`` and ``<repository>:<tag>``."""
    key = model_url.split("://", 1)[-1].split("/", 1)[-1]
    return key, image_uri.rsplit(":", 1)[-1]
