"""Races made certain: hold chosen DynamoDB writes until all their racers have arrived.

On AWS two copies of one event run in overlapping Lambda invocations whenever EventBridge delivers them
close together: both read a step as OPEN, both try to decide it, and only the conditional write keeps the
decision single. Locally the copies may as well run one after the other, the second reading what the first
wrote, and a test of the condition would pass without it. A barrier holds every write it matches until
`parties` writes of the same group (for example one step's item) have arrived, then lets them all go
together: each racer has done its reads before any of them writes.

A group that never fills is released when `timeout` real seconds have passed since its first write (a
deadline, not a pace: the racers normally arrive within a second), and the barrier records it, so a test
can fail saying which race did not happen instead of passing without it.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from moto.dynamodb import models as dynamodb_models

_plain = TypeDeserializer().deserialize
_WRITES = ("update_item", "put_item")


@dataclass(frozen=True)
class Write:
    """One DynamoDB write as a barrier sees it: plain Python values, not DynamoDB JSON."""

    operation: str  # update_item or put_item
    table: str
    key: dict[str, Any]  # the item's key (put_item: the whole item)
    values: dict[str, Any]  # ExpressionAttributeValues (put_item: the item)
    expression: str = ""  # the UpdateExpression (put_item: none)


@dataclass
class _Group:
    arrived: int = 0
    full: threading.Event = field(default_factory=threading.Event)


@dataclass
class Barrier:
    """Hold matching writes until `parties` of one group have arrived. `match` names a write's group (None:
    the write is not held)."""

    match: Callable[[Write], str | None]
    parties: int
    timeout: float = 120.0
    unfilled: list[str] = field(default_factory=list)  # groups released by the deadline, not by the racers
    _groups: dict[str, _Group] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def groups(self) -> dict[str, int]:
        """Group -> writes that arrived."""
        with self._lock:
            return {name: group.arrived for name, group in self._groups.items()}

    def wait(self, write: Write) -> None:
        name = self.match(write)
        if name is None:
            return
        with self._lock:
            group = self._groups.setdefault(name, _Group())
            group.arrived += 1
            if group.arrived >= self.parties:
                group.full.set()
        if not group.full.wait(self.timeout):
            with self._lock:
                if not group.full.is_set():
                    group.full.set()  # release the rest of the group at once
                    self.unfilled.append(name)


def _write(operation: str, bound: inspect.BoundArguments) -> Write:
    args = bound.arguments
    if operation == "put_item":
        item = {k: _plain(v) for k, v in (args.get("item_attrs") or {}).items()}
        return Write(operation, str(args["table_name"]), item, item)
    return Write(
        operation,
        str(args["table_name"]),
        {k: _plain(v) for k, v in (args.get("key") or {}).items()},
        {k: _plain(v) for k, v in (args.get("expression_attribute_values") or {}).items()},
        str(args.get("update_expression") or ""),
    )


def _held(barrier: Barrier, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def held(self: Any, *args: Any, **kwargs: Any) -> Any:
        barrier.wait(_write(name, signature.bind(self, *args, **kwargs)))
        return original(self, *args, **kwargs)

    return held


@contextmanager
def holding(barrier: Barrier) -> Iterator[Barrier]:
    """Hold the DynamoDB writes `barrier` matches, for every client of the local cloud (the in-process
    tooling and the functions' processes alike), while the block runs."""
    backend = dynamodb_models.DynamoDBBackend
    saved = {name: backend.__dict__[name] for name in _WRITES}
    for name, original in saved.items():
        setattr(backend, name, _held(barrier, name, original))
    try:
        yield barrier
    finally:
        for name, original in saved.items():
            setattr(backend, name, original)
