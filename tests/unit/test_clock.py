"""The local cloud's clock: a fast rate shortens every emulated wait; advance cuts a wait short."""

from __future__ import annotations

import threading
import time

import pytest

from gluerelay.local.clock import Clock


def test_a_fast_clock_sleeps_its_seconds_in_a_fraction_of_real_time() -> None:
    clock = Clock(rate=50)
    began_real, began_clock = time.monotonic(), clock.now()
    assert clock.sleep(10) is False
    assert clock.now() - began_clock >= 10
    assert time.monotonic() - began_real < 5  # 10 clock seconds at 50x are 0.2 s; a real sleep would be 10


def test_advancing_the_clock_ends_a_sleep_and_an_interrupt_is_reported() -> None:
    clock = Clock()
    woke = threading.Event()

    def sleep_an_hour() -> None:
        clock.sleep(3600)
        woke.set()

    sleeper = threading.Thread(target=sleep_an_hour)
    sleeper.start()
    clock.advance(3600)
    assert woke.wait(5)
    stop = threading.Event()
    stop.set()
    assert clock.sleep(3600, stop) is True


def test_a_clock_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        Clock(rate=0)
