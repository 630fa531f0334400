"""`kubealign preferences`: split prompt sets, check a constitution, build preference pairs from a policy.

    kubealign preferences split --out DIR [--held-out-fraction 0.3] [--seed 0]
    kubealign preferences check [CONSTITUTION.yaml]
    kubealign preferences run --policy URI --prompts FILE --out DIR [--round N] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kubealign.config import ConfigError, PreferencesConfig, build


def _settings(pairs: list[str]) -> PreferencesConfig:
    data: dict[str, Any] = {}
    for item in pairs:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            data[key] = json.loads(raw)
        except json.JSONDecodeError:
            data[key] = raw  # plain text (a URI, a backend name)
    return build(PreferencesConfig, data, where="preferences settings")


def cmd_split(args: argparse.Namespace) -> int:
    from kubealign.data.prompts import PROMPT_SETS
    from kubealign.prompt_split import split_prompt_sets

    fraction: dict[str, float] = {}  # over prompt_split.DEFAULT_HELD_OUT; a bare number sets every set
    for part in filter(str.strip, (args.held_out_fraction or "").split(",")):
        name, eq, value = part.partition("=")
        try:
            fraction.update({name.strip(): float(value)} if eq else dict.fromkeys(PROMPT_SETS, float(name)))
        except ValueError as exc:
            raise ConfigError(f"--held-out-fraction: expected a number or set=number pairs, got {part!r}") from exc
    try:
        counts = split_prompt_sets(args.out, fraction, args.seed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    for name, c in counts.items():
        print(f"{name}: {c['train']} train, {c['held_out']} held out")
    print(f"wrote {args.out}/train.jsonl and {args.out}/held_out/")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from kubealign.constitution import load_constitution

    c = load_constitution(args.constitution)
    for p in c.principles:
        print(f"{p.name}: {p.applies_to} prompts, judge {p.judge}, prefers {p.prefers}, weight {p.weight:g}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from kubealign.stages import preferences

    cfg = _settings(args.set)
    summary = preferences.run(cfg, args.policy, args.prompts, args.out, round_index=args.round,
                              reward_model=args.reward_model, safety_model=args.safety_model)
    print(f"{summary['pairs']:.0f} pairs -> {args.out}/train.jsonl, {args.out}/eval.jsonl; "
          f"scores: {args.out}/candidates.jsonl")
    return 0


def add_preferences_command(sub: Any) -> None:
    pr = sub.add_parser("preferences", help="preference pairs from a policy, judged against a constitution")
    cmds = pr.add_subparsers(dest="action", required=True)
    s = cmds.add_parser("split", help="split the packaged prompt sets into train / held-out by a seeded hash")
    s.add_argument("--out", required=True, help="folder for train.jsonl and held_out/<set>.jsonl")
    s.add_argument("--held-out-fraction", default="",
                   help="one fraction for every set (e.g. 0.3), or set=fraction pairs over the defaults "
                        "(harmful=0.3,benign_edgy=0.7,helpful=0.9)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_split)
    c = cmds.add_parser("check", help="validate a constitution file (default: the packaged one)")
    c.add_argument("constitution", nargs="?")
    c.set_defaults(func=cmd_check)
    r = cmds.add_parser("run", help="sample responses, judge them, write preference pairs")
    r.add_argument("--policy", required=True, help="model folder/URI to sample from")
    r.add_argument("--prompts", required=True, help="JSONL of {prompt, label: harmful|benign}")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--round", type=int, default=0, help="round index (added to the seed)")
    r.add_argument("--safety-model", help="safety classifier folder/URI (safety principles, unlabelled prompts)")
    r.add_argument("--reward-model", help="reward model folder/URI (reward principles)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a preferences setting, e.g. num_responses=4, constitution=my.yaml")
    r.set_defaults(func=cmd_run)
