"""The progress line of `record` and `exec`: for a person at a terminal, never in CI logs."""

from __future__ import annotations

import io

import pytest

from memalert.engine.live.parts import draws_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "env", "draws"),
    [
        (_Terminal(), {}, True),
        (_Terminal(), {"CI": "true"}, False),
        (_Terminal(), {"CI": "1"}, False),
        (_Terminal(), {"CI": "false"}, True),
        (io.StringIO(), {}, False),
    ],
)
def test_progress_is_drawn_only_on_a_terminal_outside_ci(
    stream: io.StringIO, env: dict[str, str], draws: bool
) -> None:
    assert draws_progress(stream, env) is draws
