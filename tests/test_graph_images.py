"""`mlscaffold graph --format svg|png`: drawn by Graphviz's dot when it is on PATH, else by
matplotlib, and one line naming what to install when neither is there (exit 2, before the slow
preview, nothing written)."""

from __future__ import annotations

import html
import shutil
import sys
from pathlib import Path

import pytest

from mlscaffold.diagram_image import GRAPHVIZ, MATPLOTLIB, image_renderer
from mlscaffold.errors import UsageError
from mlscaffold.project import create_project
from mlscaffold.spec import validate_spec

from .tools.environments import run_without_matplotlib

PNG = b"\x89PNG\r\n\x1a\n"
FAKE_DOT = """\
#!{python}
import sys
source = sys.stdin.read()
if "--fail" in open({flag!r}).read():
    sys.stderr.write("Error: <stdin>: syntax error in line 1\\n")
    sys.exit(1)
first = source.splitlines()[0]
sys.stdout.write("<svg>fake dot " + " ".join(sys.argv[1:]) + " " + first + "</svg>")
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    spec = validate_spec({"name": "drawn", "serving": "kserve", "environments": ["dev"]})
    return create_project(tmp_path_factory.mktemp("p") / "drawn", spec, git=False).path


@pytest.fixture
def no_dot(tmp_path, monkeypatch) -> Path:
    """PATH holds only an empty folder: no Graphviz."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


@pytest.fixture
def fake_dot(tmp_path, monkeypatch) -> Path:
    """A `dot` on PATH that echoes its arguments and the first line of its input; write
    '--fail' into the returned file to make it fail like dot does on bad input."""
    folder = tmp_path / "bin"
    folder.mkdir()
    flag = tmp_path / "dot-mode"
    flag.write_text("")
    script = folder / "dot"
    script.write_text(FAKE_DOT.format(python=sys.executable, flag=str(flag)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    return flag


def test_without_dot_matplotlib_draws_svg_and_png(run_cli, made, tmp_path, no_dot):
    assert image_renderer("svg") == MATPLOTLIB
    for image_format in ("svg", "png"):
        output = tmp_path / f"platform.{image_format}"
        result = run_cli(["graph", str(made), "--format", image_format, "-o", str(output)])
        assert result.exit_code == 0, result.stderr
        assert result.stderr == f"wrote {output} (drawn by matplotlib)\n"
        data = output.read_bytes()
        if image_format == "png":
            assert data[:8] == PNG
        else:
            text = data.decode()
            assert "<svg" in text and text.rstrip().endswith("</svg>")
            # the labels are drawn: components and resources by name
            assert "VPC" in text and "drawn-dev-network-vpc" in text


def test_with_dot_graphviz_draws_the_dot_source(run_cli, made, tmp_path, fake_dot):
    assert image_renderer("svg") == GRAPHVIZ
    output = tmp_path / "platform.svg"
    result = run_cli(["graph", str(made), "--format", "svg", "-o", str(output)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"wrote {output} (drawn by Graphviz's dot)\n"
    assert output.read_text() == "<svg>fake dot -Tsvg digraph platform {</svg>"

    fake_dot.write_text("--fail")
    failed = run_cli(["graph", str(made), "--format", "png", "-o", str(tmp_path / "x.png")])
    assert failed.exit_code == 1
    assert failed.stderr == ("error: Graphviz's dot failed (exit 1): Error: <stdin>: syntax "
                             "error in line 1\n")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed here")
def test_real_graphviz_draws_svg(run_cli, made, tmp_path):
    output = tmp_path / "platform.svg"
    result = run_cli(["graph", str(made), "--format", "svg", "-o", str(output)])
    assert result.exit_code == 0, result.stderr
    text = html.unescape(output.read_text())  # dot writes '-' as &#45;
    assert "<svg" in text and "Network: drawn-dev-network" in text and "VPC" in text


def test_an_image_needs_an_output_file(run_cli, made):
    result = run_cli(["graph", str(made), "--format", "png"])
    assert result.exit_code == 2
    assert result.stderr == ("error: --format png writes an image file: add --output FILE (e.g. "
                             "-o platform.png) (see 'mlscaffold graph --help')\n")




def test_without_dot_or_matplotlib_one_line_says_what_to_install(made, tmp_path, no_dot):
    output = tmp_path / "platform.svg"
    completed = run_without_matplotlib("graph", made, "--format", "svg", "-o", output,
                                       timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr == (
        "error: --format svg needs Graphviz (`dot` on PATH) or matplotlib, and this machine has "
        "neither; install Graphviz (apt-get install graphviz, brew install graphviz, or "
        "https://graphviz.org/download/) or `pip install matplotlib`, or use --format mermaid\n")
    assert not output.exists()


def test_the_renderer_check_raises_a_usage_error(monkeypatch, no_dot):
    """The check itself (which the CLI makes before the preview): a UsageError, exit 2."""
    import builtins

    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.partition(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(UsageError) as raised:
        image_renderer("png")
    assert raised.value.exit_code == 2 and "--format png needs Graphviz" in str(raised.value)
