"""From `needs` to the workflow Step Functions runs: every need kept; for series-parallel graphs, no more."""

from __future__ import annotations

import random

import pytest

from gluerelay.pipelines.graph import (
    Parallel,
    Sequence,
    Task,
    finished_before,
    steps_of,
    waits_beyond_needs,
    workflow,
)


def ancestors(needs: dict[str, list[str]], step: str) -> set[str]:
    found: set[str] = set()
    stack = list(needs[step])
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack += needs[current]
    return found


def test_a_chain_is_a_sequence() -> None:
    needs = {"a": [], "b": ["a"], "c": ["b"]}
    assert workflow(needs) == Sequence((Task("a"), Task("b"), Task("c")))


def test_fan_out_and_fan_in_is_a_parallel_between_steps() -> None:
    needs = {"lines": [], "headers": [], "crawl": ["lines", "headers"], "cleanse": ["crawl"]}
    assert workflow(needs) == Sequence(
        (Parallel((Task("lines"), Task("headers"))), Task("crawl"), Task("cleanse"))
    )


def test_independent_chains_run_side_by_side_each_in_order() -> None:
    needs = {"a1": [], "a2": ["a1"], "b1": [], "b2": ["b1"], "b3": ["b2"]}
    assert workflow(needs) == Parallel(
        (Sequence((Task("a1"), Task("a2"))), Sequence((Task("b1"), Task("b2"), Task("b3"))))
    )
    assert waits_beyond_needs(needs, workflow(needs)) == {}


def test_a_graph_that_is_not_series_parallel_runs_in_layers_and_says_who_waits_more() -> None:
    # a -> c <- b -> d : c needs a and b, d needs only b
    needs = {"a": [], "b": [], "c": ["a", "b"], "d": ["b"]}
    graph = workflow(needs)
    assert sorted(steps_of(graph)) == ["a", "b", "c", "d"]
    assert waits_beyond_needs(needs, graph) == {"d": {"a"}}


def random_dag(rng: random.Random, size: int) -> dict[str, list[str]]:
    names = [f"s{i}" for i in range(size)]
    return {
        name: [other for other in names[:index] if rng.random() < 0.3] for index, name in enumerate(names)
    }


@pytest.mark.parametrize("seed", range(200))
def test_every_step_starts_after_everything_it_needs(seed: int) -> None:
    rng = random.Random(seed)
    needs = random_dag(rng, rng.randint(1, 9))
    graph = workflow(needs)
    assert sorted(steps_of(graph)) == sorted(needs)  # each step exactly once
    before = finished_before(graph)
    for step in needs:
        assert ancestors(needs, step) <= before[step], (needs, graph)


def series_parallel(
    rng: random.Random, depth: int, counter: list[int]
) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """A random series-parallel graph: (needs, its sources, its sinks)."""
    if depth == 0 or rng.random() < 0.3:
        counter[0] += 1
        name = f"t{counter[0]}"
        return {name: []}, [name], [name]
    left = series_parallel(rng, depth - 1, counter)
    right = series_parallel(rng, depth - 1, counter)
    if rng.random() < 0.5:  # in parallel
        return {**left[0], **right[0]}, left[1] + right[1], left[2] + right[2]
    needs = {**left[0], **right[0]}
    for source in right[1]:  # in series: every source of the right needs every sink of the left
        needs[source] = [*needs[source], *left[2]]
    return needs, left[1], right[2]


@pytest.mark.parametrize("seed", range(200))
def test_a_series_parallel_graph_waits_for_exactly_what_it_needs(seed: int) -> None:
    needs, _, _ = series_parallel(random.Random(seed), 4, [0])
    graph = workflow(needs)
    assert waits_beyond_needs(needs, graph) == {}, (needs, graph)
