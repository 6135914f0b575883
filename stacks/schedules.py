"""SageMaker Model Monitor's schedule expressions: the one reading of them, for the stack
config's ``monitoring.drift_schedule`` and the cost estimator.

SageMaker accepts only these (API reference, ``ScheduleConfig.ScheduleExpression``; SageMaker
docs, "The cron expression for monitoring schedule"): hourly ``cron(0 * ? * * *)``, daily at
hour H ``cron(0 H ? * * *)``, every N hours from hour H ``cron(0 H/N ? * * *)`` (H 0-23, N
1-24), and ``NOW``, a single run at once. No Pulumi or pydantic import here.
"""

from __future__ import annotations

import re

__all__ = ["ONE_TIME", "SCHEDULE_FORMS", "runs_per_day"]

# the keyword of a single run, started at once
ONE_TIME = "NOW"
SCHEDULE_FORMS = ("cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H, 0-23) or "
                  "cron(0 H/N ? * * *) (every N hours from hour H, N 1-24)")
_CRON = re.compile(r"cron\(0 (?:\*|(\d{1,2})(?:/(\d{1,2}))?) \? \* \* \*\)")


def runs_per_day(expression: str) -> float:
    """Runs a day of a recurring Model Monitor schedule; ValueError naming the accepted forms
    (``NOW`` included: it does not recur)."""
    match = _CRON.fullmatch(expression)
    if match is None:
        if expression == ONE_TIME:
            raise ValueError(f"{ONE_TIME} runs the monitor once and drift monitoring recurs; "
                             f"use {SCHEDULE_FORMS}")
        raise ValueError(f"{expression!r} is not a schedule SageMaker Model Monitor accepts; "
                         f"use {SCHEDULE_FORMS}")
    hour, every = match.groups()
    if hour is None:
        return 24
    if int(hour) > 23 or (every is not None and not 1 <= int(every) <= 24):
        raise ValueError(f"{expression!r} is out of range (hour 0-23, every 1-24 hours); use "
                         f"{SCHEDULE_FORMS}")
    # the docs read H/N as "every N hours" (cron(0 17/12 ? * * *): every 12 hours)
    return 24 / int(every) if every is not None else 1
