"""What the local cloud remembers about itself (log lines, invocations, deliveries, Glue runs), in bounded
memory.

`gluerelay local up` may run for days: a list that gains an entry per log line grows without end. A
journal keeps the newest `limit` entries and counts every one ever appended, so a reader's cursor (an
index taken from `len()`) stays meaningful after older entries are dropped: `journal[cursor:]` is what was
appended since, as far as it is still held.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar, overload

T = TypeVar("T")
DEFAULT_LIMIT = 100_000


class Journal(Generic[T]):
    """Append-only and bounded. Indexes are absolute (0 is the first entry ever appended); `len()` counts
    every entry appended; iteration and slices give the entries still held."""

    def __init__(self, items: Iterable[T] = (), limit: int = DEFAULT_LIMIT) -> None:
        if limit <= 0:
            raise ValueError(f"a journal's limit must be positive, not {limit}")
        self.limit = limit
        self._items: deque[T] = deque(maxlen=limit)
        self._appended = 0
        self._lock = threading.Lock()
        for item in items:
            self.append(item)

    def append(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            self._appended += 1

    @property
    def dropped(self) -> int:
        """Entries appended and no longer held."""
        return self._appended - len(self._items)

    def __len__(self) -> int:
        return self._appended

    def __iter__(self) -> Iterator[T]:
        with self._lock:
            return iter(list(self._items))

    def __bool__(self) -> bool:
        return self._appended > 0

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        with self._lock:
            held = list(self._items)
            first = self._appended - len(held)  # the absolute index of held[0]
        if isinstance(index, slice):
            start, stop, step = index.indices(self._appended)
            if step < 0:
                return [held[i - first] for i in range(start, stop, step) if i >= first]
            return held[max(start, first) - first : max(stop, first) - first : step]
        absolute = index + self._appended if index < 0 else index
        if not first <= absolute < self._appended:
            raise IndexError(f"entry {index} is not held (held: {first}..{self._appended - 1})")
        return held[absolute - first]
