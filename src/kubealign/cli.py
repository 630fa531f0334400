"""The `kubealign` command.

    kubealign validate {sft|preference|safety} PATH [--report FILE]
    kubealign run {dpo|ppo|safety|rlaif|rlaif_ppo} [--config FILE] [--set key=value ...] [--pipeline-root DIR]
                  [--runner subprocess|docker] [--network none|host] [--rounds R]
    kubealign compile {dpo|ppo|safety|rlaif|rlaif_ppo} -o FILE [--profile FILE] [--rounds R]
    kubealign preferences split --out DIR | run --policy URI --prompts FILE --out DIR [--set key=value ...]
    kubealign guard --model URI "TEXT" | FILE.jsonl [--response TEXT] [--threshold T] [--json]
    kubealign judge refusal IN.jsonl --out OUT.jsonl [--backend heuristic|classifier|endpoint] [--model URI]
    kubealign prepare-demo
    kubealign upload dpo --host URL [--profile FILE]
    kubealign submit dpo --host URL --experiment NAME [--set key=value ...]
    kubealign schedule dpo --host URL --cron EXPR [--set key=value ...]

Every error a person can fix ends as one line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from kubealign.config import ConfigError
from kubealign.graphs import GRAPHS, pipeline


def demo_defaults(graph: str) -> dict[str, Any]:
    """Input parameters of the laptop demo: SmolLM2-135M-Instruct on the shipped demo data."""
    from kubealign.demo.prompt_sets import DATA_DIR, demo_preference_path, demo_sft_path
    from kubealign.demo_model import prepare_demo_model

    if graph == "safety":
        return {"base_model": str(prepare_demo_model()), "safety_data": str(DATA_DIR / "safety.jsonl")}
    if graph in ("rlaif", "rlaif_ppo"):  # prompts: `kubealign preferences split` output, named in the config
        return {"base_model": str(prepare_demo_model()), "sft_data": demo_sft_path()}
    return {
        "base_model": str(prepare_demo_model()),
        "sft_data": demo_sft_path(),
        "preference_data": demo_preference_path(),
    }


def cmd_validate(args: argparse.Namespace) -> int:
    from kubealign.stages.data_prep import validate_command

    return validate_command(args.kind, args.path, report_path=args.report, tokenizer=args.tokenizer,
                            max_length=args.max_length)


def cmd_compile(args: argparse.Namespace) -> int:
    from kfp import compiler

    compiler.Compiler().compile(pipeline(args.graph, args.profile, args.rounds), args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from kubealign import local_run, pipeline_params

    func = pipeline(args.graph, rounds=args.rounds)
    # Check what the person typed before preparing anything heavy.
    explicit = pipeline_params.resolve(func, {}, args.config, args.set, require=False)
    required = {n for n, p in pipeline_params.signature_params(func).items() if p.default is p.empty}
    defaults = {} if required <= explicit.keys() else demo_defaults(args.graph)
    params = pipeline_params.resolve(func, defaults, args.config, args.set)
    problems: list[str] = []  # every problem at once, before anything starts
    for check in (lambda: pipeline_params.check_stage_settings(params, args.graph),
                  lambda: pipeline_params.check_local_inputs(params),
                  lambda: pipeline_params.check_remote_inputs(params)):
        try:
            check()
        except ConfigError as err:
            problems += str(err).splitlines()
    if problems:
        raise ConfigError("\n".join(problems))
    runner = None
    if args.runner == "docker":
        from kubealign.images import local_docker_profile

        # Every task on the CPU image (GPU stages name the CUDA one, which this machine cannot run);
        # commands and arguments are unchanged, the profile only swaps the image.
        func = pipeline(args.graph, rounds=args.rounds, profile=local_docker_profile())
        params, runner = _docker_runner(func, params, args.pipeline_root, args.network)
    print("kubealign run", args.graph, "with", ", ".join(f"{k}={v}" for k, v in sorted(params.items())), flush=True)
    run_dir, started, wall = local_run.run_local(func, params, args.pipeline_root, cache=args.cache,
                                                verbose=args.verbose, runner=runner)
    print("\n" + local_run.format_table(local_run.summarise(run_dir, started), wall))
    report = next(run_dir.glob("evaluate*/report"), None)
    if report:
        print(f"\nevaluation report: {report}")
    return 0


def _docker_runner(func: Any, params: dict[str, Any], pipeline_root: str, network: str) -> tuple[dict, Any]:
    """Every task in the trainer image: its image checked before any task starts (a missing or stale one
    is an error naming `make images`, not a registry pull mid-run), local inputs mounted read-only."""
    from pathlib import Path

    from kubealign import images

    images.check_local_images(images.pipeline_images(func))
    params, paths = images.container_inputs(params)
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return params, images.docker_runner(root, paths, network=network)


def cmd_guard(args: argparse.Namespace) -> int:
    from kubealign.safety.classifier import guard_command

    return guard_command(args.model, args.input, response=args.response, threshold=args.threshold,
                         as_json=args.json)


def cmd_judge(args: argparse.Namespace) -> int:
    from kubealign.refusal.command import judge_command

    return judge_command(args.input, args.out, backend=args.backend, model=args.model, api_key_env=args.api_key_env)


def cmd_prepare_demo(args: argparse.Namespace) -> int:
    from kubealign.demo_model import prepare_demo_model

    print(prepare_demo_model())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubealign", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a record file; print and report every rejected row")
    v.add_argument("kind", choices=["sft", "preference", "safety"])
    v.add_argument("path", help="JSONL or Parquet file: local path, file://, s3://, gs://")
    v.add_argument("--report", help="write the JSON report here")
    v.add_argument("--tokenizer", help="model folder/URI for the tokenizer-aware checks")
    v.add_argument("--max-length", type=int, default=512, help="token budget for the tokenizer-aware checks")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("run", help="run a graph locally with KFP's local runner")
    r.add_argument("graph", choices=GRAPHS)
    r.add_argument("--config", help="YAML/JSON file of pipeline parameters")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one parameter")
    r.add_argument("--pipeline-root", default="out/local", help="where task outputs go (default out/local)")
    r.add_argument("--cache", action="store_true",
                   help="reuse finished tasks with unchanged inputs from an earlier local run (KFP local cache)")
    r.add_argument("--verbose", action="store_true",
                   help="show every task's full output as KFP prints it (default: one line per task; "
                        "full logs under <run folder>/logs/)")
    r.add_argument("--runner", choices=["subprocess", "docker"], default="subprocess",
                   help="subprocess: tasks in this Python (default); docker: each task in the trainer image")
    r.add_argument("--network", choices=["none", "host"], default="none",
                   help="with --runner docker: the tasks' network (host reaches a local S3 endpoint)")
    r.add_argument("--rounds", type=int, help="rlaif graph: preference -> DPO rounds (default 2)")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("compile", help="compile a graph to KFP pipeline YAML")
    c.add_argument("graph", choices=GRAPHS)
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--profile", help="cluster profile YAML (manifests/profiles/*.yaml)")
    c.add_argument("--rounds", type=int, help="rlaif graph: preference -> DPO rounds, unrolled (default 2)")
    c.set_defaults(func=cmd_compile)

    g = sub.add_parser("guard", help="judge a text (or each record of a JSONL file) with a safety classifier")
    g.add_argument("input", help="text of a user message, or a JSONL file of {messages} / {prompt, response} records")
    g.add_argument("--model", required=True, help="classifier model folder/URI (the safety stage's output)")
    g.add_argument("--response", help="judge this agent reply to the text instead of the text itself")
    g.add_argument("--threshold", type=float, help="unsafe when P(unsafe) >= this (default: saved with the model)")
    g.add_argument("--json", action="store_true", help="one JSON object per input")
    g.set_defaults(func=cmd_guard)

    j = sub.add_parser("judge", help="judge responses: did each one serve its prompt (refusal judge)")
    j.add_argument("task", choices=["refusal"])
    j.add_argument("input", help='JSONL of {"prompt", "response"} rows (optional "label": a verdict or true/false)')
    j.add_argument("--out", required=True, help="write the rows with \"verdict\" and \"refusal\" added here")
    j.add_argument("--backend", choices=["heuristic", "classifier", "endpoint"], default="heuristic",
                   help="heuristic (default, no model), classifier (--model: safety classifier folder/URI) or "
                        "endpoint (--model: URL#MODEL of an OpenAI-compatible chat endpoint)")
    j.add_argument("--model", help="classifier folder/URI, or URL#MODEL for the endpoint backend")
    j.add_argument("--api-key-env", help="endpoint backend: environment variable holding the API key "
                                         "(default OPENAI_API_KEY; '' for an endpoint without authentication)")
    j.set_defaults(func=cmd_judge)

    d = sub.add_parser("prepare-demo", help="convert the demo model (SmolLM2-135M-Instruct) once")
    d.set_defaults(func=cmd_prepare_demo)

    from kubealign.preferences_cli import add_preferences_command

    add_preferences_command(sub)  # split prompt sets; build preference pairs from a policy
    from kubealign.cli_server import add_server_commands

    add_server_commands(sub)  # upload, submit, schedule: a Kubeflow Pipelines API server
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:
        # Every error kubealign raises for bad input is a ValueError (config, record, model, profile) or
        # an OSError (storage) whose message names the file, row or field; the traceback adds nothing.
        if os.environ.get("KUBEALIGN_DEBUG"):
            raise
        for line in str(err).splitlines() or [type(err).__name__]:
            print(f"kubealign {args.command}: error: {line}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        # A failed task: its last lines and its log's path are printed above.
        if os.environ.get("KUBEALIGN_DEBUG"):
            raise
        print(f"kubealign {args.command}: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        # An object store refusing us (no credentials, access denied) raises botocore's, gcsfs's or
        # google-auth's own exception types; their message says what is missing, the traceback adds nothing.
        if os.environ.get("KUBEALIGN_DEBUG") or not _storage_error(err):
            raise
        where = f" ({args.path})" if getattr(args, "path", None) else ""
        print(f"kubealign {args.command}: error: object store{where}: {type(err).__name__}: {err}", file=sys.stderr)
        return 2


def _storage_error(err: BaseException) -> bool:
    return type(err).__module__.split(".")[0] in ("botocore", "aiobotocore", "gcsfs", "google")


if __name__ == "__main__":
    sys.exit(main())
