"""PPO against a reward model (Ziegler et al. 2019, arXiv:1909.08593; Ouyang et al. 2022, eq. 2).

Networks, with one copy of the base weights in memory:
- policy    = the SFT model + a LoRA adapter (trainable);
- reference = the same model with the adapter switched off (`disable_adapter`);
- value     = a Linear(hidden, 1) head on the policy trunk's last hidden state (trainable);
- reward    = the reward-model stage's output, the only other network (frozen).

Each step (one rollout batch): sample responses -> score them with the reward model (minus a penalty
for responses cut off before EOS) -> log-probs of the sampling policy and the reference, values ->
per-token rewards -beta * KL plus the score on the last token -> GAE -> whitened advantages ->
`ppo_epochs` passes over minibatches: clipped surrogate + vf_coef * clipped value loss, gradient
clipping, one optimizer step per minibatch.

Each step is one rollout batch run by the shared loop (`loop.run_steps`: resume, logging, progress,
checkpoints); only the step itself is PPO's. Checkpoints hold the adapter, the value head (an extra
module of the loop's `TrainState`), optimizer, scheduler, RNG state, step, the rollout position
(prompts consumed) and the metric history.

setup (models, prompts) -> train (rollout / update steps) -> save (adapter, value head, summary, report).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import save_file

from kubealign import loop, models, report
from kubealign.config import ConfigError, PPOConfig
from kubealign.constitution import DEFAULT_CONSTITUTION, LABELS, load_constitution, weighted_totals
from kubealign.data.chat import Messages, tokenize_prompt
from kubealign.losses import kl_penalized_rewards, ppo_policy_loss, ppo_value_loss
from kubealign.ops import gae, masked_mean, whiten
from kubealign.rollout import Rollout, response_forward, sample
from kubealign.scoring import load_reward_model, reference_of, score_texts
from kubealign.stages import common

# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------


def load_prompts(uri: str, tokenizer: Any, cfg: PPOConfig) -> list[Messages]:
    """Distinct prompts of the preference split that leave room for a full-length response."""
    return load_labelled_prompts(uri, tokenizer, cfg)[0]


def load_labelled_prompts(uri: str, tokenizer: Any, cfg: PPOConfig) -> tuple[list[Messages], list[str | None]]:
    """`load_prompts` and each prompt's `label` (harmful / benign; None where the row has none). With the
    rule-based reward on (`constitution_weight` > 0) every row needs a label: the principles are chosen by it."""
    seen: set[str] = set()
    prompts: list[Messages] = []
    labels: list[str | None] = []
    too_long = 0
    budget = cfg.max_length - cfg.max_new_tokens
    for row, record in enumerate(common.read_jsonl(uri), 1):
        label = record.get("label")
        if cfg.constitution_weight > 0 and label not in LABELS:
            raise ConfigError(f"{uri}: row {row}: field 'label': expected one of {', '.join(LABELS)} (got {label!r}); "
                              "the rule-based reward (constitution_weight > 0) picks principles by the prompt's label")
        key = json.dumps(record["prompt"], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        if len(tokenize_prompt(tokenizer, record["prompt"])) > budget:
            too_long += 1
            continue
        prompts.append(record["prompt"])
        labels.append(label)
    if not prompts:
        raise ValueError(f"{uri}: no prompt fits max_length - max_new_tokens = {budget} tokens")
    if too_long:
        print(f"ppo: skipped {too_long} prompts longer than {budget} tokens", flush=True)
    return prompts, labels


RULE_JUDGES = ("refusal", "length")  # the judges that need no model besides the heuristic


class RuleReward:
    """The constitution's judges as a rule-based reward next to the reward model (issue 15, item 4: "the
    constitution's judges score rollouts directly"). A rollout's rule score is the weighted total of the
    principles that apply to its prompt's label, exactly as the preferences stage totals a sampled response
    (`preference_judges.score_candidates`, `constitution.weighted_totals`); PPO adds `constitution_weight` times it
    to the reward model's score. Only judges that run without a model (refusal with the heuristic backend,
    length), so a rollout batch costs no extra forward pass."""

    def __init__(self, cfg: PPOConfig) -> None:
        from kubealign.config import PreferencesConfig
        from kubealign.preference_judges import Judges

        self.constitution = load_constitution(cfg.constitution)
        where = cfg.constitution or str(DEFAULT_CONSTITUTION)
        for i, p in enumerate(self.constitution.principles):
            if p.judge not in RULE_JUDGES:
                raise ConfigError(f"{where}: principles.{i} ({p.name}): judge {p.judge!r} cannot score PPO rollouts; "
                                  f"the rule-based reward runs {' and '.join(RULE_JUDGES)} judges only")
        self.judges = Judges(PreferencesConfig(refusal_backend="heuristic", concise_words=cfg.concise_words))

    def __call__(self, prompts: list[Messages], labels: list[str], texts: list[str]) -> list[float]:
        """One rule score per (prompt, label, answer); the refusal judge renders chat prompts as evaluate does."""
        from kubealign.preference_judges import score_candidates

        rows = [{"prompt": p, "label": lab} for p, lab in zip(prompts, labels, strict=True)]
        scores = score_candidates(self.constitution, self.judges, rows, [[t] for t in texts])
        return [(weighted_totals(self.constitution, lab, sc) or [0.0])[0]
                for lab, sc in zip(labels, scores, strict=True)]


def new_value_head(hidden_size: int, device: torch.device) -> torch.nn.Linear:
    """Linear(hidden, 1) in float32, zero-initialised so every value starts at 0."""
    head = torch.nn.Linear(hidden_size, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return head.to(device)


def prompt_indices(order: loop.DataOrder, step: int, batch: int) -> list[int]:
    """Prompts of rollout batch `step`: the next `batch` of a stream reshuffled every epoch."""
    return [order.indices(k)[0] for k in range(step * batch, (step + 1) * batch)]


# ---------------------------------------------------------------------------
# One rollout batch -> training targets
# ---------------------------------------------------------------------------


@dataclass
class Experience:
    rollout: Rollout
    logprobs: torch.Tensor  # (B, R) under the sampling policy
    values: torch.Tensor  # (B, R) at rollout time
    advantages: torch.Tensor  # (B, R) whitened
    returns: torch.Tensor  # (B, R)
    scores: torch.Tensor  # (B,) reward-model score minus the missing-EOS penalty
    kl: torch.Tensor  # (B, R)


@torch.no_grad()
def make_experience(policy: torch.nn.Module, ref_model: torch.nn.Module | None, value_head: torch.nn.Module,
                    reward_model: torch.nn.Module, tokenizer: Any, prompts: list[Messages], cfg: PPOConfig,
                    device: torch.device, rm_tokenizer: Any = None, rule: RuleReward | None = None,
                    labels: list[str | None] | None = None) -> tuple[Experience, dict[str, float]]:
    """Sample, score and turn one rollout batch into PPO targets. The reward model reads the decoded
    text re-rendered with its own tokenizer's chat template (`rm_tokenizer`, default: the policy's).
    `rule` (with each prompt's label): the constitution's score, times `constitution_weight`, joins the score."""
    t0 = time.perf_counter()
    roll = sample(policy, tokenizer, prompts, cfg.max_new_tokens, cfg.temperature, device)
    t1 = time.perf_counter()
    rm_scores = score_texts(reward_model, rm_tokenizer or tokenizer, prompts, roll.texts, cfg.rollout_batch_size,
                            device, cfg.max_length).to(device)
    rule_scores = torch.zeros_like(rm_scores)
    if rule is not None:
        if labels is None or None in labels:
            raise ValueError("the rule-based reward needs every prompt's label")
        rule_scores = torch.tensor(rule(prompts, labels, roll.texts), dtype=rm_scores.dtype, device=device)
    scores = rm_scores + cfg.constitution_weight * rule_scores - cfg.missing_eos_penalty * (~roll.has_eos).float()
    args = (roll.query, roll.query_mask, roll.response, roll.response_mask, cfg.temperature)
    logprobs, values, _ = response_forward(policy, *args, value_head=value_head)
    with reference_of(policy, ref_model) as ref:
        ref_logprobs, _, _ = response_forward(ref, *args)
    mask = roll.response_mask
    rewards, kl = kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, cfg.kl_coef, cfg.kl_estimator)
    advantages, returns = gae(rewards, values, cfg.gamma, cfg.lam, mask)
    # Whitening over the whole rollout batch (not per minibatch) keeps one scale for every update.
    advantages = whiten(advantages, mask) if mask.sum() > 1 else advantages
    t2 = time.perf_counter()
    non_score = (-cfg.kl_coef * kl).sum(-1)
    stats = {
        "objective/kl": kl.sum(-1).mean().item(),
        "objective/entropy": (-logprobs * mask).sum(-1).mean().item(),
        "objective/non_score_reward": non_score.mean().item(),
        "objective/rlhf_reward": (scores + non_score).mean().item(),
        "objective/scores": scores.mean().item(),
        "objective/rm_score": rm_scores.mean().item(),
        **({"objective/constitution_score": rule_scores.mean().item()} if rule is not None else {}),
        "val/num_eos_tokens": float(roll.has_eos.sum()),
        "val/mean_value": masked_mean(values, mask).item(),
        "response_length": mask.sum(-1).float().mean().item(),
        "time/generation_s": t1 - t0,
        "time/scoring_s": t2 - t1,
    }
    return Experience(roll, logprobs, values, advantages, returns, scores, kl), stats


# ---------------------------------------------------------------------------
# PPO update over one rollout batch
# ---------------------------------------------------------------------------


def ppo_update(policy: torch.nn.Module, value_head: torch.nn.Module, params: list[torch.nn.Parameter],
               opt: torch.optim.Optimizer, sched: Any, exp: Experience, cfg: PPOConfig) -> dict[str, float]:
    """`ppo_epochs` passes over shuffled minibatches; returns the token-mean stats averaged over them."""
    roll = exp.rollout
    n = roll.query.shape[0]
    mini = cfg.batch_size * cfg.grad_accum
    sums: dict[str, float] = {}
    count = 0
    for _ in range(cfg.ppo_epochs):
        perm = torch.randperm(n)
        for start in range(0, n, mini):
            idx = perm[start : start + mini]
            for micro in idx.split(cfg.batch_size):
                micro = micro.to(roll.query.device)
                mask = roll.response_mask[micro]
                logprobs, values, entropy = response_forward(
                    policy, roll.query[micro], roll.query_mask[micro], roll.response[micro], mask,
                    cfg.temperature, value_head=value_head, with_entropy=True)
                pg_loss, pg_stats = ppo_policy_loss(logprobs, exp.logprobs[micro], exp.advantages[micro], mask,
                                                    cfg.clip_range)
                vf_loss, vf_stats = ppo_value_loss(values, exp.values[micro], exp.returns[micro], mask,
                                                   cfg.clip_range_value)
                ((pg_loss + cfg.vf_coef * vf_loss) / cfg.grad_accum).backward()
                micro_stats = {"loss/policy_avg": pg_loss.item(), "loss/value_avg": vf_loss.item(),
                               "policy/approxkl_avg": pg_stats["policy/approxkl"],
                               "policy/clipfrac_avg": pg_stats["policy/clipfrac"], "val/ratio": pg_stats["val/ratio"],
                               "val/clipfrac_avg": vf_stats["val/clipfrac"],
                               "policy/entropy_avg": masked_mean(entropy, mask).item()}
                for k, v in micro_stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + cfg.grad_accum * torch.nn.utils.clip_grad_norm_(
                params, cfg.max_grad_norm).item()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
    return {k: v / count for k, v in sums.items()}


# ---------------------------------------------------------------------------
# Stage
# ---------------------------------------------------------------------------


def total_steps(cfg: PPOConfig, n_prompts: int) -> int:
    return cfg.max_steps or max(1, math.ceil(cfg.epochs * n_prompts / cfg.rollout_batch_size))


def run(cfg: PPOConfig, sft_model: str, reward_model: str, train_uri: str, out_dir: str,
        on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    stage = common.start("ppo", cfg.tracking, cfg.dtype, cfg.seed, cfg.model_dump())
    base_dir, rm_dir = models.resolve_model_dir(sft_model), models.resolve_model_dir(reward_model)
    tokenizer = models.load_tokenizer(base_dir)
    prompts, labels = load_labelled_prompts(train_uri, tokenizer, cfg)
    rule = RuleReward(cfg) if cfg.constitution_weight > 0 else None

    policy = models.load_causal_lm(base_dir, stage.dtype, stage.device)
    ref_model = None
    if cfg.lora.enabled:
        policy = models.add_lora(policy, cfg.lora)
    else:  # a full fine-tune moves every weight, so the reference needs its own frozen copy
        ref_model = models.load_causal_lm(base_dir, stage.dtype, stage.device).eval().requires_grad_(False)
    # No dropout anywhere: the first PPO epoch then sees exactly the sampling policy (ratio 1).
    policy.eval()
    value_head = new_value_head(policy.config.hidden_size, stage.device)
    rm = load_reward_model(rm_dir, stage.dtype, stage.device).eval().requires_grad_(False)
    rm_tokenizer = models.load_tokenizer(rm_dir)
    print(f"ppo: {len(prompts)} prompts; policy {models.describe(policy)}; reward model "
          f"{sum(p.numel() for p in rm.parameters())} params", flush=True)

    steps = total_steps(cfg, len(prompts))
    state, params = training_state(policy, value_head, cfg, steps)
    order = loop.DataOrder(len(prompts), 1, cfg.seed)
    samples: list[list[Any]] = []

    def one_step(step: int) -> tuple[dict[str, float], None]:
        """One rollout batch: sample, score, then the PPO update over it."""
        nonlocal samples
        picked = prompt_indices(order, step, cfg.rollout_batch_size)
        batch_prompts = [prompts[i] for i in picked]
        exp, stats = make_experience(policy, ref_model, value_head, rm, tokenizer, batch_prompts, cfg, stage.device,
                                     rm_tokenizer, rule, [labels[i] for i in picked])
        lr = state.sched.get_last_lr()[0]
        t0 = time.perf_counter()
        stats.update(ppo_update(policy, value_head, params, state.opt, state.sched, exp, cfg))
        done = step + 1
        stats.update({"time/training_s": time.perf_counter() - t0, "lr": lr,
                      "episode": float(done * cfg.rollout_batch_size)})
        samples = [[done, p[-1]["content"], r, s, k] for p, r, s, k in
                   zip(batch_prompts, exp.rollout.texts, exp.scores.tolist(), exp.kl.sum(-1).tolist(), strict=True)]
        if cfg.sample_every and (done % cfg.sample_every == 0 or done == steps):
            stage.tracker.log_table("samples", ["step", "prompt", "response", "score", "kl"], samples, step=done)
        return stats, None

    run_id = loop.run_key("ppo", cfg, data=[train_uri], model_dirs=[base_dir, rm_dir])
    plan = loop.Steps(steps, run_id, "ppo", position=lambda done: done * cfg.rollout_batch_size,
                      postfix=lambda m: {"score": f"{m['objective/scores']:.3f}", "kl": f"{m['objective/kl']:.3f}"})
    result = loop.run_steps(one_step, state, cfg, stage.tracker, plan, on_step)

    summary = summarise(result.history, steps)
    meta = {"stage": "ppo", "base_model": str(base_dir), "reward_model": str(rm_dir), "lora": cfg.lora.enabled,
            "run_id": run_id, "value_head": "value_head.safetensors: Linear(hidden, 1) on the last hidden state"}
    with common.model_output(stage, out_dir, policy, tokenizer, meta, summary, result.history) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in value_head.state_dict().items()},
                  str(tmp / "value_head.safetensors"))
        (tmp / "report.html").write_text(render(summary, result.history, samples))
    stage.tracker.finish()
    return summary


def training_state(policy: torch.nn.Module, value_head: torch.nn.Module, cfg: PPOConfig,
                   steps: int) -> tuple[loop.TrainState, list[torch.nn.Parameter]]:
    """Optimizer over the adapter and value head, LR schedule over every minibatch update; the
    checkpointed state (value head included) and the parameters to clip."""
    updates = steps * cfg.ppo_epochs * (cfg.rollout_batch_size // (cfg.batch_size * cfg.grad_accum))
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * updates)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: loop.warmup_cosine(s, updates, warmup))
    return loop.TrainState(policy, opt, sched, modules={"value_head": value_head}), params


def summarise(history: list[dict[str, float]], steps: int) -> dict[str, float]:
    """Last-step metrics, plus score and KL averaged over the first and last quarter of training."""
    last = history[-1] if history else {}
    keep = ("objective/scores", "objective/rm_score", "objective/constitution_score", "objective/kl",
            "objective/rlhf_reward", "response_length", "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg", "loss/value_avg")
    summary = {k: last[k] for k in keep if k in last}
    summary["steps"] = float(steps)
    k = max(1, len(history) // 4)
    for key, name in (("objective/scores", "score"), ("objective/constitution_score", "constitution_score"),
                      ("objective/kl", "kl")):
        vals = [h[key] for h in history if key in h]
        if vals:
            summary[f"{name}/first_quarter"] = sum(vals[:k]) / len(vals[:k])
            summary[f"{name}/last_quarter"] = sum(vals[-k:]) / len(vals[-k:])
    times = [(h.get("time/generation_s", 0.0), h.get("time/scoring_s", 0.0), h.get("time/training_s", 0.0))
             for h in history]
    for i, name in enumerate(("generation", "scoring", "training")):
        summary[f"time/{name}_total_s"] = sum(t[i] for t in times)
    return summary


def render(summary: dict[str, float], history: list[dict[str, float]], samples: list[list[Any]]) -> str:
    def curve(key: str) -> list[tuple[float, float]]:
        return [(h["step"], h[key]) for h in history if key in h]

    charts = "".join([
        report.line_chart("reward: RM score (minus EOS penalty) and RLHF reward (score - beta KL)",
                          {"objective/scores": curve("objective/scores"),
                           "objective/rlhf_reward": curve("objective/rlhf_reward")}),
        *([report.line_chart("rule-based reward: constitution score (before its weight)",
                             {"objective/constitution_score": curve("objective/constitution_score")})]
          if any("objective/constitution_score" in h for h in history) else []),
        report.line_chart("KL to the reference (nats per response)", {"objective/kl": curve("objective/kl")}),
        report.line_chart("response length (tokens)", {"response_length": curve("response_length")}),
        report.line_chart("policy: approx KL and clip fraction per update",
                          {"policy/approxkl_avg": curve("policy/approxkl_avg"),
                           "policy/clipfrac_avg": curve("policy/clipfrac_avg")}),
    ])
    rows = [[k, v] for k, v in sorted(summary.items())]
    return report.page("kubealign PPO", [
        ("Summary", report.table(["metric", "value"], rows)),
        ("Training curves", charts or "<p class='note'>no history</p>"),
        ("Last rollout batch", report.table(["step", "prompt", "response", "score", "kl"], samples, text_cols=(1, 2))),
    ])
