"""A pipeline drawn: as a tree in the terminal (the workflow Step Functions runs), and as a graph of its steps
and `needs` in a PNG picture or a self-contained HTML page."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from rich.tree import Tree

from gluerelay.pipelines.graph import Node, Sequence, Task, waits_beyond_needs, workflow
from gluerelay.pipelines.model import Pipeline, Step

KIND_COLOUR = {"job": "#1565c0", "crawler": "#6a1b9a", "catalog": "#2e7d32", "quality": "#ef6c00"}
TERMINAL_COLOUR = {"job": "cyan", "crawler": "magenta", "catalog": "green", "quality": "yellow"}


def describe(step: Step) -> str:
    where = " (external)" if step.external else ""
    if step.catalog is not None:
        return f"catalog {step.catalog.table}" + (f" (drift: {step.catalog.on_drift})")
    if step.quality is not None:
        checked = f"{step.quality.summary_of}'s summary" if step.quality.summary_of else step.quality.table
        return f"quality {checked} ({len(step.quality.rules)} rules)"
    return f"{step.kind} {step.resource_name}{where}"


def tree(pipeline: Pipeline) -> Tree:
    """The workflow as Step Functions runs it: steps in order, parallel branches nested."""
    triggers = []
    if pipeline.triggers.s3:
        triggers.append(
            f"lands in {pipeline.triggers.s3.prefix} (runs of ≤ {pipeline.triggers.s3.batch_size} objects)"
        )
    triggers += [f"schedule {s.expression}" for s in pipeline.triggers.schedules]
    if pipeline.triggers.manual:
        triggers.append("gluerelay start")
    about = f"\n{pipeline.description}" if pipeline.description else ""
    root = Tree(f"[bold]{pipeline.pipeline}[/]  [dim]{'; '.join(triggers)}[/]{about}")
    if pipeline.params:
        params = root.add("[bold]params[/]")
        for name, spec in pipeline.params.items():
            default = f" = {spec.default!r}" if spec.default is not None else " (required)"
            allowed = f", one of {', '.join(map(str, spec.allowed))}" if spec.allowed else ""
            about_param = f"  [dim]{spec.description}[/]" if spec.description else ""
            params.add(f"{name}: {spec.type}{default}{allowed}{about_param}")
    graph = workflow({step_id: step.needs for step_id, step in pipeline.steps.items()})
    _add(root, graph, pipeline)
    extra = waits_beyond_needs({s: step.needs for s, step in pipeline.steps.items()}, graph)
    for step_id, waits in sorted(extra.items()):
        root.add(
            f"[yellow]{step_id} also waits for {', '.join(sorted(waits))} (the graph is run in layers)[/]"
        )
    return root


def _add(parent: Tree, node: Node, pipeline: Pipeline) -> None:
    if isinstance(node, Task):
        step = pipeline.steps[node.step]
        needs = f"  [dim]needs {', '.join(step.needs)}[/]" if step.needs else ""
        colour = TERMINAL_COLOUR[step.kind]
        about = f"\n[dim]{step.description}[/]" if step.description else ""
        parent.add(f"[bold]{node.step}[/]  [{colour}]{describe(step)}[/]{needs}{about}")
    elif isinstance(node, Sequence):
        for item in node.items:
            _add(parent, item, pipeline)
    else:
        group = parent.add("[bold]at once[/]")
        for branch in node.branches:
            if isinstance(branch, Sequence):
                _add(group.add("[dim]in order[/]"), branch, pipeline)
            else:
                _add(group, branch, pipeline)


def _layout(pipeline: Pipeline) -> dict[str, tuple[int, int]]:
    """(column, row) per step: a step's column is one more than the furthest step it needs."""
    column: dict[str, int] = {}

    def depth(step_id: str) -> int:
        if step_id not in column:
            needs = pipeline.steps[step_id].needs
            column[step_id] = 1 + max((depth(n) for n in needs), default=-1)
        return column[step_id]

    rows: dict[int, int] = {}
    placed: dict[str, tuple[int, int]] = {}
    for step_id in pipeline.steps:
        x = depth(step_id)
        placed[step_id] = (x, rows.get(x, 0))
        rows[x] = rows.get(x, 0) + 1
    return placed


def figure(pipeline: Pipeline) -> Any:
    """The steps as boxes, left to right, with an arrow for every `needs`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.patches import FancyBboxPatch

    placed = _layout(pipeline)
    columns = 1 + max(x for x, _ in placed.values())
    rows = 1 + max(y for _, y in placed.values())
    drawing, axes = pyplot.subplots(figsize=(2.8 * columns + 0.6, 1.3 * rows + 1.0))
    width, height = 2.2, 0.8

    def centre(step_id: str) -> tuple[float, float]:
        x, y = placed[step_id]
        return 2.8 * x + width / 2, -1.3 * y

    for step_id, step in pipeline.steps.items():
        cx, cy = centre(step_id)
        box = FancyBboxPatch(
            (cx - width / 2, cy - height / 2),
            width,
            height,
            boxstyle="round,pad=0.05",
            facecolor="white",
            edgecolor=KIND_COLOUR[step.kind],
            linewidth=1.6,
            linestyle="--" if step.external else "-",
        )
        axes.add_patch(box)
        axes.text(cx, cy + 0.12, step_id, ha="center", va="center", fontsize=9, fontweight="bold")
        axes.text(
            cx, cy - 0.17, describe(step), ha="center", va="center", fontsize=7, color=KIND_COLOUR[step.kind]
        )
        for needed in step.needs:
            nx, ny = centre(needed)
            axes.annotate(
                "",
                xy=(cx - width / 2 - 0.05, cy),
                xytext=(nx + width / 2 + 0.05, ny),
                arrowprops={"arrowstyle": "->", "color": "#555555"},
            )
    axes.set_xlim(-0.4, 2.8 * columns)
    axes.set_ylim(-1.3 * rows + 0.5, 0.9)
    axes.axis("off")
    axes.set_title(
        f"pipeline {pipeline.pipeline}  (solid: this stack's, dashed: another stack's)", fontsize=9
    )
    drawing.tight_layout()
    return drawing


def write_png(pipeline: Pipeline, path: Path) -> None:
    from matplotlib import pyplot

    drawing = figure(pipeline)
    drawing.savefig(path, dpi=110)
    pyplot.close(drawing)


def page(pipeline: Pipeline) -> str:
    """A self-contained HTML page: the graph (inline SVG) and a table of the steps."""
    from matplotlib import pyplot

    drawing = figure(pipeline)
    buffer = io.StringIO()
    drawing.savefig(buffer, format="svg")
    pyplot.close(drawing)
    svg = buffer.getvalue()
    svg = svg[svg.find("<svg") :]
    rows = "".join(
        f"<tr><td>{html.escape(step_id)}</td><td>{html.escape(describe(step))}</td>"
        f"<td>{html.escape(', '.join(step.needs) or '-')}</td>"
        f"<td>{html.escape(' '.join(f'{k}={v}' for k, v in step.args.items()) or '-')}</td></tr>"
        for step_id, step in pipeline.steps.items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>gluerelay pipeline {html.escape(pipeline.pipeline)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
</style></head><body>
<h1>pipeline {html.escape(pipeline.pipeline)}</h1>
<p>{html.escape(pipeline.description)}</p>
{svg}
<table><tr><th>step</th><th>runs</th><th>needs</th><th>arguments</th></tr>{rows}</table>
</body></html>
"""
