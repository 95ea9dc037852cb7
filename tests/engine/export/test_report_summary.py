"""summary.json's figures, from an ExecResult built by hand."""

from __future__ import annotations

from memalert.engine.export.report import summary
from memalert.engine.live.exec_run import ExecResult, TreeSample

MIB = 2**20


def result_with(rss_mib: list[float]) -> ExecResult:
    samples = [TreeSample(ts=1000.0 + i, rss=v * MIB, uss=None) for i, v in enumerate(rss_mib)]
    return ExecResult(
        command=("prog",), target="prog", started=1000.0, ended=1010.0, samples=samples
    )


def test_growth_is_measured_to_the_peak_so_an_exit_that_frees_memory_hides_nothing() -> None:
    # A leaking program's last sample is taken while it exits and frees what it kept.
    facts = summary(result_with([20, 60, 120, 180, 8]), budget=None)
    assert facts["growth_bytes"] == 160 * MIB
    assert facts["peak_rss_bytes"] == 180 * MIB
    assert facts["final_rss_bytes"] == 8 * MIB


def test_a_run_that_never_rises_above_its_start_grew_nothing() -> None:
    assert summary(result_with([50, 40, 30]), budget=None)["growth_bytes"] == 0
    assert summary(result_with([]), budget=None)["growth_bytes"] == 0
