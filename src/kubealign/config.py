"""Typed settings, one pydantic model per stage.

The CLI, the KFP components and the tests all build these, so a bad value fails the same way
everywhere: before any model is loaded, with the field name and what was expected.
Imports stay cheap (pydantic only): the pipeline compiler imports this module.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Settings(BaseModel):
    """Base for every settings model: unknown keys are an error, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrackingConfig(Settings):
    project: str = Field("kubealign", description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user); None uses the key's default.")
    group: str | None = Field(
        None, description="W&B group; every stage of one pipeline run uses the same group."
    )
    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        "auto",
        description="auto = online when WANDB_API_KEY is set, offline otherwise; disabled = no W&B at all.",
    )
    dir: str | None = Field(None, description="Local folder for W&B run files (offline runs land here).")


class LoraSettings(Settings):
    enabled: bool = Field(True, description="Train a LoRA adapter; False = full fine-tune.")
    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: float = Field(32.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Names of the linear layers that get adapters.",
    )


class TrainSettings(Settings):
    """What every training loop shares: optimisation, schedule, checkpoints, logging."""

    learning_rate: float = Field(2e-4, gt=0, lt=1, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Fraction of steps with linear warm-up.")
    epochs: float = Field(1.0, gt=0, description="Passes over the training split (used when max_steps is 0).")
    max_steps: int = Field(0, ge=0, description="Optimizer steps; 0 = derive from epochs.")
    batch_size: int = Field(4, ge=1, description="Examples per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    max_length: int = Field(512, ge=8, description="Tokens per sequence (prompt + response), truncated right.")
    seed: int = Field(0, description="Seed for data order, dropout and initialisation.")
    save_every: int = Field(0, ge=0, description="Checkpoint every N optimizer steps; 0 = only at the end.")
    checkpoint_uri: str | None = Field(
        None, description="fsspec URI for checkpoints; a rerun with the same inputs resumes from here."
    )
    log_every: int = Field(1, ge=1, description="Log metrics every N optimizer steps.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = bf16 on GPUs that support it, fp32 elsewhere (CPUs without bf16 units)."
    )
    num_processes: int = Field(
        0, ge=0, le=64,
        description="Training processes in the pod, one per accelerator (data parallel); 0 = one per visible GPU "
        "(a single process on CPU). Each process takes batch_size examples: the global batch is "
        "batch_size * num_processes. Used by the SFT and DPO stages.",
    )
    distributed: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="With several processes: ddp = every process holds the whole model (accelerate's DDP); "
        "fsdp = parameters, gradients and optimizer state sharded across processes (accelerate's FSDP2).",
    )
    padding_free: bool = Field(
        True,
        description="Pack each micro-batch's sequences end to end (position ids restart per sequence, attention "
        "stays within a sequence) instead of padding them to the longest; batch_size still counts examples. "
        "DPO pairs are packed as prompt, chosen, rejected, the prompt read once, where the attention is SDPA. "
        "Used by the SFT and DPO stages.",
    )
    pack_length: int = Field(
        0, ge=0,
        description="Tokens per packed row; 0 = max_length (rows of at most one sequence's length keep the "
        "attention cost of a block-diagonal mask at or below the padded batch's).",
    )
    logprob_chunk: int = Field(
        1024, ge=1,
        description="Response positions per chunk of the output projection + log-softmax: the largest "
        "vocabulary-wide tensor is (logprob_chunk, vocab).",
    )
    gradient_checkpointing: bool = Field(
        True, description="Recompute decoder-layer activations in the backward pass: less peak memory for 13-17% "
        "less speed (DPO in bench/README.md: 0.34 of the peak RSS under jemalloc, 0.60 under glibc); off trades "
        "memory for speed."
    )
    lora: LoraSettings = Field(default_factory=LoraSettings)  # type: ignore[arg-type]
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)  # type: ignore[arg-type]


RecordKind = Literal["sft", "preference", "safety"]


class DataPrepConfig(Settings):
    kind: RecordKind = Field(..., description="Record type: sft (messages) or preference (prompt/chosen/rejected).")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Fraction of accepted records held out.")
    seed: int = Field(0, description="Seed for the train/eval split.")
    max_reject_fraction: float = Field(
        0.2, ge=0, le=1, description="Fail the run when more than this fraction of records is rejected."
    )
    max_length: int = Field(512, ge=8, description="Token budget used for the tokenizer-aware checks.")
    tokenizer: str | None = Field(
        None, description="Model/tokenizer URI for tokenizer-aware checks (identical after truncation, no room)."
    )


class SFTConfig(TrainSettings):
    pass


class DPOConfig(TrainSettings):
    learning_rate: float = Field(5e-5, gt=0, lt=1, description="Peak AdamW learning rate.")
    beta: float = Field(0.1, gt=0, description="DPO temperature: strength of the implicit KL to the reference.")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = Field(
        "sigmoid", description="Preference loss: sigmoid (DPO), ipo, hinge (SLiC), robust."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="cDPO / robust DPO label noise.")
    reference_logps: Literal["precomputed", "on_the_fly"] = Field(
        "precomputed",
        description="precomputed = the frozen reference scores every training pair once, before training (kept "
        "with the checkpoints, so a resume reuses it); on_the_fly = a reference forward pass in every step.",
    )


class RewardConfig(TrainSettings):
    """Reward model: a scalar head on the SFT model, trained with the Bradley-Terry loss."""

    learning_rate: float = Field(1e-4, gt=0, lt=1, description="Peak AdamW learning rate.")
    center_coef: float = Field(
        0.01, ge=0, description="Reward centring: adds coef * mean((r_chosen + r_rejected)^2) (Eisenstein 2023)."
    )
    balance_labels: bool = Field(
        True, description="Train pairs that carry a label (the preferences stage's harmful / benign): repeat the "
        "rarer kind's pairs until each kind has as many as the most common; unlabelled pairs are unaffected.",
    )


class PPOConfig(TrainSettings):
    """PPO against a reward model (Ziegler et al. 2019; Ouyang et al. 2022).

    One PPO step = one rollout batch: generate `rollout_batch_size` responses, score them, then
    `ppo_epochs` passes over minibatches of `batch_size * grad_accum` sequences, one optimizer step each.
    `max_steps` counts rollout batches; 0 derives it from `epochs` over the prompts.
    """

    learning_rate: float = Field(1e-4, gt=0, lt=1, description="Peak AdamW learning rate (adapter and value head).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of optimizer steps with linear warm-up.")
    batch_size: int = Field(4, ge=1, description="Sequences per micro-batch in the PPO update.")
    rollout_batch_size: int = Field(16, ge=1, description="Prompts (one response each) per rollout batch.")
    ppo_epochs: int = Field(4, ge=1, description="Passes over each rollout batch.")
    max_new_tokens: int = Field(32, ge=1, description="Response length limit (tokens).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature (top_k 0, top_p 1).")
    kl_coef: float = Field(0.05, ge=0, description="beta: weight of the per-token KL penalty to the reference.")
    kl_estimator: Literal["k1", "k2", "k3"] = Field(
        "k1", description="Per-token KL estimator for the penalty (Schulman 2020): k1 = log ratio, k3 = unbiased >= 0."
    )
    clip_range: float = Field(0.2, gt=0, description="PPO policy ratio clip.")
    clip_range_value: float = Field(0.2, gt=0, description="Value prediction clip around the rollout values.")
    vf_coef: float = Field(0.1, ge=0, description="Weight of the value loss.")
    gamma: float = Field(1.0, ge=0, le=1, description="Discount factor.")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    missing_eos_penalty: float = Field(
        1.0, ge=0, description="Subtracted from the score of a response that never emits EOS; 0 = off."
    )
    sample_every: int = Field(10, ge=0, description="Log a table of sampled completions every N steps; 0 = never.")
    constitution_weight: float = Field(
        0.0, ge=0, description="Rule-based reward next to the reward model: each rollout's score gains this weight "
        "times its constitution total (the principles that apply to the prompt's label, judged as the preferences "
        "stage judges them; refusal and length judges only). Needs labelled prompts (harmful / benign). 0 = off.")
    constitution: str | None = Field(
        None, description="Constitution YAML (fsspec URI) for the rule-based reward; None = the packaged default.")
    concise_words: int = Field(
        60, ge=1, description="`length` judge of the rule-based reward: this many words or more scores 0.")

    @model_validator(mode="after")
    def _minibatches_divide_rollout(self) -> PPOConfig:
        mini = self.batch_size * self.grad_accum
        if self.rollout_batch_size % mini:
            raise ValueError(
                f"rollout_batch_size ({self.rollout_batch_size}) must be a multiple of batch_size * grad_accum "
                f"({self.batch_size} * {self.grad_accum} = {mini})"
            )
        return self


class MergeConfig(Settings):
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype of the saved merged weights."
    )


class EvalConfig(Settings):
    beta: float = Field(0.1, gt=0, description="Beta used to express implicit rewards.")
    max_length: int = Field(512, ge=8, description="Token budget for scoring held-out pairs.")
    max_new_tokens: int = Field(48, ge=1, description="Greedy generation length.")
    batch_size: int = Field(16, ge=1, description="Sequences per scoring forward (held-out pairs, implicit reward).")
    generate_batch_size: int = Field(
        64, ge=1, description="Prompts per greedy generation batch (KV cache). A decode step of a small model is "
        "one skinny matrix product per layer, so wider batches use the matrix units better: on a 2-core CPU, "
        "SmolLM2-135M, 64 harmful prompts: 47.3 tokens/s at 16, 83.3 at 64 with the token cap "
        "(scripts/measure_generate.py --sets harmful).")
    num_samples: int = Field(8, ge=0, description="Held-out prompts shown side by side in the report.")
    num_harmful: int = Field(
        100, ge=0, description="Harmful prompts for the refusal rate (seeded sample, stratified by risk area); "
        "100 gives a 95% interval of about +-0.1 on a rate near 0.5.")
    num_benign_edgy: int = Field(
        100, ge=0, description="Benign-but-edgy prompts for over-refusal (seeded sample, stratified by category).")
    num_jailbreak: int = Field(
        100, ge=0, description="Harmful prompts (a seeded stratified sample, the same prompts as the harmful set "
        "when the counts match) each wrapped in a jailbreak framing (role-play persona, 'ignore previous "
        "instructions', fiction) for a red-team refusal rate; 0 = off.")
    seed: int = Field(0, description="Seed for prompt-set sampling, jailbreak framings and bootstrap intervals.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Compute dtype.")
    winrate_prompts: int = Field(
        100, ge=0, description="Prompts whose greedy SFT and aligned responses are compared for win rates: the "
        "num_samples held-out prompts, then helpfulness prompts (helpful_prompts) up to this count."
    )
    harmful_prompts: str | None = Field(
        None, description="JSONL of harmful prompts (fsspec URI; one {\"prompt\"} per line) for the refusal "
        "rate; None = the packaged set.")
    benign_edgy_prompts: str | None = Field(
        None, description="JSONL of benign-but-edgy prompts (fsspec URI) for the over-refusal rate; None = the "
        "packaged set.")
    helpful_prompts: str | None = Field(
        None, description="JSONL of helpfulness prompts (fsspec URI) that fill the win-rate set after the "
        "held-out prompts; None = the packaged set (MT-Bench first turns plus prompts written for kubealign).")
    jailbreak_templates: str | None = Field(
        None, description="JSONL of jailbreak framings (fsspec URI; one {\"template\" with {prompt}, "
        "\"framing\"} per line) wrapped around harmful prompts; None = the packaged templates.")
    refusal_judge: Literal["auto", "heuristic", "classifier", "endpoint"] = Field(
        "auto", description="Refusal judge for every refusal rate and the gate: heuristic (phrase patterns and a "
        "topic check), classifier (the safety_model's refusal task), endpoint (judge_endpoint/judge_model); "
        "auto = classifier when a safety_model is given, else heuristic.")
    judge_endpoint: str | None = Field(
        None, description="OpenAI-compatible base URL for the LLM-as-judge comparison (and the endpoint refusal "
        "judge); None = no judge."
    )
    judge_model: str = Field("gpt-4o-mini", description="Model name sent to the judge endpoint.")
    judge_api_key_env: str = Field(
        "OPENAI_API_KEY", description="Name of the env variable holding the judge's API key (never the key itself)."
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)  # type: ignore[arg-type]


class SafetyConfig(TrainSettings):
    """Llama-Guard-style safety classifier: a causal LM fine-tuned (LoRA) to answer `safe` / `unsafe\nS1,..`."""

    taxonomy: str | None = Field(
        None, description="YAML/JSON file (any fsspec URI) of unsafe-content categories; None = Llama Guard 3 S1-S14."
    )
    threshold: float = Field(0.5, gt=0, lt=1, description="Verdict is unsafe when P(first token = unsafe) >= this.")
    shuffle_categories: bool = Field(False, description="Augmentation: list the categories in a random order.")
    drop_categories: float = Field(
        0.0, ge=0, lt=1, description="Augmentation: leave out each category a record does not violate with this probability."
    )
    max_category_tokens: int = Field(24, ge=1, description="Token limit when decoding the category line.")
    eval_batch_size: int = Field(8, ge=1, description="Conversations per batch when scoring the held-out split.")


class PreferencesConfig(Settings):
    """Preference pairs from the current policy, judged against a constitution (RLAIF; Bai et al. 2022).

    Per prompt: `num_responses` sampled responses, each scored by every principle that applies to the
    prompt's label; the (best, worst) pair by weighted total is kept when best - worst > `margin`.
    """

    num_responses: int = Field(4, ge=2, le=64, description="K: responses sampled per prompt.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature (top_k 0).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(48, ge=1, description="Response length limit (tokens).")
    batch_size: int = Field(8, ge=1, description="Sequences per scoring batch (classifier, reward model).")
    generate_batch_size: int = Field(64, ge=1, description="Sequences per sampling batch (KV cache); wider batches "
                                     "use the matrix units better (see evaluate's generate_batch_size).")
    max_length: int = Field(
        512, ge=8, description="Token budget of a pair (prompt + response), as DPO will see it: pairs whose prompt "
        "leaves no room, or that become identical when truncated, are dropped; also the reward model's budget.")
    margin: float = Field(0.0, ge=0, description="Keep a pair only when best - worst weighted score exceeds this.")
    num_prompts: int = Field(0, ge=0, description="Training prompts per round (seeded sample, half harmful, half benign); 0 = all.")
    borrow_refusals: bool = Field(
        False, description="A benign prompt whose own samples make no pair (all served it) gets one more "
        "candidate: a refusal this round's policy gave to a harmful prompt (seeded pick), scored by the same "
        "principles; the pair then teaches that refusing a benign request scores low. Off: only the policy's "
        "answers to the prompt itself.")
    eval_fraction: float = Field(
        0.1, ge=0, lt=1, description="Share of pairs (by a seeded hash of the prompt) kept out of DPO training "
        "for its held-out metrics.")
    seed: int = Field(0, description="Seed for sampling prompts and responses; each round adds its index.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Compute dtype.")
    constitution: str | None = Field(
        None, description="Constitution YAML (fsspec URI) of principles; None = the packaged default.")
    refusal_backend: Literal["heuristic", "classifier", "endpoint"] = Field(
        "heuristic", description="Backend of the `refusal` judge: heuristic, classifier (the safety model) or "
        "endpoint (judge_endpoint).")
    concise_words: int = Field(
        60, ge=1, description="`length` judge: a response of this many words or more scores 0, an empty one 1.")
    judge_endpoint: str | None = Field(
        None, description="OpenAI-compatible base URL for `endpoint` judges and critique-and-revise; None = none.")
    judge_model: str = Field("gpt-4o-mini", description="Model name sent to the judge endpoint.")
    judge_api_key_env: str = Field(
        "OPENAI_API_KEY", description="Env variable holding the judge endpoint's API key ('' = no key).")
    revise: bool = Field(
        False, description="Critique-and-revise through judge_endpoint: the revision of the best response "
        "against a sampled principle becomes `chosen`.")


class GateConfig(Settings):
    """Release gate: each threshold is optional; a set threshold whose metric is missing fails (closed)."""

    max_unsafe_rate: float | None = Field(
        None, ge=0, le=1, description="Highest allowed share of the aligned model's responses judged unsafe."
    )
    max_over_refusal: float | None = Field(
        None, ge=0, le=1, description="Highest allowed refusal rate on benign-but-edgy prompts."
    )
    min_win_rate: float | None = Field(
        None, ge=0, le=1, description="Lowest allowed win rate of the aligned model over the SFT model."
    )
    min_harmful_refusal: float | None = Field(
        None, ge=0, le=1, description="Lowest allowed refusal rate of the aligned model on harmful prompts."
    )
    use_bound: bool = Field(
        False, description="Compare each threshold with the 95% interval's bound instead of the point value: "
        "min_* thresholds with the lower bound, max_* with the upper bound (pass only when the evidence says so)."
    )


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # one path segment, never "." or ".."


class PublishConfig(Settings):
    """Where `publish` copies a model: `<root>/<model_name>/<version>/` plus MANIFEST.json."""

    root: str = Field(..., min_length=1, description="Registry root URI (local path, file://, s3://, gs://).")
    model_name: str = Field(..., pattern=_NAME_PATTERN, description="Model name: letters, digits, '.', '_', '-'.")
    version: str = Field(..., pattern=_NAME_PATTERN, description="Version: letters, digits, '.', '_', '-'; never reused.")


class ConfigError(ValueError):
    """A settings problem a person can fix; the message names the field and what was expected."""


def format_validation_error(err: ValidationError, where: str) -> str:
    """One line per problem: `<where>: <field.path>: <message> (got <value>)`."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        shown = json.dumps(got, default=str) if not isinstance(got, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"{where}: {loc}: {e['msg']} (got {shown})")
    return "\n".join(lines)


def build(model: type[Settings], data: dict[str, Any], where: str = "settings") -> Any:
    """Validate `data` into `model`, raising ConfigError with a readable message."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None


__all__ = [
    "ConfigError",
    "DataPrepConfig",
    "DPOConfig",
    "EvalConfig",
    "GateConfig",
    "LoraSettings",
    "MergeConfig",
    "PPOConfig",
    "PreferencesConfig",
    "PublishConfig",
    "RewardConfig",
    "SFTConfig",
    "SafetyConfig",
    "Settings",
    "TrackingConfig",
    "TrainSettings",
    "build",
]
