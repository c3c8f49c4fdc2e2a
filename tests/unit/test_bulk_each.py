"""bulk.each: the store client's calls side by side (pure logic, no store)."""

from __future__ import annotations

import threading

import pytest

from zkml_dvc.bulk import ONE_BY_ONE, each


def test_small_calls_run_side_by_side_and_results_keep_their_order() -> None:
    gate = threading.Barrier(8, timeout=10)  # breaks unless eight calls wait at once

    def call(i: int) -> int:
        gate.wait()
        return i * i

    assert each([(100, lambda i=i: call(i)) for i in range(16)]) == [i * i for i in range(16)]


def test_large_calls_run_one_at_a_time_after_the_small_ones() -> None:
    running: list[int] = []
    order: list[str] = []
    lock = threading.Lock()

    def call(name: str) -> str:
        with lock:
            running.append(1)
            assert len(running) == 1 or not name.startswith("large"), "two large ones at once"
            order.append(name)
        with lock:
            running.pop()
        return name

    calls = [(ONE_BY_ONE, lambda: call("large-a")), (10, lambda: call("small-a")),
             (ONE_BY_ONE * 2, lambda: call("large-b")), (10, lambda: call("small-b"))]
    assert each(calls) == ["large-a", "small-a", "large-b", "small-b"]
    assert order[2:] == ["large-a", "large-b"]


def test_a_failure_is_raised_after_the_small_ones_end_and_before_any_large_one() -> None:
    done: list[str] = []

    def fail() -> None:
        raise ValueError("boom")

    def ok(name: str) -> None:
        done.append(name)

    with pytest.raises(ValueError, match="boom"):
        each([(10, fail), (10, lambda: ok("small")), (ONE_BY_ONE, lambda: ok("large"))])
    assert done == ["small"]
