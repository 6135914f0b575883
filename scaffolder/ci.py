"""CI pipelines for a project, rendered from ``templates/ci`` with Jinja2.

The templates use ``<< >>`` and ``<% %>`` as Jinja delimiters so that the providers' own
``${{ }}`` expressions pass through untouched.
"""

from __future__ import annotations

from pathlib import Path

from .spec import ProjectSpec

__all__ = ["PIPELINE_FILES", "render_pipeline"]

# provider -> (template under templates/ci, path in the project)
PIPELINE_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "github": (("github/ci.yml.j2", ".github/workflows/ci.yml"),),
    "gitlab": (("gitlab/gitlab-ci.yml.j2", ".gitlab-ci.yml"),),
    "none": (),
}


def _environment():  # type: ignore[no-untyped-def]
    from importlib.resources import files

    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("mlscaffold.templates") / "ci")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        variable_start_string="<<",
        variable_end_string=">>",
        block_start_string="<%",
        block_end_string="%>",
        comment_start_string="<#",
        comment_end_string="#>",
        autoescape=False,
    )


def render_pipeline(spec: ProjectSpec, provider: str | None = None) -> dict[Path, str]:
    """The pipeline files of `provider` (default: the spec's) as {relative path: content}."""
    provider = provider or spec.ci
    env = _environment()
    context = {**spec.blueprint_answers(), "spec": spec}
    return {Path(target): env.get_template(source).render(context)
            for source, target in PIPELINE_FILES[provider]}
