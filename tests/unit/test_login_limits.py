"""The failed-login buckets on their own, with a clock the test moves."""

from __future__ import annotations

import pytest

from amebo.api.login_limits import WINDOW, LoginLimits, TooManyFailedLogins


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_is_per_name_and_refills_over_the_window() -> None:
    clock = Clock()
    limits = LoginLimits(per_name=10, per_address=1000, clock=clock)
    for _ in range(10):
        limits.check("shop", "10.0.0.1")
        limits.failed("shop", "10.0.0.1")
    with pytest.raises(TooManyFailedLogins) as refused:
        limits.check("shop", "10.0.0.2")  # another address does not help
    assert refused.value.retry_after == WINDOW / 10
    limits.check("billing", "10.0.0.1")  # another name is not limited
    clock.now += WINDOW / 10
    limits.check("shop", "10.0.0.1")  # one failure's worth has come back
    limits.failed("shop", "10.0.0.1")
    with pytest.raises(TooManyFailedLogins):
        limits.check("shop", "10.0.0.1")
    clock.now += WINDOW
    for _ in range(10):  # a full window later, the whole bucket is back, and no more
        limits.check("shop", "10.0.0.1")
        limits.failed("shop", "10.0.0.1")
    with pytest.raises(TooManyFailedLogins):
        limits.check("shop", "10.0.0.1")


def test_the_limit_is_per_address_across_names() -> None:
    limits = LoginLimits(per_name=10, per_address=3, clock=Clock())
    for n in range(3):
        limits.check(f"name{n}", "10.0.0.1")
        limits.failed(f"name{n}", "10.0.0.1")
    with pytest.raises(TooManyFailedLogins) as refused:
        limits.check("a-new-name", "10.0.0.1")
    assert refused.value.retry_after == WINDOW / 3
    limits.check("a-new-name", "10.0.0.2")


def test_memory_is_bounded_and_forgets_the_longest_quiet_first() -> None:
    limits = LoginLimits(per_name=1, per_address=1000, capacity=100, clock=Clock())
    limits.failed("target", None)
    for n in range(99):
        limits.failed(f"spray{n}", None)
    limits.failed("target", None)  # failing again makes it the most recent
    for n in range(99, 150):
        limits.failed(f"spray{n}", None)
    with pytest.raises(TooManyFailedLogins):
        limits.check("target", None)
    limits.check("spray0", None)  # forgotten: evicted to keep within capacity
