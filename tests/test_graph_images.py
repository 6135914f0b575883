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
        again = run_cli(["graph", str(made), "-o", str(output)])  # its own diagram: replaced
        assert again.exit_code == 0, again.stderr
        if image_format == "png":
            assert data[:8] == PNG
            assert b"tEXtSoftware\0mlscaffold graph" in data[:128]
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
    assert output.read_text() == ("<!-- drawn by mlscaffold graph -->\n"
                                  "<svg>fake dot -Tsvg digraph platform {</svg>")

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



def test_the_output_extension_chooses_the_format(run_cli, made, tmp_path, fake_dot):
    """Without --format, -o FILE.svg draws an SVG (not Mermaid text in a .svg file), and so on;
    a .md file gets a Markdown Mermaid block."""
    for name, start in (("a.svg", "<!-- drawn by mlscaffold graph -->\n<svg>fake dot -Tsvg "),
                        ("a.png", "<svg>fake dot -Tpng "),  # not a PNG: unmarked
                        ("a.gv", "digraph platform {"), ("a.dot", "digraph platform {"),
                        ("a.mmd", "flowchart LR\n"), ("a.md", "```mermaid\nflowchart LR\n")):
        result = run_cli(["graph", str(made), "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / name).read_text().startswith(start), name
    # an earlier diagram of another format is replaced: Mermaid an old version wrote in a .svg
    old = tmp_path / "old.svg"
    old.write_text("flowchart LR\n  a --> b\n")
    result = run_cli(["graph", str(made), "--format", "svg", "-o", str(old)])
    assert result.exit_code == 0, result.stderr
    assert "fake dot -Tsvg" in old.read_text()


def test_a_format_the_output_contradicts_is_refused(run_cli, made, tmp_path, fake_dot):
    cases = {
        ("--format", "png", "-o", "arch.svg"):
            "error: --format png does not match --output {d}/arch.svg (an SVG file); drop "
            "--format, or name the file {d}/arch.png\n",
        ("--format", "mermaid", "-o", "arch.dot"):
            "error: --format mermaid does not match --output {d}/arch.dot (a Graphviz dot "
            "file); drop --format, or name the file {d}/arch.mmd\n",
        ("-o", "arch.jpg",):
            "error: --output {d}/arch.jpg: graph does not write .jpg files; name it with one "
            "of .dot, .gv, .md, .mermaid, .mmd, .png, .svg, or give --format\n",
    }
    for args, message in cases.items():
        args = [*args[:-1], f"{tmp_path}/{args[-1]}"]
        result = run_cli(["graph", str(made), *args])
        assert result.exit_code == 2
        assert result.stderr == message.format(d=tmp_path)
        assert not any(tmp_path.glob("arch.*"))


def test_an_image_of_the_users_own_is_not_replaced(run_cli, made, tmp_path, fake_dot):
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>\n')
    result = run_cli(["graph", str(made), "--format", "svg", "-o", str(logo)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {logo} exists and is not a diagram `mlscaffold graph` "
                             "wrote; choose another --output, or move that file\n")
    assert logo.read_text().startswith("<svg xmlns")


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
