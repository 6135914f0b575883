"""Security and cost policies (``mlscaffold.policies``).

The rules are defined by domain in :mod:`.security` and :mod:`.cost` (with :mod:`.rule`) and
listed in one table, :mod:`.registry`; the same table builds the Pulumi CrossGuard packs in
``packs/`` and the offline evaluation behind ``mlscaffold check``. :mod:`.config` derives each
rule's settings for an environment from the defaults and an optional organisation policy file.
Nothing here imports mlscaffold's CLI or its error types: the packs run inside Pulumi.
"""

from __future__ import annotations

__all__ = ["PACKS", "pack_directory"]

PACKS = ("security", "cost")


def pack_directory(pack: str):  # type: ignore[no-untyped-def]
    """The installed CrossGuard pack folder of `pack`, for ``pulumi preview --policy-pack``."""
    from importlib.resources import files
    from pathlib import Path

    if pack not in PACKS:
        raise KeyError(pack)
    return Path(str(files("mlscaffold.policies") / "packs" / pack))
