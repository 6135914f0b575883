"""The experiment table: experiments ranked by a metric, with their promoted versions."""

from __future__ import annotations

from collections.abc import Callable

from .config import STAGES, ProjectConfig
from .errors import COMMAND
from .experiments import ranked, read_index
from .files import to_json
from .metrics import get_metric
from .registry import read_registry
from .text import number, quiet, table


def list_experiments(
    config: ProjectConfig,
    metric_name: str | None = None,
    as_json: bool = False,
    echo: Callable[[str], None] = quiet,
    warn: Callable[[str], None] = quiet,
) -> list[dict]:
    """Experiments best first by validation `metric` (default: the project's); best marked '*'.

    Each row names the experiment's MLflow run, read from the tracking store (None when it has
    none); a store that cannot be read leaves the column empty, with a warning.
    """
    metric = get_metric(metric_name or config.metric, config.task)
    experiments = ranked(read_index(config.layout), metric)
    stages = _stages_by_experiment(config)
    runs = _runs(config, warn) if experiments else {}
    rows = [
        {
            "id": item["id"],
            "best": index == 0 and item["validation"].get(metric.name) is not None,
            "created_at": item["created_at"],
            "family": item["family"],
            "metric": metric.name,
            "validation": item["validation"].get(metric.name),
            "test": (item.get("test") or {}).get(metric.name),
            "stages": stages.get(item["id"], []),
            "mlflow_run_id": (runs or {}).get(item["id"]),
            "interrupted": bool(item.get("interrupted")),  # Ctrl-C: the best found so far
        }
        for index, item in enumerate(experiments)
    ]
    if as_json:
        echo(
            to_json(
                {"metric": metric.name, "direction": metric.direction, "experiments": rows}
            ).rstrip()
        )
    elif not rows:
        echo(f"no experiments yet; run `{COMMAND} train`")
    else:
        echo(f"experiments by validation {metric.name} ({metric.direction}); * = best")
        echo(
            table(
                [
                    "",
                    "id",
                    "created (UTC)",
                    "family",
                    f"val {metric.name}",
                    f"test {metric.name}",
                    "MLflow run",
                    "promoted",
                ],
                [
                    [
                        "*" if row["best"] else "",
                        row["id"],
                        row["created_at"],
                        row["family"] + (" (interrupted)" if row["interrupted"] else ""),
                        number(row["validation"]),
                        number(row["test"]),
                        row["mlflow_run_id"] or ("?" if runs is None else "-"),
                        ", ".join(row["stages"]),
                    ]
                    for row in rows
                ],
            )
        )
    return rows


def _stages_by_experiment(config: ProjectConfig) -> dict[str, list[str]]:
    """experiment id -> e.g. ['production v2 (current)', 'staging v1']."""
    found: dict[str, list[str]] = {}
    registry = read_registry(config.layout)
    for stage in STAGES:
        state = registry["stages"][stage]
        for entry in state["versions"]:
            current = " (current)" if entry["version"] == state["current"] else ""
            found.setdefault(entry["experiment"], []).append(
                f"{stage} v{entry['version']}{current}"
            )
    return found


def _runs(config: ProjectConfig, warn: Callable[[str], None]) -> dict[str, str] | None:
    """{exp-NNN: MLflow run id}; None when the store cannot be read here (warned)."""
    from .errors import TrackingError
    from .tracking import runs_by_experiment

    try:
        return runs_by_experiment(config, warn=warn)
    except TrackingError as error:
        warn(str(error))
        return None
