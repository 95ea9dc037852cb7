"""Seeded synthetic memory traces: every pattern the trend detector must tell apart.

Each generator draws its shape (rates, periods, amplitudes, noise) from wide
ranges with the given `random.Random`, so tests check the method across many
variants rather than on a few hand-picked series. Values are bytes, one
sample every `STEP` seconds from `T0`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

T0 = 1_764_000_000.0
STEP = 15.0
HOUR = 3600.0
MB = 1e6


@dataclass(frozen=True, kw_only=True, slots=True)
class Trace:
    kind: str
    leak: bool
    values: tuple[float, ...]
    onset: float | None = None  # unix seconds when the leak starts
    rate: float = 0.0  # leak bytes per hour

    def times(self) -> list[float]:
        return [T0 + i * STEP for i in range(len(self.values))]


Shape = Callable[[float], float]  # seconds since T0 -> bytes without noise


def _noisy(rng: random.Random, shape: Shape, hours: float, base: float) -> tuple[float, ...]:
    sigma = rng.uniform(0.002, 0.01) * base
    uniform = rng.random() < 0.5
    out = []
    for i in range(int(hours * HOUR / STEP)):
        noise = rng.uniform(-1.7, 1.7) * sigma if uniform else rng.gauss(0.0, sigma)
        out.append(max(0.0, shape(i * STEP) + noise))
    return tuple(out)


def _sawtooth(t: float, period: float, amplitude: float) -> float:
    return amplitude * ((t % period) / period)


def _spikes(t: float, period: float, duration: float, height: float, phase: float) -> float:
    return height if (t + phase) % period < duration else 0.0


def _onset(rng: random.Random) -> float:
    return rng.uniform(1.0, 3.0) * HOUR


# -- patterns that are not leaks ---------------------------------------------


def flat(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(50, 900) * MB
    return Trace(kind="flat", leak=False, values=_noisy(rng, lambda t: base, hours, base))


def gc_sawtooth(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(100, 900) * MB
    period = rng.uniform(2, 25) * 60
    amp = rng.uniform(0.05, 0.15) * base

    def shape(t: float) -> float:
        return base + _sawtooth(t, period, amp)

    return Trace(kind="gc_sawtooth", leak=False, values=_noisy(rng, shape, hours, base))


def warmup_plateau(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(100, 600) * MB
    amp = rng.uniform(0.1, 0.8) * base
    tau = rng.uniform(5, 20) * 60

    def shape(t: float) -> float:
        return base + amp * (1 - math.exp(-t / tau))

    return Trace(kind="warmup_plateau", leak=False, values=_noisy(rng, shape, hours, base))


def cache_fill(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(100, 600) * MB
    cap = rng.uniform(0.3, 1.0) * base
    fill = rng.uniform(10, 40) * 60

    def shape(t: float) -> float:
        return base + cap * min(1.0, t / fill)

    return Trace(kind="cache_fill", leak=False, values=_noisy(rng, shape, hours, base))


def batch_spikes(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(100, 600) * MB
    period = rng.uniform(30, 70) * 60
    duration = rng.uniform(2, 12) * 60
    height = rng.uniform(0.2, 2.0) * base
    phase = rng.uniform(0, period)

    def shape(t: float) -> float:
        return base + _spikes(t, period, duration, height, phase)

    return Trace(kind="batch_spikes", leak=False, values=_noisy(rng, shape, hours, base))


def step_change(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(100, 600) * MB
    at = rng.uniform(1, hours - 2) * HOUR
    height = rng.choice((1, -1)) * rng.uniform(0.05, 0.3) * base

    def shape(t: float) -> float:
        return base + (height if t >= at else 0.0)

    return Trace(kind="step_change", leak=False, values=_noisy(rng, shape, hours, base))


def diurnal(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(100, 600) * MB
    amp = rng.uniform(0.05, 0.4) * base
    period = rng.uniform(0.75, 2.0) * HOUR
    phase = rng.uniform(0, 2 * math.pi)

    def shape(t: float) -> float:
        return base + amp * math.sin(2 * math.pi * t / period + phase)

    return Trace(kind="diurnal", leak=False, values=_noisy(rng, shape, hours, base))


def restart_without_leak(rng: random.Random, hours: float) -> Trace:
    """A flat service restarted now and then: each life warms up to the same plateau."""
    base = rng.uniform(100, 600) * MB
    amp = rng.uniform(0.2, 0.6) * base
    tau = rng.uniform(3, 15) * 60
    period = rng.uniform(2, 5) * HOUR

    def shape(t: float) -> float:
        return base + amp * (1 - math.exp(-(t % period) / tau))

    return Trace(kind="restart", leak=False, values=_noisy(rng, shape, hours, base))


# -- leaks -------------------------------------------------------------------


def _leak(
    rng: random.Random, hours: float, kind: str, extra: Callable[[float, float], Shape]
) -> Trace:
    base = rng.uniform(100, 600) * MB
    rate = rng.uniform(5, 60) * MB  # per hour: 5 MB/h is 120 MB/day
    onset = _onset(rng)
    shape = extra(base, rate)

    def leaking(t: float) -> float:
        return shape(t) + rate * max(0.0, t - onset) / HOUR

    return Trace(
        kind=kind, leak=True, values=_noisy(rng, leaking, hours, base), onset=T0 + onset, rate=rate
    )


def leak_linear(rng: random.Random, hours: float) -> Trace:
    return _leak(rng, hours, "leak_linear", lambda base, rate: lambda t: base)


def leak_sawtooth(rng: random.Random, hours: float) -> Trace:
    period = rng.uniform(3, 20) * 60
    share = rng.uniform(0.03, 0.08)

    def extra(base: float, rate: float) -> Shape:
        return lambda t: base + _sawtooth(t, period, share * base)

    return _leak(rng, hours, "leak_sawtooth", extra)


def leak_staircase(rng: random.Random, hours: float) -> Trace:
    """Leaks in lumps: the floor jumps every `period` by what leaked since."""
    period = rng.uniform(10, 30) * 60
    base = rng.uniform(100, 600) * MB
    rate = rng.uniform(5, 60) * MB
    onset = _onset(rng)

    def shape(t: float) -> float:
        lumps = math.floor(max(0.0, t - onset) / period)
        return base + rate * lumps * period / HOUR

    values = _noisy(rng, shape, hours, base)
    return Trace(kind="leak_staircase", leak=True, values=values, onset=T0 + onset, rate=rate)


def leak_spikes(rng: random.Random, hours: float) -> Trace:
    period = rng.uniform(30, 70) * 60
    duration = rng.uniform(2, 12) * 60
    phase = rng.uniform(0, period)
    factor = rng.uniform(0.5, 2.0)

    def extra(base: float, rate: float) -> Shape:
        return lambda t: base + _spikes(t, period, duration, factor * base, phase)

    return _leak(rng, hours, "leak_spikes", extra)


def leak_accelerating(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(100, 600) * MB
    rate = rng.uniform(5, 40) * MB
    onset = _onset(rng)
    doubling = rng.uniform(2, 6) * HOUR

    def shape(t: float) -> float:
        since = max(0.0, t - onset)
        # Rate starts at `rate` and doubles every `doubling` seconds.
        return base + rate * doubling / HOUR / math.log(2) * (2 ** (since / doubling) - 1)

    values = _noisy(rng, shape, hours, base)
    return Trace(kind="leak_accelerating", leak=True, values=values, onset=T0 + onset, rate=rate)


def leak_restarts(rng: random.Random, hours: float) -> Trace:
    base = rng.uniform(100, 600) * MB
    rate = rng.uniform(8, 60) * MB
    # Lives under ~4 h cannot be told from a major GC by memory alone
    # (docs/leak-detection.md): the restarting leak here lives 5 to 7 hours.
    period = rng.uniform(5, 7) * HOUR

    def shape(t: float) -> float:
        return base + rate * (t % period) / HOUR

    values = _noisy(rng, shape, hours, base)
    return Trace(kind="leak_restarts", leak=True, values=values, onset=T0, rate=rate)


GENERATORS: dict[str, Callable[[random.Random, float], Trace]] = {
    f.__name__: f
    for f in (
        flat,
        gc_sawtooth,
        warmup_plateau,
        cache_fill,
        batch_spikes,
        step_change,
        diurnal,
        restart_without_leak,
        leak_linear,
        leak_sawtooth,
        leak_staircase,
        leak_spikes,
        leak_accelerating,
        leak_restarts,
    )
}


def make(kind: str, seed: int, hours: float = 12.0) -> Trace:
    return GENERATORS[kind](random.Random(f"{kind}:{seed}"), hours)
