"""Content negotiation: which media type answers a request (Accept with q-values, RFC 9110
§12.5.1), and which media type a request body has."""

from __future__ import annotations

from .errors import RequestError

JSON = "application/json"
CSV = "text/csv"


def media_type(value: str | None) -> str:
    """The bare media type of a Content-Type value, lower case ('' when absent)."""
    return (value or "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == JSON or media.endswith("+json")


def _ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, q) of each element; elements with an unreadable q are ignored."""
    ranges = []
    for element in accept.split(","):
        media, *parameters = element.split(";")
        media = media.strip().lower()
        if not media:
            continue
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            ranges.append((media, q))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """The q of the most specific range matching `offer` (0 when none does)."""
    kind = offer.split("/", 1)[0]
    best, specificity = 0.0, -1
    for media, q in ranges:
        if media == offer or (offer == JSON and media.endswith("+json")):
            rank = 2
        elif media == f"{kind}/*":
            rank = 1
        elif media == "*/*":
            rank = 0
        else:
            continue
        if rank > specificity:
            best, specificity = q, rank
    return best


def choose(accept: str | None, offers: tuple[str, ...]) -> str:
    """The offer the Accept header prefers (ties go to the first offer); 406 when it accepts
    none of them."""
    if accept is None or not accept.strip():
        return offers[0]
    ranges = _ranges(accept)
    scored = [(_quality(offer, ranges), -index, offer) for index, offer in enumerate(offers)]
    q, _, offer = max(scored)
    if q <= 0.0:
        raise RequestError(406, f"cannot answer with {accept[:200]!r}; "
                                f"accept {' or '.join(offers)}")
    return offer
