"""tracemalloc diagnosis: a function that really leaks must come out as the top site.

The injected `sleep` is where the workload runs, between the two snapshots, so the
tests wait for nothing and the leak happens exactly inside the interval.
"""

from __future__ import annotations

import threading
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest

from memalert.engine.allocations.attribution import (
    SITE_GROWTH_METRIC,
    SiteGrowth,
    diagnose,
    diagnose_in_background,
    site_growth,
    site_growth_samples,
)
from memalert.engine.core.model import Labels

WAIT = 30.0
LEAKED: list[bytes] = []


def leak(_seconds: float) -> None:
    # bytes(n) is a new object each time; b"x" * 1000 would be one folded constant.
    for _ in range(2000):
        LEAKED.append(bytes(1000))  # noqa: PERF401  # the leak


def line_of(marker: str) -> str:
    for number, line in enumerate(Path(__file__).read_text().splitlines(), start=1):
        if line.rstrip().endswith(f"# {marker}"):
            return f"{__file__}:{number}"
    raise AssertionError(f"no line marked {marker!r}")


LEAK_SITE = line_of("the leak")


@pytest.fixture(autouse=True)
def clean_state() -> object:
    LEAKED.clear()
    was_tracing = tracemalloc.is_tracing()
    yield None
    LEAKED.clear()
    assert tracemalloc.is_tracing() == was_tracing, "a test left tracemalloc in another state"


def test_leaking_line_is_the_top_site() -> None:
    growth = diagnose(0.5, sleep=leak)
    assert growth[0].site == LEAK_SITE
    top = growth[0]
    assert top.traceback[0] == LEAK_SITE
    assert any("test_attribution.py" in frame for frame in top.traceback[1:])
    assert top.size_diff_bytes >= 2000 * 1000
    assert top.count_diff >= 2000
    assert all(g.size_diff_bytes > 0 for g in growth)
    assert [g.size_diff_bytes for g in growth] == sorted(
        (g.size_diff_bytes for g in growth), reverse=True
    )


def test_memory_freed_between_snapshots_is_not_growth() -> None:
    tracemalloc.start(5)
    try:
        leak(0.0)
        before = tracemalloc.take_snapshot()
        LEAKED.clear()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert LEAK_SITE not in {g.site for g in site_growth(before, after)}


def test_tracemalloc_is_off_again_afterwards() -> None:
    assert not tracemalloc.is_tracing()
    diagnose(timedelta(seconds=1), sleep=leak)
    assert not tracemalloc.is_tracing()


def test_tracemalloc_that_was_on_stays_on_with_its_depth() -> None:
    tracemalloc.start(3)
    try:
        growth = diagnose(1.0, sleep=leak, frames=25)
        assert tracemalloc.is_tracing()
        assert tracemalloc.get_traceback_limit() == 3
        assert growth[0].site == LEAK_SITE
        assert len(growth[0].traceback) <= 3
    finally:
        tracemalloc.stop()


def test_tracemalloc_is_restored_when_the_interval_fails() -> None:
    def broken_sleep(_seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        diagnose(1.0, sleep=broken_sleep)
    assert not tracemalloc.is_tracing()


def test_top_limits_the_sites() -> None:
    def leak_at_three_sites(_seconds: float) -> None:
        LEAKED.extend(bytes(500) for _ in range(300))
        LEAKED.extend(bytes(500) for _ in range(200))
        LEAKED.extend(bytes(500) for _ in range(100))

    assert len(diagnose(1.0, top=2, sleep=leak_at_three_sites)) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": -1.0}, "non-negative duration"),
        ({"interval": 1.0, "top": 0}, "top must be at least 1"),
        ({"interval": 1.0, "frames": 0}, "frames must be 1..65535"),
    ],
)
def test_bad_arguments_are_rejected_before_tracing(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        diagnose(**kwargs)  # type: ignore[arg-type]
    assert not tracemalloc.is_tracing()


def test_site_growth_of_two_snapshots_sums_call_paths() -> None:
    def allocate(count: int) -> None:
        LEAKED.extend(bytes(800) for _ in range(count))  # shared site

    tracemalloc.start(5)
    try:
        before = tracemalloc.take_snapshot()
        allocate(100)  # one call path
        for _ in range(1):
            allocate(100)  # another call path
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    top = site_growth(before, after, top=1)[0]
    assert top.site == line_of("shared site")
    assert top.count_diff >= 200


def test_samples_carry_target_and_site() -> None:
    growth = [
        SiteGrowth(site="app.py:12", size_diff_bytes=4096, count_diff=4, traceback=("app.py:12",)),
        SiteGrowth(site="lib.py:3", size_diff_bytes=100, count_diff=1, traceback=("lib.py:3",)),
    ]
    samples = site_growth_samples(growth, target="memalert", ts=10.0)
    assert [(s.metric, s.labels, s.value, s.ts) for s in samples] == [
        (SITE_GROWTH_METRIC, Labels(target="memalert", site="app.py:12"), 4096.0, 10.0),
        (SITE_GROWTH_METRIC, Labels(target="memalert", site="lib.py:3"), 100.0, 10.0),
    ]


# -- in the background ---------------------------------------------------------------


def test_background_diagnosis_calls_back_with_the_leak() -> None:
    results: list[list[SiteGrowth]] = []
    done = threading.Event()

    def on_result(growth: list[SiteGrowth]) -> None:
        results.append(growth)
        done.set()

    thread = diagnose_in_background(1.0, on_result=on_result, sleep=leak)
    assert thread is not None
    assert done.wait(WAIT)
    thread.join(WAIT)
    assert results[0][0].site == LEAK_SITE


def test_only_one_diagnosis_runs_at_a_time() -> None:
    gate = threading.Event()
    finished = threading.Event()
    first = diagnose_in_background(
        1.0, on_result=lambda _: finished.set(), sleep=lambda _: gate.wait(WAIT)
    )
    try:
        assert first is not None
        assert diagnose_in_background(1.0, on_result=lambda _: None) is None
    finally:
        gate.set()
    assert finished.wait(WAIT)
    assert first is not None
    first.join(WAIT)
    # Free again once the first is done.
    assert diagnose(0.0, sleep=leak)[0].site == LEAK_SITE


def test_background_failure_goes_to_on_error_and_frees_the_slot() -> None:
    errors: list[Exception] = []
    failed = threading.Event()

    def broken_sleep(_seconds: float) -> None:
        raise RuntimeError("interval interrupted")

    def on_error(exc: Exception) -> None:
        errors.append(exc)
        failed.set()

    thread = diagnose_in_background(
        1.0, on_result=lambda _: None, on_error=on_error, sleep=broken_sleep
    )
    assert thread is not None
    assert failed.wait(WAIT)
    thread.join(WAIT)
    assert str(errors[0]) == "interval interrupted"
    assert not tracemalloc.is_tracing()
    assert diagnose(0.0, sleep=leak)[0].site == LEAK_SITE
