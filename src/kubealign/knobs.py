"""The knob table: every pipeline parameter, the stage it sets and the settings field behind it.

Read by the graphs (component calls), the components (generated signatures), the up-front
parameter check (`pipeline_params.check_stage_settings`) and the component bodies
(`kfp_support.stage_settings`). Types, defaults and descriptions come from the stage's pydantic
settings in config.py; nothing here restates them. Adding a knob: a settings field, then one row
below. Imports only pydantic and config (the pipeline compiler imports this; no torch).

KFP parameters have no None: an optional text setting is '' when unset, an optional number < 0.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic.fields import FieldInfo

from kubealign.config import (
    DataPrepConfig,
    DPOConfig,
    EvalConfig,
    GateConfig,
    MergeConfig,
    PPOConfig,
    PreferencesConfig,
    RewardConfig,
    SafetyConfig,
    Settings,
    SFTConfig,
)

STAGE_MODELS: dict[str, type[Settings]] = {
    "data_prep": DataPrepConfig, "sft": SFTConfig, "dpo": DPOConfig, "reward": RewardConfig, "ppo": PPOConfig,
    "safety": SafetyConfig, "evaluate": EvalConfig, "merge": MergeConfig, "gate": GateConfig,
    "preferences": PreferencesConfig,
}

# Component parameter -> settings field path, per stage. The component parameter names are the
# components' public interface (unchanged since they were written by hand).
_TRAIN = (("learning_rate", "learning_rate"), ("epochs", "epochs"), ("max_steps", "max_steps"),
          ("batch_size", "batch_size"), ("grad_accum", "grad_accum"), ("max_length", "max_length"),
          ("lora_rank", "lora.r"), ("lora_alpha", "lora.alpha"), ("use_lora", "lora.enabled"), ("seed", "seed"),
          ("save_every", "save_every"), ("checkpoint_root", "checkpoint_uri"))
_TRACK = (("wandb_project", "tracking.project"), ("wandb_entity", "tracking.entity"),
          ("wandb_mode", "tracking.mode"), ("run_group", "tracking.group"))
_SPEED = (("padding_free", "padding_free"), ("gradient_checkpointing", "gradient_checkpointing"))
_PPO = ("kl_coef", "kl_estimator", "clip_range", "clip_range_value", "vf_coef", "gamma", "lam", "rollout_batch_size",
        "ppo_epochs", "max_new_tokens", "temperature", "missing_eos_penalty")
_EVAL = ("beta", "max_length", "max_new_tokens", "generate_batch_size", "num_samples")
_PREF = ("num_responses", "temperature", "top_p", "max_new_tokens", "batch_size", "generate_batch_size", "max_length", "margin", "num_prompts",
         "eval_fraction", "refusal_backend", "concise_words", "revise", "borrow_refusals")

COMPONENT_ARGS: dict[str, tuple[tuple[str, str], ...]] = {
    "data_prep": (("eval_fraction", "eval_fraction"), ("seed", "seed"), ("max_reject_fraction", "max_reject_fraction"),
                  ("max_length", "max_length"), ("tokenizer_uri", "tokenizer")),
    "sft": (*_TRAIN, ("distributed", "distributed"), *_SPEED, *_TRACK),
    "dpo": (("beta", "beta"), ("loss_type", "loss_type"), ("label_smoothing", "label_smoothing"), *_TRAIN,
            ("distributed", "distributed"), *_SPEED, ("reference_logps", "reference_logps"), *_TRACK),
    "reward": (("center_coef", "center_coef"), ("balance_labels", "balance_labels"), *_TRAIN, *_TRACK),
    "ppo": (*((n, n) for n in _PPO), *_TRAIN, ("sample_every", "sample_every"),
            ("constitution_weight", "constitution_weight"), ("constitution_uri", "constitution"),
            ("concise_words", "concise_words"), *_TRACK),
    "safety": (("taxonomy_uri", "taxonomy"), ("threshold", "threshold"), ("shuffle_categories", "shuffle_categories"),
               ("drop_categories", "drop_categories"), *_TRAIN, *_TRACK),
    "evaluate": (*((n, n) for n in _EVAL), ("num_winrate_prompts", "winrate_prompts"), ("num_harmful", "num_harmful"),
                 ("num_benign_edgy", "num_benign_edgy"), ("num_jailbreak", "num_jailbreak"), ("seed", "seed"),
                 ("harmful_prompts", "harmful_prompts"), ("benign_edgy_prompts", "benign_edgy_prompts"),
                 ("helpful_prompts", "helpful_prompts"), ("jailbreak_templates", "jailbreak_templates"),
                 ("refusal_judge", "refusal_judge"),
                 ("judge_endpoint", "judge_endpoint"), ("judge_model", "judge_model"),
                 ("judge_api_key_env", "judge_api_key_env"), *_TRACK),
    "merge": (("dtype", "dtype"),),
    "gate": (("max_unsafe_rate", "max_unsafe_rate"), ("max_over_refusal", "max_over_refusal"),
             ("min_win_rate", "min_win_rate"), ("min_harmful_refusal", "min_harmful_refusal"),
             ("use_bound", "use_bound")),
    "preferences": (*((n, n) for n in _PREF), ("constitution_uri", "constitution"), ("seed", "seed"),
                    ("judge_endpoint", "judge_endpoint"), ("judge_model", "judge_model"),
                    ("judge_api_key_env", "judge_api_key_env")),
}

# Component parameters a graph sets itself rather than from a pipeline parameter, and why.
GRAPH_SET = {"run_group": "the KFP run's name, so every stage of a run shares one W&B group",
             "tokenizer_uri": "the base_model input: data prep checks token budgets with the model's tokenizer"}


@dataclass(frozen=True)
class Input:
    """A pipeline parameter that is an input (a URI or a name), not a stage setting."""

    name: str
    description: str
    default: str | None = None  # None = required


@dataclass(frozen=True)
class Knob:
    """A pipeline parameter: the (stage, settings field path) pairs it sets; the first gives type and default."""

    name: str
    targets: tuple[tuple[str, str], ...]


def _k(name: str, *targets: str) -> Knob:
    """`_k("dpo_beta", "dpo:beta", "evaluate:beta")`."""
    return Knob(name, tuple(tuple(t.split(":", 1)) for t in targets))  # type: ignore[misc]


def _shared(stages: tuple[str, ...], *paths: str) -> list[Knob]:
    """Knobs named like their field's last part, set on each of `stages` (e.g. batch_size on SFT and DPO)."""
    return [_k(_arg_name(stages[0], p), *(f"{s}:{p}" for s in stages)) for p in paths]


_MODEL_INPUTS = (
    Input("base_model", "Pretrained causal LM to align: model folder or URI (local path, file://, s3://, gs://)."),
    Input("sft_data", "SFT records (JSONL/Parquet of {messages}), any fsspec URI or local path."),
    Input("preference_data", "Preference records (JSONL/Parquet of {prompt, chosen, rejected}), any fsspec URI."),
    Input("safety_model", "Safety classifier folder/URI (the safety graph's output) for the unsafe-response rate; "
          "'' = none.", ""),
    Input("registry_root", "Model registry root URI; the merged model is published to "
          "<registry_root>/<model_name>/<version>/ when the gate passes. '' = do not publish.", ""),
    Input("model_version", "Version to publish under (letters, digits, '.', '_', '-'; never reused); "
          "'' = the KFP run's name.", ""),
)
_DATA = ("eval_fraction", "max_reject_fraction")
_LORA = ("lora.r", "lora.alpha", "lora.enabled")
_TRACKING = ("tracking.project", "tracking.entity", "tracking.mode")


def _release_knobs() -> list[Knob]:
    """Evaluate, gate and merge knobs both alignment graphs share."""
    out = [_k(f"eval_{n}", f"evaluate:{n}") for n in ("max_new_tokens", "generate_batch_size", "num_samples", "num_harmful",
                                                       "num_benign_edgy", "num_jailbreak")]
    out += [_k("eval_num_winrate_prompts", "evaluate:winrate_prompts")]
    out += [_k(f"eval_{n}", f"evaluate:{n}") for n in ("harmful_prompts", "benign_edgy_prompts", "helpful_prompts",
                                                       "jailbreak_templates", "refusal_judge")]
    out += [_k(n, f"evaluate:{n}") for n in ("judge_endpoint", "judge_model", "judge_api_key_env")]
    return out + [_k(f"gate_{n}", f"gate:{n}") for n in GateConfig.model_fields] + [_k("merge_dtype", "merge:dtype")]


def _alignment_knobs(trainers: tuple[str, ...], batched: tuple[str, ...], dist: tuple[str, ...]) -> list[Knob]:
    """Knobs both alignment graphs share: LoRA, batching, data prep, SFT, checkpoints."""
    every = (*trainers, "data_prep", "evaluate")
    return [
        *_shared(trainers, *_LORA),
        _k("sft_learning_rate", "sft:learning_rate"), _k("sft_epochs", "sft:epochs"),
        _k("sft_max_steps", "sft:max_steps"),
        *_shared(batched, "batch_size"), *_shared(trainers, "grad_accum"), *_shared(every, "max_length", "seed"),
        *_shared(dist, "distributed"), *_shared(("data_prep",), *_DATA),
        *_shared(trainers, "save_every", "checkpoint_uri"),
    ]


def _arg_name(stage: str, path: str) -> str:
    """The component parameter that sets `path` on `stage`."""
    for arg, p in COMPONENT_ARGS[stage]:
        if p == path:
            return arg
    raise KeyError(f"stage {stage} has no component parameter for {path}")


_DPO = (
    *_alignment_knobs(("sft", "dpo"), ("sft", "dpo"), ("sft", "dpo")),
    _k("dpo_learning_rate", "dpo:learning_rate"), _k("dpo_beta", "dpo:beta", "evaluate:beta"),
    _k("dpo_loss_type", "dpo:loss_type"), _k("dpo_label_smoothing", "dpo:label_smoothing"),
    _k("dpo_epochs", "dpo:epochs"), _k("dpo_max_steps", "dpo:max_steps"),
    *_shared(("sft", "dpo"), "padding_free", "gradient_checkpointing"), _k("dpo_reference_logps", "dpo:reference_logps"),
    *_release_knobs(), *_shared(("sft", "dpo", "evaluate"), *_TRACKING),
)
_PPO_KNOBS = (
    *_alignment_knobs(("sft", "reward", "ppo"), ("sft", "reward"), ("sft",)),
    _k("reward_learning_rate", "reward:learning_rate"), _k("reward_center_coef", "reward:center_coef"),
    _k("reward_balance_labels", "reward:balance_labels"),
    _k("reward_epochs", "reward:epochs"), _k("reward_max_steps", "reward:max_steps"),
    *(_k(f"ppo_{n}" if not n.startswith("ppo_") else n, f"ppo:{n}") for n in (
        "learning_rate", "kl_coef", "kl_estimator", "clip_range", "clip_range_value", "vf_coef", "gamma", "lam",
        "rollout_batch_size", "batch_size", "ppo_epochs", "max_new_tokens", "temperature", "missing_eos_penalty")),
    _k("ppo_prompt_epochs", "ppo:epochs"), _k("ppo_max_steps", "ppo:max_steps"),
    _k("ppo_sample_every", "ppo:sample_every"), _k("ppo_constitution_weight", "ppo:constitution_weight"),
    _k("ppo_constitution", "ppo:constitution"), _k("ppo_concise_words", "ppo:concise_words"),
    *_shared(("sft",), "padding_free", "gradient_checkpointing"),
    _k("eval_beta", "evaluate:beta"), *_release_knobs(), *_shared(("sft", "reward", "ppo", "evaluate"), *_TRACKING),
)
_SAFETY = (
    *_shared(("safety",), "taxonomy", "threshold", "shuffle_categories", "drop_categories", "learning_rate", "epochs",
             "max_steps", "batch_size", "grad_accum"),
    *_shared(("safety", "data_prep"), "max_length"), *_shared(("safety",), *_LORA),
    *_shared(("safety", "data_prep"), "seed"), *_shared(("data_prep",), *_DATA),
    *_shared(("safety",), "save_every", "checkpoint_uri", *_TRACKING),
)


def _with_target(knobs: list[Knob], name: str, target: str) -> list[Knob]:
    """`knobs` with one more (stage, path) on the knob called `name`."""
    return [Knob(k.name, (*k.targets, tuple(target.split(":", 1)))) if k.name == name else k  # type: ignore[arg-type]
            for k in knobs]


_PREF_KNOBS = (*(_k(f"pref_{n}", f"preferences:{n}") for n in (*(n for n in _PREF if n != "max_length"), "seed",
                                                                 "judge_endpoint", "judge_model", "judge_api_key_env")),
               _k("constitution", "preferences:constitution"))
_RLAIF = (
    # one token budget: pairs that DPO could not fit are dropped when they are made
    *_with_target(_alignment_knobs(("sft", "dpo"), ("sft", "dpo"), ("sft", "dpo")), "max_length",
                  "preferences:max_length"),
    _k("dpo_learning_rate", "dpo:learning_rate"), _k("dpo_beta", "dpo:beta", "evaluate:beta"),
    _k("dpo_loss_type", "dpo:loss_type"), _k("dpo_label_smoothing", "dpo:label_smoothing"),
    _k("dpo_epochs", "dpo:epochs"), _k("dpo_max_steps", "dpo:max_steps"),
    *_shared(("sft", "dpo"), "padding_free", "gradient_checkpointing"), _k("dpo_reference_logps", "dpo:reference_logps"),
    *_PREF_KNOBS,
    *_release_knobs(), *_shared(("sft", "dpo", "evaluate"), *_TRACKING),
)

# the PPO graph with its reward model trained on constitution-judged pairs sampled from the SFT model
# (the preferences stage's constitution also scores PPO's rollouts when ppo_constitution_weight > 0: one
# file and one word limit, so the PPO graph's own knobs for them go)
_RLAIF_PPO = (*_with_target([k for k in _PPO_KNOBS if k.name not in ("ppo_constitution", "ppo_concise_words")],
                            "max_length", "preferences:max_length"),
              *_with_target(_with_target(list(_PREF_KNOBS), "constitution", "ppo:constitution"),
                            "pref_concise_words", "ppo:concise_words"))
_PROMPTS = Input("prompts", "Training prompts for the preference rounds: JSONL of {prompt, label: harmful|benign} "
                 "(`kubealign preferences split` writes one from the packaged sets, keeping a held-out side for "
                 "evaluation); a row without a label is labelled by safety_model.")

INPUTS: dict[str, tuple[Input, ...]] = {
    "dpo": (*_MODEL_INPUTS, Input("model_name", "Model name in the registry.", "kubealign-dpo")),
    "ppo": (*_MODEL_INPUTS, Input("model_name", "Model name in the registry.", "kubealign-ppo")),
    "rlaif": (*_MODEL_INPUTS[:2], _PROMPTS, *_MODEL_INPUTS[3:],
              Input("reward_model", "Reward model folder/URI for constitution principles judged by `reward`; "
                    "'' = none.", ""),
              Input("model_name", "Model name in the registry.", "kubealign-rlaif")),
    "rlaif_ppo": (*_MODEL_INPUTS[:2], _PROMPTS, *_MODEL_INPUTS[3:],
                  Input("model_name", "Model name in the registry.", "kubealign-rlaif-ppo")),
    "safety": (_MODEL_INPUTS[0], Input("safety_data", "Safety records (JSONL/Parquet of {messages, label, "
                                       "categories}), any fsspec URI or local path.")),
}
KNOBS: dict[str, tuple[Knob, ...]] = {"dpo": tuple(_DPO), "ppo": tuple(_PPO_KNOBS), "safety": tuple(_SAFETY),
                                      "rlaif": tuple(_RLAIF), "rlaif_ppo": tuple(_RLAIF_PPO)}


# --- reading the settings ------------------------------------------------------------------------------

def field(stage: str, path: str) -> FieldInfo:
    """The pydantic field at `path` (dots into nested settings) of `stage`'s settings model."""
    model: Any = STAGE_MODELS[stage]
    *parents, last = path.split(".")
    for name in parents:
        model = model.model_fields[name].default_factory().__class__  # nested settings model
    return model.model_fields[last]


def _optional(info: FieldInfo) -> bool:
    return type(None) in typing.get_args(info.annotation)


def kfp_type(info: FieldInfo) -> type:
    """int, float, str or bool: what KFP can carry for the field (Literal -> its values' type; X | None -> X)."""
    ann = info.annotation
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        ann = next(a for a in typing.get_args(ann) if a is not type(None))
    if typing.get_origin(ann) is Literal:
        ann = type(typing.get_args(ann)[0])
    if ann not in (int, float, str, bool):
        raise TypeError(f"{ann} cannot be a KFP parameter")
    return ann


def kfp_default(info: FieldInfo) -> Any:
    """The settings default as KFP carries it: None -> '' (text) or -1.0 (numbers, '< 0 is off')."""
    if info.default is None:
        return "" if kfp_type(info) is str else -1.0
    return info.default


def to_setting(info: FieldInfo, value: Any) -> Any:
    """A KFP parameter value back to the settings value: the inverse of `kfp_default`'s None rule."""
    if _optional(info) and (value == "" or (kfp_type(info) is float and isinstance(value, (int, float))
                                             and not isinstance(value, bool) and value < 0)):
        return None
    return value


def describe(info: FieldInfo) -> str:
    text = (info.description or "").strip()
    if _optional(info):
        text += " Empty = unset." if kfp_type(info) is str else " Below 0 = off."
    return text


def component_params(stage: str) -> list[tuple[str, type, Any]]:
    """(name, type, default) of each settings parameter of the stage's component, in table order."""
    out = []
    for arg, path in COMPONENT_ARGS[stage]:
        info = field(stage, path)
        out.append((arg, kfp_type(info), kfp_default(info)))
    return out


def pipeline_params(graph: str) -> list[tuple[str, type, Any, str]]:
    """(name, type, default or inspect.Parameter.empty, description): inputs first, then knobs."""
    import inspect

    out = [(i.name, str, inspect.Parameter.empty if i.default is None else i.default, i.description)
           for i in INPUTS[graph]]
    for knob in KNOBS[graph]:
        info = field(*knob.targets[0])
        where = ", ".join(stage for stage, _ in knob.targets)
        out.append((knob.name, kfp_type(info), kfp_default(info), f"{describe(info)} (stage: {where})"))
    return out


def args_for(graph: str, stage: str, values: dict[str, Any]) -> dict[str, Any]:
    """Component keyword arguments for `stage`'s task from the pipeline's parameter values."""
    arg_of = {path: arg for arg, path in COMPONENT_ARGS[stage]}
    return {arg_of[path]: values[k.name] for k in KNOBS[graph] for s, path in k.targets if s == stage}


def stages_of(graph: str) -> list[str]:
    """The stages whose settings the graph's knobs set, in first-seen order."""
    seen: dict[str, None] = {}
    for k in KNOBS[graph]:
        for stage, _ in k.targets:
            seen.setdefault(stage)
    return list(seen)


def settings_data(stage: str, args: dict[str, Any]) -> dict[str, Any]:
    """Nested settings data from flat component arguments (names of COMPONENT_ARGS[stage]); others ignored."""
    data: dict[str, Any] = {}
    for arg, path in COMPONENT_ARGS[stage]:
        if arg not in args:
            continue
        *parents, last = path.split(".")
        target = data
        for name in parents:
            target = target.setdefault(name, {})
        target[last] = to_setting(field(stage, path), args[arg])
    return data
