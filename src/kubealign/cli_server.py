"""`kubealign upload|submit|schedule`: the commands that talk to a Kubeflow Pipelines API server.

    kubealign upload   {dpo|ppo} --host URL [--profile FILE] [--name NAME] [--version-name NAME]
    kubealign submit   {dpo|ppo} --host URL [--experiment NAME] [--config FILE] [--set key=value ...]
    kubealign schedule {dpo|ppo} --host URL --cron EXPR [--experiment NAME] [--set key=value ...]

The logic lives in kubealign.kfp_client; this file only declares the arguments and prints results.
"""

from __future__ import annotations

import argparse
from typing import Any


def _connection_args(p: argparse.ArgumentParser) -> None:
    from kubealign.kfp_client import HOST_ENV, TOKEN_ENV

    p.add_argument("--host", help=f"KFP API address, e.g. https://kubeflow.example.com/pipeline or "
                                  f"http://localhost:8888 (default: ${HOST_ENV})")
    p.add_argument("--no-auth", action="store_true",
                   help=f"send no bearer token (a port-forwarded single-user KFP); otherwise the token comes "
                        f"from ${TOKEN_ENV[0]}, ${TOKEN_ENV[1]} or the kube config's current user")


def _graph_args(p: argparse.ArgumentParser) -> None:
    from kubealign.graphs import GRAPHS

    p.add_argument("graph", choices=GRAPHS)
    p.add_argument("--profile", help="cluster profile YAML (manifests/profiles/*.yaml) compiled into the graph")


def _run_args(p: argparse.ArgumentParser) -> None:
    from kubealign.kfp_client import DEFAULT_EXPERIMENT

    p.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                   help=f"KFP experiment, created if missing (default {DEFAULT_EXPERIMENT})")
    p.add_argument("--namespace", help="Kubernetes namespace of the experiment (multi-user KFP), e.g. kubealign")
    p.add_argument("--service-account", help="service account of the run's pods, e.g. kubealign-pipeline-runner")
    p.add_argument("--pipeline-root", help="where the run's artifacts go (default: the profile's pipeline_root, "
                                           "else the namespace's kfp-launcher ConfigMap)")
    p.add_argument("--no-cache", action="store_true", help="run every task even if an identical one ran before")
    p.add_argument("--config", help="YAML/JSON file of pipeline parameters")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one pipeline parameter; string values may hold {{date}} or {{date:%%Y/%%m/%%d}}")


def _options(args: argparse.Namespace) -> Any:
    from kubealign.kfp_client import RunOptions

    return RunOptions(experiment=args.experiment, namespace=args.namespace, profile=args.profile,
                      pipeline_root=args.pipeline_root, service_account=args.service_account,
                      enable_caching=False if args.no_cache else None)


def _show(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "(all defaults)"


def cmd_upload(args: argparse.Namespace) -> int:
    from kubealign import kfp_client

    conn = kfp_client.connect(args.host, no_auth=args.no_auth)
    print(f"KFP API {conn.host}; auth: {conn.auth}", flush=True)
    r = kfp_client.upload(conn, args.graph, profile=args.profile, name=args.name, version_name=args.version_name,
                          description=args.description)
    if r.created:
        # KFP names a new pipeline's first version after the pipeline; the source label goes in the description.
        print(f"created pipeline {r.pipeline_name} (id {r.pipeline_id}) and its first version, from {r.version_name}")
    else:
        print(f"uploaded version {r.version_name} (id {r.version_id}) of pipeline {r.pipeline_name} "
              f"(id {r.pipeline_id})")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from kubealign import kfp_client

    params = kfp_client.prepare_parameters(args.graph, args.config, args.set, scheduled=False)
    conn = kfp_client.connect(args.host, namespace=args.namespace, no_auth=args.no_auth)
    print(f"KFP API {conn.host}; auth: {conn.auth}", flush=True)
    run = kfp_client.submit(conn, args.graph, params, _options(args), run_name=args.run_name)
    print(f"submitted run {run.display_name} (id {run.run_id}) to experiment {args.experiment} "
          f"with {_show(params)}")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from kubealign import kfp_client

    cron = kfp_client.kfp_cron(args.cron)
    params = kfp_client.prepare_parameters(args.graph, args.config, args.set, scheduled=True)
    conn = kfp_client.connect(args.host, namespace=args.namespace, no_auth=args.no_auth)
    print(f"KFP API {conn.host}; auth: {conn.auth}", flush=True)
    rr = kfp_client.schedule(conn, args.graph, params, cron, _options(args), name=args.name,
                             description=args.description)
    print(f"created recurring run {rr.display_name} (id {rr.recurring_run_id}) in experiment {args.experiment}: "
          f"cron '{cron}' (seconds first), at most 1 run at a time, no catch-up; with {_show(params)}")
    return 0


def add_server_commands(sub: Any) -> None:
    """Register upload, submit and schedule on the `kubealign` parser's subcommands."""
    u = sub.add_parser("upload", help="compile a graph and upload it to KFP (a new version if it exists)")
    _graph_args(u)
    _connection_args(u)
    u.add_argument("--name", help="pipeline name in KFP (default: the graph's, e.g. kubealign-dpo)")
    u.add_argument("--version-name",
                   help="name of the new version (default <kubealign version>-<git sha or UTC time>[-<profile>])")
    u.add_argument("--description", help="shown in the Kubeflow UI")
    u.set_defaults(func=cmd_upload)

    s = sub.add_parser("submit", help="start one run of a graph on KFP")
    _graph_args(s)
    _connection_args(s)
    _run_args(s)
    s.add_argument("--run-name", help="default <pipeline>-<UTC time>")
    s.set_defaults(func=cmd_submit)

    c = sub.add_parser("schedule", help="create a recurring run (cron; one run at a time; no catch-up)")
    _graph_args(c)
    _connection_args(c)
    _run_args(c)
    c.add_argument("--cron", required=True,
                   help="crontab line, e.g. '0 3 * * *' (03:00 every day; 5 fields, or 6 with seconds first, "
                        "or @daily/@weekly/...)")
    c.add_argument("--name", help="recurring run name (default <pipeline>-retrain)")
    c.add_argument("--description", help="shown in the Kubeflow UI")
    c.set_defaults(func=cmd_schedule)
