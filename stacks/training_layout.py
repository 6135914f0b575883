"""Where training runs keep their data, and the names both the stacks and `mlscaffold train
--on sagemaker|eks` use: one definition each. No Pulumi import here (the CLI reads it).

- ``training/data/<sha256>/<split>.csv``: the datasets a run uploads, content-addressed (the
  same file is uploaded once, whatever the run);
- ``training/jobs/<job>/``: what a run writes: SageMaker's ``output/`` (model.tar.gz,
  output.tar.gz) and managed spot training's ``checkpoints/``, or a Kubernetes Job's
  ``output/model.tar.gz``;
- ``training/queries/``: the Athena results of ``--data feature-store`` runs, which the command
  splits and uploads to ``training/data/``.

The SageMaker training role reads the first and writes the second; the Kubernetes Job's Pod
Identity role the same; the launcher policy lets a person or CI upload the first, read the
second and start jobs of this prefix's name only.
"""

from __future__ import annotations

import re

__all__ = ["JOB_NAME_MAX", "TRAINING_DATA_PREFIX", "TRAINING_JOBS_PREFIX", "TRAINING_LOG_GROUP",
           "TRAINING_NAMESPACE", "TRAINING_QUERIES_PREFIX", "TRAINING_SERVICE_ACCOUNT",
           "data_key", "job_name_prefix"]

TRAINING_DATA_PREFIX = "training/data"
TRAINING_JOBS_PREFIX = "training/jobs"
#: the Athena results of `train --data feature-store` (the stack's workgroup writes them here)
TRAINING_QUERIES_PREFIX = "training/queries"
#: the namespace and service account of the Kubernetes training Jobs (Pod Identity)
TRAINING_NAMESPACE = "ml-training"
TRAINING_SERVICE_ACCOUNT = "trainer"
#: SageMaker writes a training job's logs here (AWS docs, "Log Amazon SageMaker AI events with
#: Amazon CloudWatch"), one stream per instance named <job>/algo-<n>-<time>
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# SageMaker training job names: 1 to 63 letters, digits and hyphens (API reference,
# CreateTrainingJob TrainingJobName); a name is <prefix>-<YYYYmmdd-HHMMSS>-<4 hex digits>
JOB_NAME_MAX = 63
_STAMP = len("-20260101-000000-abcd")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def job_name_prefix(prefix: str) -> str:
    """The start of every training job name of the platform `prefix` (``<project>-<env>``),
    cut to leave room for the time stamp: the launcher policy allows jobs of this name only."""
    return prefix[:JOB_NAME_MAX - _STAMP].rstrip("-")


def data_key(sha256: str, split: str) -> str:
    """The key of an uploaded data set with this SHA-256."""
    if not _SHA256.match(sha256):
        raise ValueError(f"{sha256!r} is not a SHA-256 digest")
    return f"{TRAINING_DATA_PREFIX}/{sha256}/{split}.csv"
