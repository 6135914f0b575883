"""What a blueprint renders from: the spec's answers plus what the spec implies.

The deployment chain (which environment is production), each stack's settings and the
README's diagram follow from the spec by mlscaffold's own rules (mlscaffold.stacks.config,
mlscaffold.outline). They are passed to Copier as answers and recorded in the project's
answers file, so a plain `copier update` renders the same files; `mlscaffold update` derives
them again from today's spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from .spec import ProjectSpec

__all__ = ["DERIVED_ANSWERS", "blueprint_data"]

# the recorded answers derived here (copier.yml's "derived by mlscaffold" questions)
DERIVED_ANSWERS = ("deploy_stages", "stack_settings", "architecture")


def blueprint_data(spec: ProjectSpec,
                   kubernetes_versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every answer the bundled blueprint takes for `spec`; `kubernetes_versions` keeps the
    Kubernetes version an environment's stack file already pins (`update`), the others get
    today's default."""
    from .ci import deploy_stages
    from .outline import spec_diagram
    from .stacks.config import stack_settings

    stages = [{**asdict(stage), "model_stage": stage.model_stage}
              for stage in deploy_stages(spec.environments)]
    return {
        **spec.blueprint_answers(),
        "deploy_stages": stages,
        "stack_settings": {name: stack_settings(
            spec, name, kubernetes_version=(kubernetes_versions or {}).get(name))
            for name in spec.environments},
        "architecture": spec_diagram(spec).splitlines(),
    }
