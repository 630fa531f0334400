"""Release gate: compare the evaluation metrics with the thresholds in `GateConfig`. Pure Python.

Each threshold reads one metric; the first name in `METRICS[threshold]` present in the metrics dict
is used:

| threshold | passes when | metric (first found) |
| --- | --- | --- |
| max_unsafe_rate | value <= threshold | `safety/unsafe_rate/aligned`: share of the aligned model's responses to harmful prompts that the safety classifier judges unsafe |
| max_over_refusal | value <= threshold | `refusal/benign_edgy/aligned`: over-refusal rate on benign-but-edgy prompts (refused or deflected, as the refusal judge says) |
| min_win_rate | value >= threshold | `winrate/judge` (LLM judge, both orders), else `winrate/reward_model` (PPO graph), else `winrate/implicit_reward` (DPO graph) |
| min_harmful_refusal | value >= threshold | `refusal/harmful/aligned`: refusal rate on harmful prompts, any verdict but complied (a reward model that pays for helpfulness can train refusals away) |

A threshold that is set but whose metric is missing or NaN fails: a gate must not pass because a
measurement did not happen. Unset thresholds (None) are not checked.

`use_bound`: each threshold reads the 95% interval's bound beside its metric instead of the point
value (`<metric>/low` for min_* thresholds, `<metric>/high` for max_*), so the gate passes only when
the evidence says the threshold holds; a metric without an interval then fails as not measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubealign.config import GateConfig

# threshold name -> (metric names in order of preference, "max" = value <= threshold, "min" = value >= threshold)
METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    "max_unsafe_rate": (("safety/unsafe_rate/aligned",), "max"),
    "max_over_refusal": (("refusal/benign_edgy/aligned",), "max"),
    "min_win_rate": (("winrate/judge", "winrate/reward_model", "winrate/implicit_reward"), "min"),
    "min_harmful_refusal": (("refusal/harmful/aligned",), "min"),
}


@dataclass(frozen=True)
class Failure:
    """One failed threshold: which, on which metric, its value (None = not measured) and the limit."""

    threshold_name: str
    metric: str
    value: float | None
    threshold: float
    kind: str  # "max" or "min"

    def __str__(self) -> str:
        op = "<=" if self.kind == "max" else ">="
        if self.value is None:
            return f"{self.threshold_name}: {self.metric} was not measured (expected {op} {self.threshold:g})"
        return f"{self.threshold_name}: {self.metric} = {self.value:.4f}, expected {op} {self.threshold:g}"


class GateFailed(RuntimeError):
    """The model did not pass the release gate; the message lists every failed threshold with its value."""

    def __init__(self, failures: list[Failure]) -> None:
        self.failures = failures
        lines = "\n".join(f"  - {f}" for f in failures)
        super().__init__(f"release gate failed: {len(failures)} threshold(s) not met:\n{lines}")


def _lookup(metrics: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, float | None]:
    for name in names:
        value = metrics.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return name, float(value)
    return " or ".join(names), None


def metric_names(threshold: str, use_bound: bool) -> tuple[str, ...]:
    """The metrics `threshold` reads, in order of preference: the point values, or their interval bounds."""
    names, kind = METRICS[threshold]
    if not use_bound:
        return names
    return tuple(f"{n}/{'low' if kind == 'min' else 'high'}" for n in names)


def _lookup_bound(metrics: Mapping[str, Any], threshold: str) -> tuple[str, float | None]:
    """The bound of the first point metric present: a missing bound must not fall through to another metric."""
    point, value = _lookup(metrics, METRICS[threshold][0])
    if value is None:
        return " or ".join(metric_names(threshold, True)), None
    return _lookup(metrics, (f"{point}/{'low' if METRICS[threshold][1] == 'min' else 'high'}",))


def check(metrics: Mapping[str, Any], cfg: GateConfig) -> list[Failure]:
    """Every failed threshold of `cfg` against `metrics` (empty list = the gate passes)."""
    failures = []
    for name, (names, kind) in METRICS.items():
        limit = getattr(cfg, name)
        if limit is None:
            continue
        metric, value = _lookup_bound(metrics, name) if cfg.use_bound else _lookup(metrics, names)
        ok = value is not None and (value <= limit if kind == "max" else value >= limit)
        if not ok:
            failures.append(Failure(name, metric, value, float(limit), kind))
    return failures


def enforce(metrics: Mapping[str, Any], cfg: GateConfig) -> None:
    """Raise GateFailed listing every failed threshold; return quietly when the gate passes."""
    failures = check(metrics, cfg)
    if failures:
        raise GateFailed(failures)


def run(cfg: GateConfig, metrics: Mapping[str, Any], fail_run: bool = True) -> str:
    """"pass" or "fail", printing each check; with `fail_run` a failing gate raises GateFailed instead."""
    failures = check(metrics, cfg)
    checked = [name for name in METRICS if getattr(cfg, name) is not None]
    basis = " (95% interval bounds)" if cfg.use_bound else ""
    print(f"gate: {len(checked) - len(failures)} of {len(checked)} threshold(s) met{basis}", flush=True)
    for f in failures:
        print(f"  FAILED {f}", flush=True)
    if failures and fail_run:
        raise GateFailed(failures)
    return "fail" if failures else "pass"


__all__ = ["METRICS", "Failure", "GateFailed", "check", "enforce", "metric_names", "run"]
