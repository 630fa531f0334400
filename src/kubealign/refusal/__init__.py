"""Refusal judging: did a response serve its prompt?

    from kubealign.refusal import judge_refusals
    verdicts = judge_refusals(prompts, responses)                 # heuristic, no model
    verdicts = judge_refusals(prompts, responses, "classifier", model="s3://.../safety-classifier")
    verdicts = judge_refusals(prompts, responses, "endpoint", model="https://host/v1#gpt-4o-mini")
    summary = summarise(verdicts)    # {"rate": Interval(estimate, low, high, n), "counts": {...}, ...}

Each verdict is `complied`, `refused` (explicit), `deflected` (moralising, redirect to help, safe
completion, partial answer that withholds what was asked) or `off_topic`; `refusal` is any verdict but
`complied`. Backends: `heuristic` (kubealign.refusal.heuristic), `classifier` (the safety classifier
trained for WildGuard's three tasks; kubealign.refusal.classifier_backend, needs torch), `endpoint`
(an OpenAI-compatible chat endpoint; kubealign.refusal.endpoint). `is_refusal` (the older phrase list
over a response alone) stays importable from here.

Importing this package is cheap: no torch, no requests until a backend that needs them is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubealign.refusal.phrases import is_refusal
from kubealign.refusal.verdict import (
    COMPLIED,
    DEFLECTED,
    OFF_TOPIC,
    REFUSED,
    VERDICTS,
    Verdict,
    label_to_refusal,
)

BACKENDS = ("heuristic", "classifier", "endpoint")


def _as_text(prompt: Any) -> str:
    """A prompt as text: a string as is, a chat (list of {role, content}) rendered by the pairwise judge's rule."""
    if isinstance(prompt, str):
        return prompt
    from kubealign.judge import render_request

    return render_request(prompt)


def judge_refusals(prompts: Sequence[Any], responses: Sequence[str], backend: str = "heuristic",
                   model: str | None = None, **options: Any) -> list[Verdict]:
    """One verdict per (prompt, response), in order.

    prompts: strings, or chats (lists of {"role", "content"}: evaluate's prompt sets); a chat with one
    non-system turn is judged by that turn's text.

    model: the classifier folder/URI (`classifier`), or the endpoint as `URL#MODEL_NAME` (`endpoint`);
    unused by `heuristic`. options go to the backend (e.g. `threshold` for heuristic, `batch_size` for
    classifier, `api_key_env` / `client` for endpoint).
    """
    if len(prompts) != len(responses):
        raise ValueError(f"prompts ({len(prompts)}) and responses ({len(responses)}) must have the same length")
    prompts = [_as_text(p) for p in prompts]
    if backend == "heuristic":
        from kubealign.refusal import heuristic

        return heuristic.judge(prompts, responses, **options)
    if backend == "endpoint":
        from kubealign.refusal import endpoint

        return endpoint.judge(prompts, responses, model, **options)
    if backend == "classifier":
        from kubealign.refusal import classifier_backend

        return classifier_backend.judge(prompts, responses, model, **options)
    raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")


def summarise(verdicts: Sequence[Verdict], resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """What evaluate reports for one set: the refusal rate with its 95% bootstrap interval (over the
    verdicts that could be read), the count of each verdict and of unreadable ones.

    Returns `{"rate": stats.Interval, "counts": {verdict: n}, "unreadable": n, "n": len(verdicts)}`.
    """
    from kubealign import stats

    readable = [v.refusal for v in verdicts if v.verdict is not None]
    return {"rate": stats.rate_interval(readable, resamples, seed),
            "counts": {name: sum(v.verdict == name for v in verdicts) for name in VERDICTS},
            "unreadable": len(verdicts) - len(readable), "n": len(verdicts)}


__all__ = ["BACKENDS", "COMPLIED", "DEFLECTED", "OFF_TOPIC", "REFUSED", "VERDICTS", "Verdict", "is_refusal",
           "judge_refusals", "label_to_refusal", "summarise"]
