"""promtool's expanding notation, with size units."""

from __future__ import annotations

import math

import pytest

from memalert.engine.replay.series import SeriesError, expand_values

MiB = 2**20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("-2+4x3", [-2, 2, 6, 10], id="promtool-doc-1"),
        pytest.param("1-2x4", [1, -1, -3, -5, -7], id="promtool-doc-2"),
        pytest.param("1x4", [1, 1, 1, 1, 1], id="promtool-doc-3"),
        pytest.param("1 _x3", [1, None, None, None], id="missing-run"),
        pytest.param("0+10MiBx2", [0, 10 * MiB, 20 * MiB], id="size-units"),
        pytest.param("1.5e6 2KB", [1.5e6, 2000], id="plain-values"),
        pytest.param("  ", [], id="empty"),
    ],
)
def test_expand(text: str, expected: list[float | None]) -> None:
    assert expand_values(text) == expected


def test_stale_marker_is_nan() -> None:
    (value,) = expand_values("stale")
    assert value is not None
    assert math.isnan(value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("1+x3", "1+x3"),
        ("abc", "abc"),
        ("10furlongs", "furlongs"),
        ("1+2x", "1+2x"),
        ("0+1x9999999", "expands past"),
    ],
)
def test_bad_values_name_the_token(text: str, named: str) -> None:
    with pytest.raises(SeriesError, match=named.replace("+", r"\+")):
        expand_values(text)
