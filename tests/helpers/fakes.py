"""Fakes the unit tests hand to the Coder services instead of time itself."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock whose sleep only moves it on: pass ``clock`` as the clock and ``clock.sleep`` as the sleep."""

    def __init__(self, now: float = 0.0):
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
