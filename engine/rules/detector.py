"""The `detector:` section of a rule file and of a target (docs/leak-detection.md).

```yaml
detector:                 # per file: the targets this file declares, and replays
  sensitivity: normal     # low | normal | high: a documented preset
  min_life: 4h            # expert knobs override the preset, each in its own unit
targets:
  - name: api
    process: {cmdline: "uvicorn .*api"}
    detector: {sensitivity: low}   # a target's own section wins over its file's
```

Each expert knob is a field of `TrendParams`, spelled as in the rule file: a
duration drops the `_seconds` suffix (`min_life: 4h`), the growth floor is
`min_growth_per_hour: 1MB`. The valid ranges are the detector's own table
(`memalert.engine.trend.params.PARAMETERS`), so `check` and the detector can never
disagree; the combination is then checked by building the parameters once.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from memalert.engine.core.limits import Range
from memalert.engine.core.model import DetectorSettings
from memalert.engine.core.suggest import closest
from memalert.engine.core.units import UnitError, format_bytes, format_duration, parse_size
from memalert.engine.trend.params import PARAMETERS, PRESETS, ParamSpec, params_for

if TYPE_CHECKING:
    from memalert.engine.rules.compile import FileCompiler
    from memalert.engine.rules.yamlsource import JsonPath

_RATE_SUFFIX = "_bytes_per_hour"


def rule_key(name: str) -> str:
    """How parameter `name` is spelled in a rule file."""
    if name.endswith(_RATE_SUFFIX):
        return name.removesuffix(_RATE_SUFFIX) + "_per_hour"
    return name.removesuffix("_seconds")


ANY_DURATION = Range(float("-inf"), float("inf"), "a duration")

# Rule-file key -> TrendParams field.
KNOBS: dict[str, str] = {rule_key(name): name for name in PARAMETERS}


def compile_detector(c: FileCompiler, path: JsonPath, value: object) -> DetectorSettings | None:
    """The settings of one `detector:` mapping, or None (with diagnostics) when invalid."""
    if not isinstance(value, dict):
        return None  # the schema reported the type
    failed = len(c.out.diagnostics)
    sensitivity = value.get("sensitivity", "normal")
    if sensitivity not in PRESETS:
        c.error(
            (*path, "sensitivity"),
            f"{c.what((*path, 'sensitivity'))} must be one of {', '.join(PRESETS)}, "
            f"got {sensitivity!r}",
        )
    overrides: dict[str, float] = {}
    for key, raw in value.items():
        if key == "sensitivity":
            continue
        at = (*path, key)
        name = KNOBS.get(str(key))
        if name is None:
            near = closest(str(key), [*KNOBS, "sensitivity"])
            hint = f" (did you mean {near}?)" if near is not None else ""
            c.error(at, f"{c.what(path)}: unknown key {key!r}{hint}", key=True)
            continue
        number = _knob_value(c, at, raw, PARAMETERS[name])
        if number is not None:
            overrides[name] = number
    if len(c.out.diagnostics) > failed:
        return None
    try:
        params_for(str(sensitivity), **overrides)
    except ValueError as exc:  # a combination out of bounds, e.g. min_span under 4 segments
        c.error(path, f"{c.what(path)}: {exc}")
        return None
    return DetectorSettings(
        sensitivity=str(sensitivity),
        overrides=tuple(sorted(overrides.items())),
        position=c.doc.position(path),
    )


def _knob_value(c: FileCompiler, at: JsonPath, raw: object, spec: ParamSpec) -> float | None:
    if spec.kind == "duration":
        # The knob's own range is checked below, with its own message.
        number = c.duration(at, raw, ANY_DURATION)
    elif spec.kind == "size":
        try:
            number = parse_size(raw)
        except UnitError as exc:
            c.error(at, f"{c.what(at)}: {exc}")
            return None
    elif isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        c.error(at, f"{c.what(at)} must be a number, got {raw!r}")
        return None
    elif spec.kind == "count" and not float(raw).is_integer():
        c.error(at, f"{c.what(at)} must be a whole number, got {raw!r}")
        return None
    else:
        number = float(raw)
    if number is None:
        return None
    if not spec.minimum <= number <= spec.maximum:
        c.error(at, f"{c.what(at)} must be within {describe_range(spec)}, got {raw!r}")
        return None
    return number


def describe_range(spec: ParamSpec) -> str:
    """`30m..6h`, `1MB..1GB`, `0..1`: the range in the knob's own unit."""
    show = {"duration": format_duration, "size": format_bytes}.get(spec.kind, _plain)
    return f"{show(spec.minimum)}..{show(spec.maximum)}"


def _plain(value: float) -> str:
    return f"{value:g}"
