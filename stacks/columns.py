"""What a data column's name says about it, one rule for the lifecycle and the feature store.

The lifecycle's analysis drops an identifier column from the model's features
(:mod:`mlscaffold.lifecycle.schema`), and the feature store picks one as a feature group's
record identifier (:mod:`.feature_schema`): both read :func:`is_id_like_name`, so a column is
an identifier to both or to neither. No import beyond the standard library.
"""

from __future__ import annotations

import re

__all__ = ["is_id_like_name"]

# `id`, `uuid` or `guid` as the whole name or as its last word after `_`, `-`, a space or a
# dot, in any case: id, ID, customer_id, CUSTOMER_ID, order-uuid, user.guid
_SEPARATED_ID = re.compile(r"(^|[_\-\s.])(id|uuid|guid)$", re.IGNORECASE)
# camelCase: a lower-case letter or digit, then Id, ID, Uuid, UUID, Guid or GUID. Case matters,
# so that words ending in "id" (paid, valid, android, fluid) are not identifiers
_CAMEL_ID = re.compile(r"[a-z0-9](Id|ID|Uuid|UUID|Guid|GUID)$")


def is_id_like_name(name: str) -> bool:
    """Whether a column's name marks it as an identifier (``customer_id``, ``orderId``, ``id``),
    not a word that merely ends in "id" (``paid``, ``valid``)."""
    return bool(_SEPARATED_ID.search(name) or _CAMEL_ID.search(name))
