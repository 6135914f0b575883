"""Which candidate the search fits next: decided by the seed and the scores seen, never by time.

First every family's baseline, cheapest family first. Then each proposal draws a family with a
weight that halves with every rank it stands below the best family and shrinks with each of its
candidates since its own best (a floor keeps every family in play), and either samples fresh
settings from it or changes one or two settings of one of its best candidates so far (a local
step that grows a promising configuration). A proposal that repeats one already made, or nearly
(fractional numbers within a fifth of a decade, settings equal to the estimator's defaults left
out), is drawn again; a family that keeps repeating itself is exhausted and no longer drawn.
The same seed and the same scores give the same proposals on any machine under any load.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable

from .search_space import Candidate, Family

# a family's weight halves per rank below the best family, down to this share of the best's
FLOOR_WEIGHT = 0.08
# a family whose every candidate failed stays drawable, rarely
FAILED_WEIGHT = 0.02
# a family's weight is multiplied by this for each of its candidates since its own best
STALE_DECAY = 0.75
# share of proposals that step from one of the family's best candidates instead of sampling
LOCAL_STEP_SHARE = 0.5
# the parents of a local step: the family's best few, the best most often
PARENT_WEIGHTS = (0.6, 0.3, 0.1)
# draws in a row that only repeat earlier proposals before a family counts as exhausted
MAX_REPEATS = 40


class Proposer:
    """Seed-determined proposals that follow the scores reported through `observe`."""

    def __init__(self, families: list[Family], seed: int,
                 allowed: Callable[[Candidate], bool] = lambda candidate: True):
        self.families = list(families)
        self.rng = random.Random(seed)
        self.allowed = allowed
        self.queue = deque(
            Candidate(family, dict(family.baseline)) for family in self.families
        )
        self.seen: set[tuple] = set()
        self.exhausted: set[str] = set()
        # family name -> (loss, params) of its fully scored candidates; lower loss is better
        self.results: dict[str, list[tuple[float, dict]]] = {f.name: [] for f in self.families}
        self.tried: dict[str, int] = {f.name: 0 for f in self.families}
        self.stale: dict[str, int] = {f.name: 0 for f in self.families}

    def observe(self, candidate: Candidate, loss: float | None) -> None:
        """Report a fitted candidate: its loss (lower is better), or None when it failed or was
        stopped early for scoring poorly."""
        name = candidate.family.name
        self.tried[name] += 1
        results = self.results[name]
        if loss is not None and math.isfinite(loss):
            improved = not results or loss < results[0][0]
            results.append((loss, candidate.params))
            results.sort(key=lambda item: item[0])
            self.stale[name] = 0 if improved else self.stale[name] + 1
        else:
            self.stale[name] += 1

    def propose(self) -> Candidate | None:
        """The next candidate, or None once every family is exhausted."""
        while self.queue:
            candidate = self.queue.popleft()
            if self._admit(candidate):
                return candidate
        while len(self.exhausted) < len(self.families):
            family = self._draw_family()
            for _ in range(MAX_REPEATS):
                candidate = Candidate(family, self._settings(family))
                if self._admit(candidate):
                    return candidate
            self.exhausted.add(family.name)
        return None

    def _admit(self, candidate: Candidate) -> bool:
        if candidate.near_key in self.seen or not self.allowed(candidate):
            return False
        self.seen.add(candidate.near_key)
        return True

    def _draw_family(self) -> Family:
        live = [family for family in self.families if family.name not in self.exhausted]
        best = {f.name: self.results[f.name][0][0] for f in live if self.results[f.name]}
        ranking = sorted(best, key=lambda name: best[name])
        weights = []
        for family in live:
            if family.name in best:
                weight = 0.5 ** ranking.index(family.name) * STALE_DECAY ** self.stale[family.name]
                weights.append(max(weight, FLOOR_WEIGHT))
            else:
                weights.append(FAILED_WEIGHT if self.tried[family.name] else FLOOR_WEIGHT)
        return self.rng.choices(live, weights=weights)[0]

    def _settings(self, family: Family) -> dict:
        fresh = family.sample(self.rng)
        ranked = self.results[family.name]
        if not ranked or self.rng.random() >= LOCAL_STEP_SHARE:
            return fresh
        parents = ranked[: len(PARENT_WEIGHTS)]
        parent = self.rng.choices(parents, weights=PARENT_WEIGHTS[: len(parents)])[0][1]
        names = sorted(set(parent) | set(fresh))
        changed = self.rng.sample(names, min(len(names), self.rng.choice((1, 1, 2))))
        child = dict(parent)
        for name in changed:
            if name in fresh:
                child[name] = fresh[name]
            else:
                child.pop(name, None)  # back to the estimator's default
        return child
