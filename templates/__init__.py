"""Copier templates shared by the bundled blueprints, overlaid on each when it is rendered or
exported (mlscaffold.project.export_blueprint): ``ci``, the CI/CD pipelines. Package data."""
