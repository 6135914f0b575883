"""The model registry: promoted versions in models/<stage>/vN/, tracked in models/registry.json.

registry.json holds, per stage, every promoted version, the `current` one and the `history` of
current versions (the last entry is current), which is what a rollback walks back through.
Promotion copies into a temporary directory and renames it to vN, then rewrites registry.json
atomically under a lock, so readers never see a half-copied model.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from .config import MODEL_CARD_FILE, STAGES, Layout
from .errors import COMMAND, GateError, NotFoundError, ProjectError
from .files import (
    atomic_write_json,
    file_lock,
    read_json,
    sha256_file,
    temporary_directory,
    utc_now,
)
from .metrics import Metric
from .text import number

ARTIFACTS = ("model.joblib", "model.json", "experiment.json")
# promoted with the model when the experiment has them (experiments of earlier versions do not)
OPTIONAL_ARTIFACTS = (MODEL_CARD_FILE,)
_VERSION_DIR = re.compile(r"^v(\d+)$")


def read_registry(layout: Layout) -> dict:
    """The registry as a dict {"stages": {stage: {"current", "history", "versions"}}}."""
    registry = read_json(layout.registry) or {}
    stages = registry.setdefault("stages", {})
    for stage in STAGES:
        stages.setdefault(stage, {"current": None, "history": [], "versions": []})
    return registry


def current_version(layout: Layout, stage: str) -> dict | None:
    """The registry entry of the stage's current version, or None when nothing is promoted."""
    state = read_registry(layout)["stages"][stage]
    return _version(state, state["current"]) if state["current"] else None


def current_version_dir(layout: Layout, stage: str) -> Path:
    """Directory of the stage's current model."""
    entry = current_version(layout, stage)
    if entry is None:
        # `promote` defaults to staging and `predict` and `serve` to production: name the model
        # a first promotion made, rather than only the command that makes another
        stages = read_registry(layout)["stages"]
        use = "".join(f", or use {name}'s v{stages[name]['current']} with `--model {name}`"
                      for name in STAGES if name != stage and stages[name]["current"])
        raise NotFoundError(
            f"no model promoted to {stage} yet; run `{COMMAND} promote exp-NNN --to {stage}` "
            f"(`{COMMAND} list` shows the experiments){use}"
        )
    return layout.stage(stage) / f"v{entry['version']}"


def check_promotion(
    candidate: dict, production: dict | None, metric: Metric, threshold: float | None
) -> list[str]:
    """Reasons to refuse promoting `candidate` (an experiment index entry) to production."""
    value = candidate["validation"].get(metric.name)
    reasons = []
    if production is not None:
        current = production["metrics"].get(metric.name)
        if metric.is_better(current, value):
            reasons.append(
                f"{candidate['id']} {metric.name}={number(value)} is worse than production "
                f"v{production['version']} ({production['experiment']}) "
                f"{metric.name}={number(current)}"
            )
    if threshold is not None and not metric.passes(value, threshold):
        relation = "below" if metric.higher_is_better else "above"
        reasons.append(
            f"{candidate['id']} {metric.name}={number(value)} "
            f"is {relation} the threshold {threshold:g}"
        )
    return reasons


def promote(
    layout: Layout,
    candidate: dict,
    stage: str,
    metric: Metric,
    threshold: float | None,
    force: bool = False,
) -> tuple[dict, bool]:
    """Copy an experiment's model into models/<stage>/vN and make it current; returns the new
    entry and True.

    Promotion to production is refused (GateError) when the candidate is worse than the current
    production model or misses the threshold, unless `force`; the entry's `forced_past` keeps
    the reasons. When the stage's current version holds the same model (model.joblib's sha256),
    nothing changes: returns that version's entry and False. By content, not by experiment id:
    experiments/ is not committed, so another clone's exp-001 is another model.
    """
    source = layout.experiments / candidate["id"]
    stage_dir = layout.stage(stage)
    digest = sha256_file(source / "model.joblib")
    with _locked_registry(layout) as registry:
        state = registry["stages"][stage]
        current = _version(state, state["current"])
        if current is not None and current.get("sha256") == digest:
            return current, False
        reasons = []
        if stage == "production":
            reasons = check_promotion(candidate, current, metric, threshold)
            if reasons and not force:
                raise GateError(
                    "refusing to promote: " + "; ".join(reasons) + " (use --force to override)"
                )
        version = _next_version(state, stage_dir)
        target = _copy_atomically(source, stage_dir, f"v{version}")
        entry = {
            "version": version,
            "experiment": candidate["id"],
            "metric": metric.name,
            "metrics": candidate["validation"],
            "test_metrics": candidate.get("test"),
            "sha256": digest,
            "promoted_at": utc_now(),
            "forced_past": reasons,
            "path": target.relative_to(layout.root).as_posix(),
        }
        state["versions"].append(entry)
        state["history"].append(version)
        state["current"] = version
    return entry, True


def rollback(layout: Layout, stage: str) -> tuple[dict, dict]:
    """Make the previously current version of `stage` current again; returns (retired, restored)."""
    with _locked_registry(layout) as registry:
        state = registry["stages"][stage]
        if len(state["history"]) < 2:
            raise ProjectError(f"nothing to roll back to: {stage} has no earlier version")
        retired = state["history"].pop()
        state["current"] = state["history"][-1]
        return _version(state, retired), _version(state, state["current"])


def withdraw(layout: Layout, stage: str, version: int) -> None:
    """Undo the promotion of `version` to `stage` that a later step could not complete (its
    registration in a stack's model registry): its folder and its registry entry go, and the
    version current before it is current again. Nothing happens unless it is still current."""
    with _locked_registry(layout) as registry:
        state = registry["stages"][stage]
        if state["current"] != version:
            return
        state["versions"] = [entry for entry in state["versions"]
                             if entry["version"] != version]
        state["history"] = [number for number in state["history"] if number != version]
        state["current"] = state["history"][-1] if state["history"] else None
        shutil.rmtree(layout.stage(stage) / f"v{version}", ignore_errors=True)


def _version(state: dict, version: int | None) -> dict | None:
    return next((entry for entry in state["versions"] if entry["version"] == version), None)


def _next_version(state: dict, stage_dir: Path) -> int:
    on_disk = [int(m.group(1)) for m in map(_VERSION_DIR.match, _listdir(stage_dir)) if m]
    recorded = [entry["version"] for entry in state["versions"]]
    return max(on_disk + recorded, default=0) + 1


def _copy_atomically(source: Path, stage_dir: Path, name: str) -> Path:
    """Copy the model files of `source` into stage_dir/name via a temporary directory."""
    missing = [artifact for artifact in ARTIFACTS if not (source / artifact).is_file()]
    if missing:
        raise NotFoundError(f"{source} lacks {', '.join(missing)}; was the experiment completed?")
    stage_dir.mkdir(parents=True, exist_ok=True)
    temporary = temporary_directory(stage_dir, f".{name}-")
    try:
        present = [a for a in OPTIONAL_ARTIFACTS if (source / a).is_file()]
        for artifact in (*ARTIFACTS, *present):
            # the content only: a new file with the umask's mode, whatever the experiment's
            # files have (the image reads them as another user)
            shutil.copyfile(source / artifact, temporary / artifact)
        target = stage_dir / name
        temporary.rename(target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


@contextlib.contextmanager
def _locked_registry(layout: Layout) -> Iterator[dict]:
    with file_lock(layout.models / ".registry.lock"):
        registry = read_registry(layout)
        yield registry
        atomic_write_json(layout.registry, registry)


def _listdir(directory: Path) -> list[str]:
    return [path.name for path in directory.iterdir()] if directory.is_dir() else []
