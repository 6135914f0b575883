"""The team's model code. mlscaffold's lifecycle (`mlscaffold train|evaluate|serve|…`) calls it.

preprocessing.py  how raw columns become model inputs
candidates.py     the estimator families the model search tries
metrics.py        metrics of your own, next to the built-in ones

Delete a module to use mlscaffold's default for it.
"""
