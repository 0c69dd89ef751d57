"""A pipeline's steps as a workflow: steps in sequence and groups of branches that run at once.

Step Functions runs a sequence of states and Parallel states (branches that all finish before the next
state), so the `needs` graph becomes a nesting of sequences and parallels. Parts that share no `needs` run in
parallel; a part whose steps fall into groups, each group entirely before or after each other, runs as a
sequence of those groups (the groups are the connected parts of "neither needs the other, even
indirectly"). For these (series-parallel) graphs the workflow is exact: a step waits for exactly the steps
it needs, directly or not. Any other graph (one with an N shape: c needs a and b, d needs only b) is run in
layers, the steps that need nothing in their part first: every `needs` is kept, but a step may wait for
one it does not need; `waits_beyond_needs` says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    step: str


@dataclass(frozen=True)
class Sequence:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Parallel:
    branches: tuple[Node, ...]


Node = Task | Sequence | Parallel


def workflow(needs: Mapping[str, Iterable[str]]) -> Node:
    """The workflow of an acyclic `needs` graph (step -> the steps it needs), in a stable order."""
    edges = {step: set(needed) for step, needed in needs.items()}
    order = _topological(edges)
    return _build(order, edges)


def _topological(edges: dict[str, set[str]]) -> list[str]:
    """Steps in dependency order; ties keep the order the pipeline file lists them."""
    listed = list(edges)
    placed: list[str] = []
    done: set[str] = set()
    while len(placed) < len(listed):
        ready = next(s for s in listed if s not in done and edges[s] <= done)
        placed.append(ready)
        done.add(ready)
    return placed


def _build(nodes: list[str], edges: dict[str, set[str]]) -> Node:
    if len(nodes) == 1:
        return Task(nodes[0])
    inside = {n: edges[n] & set(nodes) for n in nodes}
    parts = _components(nodes, inside)
    if len(parts) > 1:
        return Parallel(tuple(_build(part, edges) for part in parts))
    before = _reach(nodes, inside)
    unordered = {n: {m for m in nodes if m != n and m not in before[n] and n not in before[m]} for n in nodes}
    groups = _components(nodes, unordered)
    if len(groups) > 1:  # each group is wholly before or after each other, in the order of their first steps
        return _sequence([_build(group, edges) for group in groups])
    # Not series-parallel: the steps needing nothing here first, then the rest.
    first = [n for n in nodes if not inside[n]]
    rest = [n for n in nodes if inside[n]]
    return _sequence([_build(first, edges), _build(rest, edges)])


def _sequence(items: list[Node]) -> Node:
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, Sequence) else (item,))
    return flat[0] if len(flat) == 1 else Sequence(tuple(flat))


def _components(nodes: list[str], inside: dict[str, set[str]]) -> list[list[str]]:
    """Connected parts (edges taken both ways), each in the given order, ordered by their first step."""
    neighbours: dict[str, set[str]] = {n: set(inside[n]) for n in nodes}
    for n in nodes:
        for m in inside[n]:
            neighbours[m].add(n)
    seen: set[str] = set()
    parts: list[list[str]] = []
    for start in nodes:
        if start in seen:
            continue
        found = {start}
        frontier = [start]
        while frontier:
            for m in neighbours[frontier.pop()]:
                if m not in found:
                    found.add(m)
                    frontier.append(m)
        seen |= found
        parts.append([n for n in nodes if n in found])
    return parts


def _reach(nodes: list[str], edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """For each node, every node reachable along `edges` (not the node itself)."""
    reach: dict[str, set[str]] = {}

    def visit(node: str) -> set[str]:
        if node not in reach:
            reach[node] = set()
            found: set[str] = set()
            for m in edges[node]:
                found |= {m} | visit(m)
            reach[node] = found
        return reach[node]

    for n in nodes:
        visit(n)
    return reach


def steps_of(node: Node) -> list[str]:
    if isinstance(node, Task):
        return [node.step]
    children = node.items if isinstance(node, Sequence) else node.branches
    return [step for child in children for step in steps_of(child)]


def finished_before(node: Node) -> dict[str, set[str]]:
    """For each step, the steps the workflow guarantees have finished when it starts."""
    found: dict[str, set[str]] = {}

    def walk(current: Node, done: set[str]) -> None:
        if isinstance(current, Task):
            found[current.step] = set(done)
        elif isinstance(current, Sequence):
            so_far = set(done)
            for item in current.items:
                walk(item, so_far)
                so_far |= set(steps_of(item))
        else:
            for branch in current.branches:
                walk(branch, done)

    walk(node, set())
    return found


def waits_beyond_needs(needs: Mapping[str, Iterable[str]], node: Node) -> dict[str, set[str]]:
    """Steps the workflow makes wait for steps they do not need, even indirectly (in a layered graph)."""
    edges = {step: set(needed) for step, needed in needs.items()}
    ancestors = _reach(list(edges), edges)
    return {
        step: extra for step, before in finished_before(node).items() if (extra := before - ancestors[step])
    }
