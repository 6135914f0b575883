"""Cost rules (:mod:`.rules`, listed by :mod:`mlscaffold.policies.registry`) and the monthly cost
estimator (:mod:`.estimate`) over the dated price table (:mod:`.prices`)."""
