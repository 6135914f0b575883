"""Names AWS accepts: every named resource's name, and every auto-name Pulumi would make, fits
its type's limit and characters (one table: :mod:`mlscaffold.stacks.names`).

Pulumi's auto-name ("<logical name>-<7 hex digits>") is made by the provider during a real
preview; offline (``mlscaffold check``) the input is absent and the rule computes its length
from the logical name. Either way a name AWS (or pulumi-aws) refuses is found before the
deploy, e.g. a stack a team extended with a resource whose logical name is long.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlscaffold.stacks.names import NAME_RULES, name_problem

from ..rule import Subject, rule, violation

__all__ = ["aws_name_limits"]


@rule("aws-name-limits", pack="security", severity="high", resource_types=sorted(NAME_RULES),
      description="Every resource's name, given or auto-named by Pulumi, fits the length and "
                  "characters AWS accepts for its type.")
def aws_name_limits(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    prop = NAME_RULES[subject.type].prop
    name = subject.props.get(prop)
    problem = name_problem(subject.type, name if isinstance(name, str) else None, subject.name)
    if problem:
        fix = (f"give {prop} a name of at most {NAME_RULES[subject.type].max_length} characters "
               "(mlscaffold.stacks.names.fitted_name makes one) or a shorter logical name"
               if name is None else f"shorten {prop}")
        yield violation(subject, prop, problem, fix)
