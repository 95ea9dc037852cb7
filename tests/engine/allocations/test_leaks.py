"""LeakDetector: what docs/allocation-analysis.md promises, and the seed's flaws, each pinned."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import psutil
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memalert.engine.allocations import records as allocations
from memalert.engine.allocations import stats as allocation_stats
from memalert.engine.allocations.leaks import (
    EXPONENTIAL_MIN_STEPS,
    FREQUENT_LARGE_MIN,
    MANY_SMALL_MIN_LIVE,
    REPEATED_TRACE_MIN,
    LeakDetector,
    PatternKind,
    physical_memory_bytes,
)
from memalert.engine.allocations.stats import RECORD_FIELDS
from memalert.engine.core.model import Labels
from memalert.engine.sources.limits import process_memory_limit
from memalert.engine.testing import FakeClock

if TYPE_CHECKING:
    from pathlib import Path

MIB = 2**20
HOUR = 3600.0


def kinds(detector: LeakDetector, component: str) -> set[PatternKind]:
    return {
        p.kind for p in detector.analyze_leaks().suspicious_patterns if p.component == component
    }


# -- potential leaks -------------------------------------------------------------------


def test_200_mib_allocated_and_never_freed_is_a_leak_of_exactly_that() -> None:
    clock = FakeClock()
    detector = LeakDetector(clock=clock, budget_bytes=2**40)
    for _ in range(200):
        detector.record_allocation("cache", "put", MIB)
        clock.advance(1.0)

    (leak,) = detector.analyze_leaks().potential_leaks

    assert leak.component == "cache"
    assert leak.allocation_count == 200
    assert leak.total_size_bytes == 200 * MIB
    assert leak.average_size_bytes == MIB
    assert leak.first_seen == 1_764_000_000.0
    assert leak.last_seen == 1_764_000_199.0
    assert leak.growth_rate_bytes_per_hour == pytest.approx(200 * MIB / 199 * HOUR)


def test_component_that_frees_everything_is_not_a_leak() -> None:
    clock = FakeClock()
    detector = LeakDetector(clock=clock, budget_bytes=2**40)
    for _ in range(200):
        detector.record_allocation("buffers", "get", MIB)
        clock.advance(1.0)
        detector.record_deallocation("buffers", MIB)

    analysis = detector.analyze_leaks()

    assert analysis.potential_leaks == ()
    assert analysis.growth_rate_mb_per_hour == 0.0
    assert detector.memory_pressure() == 0.0


def test_only_allocating_components_are_sorted_by_outstanding_bytes() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for component, size in [("small", 10), ("big", 1000), ("mid", 100), ("tie", 100)]:
        for _ in range(3):
            detector.record_allocation(component, "alloc", size)

    leaks = detector.analyze_leaks().potential_leaks

    assert [leak.component for leak in leaks] == ["big", "mid", "tie", "small"]
    assert [leak.total_size_bytes for leak in leaks] == [3000, 300, 300, 30]


def test_growth_rate_is_over_the_components_own_span_not_the_detectors_age() -> None:
    # The seed divided by the detector's age, so a young detector saw everything leak.
    clock = FakeClock()
    detector = LeakDetector(clock=clock, budget_bytes=2**40)
    clock.advance(10 * HOUR)  # the detector is old; the component starts now
    for _ in range(11):
        detector.record_allocation("sessions", "open", MIB)
        clock.advance(HOUR / 5)  # 10 MiB more over 2 hours of activity (+ the first MiB)

    (leak,) = detector.analyze_leaks().potential_leaks

    assert leak.last_seen - leak.first_seen == pytest.approx(2 * HOUR)
    assert leak.growth_rate_bytes_per_hour == pytest.approx(11 * MIB / 2)
    analysis = detector.analyze_leaks()
    assert analysis.growth_rate_mb_per_hour == pytest.approx(11 * MIB / 2 / 1e6)


@pytest.mark.parametrize(("span", "rate"), [(59.0, 0.0), (60.0, 2 * MIB * 60.0)])
def test_growth_rate_needs_a_minute_of_history(span: float, rate: float) -> None:
    """A burst shorter than a minute is still a leak, but its per-hour rate would be noise."""
    clock = FakeClock()
    detector = LeakDetector(clock=clock, budget_bytes=2**40)
    detector.record_allocation("burst", "alloc", MIB)
    clock.advance(span)
    detector.record_allocation("burst", "alloc", MIB)

    (leak,) = detector.analyze_leaks().potential_leaks

    assert leak.total_size_bytes == 2 * MIB
    assert leak.growth_rate_bytes_per_hour == pytest.approx(rate)


def test_growth_rate_is_zero_when_every_record_shares_one_instant() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    detector.record_allocation("burst", "alloc", MIB)
    detector.record_allocation("burst", "alloc", MIB)

    (leak,) = detector.analyze_leaks().potential_leaks

    assert leak.growth_rate_bytes_per_hour == 0.0


def test_cache_that_plateaus_after_warm_up_is_not_a_leak() -> None:
    clock = FakeClock()
    detector = LeakDetector(clock=clock, budget_bytes=2**40)
    for _ in range(100):  # warm-up: fills to 100 entries
        detector.record_allocation("cache", "fill", 1024)
        clock.advance(1.0)
    assert [leak.component for leak in detector.analyze_leaks().potential_leaks] == ["cache"]
    for _ in range(1000):  # steady state: evict one, insert one
        detector.record_deallocation("cache", 1024)
        detector.record_allocation("cache", "fill", 1024)
        clock.advance(1.0)

    assert detector.analyze_leaks().potential_leaks == ()
    assert detector.samples("api", clock())[0].value == 100 * 1024  # still holds its cap


def test_partial_leak_that_frees_most_of_what_it_allocates_is_flagged() -> None:
    clock = FakeClock()
    detector = LeakDetector(clock=clock, budget_bytes=2**40)
    for _ in range(1000):
        detector.record_allocation("parser", "parse", 10_000)
        detector.record_deallocation("parser", 9_000)
        clock.advance(1.0)

    (leak,) = detector.analyze_leaks().potential_leaks

    assert leak.total_size_bytes == 1_000_000
    assert leak.growth_rate_bytes_per_hour == pytest.approx(1_000_000 / 999 * HOUR)


def test_leak_verdict_does_not_depend_on_when_analysis_runs() -> None:
    def run(analyse_every: int) -> tuple[str, ...]:
        clock = FakeClock()
        detector = LeakDetector(clock=clock, budget_bytes=2**40)
        for step in range(3000):
            detector.record_allocation("leaky", "a", 100)
            detector.record_allocation("steady", "a", 100)
            if step >= 50:
                detector.record_deallocation("steady", 100)
            clock.advance(1.0)
            if step % analyse_every == 0:
                detector.analyze_leaks()
        return tuple(leak.component for leak in detector.analyze_leaks().potential_leaks)

    assert run(analyse_every=10**9) == run(analyse_every=7) == run(analyse_every=1) == ("leaky",)


# -- suspicious patterns -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        pytest.param([1, 2, 4, 8, 16], True, id="exact-doubling"),
        pytest.param([100, 195, 380, 741, 1445], True, id="about-double"),
        pytest.param([10, 30, 100, 400, 2000, 9000], True, id="more-than-double"),
        pytest.param([100, 150, 225, 337, 506, 759], False, id="x1.5-is-not-exponential"),
        pytest.param([1, 2, 4, 8], False, id="three-steps-are-not-enough"),
        pytest.param([1, 2, 4, 3, 6, 12], False, id="broken-run"),
        pytest.param([0, 0, 0, 0, 0, 0], False, id="zeros"),
    ],
)
def test_exponential_growth(sizes: list[int], expected: bool) -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for size in sizes:
        detector.record_allocation("growing", "resize", size)

    assert (PatternKind.EXPONENTIAL_GROWTH in kinds(detector, "growing")) is expected


def test_exponential_run_is_counted_across_analysis_boundaries() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for size in [1, 2, 4]:
        detector.record_allocation("growing", "resize", size)
    assert PatternKind.EXPONENTIAL_GROWTH not in kinds(detector, "growing")
    for size in [8, 16]:
        detector.record_allocation("growing", "resize", size)

    (pattern,) = detector.analyze_leaks().suspicious_patterns
    assert pattern.kind is PatternKind.EXPONENTIAL_GROWTH
    assert pattern.count == EXPONENTIAL_MIN_STEPS


def test_frees_do_not_break_an_exponential_run() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for size in [1, 2, 4]:
        detector.record_allocation("growing", "resize", size)
        detector.record_deallocation("growing", size)
    detector.analyze_leaks()
    detector.record_deallocation("growing", 1)  # a fold holding frees only
    detector.analyze_leaks()
    for size in [8, 16]:
        detector.record_deallocation("growing", 1)
        detector.record_allocation("growing", "resize", size)

    (pattern,) = detector.analyze_leaks().suspicious_patterns
    assert (pattern.kind, pattern.count) == (PatternKind.EXPONENTIAL_GROWTH, 4)


def test_many_small_allocations_kept_alive() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for _ in range(MANY_SMALL_MIN_LIVE + 500):
        detector.record_allocation("kept", "node", 64)
        detector.record_allocation("freed", "node", 64)
        detector.record_deallocation("freed", 64)

    assert PatternKind.MANY_SMALL_ALLOCATIONS in kinds(detector, "kept")
    assert PatternKind.MANY_SMALL_ALLOCATIONS not in kinds(detector, "freed")


def test_frequent_large_allocations() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for _ in range(FREQUENT_LARGE_MIN):
        detector.record_allocation("images", "decode", MIB)
    for _ in range(FREQUENT_LARGE_MIN - 1):
        detector.record_allocation("rare", "decode", 4 * MIB)
    for _ in range(100):
        detector.record_allocation("almost", "decode", MIB - 1)

    assert PatternKind.FREQUENT_LARGE_ALLOCATIONS in kinds(detector, "images")
    assert PatternKind.FREQUENT_LARGE_ALLOCATIONS not in kinds(detector, "rare")
    assert PatternKind.FREQUENT_LARGE_ALLOCATIONS not in kinds(detector, "almost")


def test_repeated_stack_trace_reports_the_trace() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    frames = ["app.py:10 in handle", "cache.py:42 in put"]
    for _ in range(REPEATED_TRACE_MIN):
        detector.record_allocation("handler", "put", 100, stack_trace=list(frames))
    for _ in range(REPEATED_TRACE_MIN - 1):
        detector.record_allocation("other", "put", 100, stack_trace="x.py:1")

    patterns = detector.analyze_leaks().suspicious_patterns

    (pattern,) = [p for p in patterns if p.kind is PatternKind.REPEATED_STACK_TRACE]
    assert pattern.component == "handler"
    assert pattern.count == REPEATED_TRACE_MIN
    assert pattern.stack_trace == "app.py:10 in handle\ncache.py:42 in put"


def test_repeated_trace_found_among_more_distinct_traces_than_slots() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    # Space-saving finds every trace above 1/TRACE_SLOTS of the traced allocations.
    for round_ in range(40):
        for other in range(allocation_stats.TRACE_SLOTS + 4):
            detector.record_allocation("busy", "op", 8, stack_trace=f"once-{round_}-{other}")
        detector.record_allocation("busy", "op", 8, stack_trace="hot.py:1")
        detector.record_allocation("busy", "op", 8, stack_trace="hot.py:1")
        detector.analyze_leaks()  # fold in many small batches to exercise eviction

    found = [
        p
        for p in detector.analyze_leaks().suspicious_patterns
        if p.kind is PatternKind.REPEATED_STACK_TRACE
    ]
    # Counts reported are guaranteed lower bounds: the one-off traces never qualify.
    assert [p.stack_trace for p in found] == ["hot.py:1"]
    assert REPEATED_TRACE_MIN <= found[0].count <= 80


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.integers(0, 2), st.integers(0, 20)), st.booleans()),
        max_size=400,
    )
)
@example([(0, False), (1, False)] * 20)  # a tie: the first tracked stands
@example([(0, False)] * 12 + [(1, False)] * 11 + [(2 + i % 19, False) for i in range(360)])
def test_repeated_trace_is_the_space_saving_top(steps: list[tuple[int, bool]]) -> None:
    """Whatever the evictions and fold boundaries, the trace reported is the one a
    record-by-record space-saving count puts first (first tracked among equals)."""
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    slots: dict[str, list[int]] = {}  # trace -> [count, error], in tracking order
    for which, analyse in steps:
        trace = f"t{which}"
        detector.record_allocation("c", "op", 8, stack_trace=trace)
        if trace in slots:
            slots[trace][0] += 1
        elif len(slots) < allocation_stats.TRACE_SLOTS:
            slots[trace] = [1, 0]
        else:
            floor = slots.pop(min(slots, key=lambda key: slots[key][0]))[0]
            slots[trace] = [floor + 1, floor]
        if analyse:
            detector.analyze_leaks()

    best: tuple[str | None, int] = (None, 0)
    for trace, (count, error) in slots.items():
        if count - error > best[1]:
            best = (trace, count - error)
    found = [
        (p.stack_trace, p.count)
        for p in detector.analyze_leaks().suspicious_patterns
        if p.kind is PatternKind.REPEATED_STACK_TRACE
    ]
    assert found == ([best] if best[1] >= REPEATED_TRACE_MIN else [])


def test_every_pattern_that_applies_is_reported_for_one_component() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for _ in range(MANY_SMALL_MIN_LIVE):
        detector.record_allocation("everything", "small", 32, stack_trace="loop.py:7")
    for size in [MIB, 2 * MIB, 4 * MIB, 8 * MIB, 16 * MIB]:
        detector.record_allocation("everything", "grow", size)

    assert kinds(detector, "everything") == set(PatternKind)


# -- memory pressure and samples ---------------------------------------------------------


def test_memory_pressure_is_outstanding_bytes_over_budget_in_0_1() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=1000)
    assert detector.memory_pressure() == 0.0
    detector.record_allocation("a", "x", 250)
    assert detector.memory_pressure() == 0.25
    detector.record_allocation("b", "x", 5000)  # a count of allocations never enters it
    assert detector.memory_pressure() == 1.0
    detector.record_deallocation("b", 5000)
    assert detector.memory_pressure() == 0.25


def test_default_budget_is_this_processs_memory_limit() -> None:
    detector = LeakDetector()
    assert 0 < detector.budget_bytes <= psutil.virtual_memory().total
    detector.record_allocation("a", "x", MIB)
    assert 0.0 < detector.memory_pressure() <= 1.0


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("proc_cgroup", "limit_file", "limit_text", "expected"),
    [
        pytest.param("0::/app\n", "app/memory.max", "536870912\n", 512 * MIB, id="v2"),
        pytest.param("0::/app\n", "app/memory.max", "max\n", 8 * 2**30, id="v2-unlimited"),
        pytest.param(
            "4:memory:/app\n",
            "memory/app/memory.limit_in_bytes",
            "268435456\n",
            256 * MIB,
            id="v1",
        ),
        pytest.param(
            "4:memory:/app\n",
            "memory/app/memory.limit_in_bytes",
            "9223372036854771712\n",
            8 * 2**30,
            id="v1-unlimited-sentinel",
        ),
        pytest.param("0::/app\n", "app/memory.max", "garbage\n", 8 * 2**30, id="garbage"),
    ],
)
def test_process_memory_limit_reads_the_cgroup_else_physical_ram(
    tmp_path: Path, proc_cgroup: str, limit_file: str, limit_text: str, expected: int
) -> None:
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    write(proc / str(os.getpid()) / "cgroup", proc_cgroup)
    write(cgroup / limit_file, limit_text)
    usage = "memory.current" if limit_file.endswith("memory.max") else "memory.usage_in_bytes"
    write((cgroup / limit_file).parent / usage, "1000\n")

    assert process_memory_limit(proc, cgroup, physical_bytes=8 * 2**30) == expected


def test_process_memory_limit_without_cgroup_files_is_physical_ram(tmp_path: Path) -> None:
    assert process_memory_limit(tmp_path, tmp_path, physical_bytes=12345) == 12345


def test_samples_are_component_metrics_for_the_rules() -> None:
    clock = FakeClock()
    detector = LeakDetector(clock=clock, budget_bytes=2**40)
    for _ in range(3):
        detector.record_allocation("cache", "put", MIB)
        detector.record_allocation("pool", "get", 100)
        detector.record_deallocation("pool", 100)
        clock.advance(1.0)

    samples = detector.samples("api", 1_764_000_100.0)

    values = {(s.metric, s.labels["component"]): s.value for s in samples}
    assert values == {
        ("component_bytes", "cache"): 3 * MIB,
        ("component_allocations", "cache"): 3,
        ("leak_bytes", "cache"): 3 * MIB,
        ("component_bytes", "pool"): 0,
        ("component_allocations", "pool"): 3,
        ("leak_bytes", "pool"): 0,
    }
    assert {s.labels for s in samples} == {
        Labels(target="api", component="cache"),
        Labels(target="api", component="pool"),
    }
    assert {s.ts for s in samples} == {1_764_000_100.0}


def test_largest_allocations_are_the_top_ten_largest_first() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for size in range(1, 101):
        detector.record_allocation(f"c{size % 7}", f"op{size}", size * 1000)

    largest = detector.analyze_leaks().largest_allocations

    assert [a.size_bytes for a in largest] == [s * 1000 for s in range(100, 90, -1)]
    assert (largest[0].component, largest[0].operation) == ("c2", "op100")


# -- concurrency -------------------------------------------------------------------------


def test_ten_threads_recording_at_once_lose_no_count() -> None:
    detector = LeakDetector(budget_bytes=2**40)
    per_thread = 3 * allocations.FLUSH_EVERY  # several concurrent folds per thread
    start = threading.Barrier(10)

    def record(index: int) -> None:
        start.wait()
        for step in range(per_thread):
            detector.record_allocation(f"c{step % 3}", f"t{index}", 10)
            if step % 2:
                detector.record_deallocation(f"c{step % 3}", 10)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    samples = detector.samples("self", 0.0)
    counts = sum(s.value for s in samples if s.metric == "component_allocations")
    held = sum(s.value for s in samples if s.metric == "component_bytes")
    assert counts == 10 * per_thread
    assert held == 10 * per_thread // 2 * 10
    assert detector.anomalies().over_deallocations == 0


# -- bad input ---------------------------------------------------------------------------


class IndexLike:
    """An int-like that is not an int (as numpy integers are)."""

    def __index__(self) -> int:
        return 4096


@pytest.mark.parametrize(
    ("size", "error", "named"),
    [
        pytest.param(-5, ValueError, "-5", id="negative"),
        pytest.param(1.5, TypeError, "1.5", id="float"),
        pytest.param(1024.0, TypeError, "1024.0", id="integral-float"),
        pytest.param("10", TypeError, "'10'", id="str"),
        pytest.param(True, TypeError, "True", id="bool"),
        pytest.param(None, TypeError, "None", id="none"),
    ],
)
def test_bad_sizes_are_rejected_naming_the_value(
    size: object, error: type[Exception], named: str
) -> None:
    detector = LeakDetector(budget_bytes=1000)
    with pytest.raises(error, match=f"allocation size .*{named}"):
        detector.record_allocation("c", "op", size)  # type: ignore[arg-type]
    with pytest.raises(error, match=f"deallocation size .*{named}"):
        detector.record_deallocation("c", size)  # type: ignore[arg-type]
    assert detector.analyze_leaks().potential_leaks == ()


def test_int_like_sizes_are_accepted() -> None:
    detector = LeakDetector(budget_bytes=10**6)
    detector.record_allocation("c", "op", IndexLike())  # type: ignore[arg-type]
    assert detector.analyze_leaks().potential_leaks[0].total_size_bytes == 4096


@pytest.mark.parametrize(
    ("call", "error", "named"),
    [
        pytest.param(lambda d: d.record_allocation(7, "op", 1), TypeError, "component", id="c"),
        pytest.param(lambda d: d.record_allocation([], "op", 1), TypeError, "component", id="l"),
        pytest.param(lambda d: d.record_allocation("", "op", 1), ValueError, "component", id="e"),
        pytest.param(lambda d: d.record_allocation("c", None, 1), TypeError, "operation", id="o"),
        pytest.param(
            lambda d: d.record_allocation("c", "op", 1, timestamp=float("nan")),
            TypeError,
            "timestamp",
            id="nan",
        ),
        pytest.param(
            lambda d: d.record_allocation("c", "op", 1, timestamp="now"),
            TypeError,
            "timestamp",
            id="ts-str",
        ),
        pytest.param(lambda d: d.record_deallocation(3, 1), TypeError, "component", id="free-c"),
        pytest.param(lambda d: LeakDetector(budget_bytes=0), ValueError, "budget", id="budget"),
    ],
)
def test_bad_names_and_timestamps_are_rejected(
    call: object, error: type[Exception], named: str
) -> None:
    detector = LeakDetector(budget_bytes=1000)
    with pytest.raises(error, match=named):
        call(detector)  # type: ignore[operator]


def test_deallocation_for_an_unknown_component_is_counted_not_raised() -> None:
    detector = LeakDetector(budget_bytes=1000)
    detector.record_deallocation("never-allocated", 100)

    assert detector.anomalies().unknown_component_deallocations == 1
    assert detector.samples("self", 0.0) == []


def test_over_deallocation_clamps_at_zero_and_is_counted() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=1000)
    detector.record_allocation("c", "op", 100)
    detector.record_deallocation("c", 250)
    detector.record_allocation("c", "op", 40)

    anomalies = detector.anomalies()
    assert (anomalies.over_deallocations, anomalies.over_deallocated_bytes) == (1, 150)
    assert detector.samples("self", 0.0)[0].value == 40  # not 100 - 250 + 40
    assert detector.memory_pressure() == 0.04


events = st.lists(
    st.tuples(
        st.booleans(),
        st.integers(0, 3),
        st.one_of(
            st.integers(0, 5000),
            st.sampled_from([MIB, 3 * MIB]),
            st.integers(0, 16).map(lambda exponent: 1 << exponent),  # doubling runs
        ),
        st.booleans(),
        st.integers(0, 100).map(float),  # timestamps, in any order
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(events)
def test_aggregates_equal_a_record_by_record_model(
    steps: list[tuple[bool, int, int, bool, float]],
) -> None:
    """Batch folding (at any fold boundaries) matches a one-record-at-a-time reference."""
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    held: dict[str, int] = {}
    allocated: dict[str, int] = {}
    allocated_bytes: dict[str, int] = {}
    seen: dict[str, list[float]] = {}
    large: dict[str, int] = {}
    last: dict[str, int] = {}
    run: dict[str, int] = {}
    longest: dict[str, int] = {}
    over = 0
    for is_free, which, size, analyse, stamp in steps:
        name = f"c{which}"
        if is_free and name in allocated:
            detector.record_deallocation(name, size)
            over += size > held[name]
            held[name] = max(0, held[name] - size)
        elif not is_free:
            detector.record_allocation(name, "op", size, timestamp=stamp)
            allocated[name] = allocated.get(name, 0) + 1
            allocated_bytes[name] = allocated_bytes.get(name, 0) + size
            held[name] = held.get(name, 0) + size
            seen.setdefault(name, []).append(stamp)
            large[name] = large.get(name, 0) + (size >= MIB)
            doubled = name in last and size > last[name] * allocation_stats.DOUBLING_RATIO
            run[name] = run.get(name, 0) + 1 if doubled else 0
            longest[name] = max(longest.get(name, 0), run[name])
            last[name] = size
        if analyse:
            detector.analyze_leaks()

    samples = detector.samples("t", 0.0)
    assert {
        s.labels["component"]: s.value for s in samples if s.metric == "component_bytes"
    } == held
    assert {
        s.labels["component"]: s.value for s in samples if s.metric == "component_allocations"
    } == allocated
    assert all(s.value >= 0 for s in samples)
    assert detector.anomalies().over_deallocations == over
    analysis = detector.analyze_leaks()
    for leak in analysis.potential_leaks:
        name = leak.component
        assert (leak.allocation_count, leak.total_size_bytes) == (allocated[name], held[name])
        assert leak.average_size_bytes == allocated_bytes[name] / allocated[name]
        assert (leak.first_seen, leak.last_seen) == (min(seen[name]), max(seen[name]))
    counts = {
        kind: {p.component: p.count for p in analysis.suspicious_patterns if p.kind is kind}
        for kind in PatternKind
    }
    assert counts[PatternKind.EXPONENTIAL_GROWTH] == {
        c: n for c, n in longest.items() if n >= EXPONENTIAL_MIN_STEPS
    }
    assert counts[PatternKind.FREQUENT_LARGE_ALLOCATIONS] == {
        c: n for c, n in large.items() if n >= FREQUENT_LARGE_MIN
    }


# -- bounded memory -----------------------------------------------------------------------


def test_pending_records_stay_bounded_without_any_analysis() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for step in range(5 * allocations.FLUSH_EVERY + 123):
        detector.record_allocation(f"c{step % 50}", "op", 8)

    pending = sum(len(fields) for fields in detector._pending.values()) // RECORD_FIELDS
    assert pending < allocations.FLUSH_EVERY


def test_component_names_beyond_the_cap_are_counted_under_other() -> None:
    detector = LeakDetector(clock=FakeClock(), budget_bytes=2**40)
    for index in range(allocations.MAX_COMPONENTS + 5):
        detector.record_allocation(f"request-{index}", "op", 10)
    detector.record_deallocation("request-999999", 10)  # a name never seen: also <other>

    samples = detector.samples("t", 0.0)

    names = {s.labels["component"] for s in samples}
    assert len(names) == allocations.MAX_COMPONENTS + 1
    values = {s.metric: s.value for s in samples if s.labels["component"] == "<other>"}
    assert values["component_allocations"] == 5
    assert values["component_bytes"] == 40
    assert detector.anomalies().unknown_component_deallocations == 0


def test_budget_is_physical_ram_unless_a_reader_or_a_number_is_given() -> None:
    assert LeakDetector().budget_bytes == physical_memory_bytes() == psutil.virtual_memory().total
    supplied = LeakDetector()
    supplied.default_budget(lambda: 12345)  # what AlertEngine does with the cgroup reader
    assert supplied.budget_bytes == 12345
    fixed = LeakDetector(budget_bytes=777)
    fixed.default_budget(lambda: 12345)
    assert fixed.budget_bytes == 777
    assert LeakDetector(budget_bytes=lambda: 999).budget_bytes == 999
    with pytest.raises(ValueError, match="positive int"):
        LeakDetector(budget_bytes=0)
