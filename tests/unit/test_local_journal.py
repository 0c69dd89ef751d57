"""The local cloud's journals: bounded, with cursors that survive dropped entries."""

from __future__ import annotations

import pytest

from gluerelay.local.journal import Journal


def test_a_journal_holds_only_its_newest_entries_and_counts_them_all() -> None:
    journal = Journal(range(25), limit=10)

    assert len(journal) == 25
    assert journal.dropped == 15
    assert list(journal) == list(range(15, 25))
    assert journal[-1] == 24
    assert journal[15] == 15
    with pytest.raises(IndexError, match="entry 3 is not held"):
        journal[3]


def test_a_cursor_taken_before_entries_were_dropped_reads_what_is_still_held() -> None:
    journal: Journal[int] = Journal(limit=10)
    cursor = len(journal)
    for value in range(8):
        journal.append(value)
    later = len(journal)
    for value in range(8, 30):
        journal.append(value)

    assert journal[cursor:] == list(range(20, 30))  # the first 20 were dropped
    assert journal[later:] == list(range(20, 30))
    assert journal[27:] == [27, 28, 29]
    assert journal[::-1] == list(range(29, 19, -1))
    assert journal[len(journal) :] == []


def test_memory_stays_bounded_however_much_is_appended() -> None:
    journal: Journal[bytes] = Journal(limit=100)
    for _ in range(100_000):
        journal.append(b"x" * 100)

    assert len(list(journal)) == 100
    assert len(journal) == 100_000


def test_a_journal_without_room_is_refused() -> None:
    with pytest.raises(ValueError, match="limit must be positive"):
        Journal(limit=0)
