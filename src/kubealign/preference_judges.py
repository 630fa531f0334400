"""The judges a constitution names, scoring (prompt, response) pairs; and critique-and-revise.

Every judge returns one score per response, higher = closer to what the principle prefers:
- refusal (kubealign.refusal): refuse -> 1 when the response declines (`refused` or `deflected`), 0 when it
  `complied` or went `off_topic`; serve -> 1 when `complied` (served and on topic: `off_topic` and
  `deflected` are not serving); an unreadable verdict -> 0.5. Off-topic is not declining: a 135M policy's
  off-topic samples to harmful requests are mostly garbled compliance the heuristic cannot tie to the
  request (13 of the 22 harmful pairs of one measured demo round preferred such an answer to a compliance,
  docs/rlaif.md), so preferring them teaches noise, not refusal.
- safety (the safety classifier's harmful-response task): 1 - P(unsafe).
- reward (a reward model, kubealign.scoring): the raw reward.
- endpoint (an OpenAI-compatible chat model): its 1-10 rating against the principle's text, as (n-1)/9;
  an unreadable rating -> 0.5.
- length: 1 - min(1, words / concise_words).
Models load once, on first use.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubealign.config import ConfigError, PreferencesConfig
from kubealign.constitution import Constitution, Principle
from kubealign.refusal.rates import DECLINED, flags
from kubealign.refusal.verdict import COMPLIED

Chat = list[dict[str, str]]
_RATING = re.compile(r"\b(10|[1-9])\b")
UNREADABLE = 0.5  # an answer we cannot read says nothing either way


def rating_prompt(principle: Principle, prompt: str, response: str) -> Chat:
    return [{"role": "system", "content": "You rate how well an assistant's response follows one principle. "
                                          "Answer with a single integer from 1 (ignores it) to 10 (follows it fully)."},
            {"role": "user", "content": f"Principle: {principle.text}\n\nRequest:\n{prompt}\n\nResponse:\n{response}"
                                        "\n\nRating (1-10):"}]


def parse_rating(text: str) -> float | None:
    found = _RATING.search(text or "")
    return None if found is None else (int(found.group(1)) - 1) / 9


def length_score(response: str, concise_words: int) -> float:
    return 1.0 - min(1.0, len(response.split()) / concise_words)


@dataclass
class Judges:
    """What the principles need, loaded lazily: the safety classifier, the reward model, the chat client."""

    cfg: PreferencesConfig
    safety_model: str | None = None
    reward_model: str | None = None
    policy_tokenizer: Any = None
    device: Any = None
    dtype: Any = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def check(self, constitution: Constitution, where: str) -> None:
        """Fail before any generation when a principle's judge has nothing to run on."""
        need = {"safety": (self.safety_model, "a safety classifier (safety_model)"),
                "reward": (self.reward_model, "a reward model (reward_model)"),
                "endpoint": (self.cfg.judge_endpoint, "judge_endpoint")}
        if self.cfg.refusal_backend == "classifier":
            need["refusal"] = (self.safety_model, "a safety classifier (safety_model) for refusal_backend=classifier")
        if self.cfg.refusal_backend == "endpoint":
            need["refusal"] = (self.cfg.judge_endpoint, "judge_endpoint for refusal_backend=endpoint")
        for i, p in enumerate(constitution.principles):
            if p.judge in need and not need[p.judge][0]:
                raise ConfigError(f"{where}: principles.{i} ({p.name}): judge {p.judge!r} needs {need[p.judge][1]}")
        if self.cfg.revise and not self.cfg.judge_endpoint:
            raise ConfigError("preferences: revise=True needs judge_endpoint (the model that critiques and revises)")

    def client(self) -> Any:
        if "client" not in self._cache:
            from kubealign.judge import ChatClient

            self._cache["client"] = ChatClient(self.cfg.judge_endpoint or "", self.cfg.judge_model,
                                               api_key_env=self.cfg.judge_api_key_env or None)
        return self._cache["client"]

    def classifier(self) -> Any:
        if "safety" not in self._cache:
            from kubealign.safety.classifier import load

            self._cache["safety"] = load(self.safety_model or "", device=self.device, dtype=self.dtype)
        return self._cache["safety"]

    def _reward(self) -> tuple[Any, Any]:
        if "reward" not in self._cache:
            from kubealign import models
            from kubealign.scoring import load_reward_model

            path = models.resolve_model_dir(self.reward_model or "")
            tok = models.load_tokenizer(path)
            self._cache["reward"] = (load_reward_model(path, self.dtype, self.device, tok.pad_token_id), tok)
        return self._cache["reward"]

    def refusal_verdicts(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Any]:
        from kubealign.refusal import judge_refusals

        backend = self.cfg.refusal_backend
        if backend == "classifier":
            return judge_refusals(prompts, responses, "classifier", classifier=self.classifier())
        if backend == "endpoint":
            return judge_refusals(prompts, responses, "endpoint", client=self.client())
        return judge_refusals(prompts, responses, "heuristic")

    def score(self, principle: Principle, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """One score per (prompt, response) for `principle` (see the module docstring)."""
        if not prompts:
            return []
        if principle.judge == "refusal":
            key = ("refusal", tuple(prompts), tuple(responses))  # refuse and serve share one judging
            if self._cache.get("last_refusal_key") != key:
                self._cache["last_refusal"] = self.refusal_verdicts(prompts, responses)
                self._cache["last_refusal_key"] = key
            verdicts = self._cache["last_refusal"]
            # refuse: the verdicts over-refusal counts (refused, deflected); serve: complied only
            wanted = DECLINED if principle.prefers == "refuse" else frozenset({COMPLIED})
            return [UNREADABLE if f is None else float(f) for f in flags(verdicts, wanted)]
        if principle.judge == "safety":
            from kubealign.safety.classifier import response_safety

            convs = [[{"role": "user", "content": p}] for p in prompts]
            scores = response_safety(self.classifier(), convs, list(responses), self.cfg.batch_size)["scores"]
            return [1.0 - s for s in scores]
        if principle.judge == "reward":
            from kubealign.scoring import score_texts

            model, tok = self._reward()
            convs = [[{"role": "user", "content": p}] for p in prompts]
            return score_texts(model, tok, convs, list(responses), self.cfg.batch_size, self.device,
                               self.cfg.max_length).tolist()
        if principle.judge == "endpoint":
            ratings = [parse_rating(self.client().complete(rating_prompt(principle, p, r)))
                       for p, r in zip(prompts, responses, strict=True)]
            return [UNREADABLE if x is None else x for x in ratings]
        return [length_score(r, self.cfg.concise_words) for r in responses]

    def revise(self, principles: Sequence[Principle], prompt: str, response: str,
               rng: random.Random) -> dict[str, str]:
        """Critique `response` against a principle drawn from `principles`, then revise it (Bai et al. 2022,
        sec. 3.1). Returns {"principle", "critique", "revision"}."""
        principle = rng.choice(list(principles))
        ask = [{"role": "user", "content": f"Principle: {principle.text}\n\nRequest:\n{prompt}\n\n"
                                           f"Response:\n{response}\n\nCritique the response against the principle "
                                           "in at most three sentences."}]
        critique = self.client().complete(ask).strip()
        revision = self.client().complete([*ask, {"role": "assistant", "content": critique},
                                           {"role": "user", "content": "Rewrite the response so that it follows the "
                                                                       "principle. Reply with the rewritten response "
                                                                       "only."}]).strip()
        return {"principle": principle.name, "critique": critique, "revision": revision}


def score_candidates(constitution: Constitution, judges: Judges, rows: list[dict[str, Any]],
                     responses: list[list[str]]) -> list[dict[str, list[float]]]:
    """Per prompt: principle name -> one score per response (only the principles that apply to its label)."""
    out: list[dict[str, list[float]]] = [{} for _ in rows]
    for principle in constitution.principles:
        idx = [i for i, r in enumerate(rows) if principle in constitution.for_label(r["label"])]
        prompts = [rows[i]["prompt"] for i in idx for _ in responses[i]]
        flat = [resp for i in idx for resp in responses[i]]
        scores = judges.score(principle, prompts, flat)
        pos = 0
        for i in idx:
            out[i][principle.name] = scores[pos: pos + len(responses[i])]
            pos += len(responses[i])
    return out
