"""Copier blueprints shipped with mlscaffold (package data; see ``ml-project/copier.yml``)."""
