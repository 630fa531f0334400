"""A constitution: principles that turn sampled responses into preference pairs (RLAIF).

    constitution = load_constitution("my.yaml")          # None = the packaged default
    totals = weighted_totals(constitution, "harmful", {"refuse-harm": [1, 0, 1], "concise": [.9, .2, .4]})
    pair = select_pair(totals, margin=0.5)              # (best index, worst index) or None

Each principle names the prompts it applies to (`harmful`, `benign` or `all`, from the prompt's label
or the safety classifier), the judge that scores a response (`refusal`: the refusal judge; `safety`:
the safety classifier's harmful-response task; `reward`: a reward model; `endpoint`: an
OpenAI-compatible chat model asked to rate the response against the principle's text; `length`:
word count), the outcome it prefers, and a weight. A response's score is the weighted sum over the
principles that apply to its prompt (Constitutional AI, Bai et al. 2022, sec. 4: principles judged
one at a time; here their scores are summed with the weights).

Imports stay cheap (pydantic, yaml, fsspec): the pipeline compiler may import this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from kubealign.config import ConfigError, Settings, format_validation_error

DEFAULT_CONSTITUTION: Path = Path(__file__).resolve().parent / "data" / "constitution.yaml"
LABELS = ("harmful", "benign")

# judge -> the outcomes it can score
OUTCOMES: dict[str, tuple[str, ...]] = {
    "refusal": ("refuse", "serve"),
    "safety": ("harmless",),
    "reward": ("higher_reward",),
    "endpoint": ("follows_principle",),
    "length": ("concise",),
}


class Principle(Settings):
    """One principle of the constitution."""

    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
                      description="Short id (lower case, digits, '-', '_'): the key of its scores in the provenance.")
    text: str = Field(..., min_length=1, description="The principle in words (shown to endpoint judges and critics).")
    applies_to: Literal["harmful", "benign", "all"] = Field(..., description="Prompts this principle judges.")
    judge: Literal["refusal", "safety", "reward", "endpoint", "length"] = Field(
        ..., description="What scores a response.")
    prefers: Literal["refuse", "serve", "harmless", "higher_reward", "follows_principle", "concise"] = Field(
        ..., description="The outcome that scores high: refuse / serve (refusal judge), harmless (safety), "
        "higher_reward (reward), follows_principle (endpoint), concise (length).")
    weight: float = Field(1.0, gt=0, description="Weight of this principle's score in the total.")

    @model_validator(mode="after")
    def _judge_can_score_outcome(self) -> Principle:
        if self.prefers not in OUTCOMES[self.judge]:
            raise ValueError(f"judge {self.judge!r} cannot score prefers={self.prefers!r}; "
                             f"expected one of {', '.join(OUTCOMES[self.judge])}")
        return self


class Constitution(Settings):
    principles: list[Principle] = Field(..., min_length=1, description="The principles, each judged separately.")

    @model_validator(mode="after")
    def _unique_names(self) -> Constitution:
        seen: set[str] = set()
        for i, p in enumerate(self.principles):
            if p.name in seen:
                raise ValueError(f"principles.{i}.name: {p.name!r} is used twice; names must be unique")
            seen.add(p.name)
        return self

    def judges(self) -> set[str]:
        return {p.judge for p in self.principles}

    def for_label(self, label: str) -> list[Principle]:
        """The principles that judge a prompt labelled `label` (harmful / benign)."""
        return [p for p in self.principles if p.applies_to in ("all", label)]


def parse_constitution(data: Any, where: str) -> Constitution:
    """Validate parsed YAML; ConfigError lines read `<where>: principles.1.judge: <problem> (got ...)`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a `principles` list, got {type(data).__name__}")
    try:
        return Constitution.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None


def load_constitution(uri: str | None = None) -> Constitution:
    """The constitution at `uri` (YAML or JSON, any fsspec URI); None = the packaged default."""
    import fsspec
    import yaml

    where = str(uri or DEFAULT_CONSTITUTION)
    try:
        with fsspec.open(where, "r", encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"{where}: constitution file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(err).split())})") from None
    return parse_constitution(data, where)


def weighted_totals(constitution: Constitution, label: str, scores: Mapping[str, Sequence[float]]) -> list[float]:
    """Weighted score of each response of one prompt: sum of weight * score over the principles that apply.

    scores: principle name -> one score per response (higher = closer to the preferred outcome).
    """
    applied = constitution.for_label(label)
    if not applied:
        return []
    n = len(scores[applied[0].name])
    return [sum(p.weight * float(scores[p.name][i]) for p in applied) for i in range(n)]


def select_pair(totals: Sequence[float], margin: float) -> tuple[int, int] | None:
    """(best, worst) indices when best - worst > margin, else None.

    Ties go to the earliest response (the order is the sampling order, so this is as good as random
    and reproducible); all-equal totals never make a pair.
    """
    if len(totals) < 2:
        return None
    best = max(range(len(totals)), key=lambda i: (totals[i], -i))
    worst = min(range(len(totals)), key=lambda i: (totals[i], i))
    if totals[best] - totals[worst] <= margin:
        return None
    return best, worst


def accuracy_by_label(labels: Sequence[str | None], chosen: Sequence[float], rejected: Sequence[float],
                      prefix: str = "eval/accuracy") -> dict[str, float]:
    """A reward model's pair accuracy (chosen scored strictly above rejected) per kind of pair, with its
    95% bootstrap interval: `<prefix>/<label>`, `.../low`, `.../high`, `.../n`. On pairs from the
    default constitution, `harmful` pairs prefer the refusal and `benign` pairs prefer serving.
    Pairs without a label are left out."""
    from kubealign.stats import rate_interval

    out: dict[str, float] = {}
    for label in sorted({lab for lab in labels if lab}):
        hits = [c > r for lab, c, r in zip(labels, chosen, rejected, strict=True) if lab == label]
        iv = rate_interval(hits)
        out.update({f"{prefix}/{label}": iv.estimate, f"{prefix}/{label}/low": iv.low,
                    f"{prefix}/{label}/high": iv.high, f"{prefix}/{label}/n": float(iv.n)})
    return out


def balance_by_label(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records with each labelled kind's pairs repeated (round-robin, in file order) until every label
    present has as many as the most common one; records without a label are kept once, as they are.

    The preferences stage samples as many harmful as benign prompts, but a policy that rarely refuses a
    benign prompt yields few benign pairs (35 harmful : 10 benign in the measured PPO demo), and a reward
    model trained on that mix learns "refusal scores high" rather than "refuse what is harmful". Repeating
    the minority kind is the plain oversampling answer; the training loop's shuffle spreads the copies.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        if rec.get("label"):
            groups.setdefault(str(rec["label"]), []).append(rec)
    if len(groups) < 2:
        return list(records)
    most = max(len(g) for g in groups.values())
    out = [rec for rec in records if not rec.get("label")]
    for _, group in sorted(groups.items()):
        out += [group[i % len(group)] for i in range(most)]
    return out


__all__ = ["Constitution", "accuracy_by_label", "balance_by_label", "DEFAULT_CONSTITUTION", "LABELS", "OUTCOMES", "Principle", "load_constitution",
           "parse_constitution", "select_pair", "weighted_totals"]
