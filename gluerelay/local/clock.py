"""The local cloud's clock: wall time plus whatever a test has moved it forward by.

Schedules (EventBridge rate() rules) and CloudWatch's alarm evaluation run on this clock, so a test can
let an hour pass in a call (`cloud.clock.advance(3600)`): every schedule tick that falls due fires, in
order, and alarms are evaluated at the new time. Without advancing, the clock follows the wall clock and a
`rate(5 minutes)` rule fires every five real minutes, as `gluerelay local up` needs.

A clock may also run faster than the wall clock (`rate`, clock seconds per real second): every wait that
emulates AWS time (a Wait state, Glue's job start delay and minimum durations, schedules, timeouts) then
passes `rate` times sooner, while code (handlers, Glue scripts) runs at its real speed. Benchmarks use it
to emulate minute-long steps in seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger(__name__)
CHECK_SECONDS = 0.25  # how soon a sleeper notices that the clock was advanced past its deadline


@dataclass
class _Timer:
    name: str
    period: float
    action: Callable[[float], object]  # called with the tick's own time (its due time on this clock)
    catch_up: bool
    due: float


@dataclass
class Clock:
    """Time for schedules and alarms, and the thread that runs what falls due."""

    offset: float = 0.0
    rate: float = 1.0
    timers: list[_Timer] = field(default_factory=list)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _running: threading.Lock = field(default_factory=threading.Lock)
    _stop: bool = False
    _thread: threading.Thread | None = None
    _origin: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"the clock's rate must be positive, not {self.rate}")

    def now(self) -> float:
        real = time.time()
        return self._origin + (real - self._origin) * self.rate + self.offset

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of clock time take on the wall clock (without an advance)."""
        return seconds / self.rate

    def sleep(self, seconds: float, interrupt: threading.Event | None = None) -> bool:
        """Wait `seconds` of clock time (cut short by `advance`); True when `interrupt` was set first."""
        deadline = self.now() + seconds
        while (left := deadline - self.now()) > 0:
            step = min(self.real_seconds(left), CHECK_SECONDS)
            if interrupt is not None:
                if interrupt.wait(step):
                    return True
            else:
                with self._wake:
                    self._wake.wait(step)
        return interrupt is not None and interrupt.is_set()

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def every(self, name: str, period: float, action: Callable[[float], object], *, catch_up: bool) -> None:
        """Run `action(tick)` every `period` clock seconds, the first time one period from now; `tick` is the
        time the run was due (a schedule's event carries it, as EventBridge's Scheduled Event does).

        `catch_up` timers run once per period that passed (a schedule that missed two ticks fires twice,
        each with its own time); others run once however much time passed (an evaluation only needs the
        latest state).
        """
        if period <= 0:
            raise ValueError(f"timer {name}: period must be positive, not {period}")
        with self._wake:
            self.timers.append(_Timer(name, period, action, catch_up, self.now() + period))
            self._wake.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="local-clock")
            self._thread.start()

    def advance(self, seconds: float) -> None:
        """Move time forward; everything that falls due has run (or been started) when this returns."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._wake:
            self.offset += seconds
            self._wake.notify_all()
        self.run_due()

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def run_due(self) -> None:
        """Run every timer that is due, oldest tick first (one caller at a time)."""
        with self._running:
            while True:
                with self._wake:
                    now = self.now()
                    due = [t for t in self.timers if t.due <= now]
                    if not due:
                        return
                    timer = min(due, key=lambda t: t.due)
                    tick = timer.due
                    timer.due = timer.due + timer.period if timer.catch_up else now + timer.period
                try:
                    timer.action(tick)
                except Exception:  # a failing timer must not stop the clock; it runs again next period
                    log.exception("local clock: %s failed", timer.name)

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stop:
                    return
                wait = min((t.due for t in self.timers), default=self.now() + 1) - self.now()
                if wait > 0:
                    self._wake.wait(min(self.real_seconds(wait), 1.0))
                if self._stop:
                    return
            self.run_due()
