"""The architecture diagram as an SVG or PNG image.

Graphviz draws it when its ``dot`` program is on PATH (the same dot source as ``graph --format
dot``); otherwise matplotlib draws it with a simple layered layout: components as framed groups of
their main resources, placed in columns so that a dependency sits right of what depends on it
(as dot's left-to-right ranks do), and an arrow per dependency.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .diagram import _label, _layout, _title, to_dot
from .errors import MlscaffoldError, UsageError
from .graph import GraphResource, ResourceGraph

__all__ = ["IMAGE_FORMATS", "image_renderer", "render_image", "write_image"]

IMAGE_FORMATS = ("svg", "png")
GRAPHVIZ = "Graphviz's dot"
MATPLOTLIB = "matplotlib"
_DOT_SECONDS = 120  # a guard against a hung dot, not a deadline


def image_renderer(image_format: str) -> str:
    """Who draws `image_format` here: GRAPHVIZ or MATPLOTLIB; a UsageError naming what to
    install when neither is available."""
    if shutil.which("dot"):
        return GRAPHVIZ
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError:
        raise UsageError(
            f"--format {image_format} needs Graphviz (`dot` on PATH) or matplotlib, and this "
            "machine has neither",
            hint="install Graphviz (apt-get install graphviz, brew install graphviz, or "
                 "https://graphviz.org/download/) or `pip install matplotlib`, or use "
                 "--format mermaid",
        ) from None
    return MATPLOTLIB


def render_image(graph: ResourceGraph, image_format: str, renderer: str) -> bytes:
    """The diagram of `graph` as SVG or PNG bytes, drawn by `renderer` (see image_renderer)."""
    if renderer == GRAPHVIZ:
        return _with_dot(graph, image_format)
    return _with_matplotlib(graph, image_format)


def write_image(path: Path, data: bytes) -> None:
    """Write the image atomically (readers see the old file or the new one)."""
    from .lifecycle.files import atomic_write

    atomic_write(Path(path), lambda stream: stream.write(data))


def _with_dot(graph: ResourceGraph, image_format: str) -> bytes:
    try:
        completed = subprocess.run(["dot", f"-T{image_format}"], input=to_dot(graph).encode(),
                                   capture_output=True, timeout=_DOT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise MlscaffoldError(f"Graphviz's dot failed to run: {error}") from None
    if completed.returncode != 0 or not completed.stdout:
        said = completed.stderr.decode(errors="replace").strip().splitlines()
        raise MlscaffoldError(f"Graphviz's dot failed (exit {completed.returncode}): "
                              f"{said[0] if said else 'no output'}")
    return completed.stdout


# ------------------------------------------------------------------------ the matplotlib drawing

_NODE_HEIGHT = 0.55  # inches
_NODE_GAP = 0.2
_GROUP_PAD = 0.18
_GROUP_TITLE = 0.3
_GROUP_GAP = 0.35
_COLUMN_GAP = 0.9
_CHAR_WIDTH = 0.058  # inches per character at the label font size
_FONT_SIZE = 7
_ARC_BULGE = 0.4


@dataclass
class _Box:
    x: float
    y: float  # bottom
    width: float
    height: float

    @property
    def middle(self) -> float:
        return self.y + self.height / 2


def _columns(groups: list[list[GraphResource]], edges: list[tuple[str, str]]) -> list[int]:
    """The column of each group: right of every group depending on it (ranks of a layered
    layout; a cycle between groups is cut after as many passes as there are groups)."""
    group_of = {resource.urn: index for index, members in enumerate(groups)
                for resource in members}
    pairs = {(group_of[a], group_of[b]) for a, b in edges if group_of[a] != group_of[b]}
    rank = [0] * len(groups)
    for _ in range(len(groups)):
        changed = False
        for dependent, dependency in sorted(pairs):
            if rank[dependency] < rank[dependent] + 1 <= len(groups):
                rank[dependency] = rank[dependent] + 1
                changed = True
        if not changed:
            break
    return rank


def _with_matplotlib(graph: ResourceGraph, image_format: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    components, loose, edges = _layout(graph)
    groups = [members for _, members in components] + [[resource] for resource in loose]
    titles = [_title(component) for component, _ in components] + [""] * len(loose)
    labels = {r.urn: _label(r).replace("<br/>", "\n") for members in groups for r in members}
    longest = max((len(line) for text in [*labels.values(), *titles]
                   for line in text.splitlines()), default=10)
    node_width = max(1.6, _CHAR_WIDTH * longest + 0.3)
    column_of = _columns(groups, edges)
    group_width = node_width + 2 * _GROUP_PAD

    boxes: dict[str, _Box] = {}
    frames: list[tuple[_Box, str]] = []
    heights = [0.0] * (max(column_of, default=0) + 1)
    for index, members in enumerate(groups):  # stack each column's groups from the top down
        column = column_of[index]
        framed = bool(titles[index])
        inner = len(members) * _NODE_HEIGHT + (len(members) - 1) * _NODE_GAP
        height = inner + (2 * _GROUP_PAD + _GROUP_TITLE if framed else 0)
        x = column * (group_width + _COLUMN_GAP)
        top = -heights[column]
        heights[column] += height + _GROUP_GAP
        if framed:
            frames.append((_Box(x, top - height, group_width, height), titles[index]))
        y = top - (_GROUP_PAD + _GROUP_TITLE if framed else 0)
        for resource in members:
            y -= _NODE_HEIGHT
            boxes[resource.urn] = _Box(x + (_GROUP_PAD if framed else 0), y, node_width,
                                       _NODE_HEIGHT)
            y -= _NODE_GAP

    total_width = len(heights) * (group_width + _COLUMN_GAP) - _COLUMN_GAP
    total_height = max(heights, default=1.0)
    margin = 0.2 + _ARC_BULGE  # arcs of the last column bulge right
    figure = plt.figure(figsize=(total_width + 0.2 + margin, total_height + 0.4))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(-0.2, total_width + margin)
    axes.set_ylim(-total_height - 0.2, 0.2)
    axes.axis("off")
    for box, title in frames:
        axes.add_patch(FancyBboxPatch((box.x, box.y), box.width, box.height,
                                      boxstyle="round,pad=0,rounding_size=0.06",
                                      facecolor="#f3f4f6", edgecolor="#9ca3af", linewidth=0.8))
        axes.text(box.x + _GROUP_PAD, box.y + box.height - _GROUP_PAD, title,
                  fontsize=_FONT_SIZE, fontweight="bold", va="top", ha="left")
    for urn, box in boxes.items():
        axes.add_patch(FancyBboxPatch((box.x, box.y), box.width, box.height,
                                      boxstyle="round,pad=0,rounding_size=0.05",
                                      facecolor="white", edgecolor="#2563eb", linewidth=0.9))
        axes.text(box.x + box.width / 2, box.middle, labels[urn], fontsize=_FONT_SIZE,
                  ha="center", va="center")
    for dependent, dependency in edges:
        start, end = boxes[dependent], boxes[dependency]
        if end.x > start.x:  # to a column on the right: right side to left side
            tail, head, bend = (start.x + start.width, start.middle), (end.x, end.middle), 0.0
        else:  # same column or back: an arc bulging right, about _ARC_BULGE inches at most
            tail, head = (start.x + start.width, start.middle), (end.x + end.width, end.middle)
            distance = max(abs(head[1] - tail[1]), abs(head[0] - tail[0]), 0.1)
            bend = min(0.5, _ARC_BULGE / distance) * (1 if head[1] > tail[1] else -1)
        axes.add_patch(FancyArrowPatch(tail, head, arrowstyle="-|>", mutation_scale=8,
                                       linewidth=0.7, color="#4b5563",
                                       connectionstyle=f"arc3,rad={bend}"))
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=150)
    plt.close(figure)
    return buffer.getvalue()
