"""The nearest known name to a mistyped one, for the one-line messages that refuse it.

``unknown metric 'acuracy' (did you mean 'accuracy'?); …``: the closest match by difflib's
ratio, offered only when it is close and the only one that close (a wrong word gets the list
of valid ones alone). The spec, the stack config, the policy config and the lifecycle all use
it; pydantic is imported only to walk a model's fields.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, get_args

# difflib's ratio a known name needs to be offered: "acuracy"/"accuracy" 0.93,
# "platfrom"/"platform" 0.88, "lable"/"label" 0.8; not "plat"/"platform" 0.67, "f2"/"f1" 0.5
CLOSE_ENOUGH = 0.75


def nearest(value: object, choices: Iterable[str]) -> str | None:
    """The known name closest to `value` (letter case aside), or None when none is close
    enough or two are equally close (``eu-west-99``: eu-west-1, -2 and -3 alike; a guess
    between them would mislead)."""
    typed = str(value).lower()
    ranked = sorted(((difflib.SequenceMatcher(None, typed, str(choice).lower()).ratio(),
                      str(choice)) for choice in choices), key=lambda pair: -pair[0])
    if not ranked or ranked[0][0] < CLOSE_ENOUGH:
        return None
    if len(ranked) > 1 and ranked[1][0] == ranked[0][0]:
        return None
    return ranked[0][1]


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or "" when none is close."""
    return offer(nearest(value, choices))


def offer(match: str | None) -> str:
    """`` (did you mean 'x'?)`` for `match`, "" for None: the one wording of a suggestion."""
    return f" (did you mean {match!r}?)" if match is not None else ""


# pydantic's error types for a value of the wrong kind -> what the value is not, in plain words
_NOT_A = {"float_parsing": "a number", "float_type": "a number", "int_parsing": "a whole number",
          "int_type": "a whole number", "int_from_float": "a whole number",
          "bool_parsing": "true or false", "bool_type": "true or false",
          "string_type": "text", "list_type": "a list", "dict_type": "a mapping"}


def value_message(error: Any) -> str:
    """pydantic's `error` (one of ``errors()``) in plain words naming the value given: ``'abc'
    is not a number``, ``2 is not valid; input should be 1``; a validator's own message as it
    is (it names the value)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "value_error":
        return message
    given = error.get("input")
    if error["type"] in _NOT_A:
        return f"{given!r} is not {_NOT_A[error['type']]}"
    return f"{given!r} is not valid; " + message[0].lower() + message[1:]


def model_at(root: Any, location: Iterable[object]) -> Any | None:
    """The pydantic model holding the key at `location` (pydantic's error ``loc``) below
    `root`: list indexes are stepped over, a field's model is found inside ``X | None`` or
    ``list[X]``. None when the path leaves the models (a mapping's own keys)."""
    from pydantic import BaseModel

    def model_in(annotation: Any) -> Any | None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        return next((found for arg in get_args(annotation)
                     if (found := model_in(arg)) is not None), None)

    model = root
    for part in location:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part)) if model is not None else None
        if info is None:
            return None
        model = model_in(info.annotation)
    return model


def unknown_key_message(root: Any, location: tuple[object, ...], shown: str | None = None,
                        *, hidden: Iterable[str] = ()) -> str:
    """``unknown key 'x' (did you mean 'y'?); valid keys are: …`` for pydantic's
    ``extra_forbidden`` error at `location` below `root` (`shown` names the key instead of its
    last part; `hidden` fields of the holding model are neither listed nor offered)."""
    key = str(location[-1]) if location else ""
    holder = model_at(root, location[:-1])
    name = shown or key
    if holder is None:
        return f"unknown key {name!r}; remove it or check its spelling"
    fields = [field for field in holder.model_fields if field not in set(hidden)]
    return f"unknown key {name!r}{did_you_mean(key, fields)}; valid keys are: {', '.join(fields)}"
