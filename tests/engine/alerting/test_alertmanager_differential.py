"""memalert's grouping against a real Alertmanager, fed the same alerts at the same times.

`alertmanager_oracle.SCRIPT` (new alerts batched by group_wait, one added to a
notified group, resolutions one by one and of a whole group, a repeat, a flap
inside one group_interval, a re-fire after a resolve) is played in real time to
Debian's `prometheus-alertmanager` and, in simulated time with a 0.1 s tick,
through memalert's Pipeline with the same group_by, group_wait, group_interval
and repeat_interval in a rule file. Both must send the same notifications (group,
alerts, firing or resolved) in the same order, each within one group_interval of
the other: memalert's timers run on its ticks and Alertmanager's on its clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alertmanager_oracle import GROUP_BY, LENGTH, SCRIPT, TIMING, Sent, play
from scale_out_kit import Processes, missing_binaries

from memalert.engine.alerting.pipeline import Pipeline
from memalert.engine.core.model import AlertResolved, Labels, Sample
from memalert.engine.rules.load import load_rules

pytestmark = [pytest.mark.integration, pytest.mark.alertmanager]

TICK = 0.1
# Each alert name lives on one host in the script: rule NAME watches target
# NAME-HOST and labels its alert with the host, which is what the groups are by.
HOSTS = {change.alertname: change.host for change in SCRIPT}


def rule_file(tmp: Path) -> Path:
    rules = "\n".join(
        f"""\
  - name: {name}
    metric: rss_bytes
    where: {{target: {name}-{host}}}
    above: {{warning: 100}}
    labels: {{host: {host}}}"""
        for name, host in sorted(HOSTS.items())
    )
    path = tmp / "rules.yaml"
    path.write_text(
        f"""\
version: 1
interval: 1s
group_by: [{", ".join(GROUP_BY)}]
group_wait: {TIMING["group_wait"]:g}s
group_interval: {TIMING["group_interval"]:g}s
repeat_interval: {TIMING["repeat_interval"]:g}s
rules:
{rules}
"""
    )
    return path


def memalert_notifications(tmp: Path) -> list[Sent]:
    pipeline = Pipeline(load_rules([rule_file(tmp)], env={}))
    firing: dict[tuple[str, str], bool] = {}
    changes = list(SCRIPT)
    sent: list[Sent] = []
    for tick in range(round(LENGTH / TICK) + 1):
        now = tick * TICK
        while changes and changes[0].at <= now:
            change = changes.pop(0)
            firing[change.alertname, change.host] = not change.resolved
        samples = [
            Sample("rss_bytes", Labels({"target": f"{name}-{host}"}), 200.0 if on else 0.0, now)
            for (name, host), on in firing.items()
        ]
        for note in pipeline.step(now, samples).notifications:
            assert note.group is not None, f"{note} is not a group's notification"
            group = tuple(sorted(note.group.items()))
            alerts = tuple(
                sorted(
                    (e.rule, "resolved" if isinstance(e, AlertResolved) else "firing")
                    for e in note.events
                )
            )
            sent.append(Sent(at=now, group=group, alerts=alerts))
    return sent


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (Debian's prometheus-alertmanager)")
    started = Processes(tmp_path)
    yield started
    started.close()


def test_memalert_groups_and_times_notifications_as_alertmanager_does(
    tmp_path: Path, processes: Processes
) -> None:
    oracle = play(tmp_path, processes)
    ours = memalert_notifications(tmp_path)
    # The same notifications in the same order...
    assert [(s.group, s.alerts) for s in ours] == [(s.group, s.alerts) for s in oracle], (
        f"memalert: {ours}\nalertmanager: {oracle}\n{processes.logs()}"
    )
    # ...each within one group_interval of Alertmanager's.
    late = [
        (mine, theirs)
        for mine, theirs in zip(ours, oracle, strict=True)
        if abs(mine.at - theirs.at) > TIMING["group_interval"]
    ]
    assert not late, late
