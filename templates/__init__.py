"""Jinja2 templates mlscaffold renders into projects (CI pipelines); package data."""
