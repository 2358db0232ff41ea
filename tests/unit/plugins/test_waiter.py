"""module_utils/waiter.py: the one poll loop of the Coder services (import jobs, workspace builds, agents)."""

from __future__ import annotations

import pytest
from ansible_collections.coderstack.platform.plugins.module_utils.waiter import AGAIN, poll
from helpers.fakes import FakeClock as Clock


def test_reads_until_the_check_decides_with_a_growing_capped_delay():
    clock, reads = Clock(), iter(range(10))
    seen = []

    def check(obj, waited):
        seen.append((obj, waited))
        return obj * 10 if obj == 5 else AGAIN

    assert poll(lambda: next(reads), check, clock.sleep, clock, delay=0.5, max_delay=1.0, factor=1.5) == 50
    assert clock.sleeps == [0.5, 0.75, 1.0, 1.0, 1.0]
    assert [o for o, _ in seen] == [0, 1, 2, 3, 4, 5]
    assert seen[-1][1] == pytest.approx(sum(clock.sleeps))  # the seconds waited, by the caller's clock


def test_a_first_object_is_checked_before_any_read_and_none_is_a_verdict():
    clock = Clock()

    def no_read():
        raise AssertionError("read although the first object decided")

    assert poll(no_read, lambda obj, waited: None, clock.sleep, clock, first={"id": 1}) is None
    assert clock.sleeps == []


def test_the_check_raises_its_own_timeout():
    clock = Clock()

    def check(obj, waited):
        if waited > 3:
            raise TimeoutError(f"still {obj} after {waited:.0f}s")
        return AGAIN

    with pytest.raises(TimeoutError, match="still busy after 4s"):
        poll(lambda: "busy", check, clock.sleep, clock, delay=1.0, max_delay=1.0)
