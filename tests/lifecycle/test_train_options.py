"""`mlscaffold train` as a user runs it: --trials reproduces a run, bad limits are refused before
the heavy imports, Ctrl-C keeps the best model so far, and Ctrl-C while loading is one line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from mlscaffold.lifecycle.model import load_bundle

from .conftest import PATIENCE_SECONDS, assert_error, python_m, run_cli, wait_for


def _leaderboard(project, experiment):
    rows = json.loads((project / "experiments" / experiment / "leaderboard.json").read_text())
    return sorted(rows, key=lambda row: row["trial"])


def test_trials_and_seed_fix_the_search_and_are_recorded(project):
    """`--trials N --seed S` reach the search (which then tries the same candidates on every
    machine: tests/lifecycle/test_search.py) and the experiment's record."""
    result = run_cli(project, "train", "--trials", "7", "--seed", "5")
    assert result.code == 0, result.err
    assert "searching 7 candidates for the best" in result.out
    assert len(_leaderboard(project, "exp-001")) == 7
    record = json.loads((project / "experiments" / "exp-001" / "experiment.json").read_text())
    assert (record["seed"], record["trials"], record["time_budget_seconds"],
            record["interrupted"]) == (5, 7, None, False)
    assert record["candidates"]["evaluated"] == 7
    assert record["candidates"]["stopped_by"] == "trials"
    assert record["selection"]["method"] == "cross-validation"
    assert record["selection"]["refit_on_train_and_validation"] is True


# runs the CLI in a fresh interpreter and reports its exit code and the modules it imported
_PROBE = """
import json, sys
from mlscaffold.cli import main
sys.argv = ["mlscaffold", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "pandas", "numpy", "scipy"})
print(json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--time", "0", "0 is not a positive number of seconds"),
    ("--time", "-3", "-3 is not a positive number of seconds"),
    ("--time", "nan", "nan is not a positive number of seconds"),
    ("--time", "inf", "inf is not a positive number of seconds"),
    ("--time", "soon", "'soon' is not a number of seconds"),
    ("--trials", "0", "0 is not in the range x>=1."),
])
def test_bad_limits_are_refused_before_the_heavy_imports(project, option, value, says):
    done = subprocess.run([sys.executable, "-c", _PROBE, "train", "--project", str(project),
                           option, value], capture_output=True, text=True,
                          timeout=PATIENCE_SECONDS)
    assert json.loads(done.stdout.splitlines()[-1]) == {"code": 2, "heavy": []}, done.stderr
    assert done.stderr == (f"error: Invalid value for '{option}': {says} "
                           "(see 'mlscaffold train --help')\n")
    assert_error(run_cli(project, "train", option, value), 2, option, says)
    assert not (project / "experiments" / "exp-001").exists()


def test_the_probe_sees_the_heavy_imports_of_a_run(project):
    """The check above can fail: the same probe reports what a real run imports."""
    done = subprocess.run([sys.executable, "-c", _PROBE, "train", "--project", str(project),
                           "--trials", "1"], capture_output=True, text=True,
                          timeout=PATIENCE_SECONDS)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["code"] == 0 and "sklearn" in report["heavy"], done.stderr


def _sigint_as_at_a_terminal() -> None:
    # a shell without job control starts background commands with SIGINT ignored, which their
    # children inherit (and Python then installs no KeyboardInterrupt handler): the test suite
    # run as `bash .ci/run &` would send its Ctrl-C to a train that cannot receive it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_the_search_keeps_the_best_model_so_far(project, tmp_path):
    process = python_m("train", "--project", project, "--time", "3600",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       preexec_fn=_sigint_as_at_a_terminal)
    board = project / "experiments" / "exp-001" / "leaderboard.json"

    def scored() -> bool:
        try:
            return any(row["score"] is not None for row in json.loads(board.read_text()))
        except (FileNotFoundError, ValueError):
            return process.poll() is not None

    try:
        wait_for(scored, lambda: "no candidate was scored")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=PATIENCE_SECONDS)
    finally:
        process.kill()
    assert process.returncode == 130, out + err
    assert err == ("warning: interrupted: kept the best model so far as exp-001 (marked "
                   "interrupted)\n")
    assert "stopped by Ctrl-C after" in out
    (entry,) = json.loads((project / "experiments" / "index.json").read_text())["experiments"]
    assert entry["id"] == "exp-001" and entry["interrupted"] is True
    record = json.loads((project / "experiments" / "exp-001" / "experiment.json").read_text())
    assert record["candidates"]["stopped_by"] == "interrupted" and record["ensemble"] is None
    assert load_bundle(project / "experiments" / "exp-001").metric == entry["metric"]
    predicted = run_cli(project, "predict", "--model", "exp-001", "--input",
                        project / "datasets" / "test.csv", "--output", tmp_path / "out.csv")
    assert predicted.code == 0, predicted.err
    listed = run_cli(project, "list")
    assert f"{entry['family']} (interrupted)" in listed.out, listed.out
    assert json.loads(run_cli(project, "list", "--format", "json").out)["experiments"][0][
        "interrupted"] is True


# a meta-path finder that turns the import of one module into Ctrl-C, then the CLI's entry
_CTRL_C_ON_IMPORT = """
import sys
blocked = sys.argv[1]

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == blocked:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["mlscaffold", *sys.argv[2:]]
from mlscaffold._entry import main
main()
"""


@pytest.mark.parametrize(("module", "stderr"), [
    ("click", "error: interrupted\n"),  # while the command line loads
    ("sklearn", "\nerror: interrupted\n"),  # in the command (Click ends the ^C line first)
])
def test_ctrl_c_while_loading_prints_one_line(project, module, stderr):
    done = subprocess.run([sys.executable, "-c", _CTRL_C_ON_IMPORT, module, "train",
                           "--project", str(project)], capture_output=True, text=True,
                          timeout=PATIENCE_SECONDS)
    assert (done.returncode, done.stderr) == (130, stderr)
    assert not (project / "experiments" / "index.json").exists()
