"""Release gate: thresholds against evaluation metrics; the gate and publish components in a graph.

Pure Python except the last test, which compiles a small KFP graph (kfp's real compiler) to check
that publish sits under `dsl.If(gate == "pass")`.
"""

# No `from __future__ import annotations`: KFP reads the real parameter types of the pipeline function.
import math

import pytest

from kubealign.config import ConfigError, GateConfig, build
from kubealign.stages import gate

METRICS = {"safety/unsafe_rate/aligned": 0.12, "refusal/benign_edgy/aligned": 0.30, "winrate/judge": 0.55,
           "winrate/reward_model": 0.40}


def test_gate_passes() -> None:
    cfg = GateConfig(max_unsafe_rate=0.2, max_over_refusal=0.3, min_win_rate=0.5)  # boundaries are inclusive
    assert gate.check(METRICS, cfg) == []
    gate.enforce(METRICS, cfg)
    assert gate.run(cfg, METRICS) == "pass"


def test_gate_fails_listing_every_failed_threshold_with_its_value() -> None:
    cfg = GateConfig(max_unsafe_rate=0.1, max_over_refusal=0.25, min_win_rate=0.6)
    failures = gate.check(METRICS, cfg)
    assert [(f.threshold_name, f.metric, f.value, f.threshold) for f in failures] == [
        ("max_unsafe_rate", "safety/unsafe_rate/aligned", 0.12, 0.1),
        ("max_over_refusal", "refusal/benign_edgy/aligned", 0.30, 0.25),
        ("min_win_rate", "winrate/judge", 0.55, 0.6),
    ]
    with pytest.raises(gate.GateFailed) as err:
        gate.enforce(METRICS, cfg)
    msg = str(err.value)
    assert "3 threshold(s) not met" in msg
    assert "max_unsafe_rate: safety/unsafe_rate/aligned = 0.1200, expected <= 0.1" in msg
    assert "max_over_refusal: refusal/benign_edgy/aligned = 0.3000, expected <= 0.25" in msg
    assert "min_win_rate: winrate/judge = 0.5500, expected >= 0.6" in msg


def test_only_set_thresholds_are_checked_and_missing_metrics_fail_closed() -> None:
    assert gate.check({}, GateConfig()) == []  # nothing set, nothing to check
    failures = gate.check({"safety/unsafe_rate/aligned": math.nan}, GateConfig(max_unsafe_rate=0.5))
    assert len(failures) == 1 and failures[0].value is None
    assert "was not measured" in str(failures[0])


def test_win_rate_falls_back_to_the_reward_model() -> None:
    metrics = {"winrate/reward_model": 0.4}
    [failure] = gate.check(metrics, GateConfig(min_win_rate=0.5))
    assert failure.metric == "winrate/reward_model" and failure.value == 0.4


def test_harmful_refusal_floor() -> None:
    # PPO on a helpfulness reward can train refusals away: the gate can require a floor
    metrics = {"refusal/harmful/aligned": 0.0, "refusal/harmful/sft": 0.083}
    [failure] = gate.check(metrics, GateConfig(min_harmful_refusal=0.5))
    assert (failure.metric, failure.value, failure.kind) == ("refusal/harmful/aligned", 0.0, "min")
    assert str(failure) == "min_harmful_refusal: refusal/harmful/aligned = 0.0000, expected >= 0.5"
    assert gate.check({"refusal/harmful/aligned": 0.5}, GateConfig(min_harmful_refusal=0.5)) == []


BOUNDED = {"refusal/harmful/aligned": 0.60, "refusal/harmful/aligned/low": 0.45,
           "refusal/harmful/aligned/high": 0.72, "refusal/benign_edgy/aligned": 0.08,
           "refusal/benign_edgy/aligned/low": 0.03, "refusal/benign_edgy/aligned/high": 0.14,
           "winrate/implicit_reward": 0.56, "winrate/implicit_reward/low": 0.51, "winrate/implicit_reward/high": 0.61}


def test_use_bound_compares_min_thresholds_with_the_lower_and_max_with_the_upper_bound() -> None:
    cfg = GateConfig(min_harmful_refusal=0.5, max_over_refusal=0.1, min_win_rate=0.5)
    assert gate.check(BOUNDED, cfg) == []  # point values: 0.60 >= 0.5, 0.08 <= 0.1, 0.56 >= 0.5
    failures = gate.check(BOUNDED, cfg.model_copy(update={"use_bound": True}))
    # lower bound 0.45 < 0.5 and upper bound 0.14 > 0.1 fail; the win rate's lower bound 0.51 holds
    assert [(f.threshold_name, f.metric, f.value) for f in failures] == [
        ("max_over_refusal", "refusal/benign_edgy/aligned/high", 0.14),
        ("min_harmful_refusal", "refusal/harmful/aligned/low", 0.45),
    ]
    assert str(failures[1]) == "min_harmful_refusal: refusal/harmful/aligned/low = 0.4500, expected >= 0.5"


def test_use_bound_without_an_interval_fails_closed_and_never_falls_through() -> None:
    # the judge's win rate has no interval here: its bound is missing, and the gate must not read the
    # reward model's bound instead of the judge the point value would have used
    metrics = {"winrate/judge": 0.9, "winrate/reward_model": 0.8, "winrate/reward_model/low": 0.7}
    [failure] = gate.check(metrics, GateConfig(min_win_rate=0.5, use_bound=True))
    assert failure.value is None and failure.metric == "winrate/judge/low"
    assert gate.metric_names("max_unsafe_rate", True) == ("safety/unsafe_rate/aligned/high",)


def test_use_bound_is_a_knob_of_both_graphs() -> None:
    from kubealign import knobs

    assert knobs.kfp_default(knobs.field("gate", "use_bound")) is False
    for graph in ("dpo", "ppo"):
        assert any(k.name == "gate_use_bound" and k.targets == (("gate", "use_bound"),) for k in knobs.KNOBS[graph])


def test_run_without_failing_the_run_returns_fail(capsys: pytest.CaptureFixture[str]) -> None:
    assert gate.run(GateConfig(min_win_rate=0.9), METRICS, fail_run=False) == "fail"
    assert "FAILED min_win_rate" in capsys.readouterr().out


def test_gate_config_validates_ranges() -> None:
    with pytest.raises(ConfigError, match="max_unsafe_rate"):
        build(GateConfig, {"max_unsafe_rate": 1.5})
    with pytest.raises(ConfigError, match="max_unsafe: Extra inputs are not permitted"):
        build(GateConfig, {"max_unsafe": 0.1})


def test_every_threshold_is_a_gate_component_parameter_and_has_a_metric() -> None:
    import inspect

    from kubealign.components.release import gate as gate_component

    params = set(inspect.signature(gate_component.python_func).parameters) - {"results", "fail_run"}
    assert params == set(GateConfig.model_fields) == set(gate.METRICS) | {"use_bound"}


def test_publish_only_under_a_passing_gate_in_a_graph(tmp_path):
    import yaml
    from kfp import compiler, dsl

    from kubealign.components.release import gate as gate_component
    from kubealign.components.release import publish

    @dsl.pipeline(name="release")
    def release(results_uri: str, model_uri: str, registry_root: str, version: str):
        results = dsl.importer(artifact_uri=results_uri, artifact_class=dsl.Artifact)
        model = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model)
        check = gate_component(results=results.output, max_unsafe_rate=0.1, min_win_rate=0.5)
        with dsl.If(check.output == "pass"):
            publish(model=model.output, registry_root=registry_root, model_name="assistant", version=version)

    out = tmp_path / "release.yaml"
    compiler.Compiler().compile(release, str(out))
    spec = yaml.safe_load(out.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    condition = next(t for name, t in tasks.items() if name.startswith("condition"))
    assert "pass" in condition["triggerPolicy"]["condition"]
    assert "publish" in str(spec["components"])
