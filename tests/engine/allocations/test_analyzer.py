"""AllocationAnalyzer: every report, its ordering, boundaries and documented formula."""

from __future__ import annotations

import threading
from bisect import bisect_left

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memalert.engine.allocations.analyzer import (
    ALLOCATION_OVERHEAD_BYTES,
    POOLING_MIN_ALLOCATIONS,
    AllocationAnalyzer,
    RecommendationKind,
)
from memalert.engine.allocations.stats import MAX_OPERATIONS
from memalert.engine.testing import FakeClock

KIB = 1024
MIB = 2**20


def analyzer_with(records: list[tuple[str, str, int]]) -> AllocationAnalyzer:
    analyzer = AllocationAnalyzer(clock=FakeClock())
    for component, operation, size in records:
        analyzer.record_allocation(component, operation, size)
    return analyzer


def test_top_allocators_are_by_bytes_then_name() -> None:
    analyzer = analyzer_with(
        [("few-big", "load", 10 * MIB)]
        + [("many-small", "node", 100)] * 1000
        + [("tie-b", "x", 500), ("tie-a", "x", 500)]
    )

    top = analyzer.top_allocators()

    assert [(u.component, u.total_bytes) for u in top] == [
        ("few-big", 10 * MIB),
        ("many-small", 100_000),
        ("tie-a", 500),
        ("tie-b", 500),
    ]
    assert (top[1].allocation_count, top[1].average_bytes, top[1].largest_bytes) == (1000, 100, 100)
    assert [u.component for u in analyzer.top_allocators(n=1)] == ["few-big"]
    assert analyzer.top_allocators(n=0) == []


def test_top_operations_are_by_count_per_component_and_operation() -> None:
    analyzer = analyzer_with(
        [("db", "row", 64)] * 30
        + [("db", "blob", 4 * MIB)] * 2
        + [("http", "row", 10)] * 5
        + [("http", "header", 10)] * 30
    )

    top = analyzer.top_operations(n=3)

    assert [(o.component, o.operation, o.allocation_count, o.total_bytes) for o in top] == [
        ("db", "row", 30, 30 * 64),
        ("http", "header", 30, 300),
        ("http", "row", 5, 50),
    ]


@pytest.mark.parametrize("n", [-1, 1.5, "3", True])
def test_top_n_must_be_a_non_negative_int(n: object) -> None:
    analyzer = AllocationAnalyzer()
    with pytest.raises(ValueError, match="n must be"):
        analyzer.top_allocators(n)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be"):
        analyzer.top_operations(n)  # type: ignore[arg-type]


def test_size_distribution_bucket_boundaries_are_inclusive() -> None:
    sizes = [0, KIB, KIB + 1, 64 * KIB, 64 * KIB + 1, MIB, MIB + 1, 16 * MIB, 16 * MIB + 1]
    analyzer = analyzer_with([("c", "op", size) for size in sizes])

    buckets = analyzer.size_distribution()

    assert [(b.name, b.upper_bound_bytes, b.allocation_count) for b in buckets] == [
        ("tiny", KIB, 2),
        ("small", 64 * KIB, 2),
        ("medium", MIB, 2),
        ("large", 16 * MIB, 2),
        ("huge", None, 1),
    ]


def test_size_distribution_when_empty() -> None:
    assert [b.allocation_count for b in AllocationAnalyzer().size_distribution()] == [0] * 5


def test_recommends_pooling_for_many_mostly_small_allocations() -> None:
    analyzer = analyzer_with(
        [("nodes", "new", 48)] * POOLING_MIN_ALLOCATIONS
        + [("mixed", "new", 48)] * POOLING_MIN_ALLOCATIONS
        + [("mixed", "big", MIB)] * POOLING_MIN_ALLOCATIONS
        + [("few", "new", 48)] * (POOLING_MIN_ALLOCATIONS - 1)
    )

    pooling = [r for r in analyzer.recommendations() if r.kind is RecommendationKind.OBJECT_POOLING]

    assert [r.component for r in pooling] == ["nodes"]
    assert "pool" in pooling[0].message
    assert "100.0% of 1000 allocations" in pooling[0].message


def test_recommends_streaming_for_huge_allocations() -> None:
    analyzer = analyzer_with([("export", "render", 100 * MIB), ("ok", "render", 16 * MIB)])

    streaming = [r for r in analyzer.recommendations() if r.kind is RecommendationKind.STREAMING]

    assert [r.component for r in streaming] == ["export"]
    assert "100.0 MiB" in streaming[0].message
    assert "chunks" in streaming[0].message


def test_recommends_component_and_operation_hot_spots() -> None:
    analyzer = analyzer_with(
        [("hot", "parse", 1000)] * 80 + [(f"cold{i}", "parse", 10) for i in range(10)]
    )

    found = {(r.kind, r.component, r.operation) for r in analyzer.recommendations()}

    assert found == {
        (RecommendationKind.COMPONENT_HOT_SPOT, "hot", None),
        (RecommendationKind.OPERATION_HOT_SPOT, "hot", "parse"),
    }


def test_balanced_load_has_no_hot_spot() -> None:
    analyzer = analyzer_with([(f"c{i}", "op", 100) for i in range(4)] * 10)

    assert analyzer.recommendations() == []


def test_two_components_are_a_hot_spot_only_well_above_half() -> None:
    even = analyzer_with([("a", "x", 60), ("b", "y", 40)])
    skewed = analyzer_with([("a", "x", 80), ("b", "y", 20)])

    assert even.recommendations() == []
    assert [(r.kind, r.component) for r in skewed.recommendations()] == [
        (RecommendationKind.COMPONENT_HOT_SPOT, "a")
    ]


def test_fragmentation_is_largest_over_average_per_component() -> None:
    analyzer = analyzer_with(
        [("uniform", "x", 100)] * 5 + [("spread", "x", 1), ("spread", "x", 99), ("zero", "x", 0)]
    )

    assert analyzer.fragmentation() == {"spread": 99 / 50, "uniform": 1.0, "zero": 1.0}


def test_efficiency_score_follows_the_documented_formula() -> None:
    analyzer = analyzer_with(
        [("uniform", "x", 1000)] * 4 + [("spread", "x", 100), ("spread", "x", 900)]
    )
    payload, count = 5000, 6
    overhead_share = payload / (payload + ALLOCATION_OVERHEAD_BYTES * count)
    uniformity = (4000 * 1.0 + 1000 * (500 / 900)) / payload

    assert analyzer.efficiency_score() == pytest.approx(overhead_share * uniformity)


def test_efficiency_score_extremes() -> None:
    assert AllocationAnalyzer().efficiency_score() == 1.0
    assert analyzer_with([("c", "x", 0)] * 3).efficiency_score() == 0.0
    assert analyzer_with([("c", "x", 2**30)]).efficiency_score() == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.sampled_from("xy"), st.integers(0, 64 * MIB)),
        max_size=200,
    )
)
def test_efficiency_score_is_always_in_0_1(records: list[tuple[str, str, int]]) -> None:
    assert 0.0 <= analyzer_with(records).efficiency_score() <= 1.0


def test_timeline_is_in_time_order_and_bounded() -> None:
    analyzer = AllocationAnalyzer(clock=FakeClock(), timeline_length=3)
    for stamp, size in [(5.0, 50), (1.0, 10), (4.0, 40), (2.0, 20), (3.0, 30)]:
        analyzer.record_allocation("c", f"op{size}", size, timestamp=stamp, stack_trace=["f:1"])

    timeline = analyzer.timeline("c")

    # The 3 most recently recorded, in time order (records may arrive out of order).
    assert [(a.timestamp, a.size_bytes, a.operation) for a in timeline] == [
        (2.0, 20, "op20"),
        (3.0, 30, "op30"),
        (4.0, 40, "op40"),
    ]
    assert {(a.component, a.stack_trace) for a in timeline} == {("c", "f:1")}
    assert analyzer.timeline("unknown") == []


def test_timeline_uses_the_injected_clock() -> None:
    clock = FakeClock(100.0)
    analyzer = AllocationAnalyzer(clock=clock)
    analyzer.record_allocation("c", "a", 1)
    clock.advance(2.5)
    analyzer.record_allocation("c", "b", 2)

    assert [a.timestamp for a in analyzer.timeline("c")] == [100.0, 102.5]


@pytest.mark.parametrize(("length", "error"), [(0, ValueError), (2.5, TypeError)])
def test_timeline_length_is_validated(length: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeline_length"):
        AllocationAnalyzer(timeline_length=length)  # type: ignore[arg-type]


BOUNDS = [KIB, 64 * KIB, MIB, 16 * MIB]  # the size buckets' inclusive upper bounds

steps = st.lists(
    st.tuples(
        st.booleans(),  # a free
        st.sampled_from("ab"),
        st.sampled_from(["x", "y", "z"]),
        st.one_of(st.integers(0, 3000), st.sampled_from([b + d for b in BOUNDS for d in (0, 1)])),
        st.integers(0, 50).map(float),  # timestamps, in any order
        st.booleans(),  # fold here
    ),
    max_size=200,
)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_reports_equal_a_record_by_record_model(
    steps: list[tuple[bool, str, str, int, float, bool]],
) -> None:
    """Batch folding (at any fold boundaries, frees mixed in) matches a simple reference."""
    analyzer = AllocationAnalyzer(clock=FakeClock(), timeline_length=3)
    usage: dict[str, tuple[int, int, int]] = {}  # component -> count, bytes, largest
    operations: dict[tuple[str, str], tuple[int, int]] = {}
    buckets = [0] * 5
    recent: dict[str, list[tuple[str, int, float]]] = {}
    for is_free, component, operation, size, stamp, fold in steps:
        if is_free:
            analyzer.record_deallocation(component, size)
        else:
            analyzer.record_allocation(component, operation, size, timestamp=stamp)
            count, total, largest = usage.get(component, (0, 0, 0))
            usage[component] = (count + 1, total + size, max(largest, size))
            count, total = operations.get((component, operation), (0, 0))
            operations[component, operation] = (count + 1, total + size)
            buckets[bisect_left(BOUNDS, size)] += 1
            recent.setdefault(component, []).append((operation, size, stamp))
        if fold:
            analyzer.size_distribution()

    assert {
        u.component: (u.allocation_count, u.total_bytes, u.largest_bytes)
        for u in analyzer.top_allocators()
    } == usage
    assert {
        (o.component, o.operation): (o.allocation_count, o.total_bytes)
        for o in analyzer.top_operations(n=100)
    } == operations
    most_called = sorted(operations, key=lambda pair: (-operations[pair][0], pair))[:2]
    assert [(o.component, o.operation) for o in analyzer.top_operations(n=2)] == most_called
    assert [b.allocation_count for b in analyzer.size_distribution()] == buckets
    for component in "ab":
        expected = sorted(recent.get(component, [])[-3:], key=lambda r: r[2])
        timeline = analyzer.timeline(component)
        assert [(a.operation, a.size_bytes, a.timestamp) for a in timeline] == expected


def test_recording_from_threads_loses_no_count() -> None:
    analyzer = AllocationAnalyzer()
    per_thread = 20_000
    start = threading.Barrier(8)

    def record(index: int) -> None:
        start.wait()
        for step in range(per_thread):
            analyzer.record_allocation(f"c{step % 4}", f"op{index}", 8)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(u.allocation_count for u in analyzer.top_allocators()) == 8 * per_thread
    assert sum(o.allocation_count for o in analyzer.top_operations(n=100)) == 8 * per_thread


def test_operation_names_beyond_the_cap_are_counted_under_other() -> None:
    analyzer = analyzer_with([("c", f"op{i}", 1) for i in range(MAX_OPERATIONS + 44)] * 2)

    operations = {o.operation: o.allocation_count for o in analyzer.top_operations(n=1000)}

    assert len(operations) == MAX_OPERATIONS + 1
    assert operations["<other>"] == 88
