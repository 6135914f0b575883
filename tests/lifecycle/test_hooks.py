"""The team's hooks in src/<package>/ (preprocessing.py, candidates.py, metrics.py): used when they
work, reported in one line naming file:line when they do not (exit 2, no traceback)."""

from __future__ import annotations

import json
import textwrap

import pytest

from mlscaffold.lifecycle.hooks import load_hooks

from .conftest import assert_error, package_dir, read_spec, run_cli


def write_hook(project, module: str, source: str):
    path = package_dir(project) / f"{module}.py"
    path.write_text(textwrap.dedent(source).lstrip())
    return path.resolve()


def train(project, *args):
    return run_cli(project, "train", "--time", "1", *args)


def assert_hook_error(result, project, message: str) -> None:
    """Exit 2, exactly `message` (one line), and no experiment left behind."""
    assert_error(result, 2)
    assert result.err == f"error: {message}\n"
    assert not (project / "experiments" / "exp-001").exists()


def test_a_syntax_error_names_file_and_line(project):
    path = write_hook(project, "candidates", """
        def families(task)
            return []
    """)
    package = package_dir(project).name
    assert_hook_error(train(project), project,
                      f"{path}:1: cannot import {package}.candidates: SyntaxError: expected ':' "
                      f"(candidates.py, line 1); fix src/{package}/candidates.py")


def test_a_module_raising_at_import_names_file_and_line(project):
    path = write_hook(project, "metrics", """
        import os

        LIMIT = int(os.environ["NO_SUCH_VARIABLE_HERE"])
    """)
    package = package_dir(project).name
    assert_hook_error(train(project), project,
                      f"{path}:3: cannot import {package}.metrics: KeyError: "
                      f"'NO_SUCH_VARIABLE_HERE'; fix src/{package}/metrics.py")


def test_ctrl_c_while_a_compiled_module_initialises_is_an_interrupt(project):
    """A KeyboardInterrupt inside a compiled module's initialisation comes out as
    ImportError("initialization failed") raised from it (pybind11; scipy's _highspy, which
    `import sklearn` loads): Ctrl-C early in `train` printed a traceback, exit 1."""
    write_hook(project, "metrics", """
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("initialization failed") from interrupt
    """)
    result = train(project)
    assert (result.code, result.err.strip()) == (130, "error: interrupted")
    assert not (project / "experiments" / "exp-001").exists()


def test_an_import_error_of_the_cli_itself_from_ctrl_c_is_an_interrupt(monkeypatch):
    from mlscaffold import cli_lifecycle

    from .conftest import invoke

    def interrupted(*_args, **_kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("initialization failed") from interrupt

    monkeypatch.setattr(cli_lifecycle, "_open", interrupted)
    result = invoke("list")
    assert (result.code, result.err) == (130, "error: interrupted\n")


def test_a_module_without_its_function_names_file_and_function(project):
    path = write_hook(project, "preprocessing", """
        def build_preprocesor(features):  # misspelt
            return None
    """)
    assert_hook_error(train(project), project,
                      f"{path}: defines no function build_preprocessor(features); define it, or "
                      "delete preprocessing.py to use the default")


def test_a_raising_build_preprocessor_names_file_and_line(project):
    path = write_hook(project, "preprocessing", """
        def build_preprocessor(features):
            numeric = [name for name, kind in features.items() if kind == "numeric"]
            raise ValueError(f"{len(numeric)} numeric columns, expected none")
    """)
    package = package_dir(project).name
    assert_hook_error(train(project), project,
                      f"{path}:3: build_preprocessor() raised ValueError: 4 numeric columns, "
                      f"expected none; fix build_preprocessor(features) in "
                      f"src/{package}/preprocessing.py")


def test_a_build_preprocessor_returning_a_list_is_refused(project):
    path = write_hook(project, "preprocessing", """
        def build_preprocessor(features):
            return list(features)
    """)
    assert_hook_error(train(project), project,
                      f"{path}:1: build_preprocessor() must return an unfitted scikit-learn "
                      "transformer (with fit and transform), got a list of str")


@pytest.mark.parametrize(("returned", "described"), [
    ("[]", "a list of nothing"),
    ("[task]", "a list of str"),
    ("None", "NoneType"),
])
def test_families_returning_no_family_is_refused(project, returned, described):
    path = write_hook(project, "candidates", f"""
        def families(task):
            return {returned}
    """)
    assert_hook_error(train(project), project,
                      f"{path}:1: families() must return a non-empty list of "
                      "mlscaffold.lifecycle.hooks.Family with distinct names, got " + described)


def test_custom_metrics_with_a_built_in_name_is_refused(project):
    path = write_hook(project, "metrics", """
        from mlscaffold.lifecycle.hooks import Metric


        def custom_metrics():
            return [Metric("roc_auc", True, ("binary-classification",), lambda o: 1.0, "mine")]
    """)
    assert_hook_error(run_cli(project, "list"), project,
                      f"{path}:4: custom_metrics() returned a metric named 'roc_auc', the name "
                      "of a built-in metric; give it a name of its own")


def test_a_custom_metric_that_raises_names_file_and_line(project):
    path = write_hook(project, "metrics", """
        from mlscaffold.lifecycle.hooks import Metric


        def lift(outcome):
            return outcome.probabilities[:, 1].mean() / outcome.base_rate


        def custom_metrics():
            return [Metric("lift", True, ("binary-classification",), lift, "lift")]
    """)
    package = package_dir(project).name
    assert_hook_error(train(project), project,
                      f"{path}:5: metric 'lift' raised AttributeError: 'Outcome' object has no "
                      f"attribute 'base_rate'; fix custom_metrics() in src/{package}/metrics.py")


def test_candidate_code_that_raises_names_file_and_line(project):
    path = write_hook(project, "candidates", """
        from sklearn.linear_model import LogisticRegression

        from mlscaffold.lifecycle.hooks import Family


        def families(task):
            return [Family("logistic", lambda params, seed: LogisticRegression(**params),
                           sample=lambda rng: {"C": rng.loguniform(-2, 2)}, baseline={"C": 1.0})]
    """)
    package = package_dir(project).name
    assert_hook_error(train(project), project,
                      f"{path}:8: AttributeError: 'Random' object has no attribute 'loguniform'; "
                      f"fix the project's code in src/{package}/")


TOP_DECILE = """
    import numpy as np

    from mlscaffold.lifecycle.hooks import Metric


    def top_decile(outcome):
        \"\"\"Share of positives among the 10% of rows scored most likely positive.\"\"\"
        scores = outcome.probabilities[:, list(outcome.classes).index(outcome.positive_class)]
        top = np.argsort(-scores)[: max(1, len(scores) // 10)]
        return float(np.mean(outcome.y_true[top] == outcome.positive_class))


    def custom_metrics():
        return [Metric("top_decile", True, ("binary-classification",), top_decile,
                       "precision in the top decile of scores")]
"""


def test_a_custom_metric_is_computed_and_selectable(project):
    write_hook(project, "metrics", TOP_DECILE)
    trained = train(project, "--metric", "top_decile")
    assert trained.code == 0, trained.err
    assert "top_decile" in trained.out
    experiment = project / "experiments" / "exp-001"
    record = json.loads((experiment / "experiment.json").read_text())
    assert record["metric"] == "top_decile"
    assert record["score"] == record["validation"]["top_decile"]
    assert 0 <= record["score"] <= 1
    leaderboard = [row for row in json.loads((experiment / "leaderboard.json").read_text())
                   if row["score"] is not None]  # neither failed nor stopped early
    scores = [row["metrics"]["top_decile"] for row in leaderboard]
    assert all(0 <= score <= 1 for score in scores)
    assert [row["score"] for row in leaderboard] == sorted(scores, reverse=True)
    # the built-in metrics are computed next to it
    assert read_spec(project)["metric"] in leaderboard[0]["metrics"]

    listed = run_cli(project, "list", "--metric", "top_decile", "--format", "json")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["experiments"][0]["validation"] == record["score"]
    evaluated = run_cli(project, "evaluate", "--format", "json")
    # chosen for top_decile, the model may miss the spec's roc_auc gate: that is exit 1
    assert evaluated.code == 0 or "quality gate failed" in evaluated.err, evaluated.err
    assert 0 <= json.loads(evaluated.out)["metrics"]["top_decile"] <= 1


def test_a_custom_metric_of_another_task_is_not_selectable(project):
    write_hook(project, "metrics", TOP_DECILE.replace('("binary-classification",)',
                                                      '("regression",)'))
    assert_error(train(project, "--metric", "top_decile"), 2,
                 "metric 'top_decile' does not apply to binary-classification")


def test_custom_candidates_restrict_the_search(project):
    write_hook(project, "candidates", """
        from sklearn.linear_model import LogisticRegression

        from mlscaffold.lifecycle.hooks import Family


        def families(task):
            return [Family("only_logistic",
                           lambda params, seed: LogisticRegression(random_state=seed, **params),
                           sample=lambda rng: {"C": round(10 ** rng.uniform(-2, 2), 4)},
                           baseline={"C": 1.0})]
    """)
    trained = train(project)
    assert trained.code == 0, trained.err
    experiment = project / "experiments" / "exp-001"
    leaderboard = json.loads((experiment / "leaderboard.json").read_text())
    assert {row["family"] for row in leaderboard} == {"only_logistic"}
    record = json.loads((experiment / "experiment.json").read_text())
    assert record["best_single"]["family"] == "only_logistic"
    members = (record["ensemble"] or {"members": [record]})["members"]
    assert {member["family"] for member in members} == {"only_logistic"}


def test_two_projects_with_one_package_name_each_get_their_own_hooks(make_project):
    """In one process (a notebook, these tests), opening a second project whose package has the
    same name imports its files, not the first project's modules."""
    first, second = make_project(), make_project()
    for project, name in ((first, "first"), (second, "second")):
        write_hook(project, "candidates", f"""
            from mlscaffold.lifecycle.hooks import default_families


            def families(task):
                return [family for family in default_families(task) if family.name != {name!r}]

            OWNER = {name!r}
        """)
    for project, name in ((first, "first"), (second, "second"), (first, "first")):
        hooks = load_hooks(project, package_dir(project).name)
        assert hooks.functions["candidates"].__globals__["OWNER"] == name
