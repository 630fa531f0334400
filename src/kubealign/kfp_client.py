"""Talking to a Kubeflow Pipelines API server (v2beta1): upload a graph, submit a run, schedule retrains.

    kubealign upload   dpo --host URL [--profile FILE] [--version-name NAME]
    kubealign submit   dpo --host URL --experiment NAME [--config FILE] [--set key=value ...]
    kubealign schedule dpo --host URL --cron "0 3 * * *" --experiment NAME [--set key=value ...]

Everything goes through `kfp.Client` (kfp 2.17), which speaks the v2beta1 REST API.

Auth: a bearer token from `KUBEALIGN_KFP_TOKEN` or `KF_PIPELINES_TOKEN`, else the `token` or
`tokenFile` of the current context's user in the kube config (`$KUBECONFIG`, else
`~/.kube/config`). `--no-auth` sends none (a port-forwarded single-user KFP). The token is only
ever put in the Authorization header; it is never printed.

Parameters are resolved and checked exactly as `kubealign run` does (`kubealign.pipeline_params`)
before anything is sent, and a parameter whose name or value looks like a credential is refused:
parameters are stored with the run and shown to everyone in the Kubeflow UI. Credentials reach the
pods only as Kubernetes Secrets named in a cluster profile's `secret_env`.

Date templates, so that a recurring retrain reads the newest data: a string parameter may contain
`{{date}}` (UTC date, YYYY-MM-DD) or `{{date:FORMAT}}` with FORMAT made of %Y %y %m %d %H %M %S and
the separators - / _ . (e.g. `s3://bucket/prefs/{{date:%Y/%m/%d}}/prefs.jsonl`).
- `submit` replaces it with the current UTC date before sending.
- `schedule` sends KFP's own macro `[[ScheduledTime.<Go layout>]]` (`{{date}}` becomes
  `[[ScheduledTime.2006-01-02]]`), which KFP's scheduler replaces with each run's scheduled time,
  formatted in UTC, when it starts the run.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from kubealign.config import ConfigError

TOKEN_ENV = ("KUBEALIGN_KFP_TOKEN", "KF_PIPELINES_TOKEN")
HOST_ENV = "KF_PIPELINES_ENDPOINT"
DEFAULT_EXPERIMENT = "kubealign"
_TOKEN_HINT = (
    f"set {TOKEN_ENV[0]} (e.g. $(kubectl -n kubealign create token <service-account> "
    "--audience pipelines.kubeflow.org)), or pass --no-auth for a port-forwarded single-user KFP"
)


class ServerError(ValueError):
    """The KFP API server could not be reached or refused a request; the message says what to change."""


# --- auth ------------------------------------------------------------------------------------------


def _kubeconfig_paths(env: Mapping[str, str]) -> list[Path]:
    raw = env.get("KUBECONFIG", "")
    if raw.strip():
        return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    return [Path("~/.kube/config").expanduser()]


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the kube config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: the kube config is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the kube config is not a mapping")
    return data


def _named(docs: list[tuple[Path, dict[str, Any]]], section: str, name: str) -> tuple[Path, dict[str, Any]] | None:
    """The first entry called `name` in `section` (contexts, users) over the merged files, as kubectl does."""
    for path, doc in docs:
        for entry in doc.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return path, entry
    return None


def token_from_kubeconfig(env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(token, where it came from) from the current context's user; ConfigError naming the file if none."""
    paths = _kubeconfig_paths(env)
    existing = [p for p in paths if p.is_file()]
    listed = ", ".join(str(p) for p in paths)
    if not existing:
        raise ConfigError(f"no KFP token: {' and '.join(TOKEN_ENV)} are not set and there is no kube config "
                          f"at {listed}; {_TOKEN_HINT}")
    docs = [(p, _read_kubeconfig(p)) for p in existing]
    current = next((d["current-context"] for _, d in docs if d.get("current-context")), None)
    if not current:
        raise ConfigError(f"{listed}: no current-context set, so no user to take a KFP token from; {_TOKEN_HINT}")
    found = _named(docs, "contexts", current)
    if found is None:
        raise ConfigError(f"{listed}: current-context {current!r} is not among the contexts; {_TOKEN_HINT}")
    ctx_path, ctx = found
    user_name = (ctx.get("context") or {}).get("user")
    found_user = _named(docs, "users", user_name) if user_name else None
    if found_user is None:
        raise ConfigError(f"{ctx_path}: context {current!r} names user {user_name!r}, which is not among the users; "
                          f"{_TOKEN_HINT}")
    user_path, entry = found_user
    user = entry.get("user") or {}
    if user.get("token"):
        return str(user["token"]).strip(), f"kube config {user_path} (user {user_name})"
    if user.get("tokenFile"):
        token_file = Path(str(user["tokenFile"])).expanduser()
        if not token_file.is_absolute():  # relative paths in a kube config are relative to that file
            token_file = user_path.parent / token_file
        try:
            token = token_file.read_text().strip()
        except OSError as err:
            raise ConfigError(f"{user_path}: user {user_name!r} has tokenFile {token_file}, which cannot be read "
                              f"({err.strerror})") from None
        if not token:
            raise ConfigError(f"{token_file} (tokenFile of user {user_name!r} in {user_path}) is empty")
        return token, f"kube config {user_path} (user {user_name}, tokenFile {token_file})"
    how = ("an exec plugin" if user.get("exec") else "a client certificate" if user.get("client-certificate-data")
           or user.get("client-certificate") else "an auth-provider" if user.get("auth-provider") else "no credential")
    raise ConfigError(f"{user_path}: user {user_name!r} of context {current!r} has no token or tokenFile "
                      f"(it uses {how}); {_TOKEN_HINT}")


def find_token(env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(token, source): the first of TOKEN_ENV that is set, else the kube config's current user."""
    for name in TOKEN_ENV:
        if env.get(name, "").strip():
            return env[name].strip(), name
    return token_from_kubeconfig(env)


@dataclass
class Connection:
    client: Any  # kfp.Client
    host: str
    auth: str  # where the token came from (never the token itself)


def _error_message(err: Any, host: str) -> str:
    """One line from a kfp_server_api.ApiException: status, the server's own message, a hint."""
    import json

    if not err.status:  # kfp_server_api reports TLS failures as an ApiException without a status
        return f"cannot reach the KFP API at {host}: {err.reason}"
    detail = ""
    if err.body:
        try:
            body = json.loads(err.body)
            detail = body.get("message") or body.get("error") or ""
        except (ValueError, AttributeError):
            detail = str(err.body)[:200]
    line = f"KFP API at {host} answered {err.status} {err.reason}" + (f": {detail}" if detail else "")
    if err.status in (401, 403):
        line += f"; check the token and its permissions ({_TOKEN_HINT})"
    elif err.status == 409:
        line += "; choose another name (for upload: --version-name)"
    return line


@contextlib.contextmanager
def server_errors(host: str) -> Iterator[None]:
    """Turn transport and API errors into one-line ServerErrors."""
    import kfp_server_api
    import urllib3

    try:
        yield
    except kfp_server_api.ApiException as err:
        raise ServerError(_error_message(err, host)) from None
    except urllib3.exceptions.HTTPError as err:
        reason = getattr(err, "reason", None) or err
        raise ServerError(f"cannot reach the KFP API at {host}: {reason}") from None


def _probe(host: str, token: str | None) -> None:
    """One healthz call first: kfp.Client retries a refused healthz 5 times, 5 s apart, before saying why."""
    import kfp_server_api

    cfg = kfp_server_api.Configuration(host=host)
    if token:
        cfg.api_key["authorization"] = token
        cfg.api_key_prefix["authorization"] = "Bearer"
    with kfp_server_api.ApiClient(cfg) as api, server_errors(host):
        kfp_server_api.HealthzServiceApi(api).healthz_service_get_healthz(_request_timeout=30)


def connect(host: str | None, *, namespace: str | None = None, no_auth: bool = False,
            env: Mapping[str, str] = os.environ) -> Connection:
    """A kfp.Client for `host` with the bearer token from the environment or kube config."""
    host = (host or env.get(HOST_ENV, "")).strip().rstrip("/")
    if not host:
        raise ConfigError(f"no KFP API address: pass --host URL or set {HOST_ENV}")
    if not host.startswith(("http://", "https://")):
        raise ConfigError(f"--host {host!r}: expected a URL starting with http:// or https://")
    token, source = (None, "none (--no-auth)") if no_auth else find_token(env)
    _probe(host, token)
    import kfp

    with warnings.catch_warnings(), server_errors(host):
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP 2.0.0-beta.2 and later"
        client = kfp.Client(host=host, existing_token=token, namespace=namespace or "kubeflow")
    return Connection(client, host, f"bearer token from {source}" if token else source)


# --- secrets in parameters -------------------------------------------------------------------------

_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "credential", "credentials")
_SECRET_ENV_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_NOT_A_SECRET_ENV = re.compile(r"_(FILE|PATH|DIR|ID)$")  # where a secret lives, or an id: not the secret
KNOWN_SECRET_ENV = ("WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN",
                    "HUGGING_FACE_HUB_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS_JSON", *TOKEN_ENV)
_MIN_SECRET_LEN = 8  # shorter values ("1", "true") would match ordinary parameter text
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]+@")
_TOKEN_SHAPES = (
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), "a Hugging Face token"),
    (re.compile(r"\b(ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{20,}\b"), "a GitHub token"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), "an API secret key"),
)
_SECRET_ADVICE = ("pipeline parameters are stored with the run and shown in the Kubeflow UI: put the credential "
                  "in a Kubernetes Secret and list it under secret_env in the cluster profile "
                  "(manifests/profiles/*.yaml)")


def _secret_name(name: str) -> bool:
    # Whole words only: `eval_max_new_tokens` is a token budget, not a token.
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    return any(w in _SECRET_WORDS or w.endswith(("apikey", "secret", "password")) for w in words)


def secret_env_values(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Environment variables that hold credentials: name -> value."""
    out = {}
    for name, value in env.items():
        known = name in KNOWN_SECRET_ENV
        looks = _SECRET_ENV_NAME.search(name) and not _NOT_A_SECRET_ENV.search(name)
        if (known or looks) and len(value.strip()) >= _MIN_SECRET_LEN:
            out[name] = value.strip()
    return out


def check_no_secrets(values: Mapping[str, Any], where: str = "parameters",
                     env: Mapping[str, str] = os.environ) -> None:
    """Refuse parameters whose name or value looks like a credential. The value is never echoed."""
    secrets = secret_env_values(env)
    for name, value in values.items():
        if _secret_name(str(name)):
            raise ConfigError(f"{where}: parameter {name!r} looks like a credential; {_SECRET_ADVICE}")
        text = str(value)
        for env_name, secret in secrets.items():
            if secret in text:
                raise ConfigError(f"{where}: parameter {name}: its value contains the value of ${env_name}; "
                                  f"{_SECRET_ADVICE}")
        if _URL_PASSWORD.match(text):
            raise ConfigError(f"{where}: parameter {name}: the URI carries a password (user:password@host); "
                              f"{_SECRET_ADVICE}")
        for pattern, what in _TOKEN_SHAPES:
            if pattern.search(text):
                raise ConfigError(f"{where}: parameter {name}: the value looks like {what}; {_SECRET_ADVICE}")


# --- date templates and cron -----------------------------------------------------------------------

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
_DATE_TEMPLATE = re.compile(r"^\s*date\s*(?::(.*))?$")
_STRFTIME_TO_GO = {"%Y": "2006", "%y": "06", "%m": "01", "%d": "02", "%H": "15", "%M": "04", "%S": "05"}
_FORMAT_TOKEN = re.compile(r"%[A-Za-z]|[-/_.]")
DEFAULT_DATE_FORMAT = "%Y-%m-%d"


def _date_format(inner: str, where: str) -> str:
    m = _DATE_TEMPLATE.match(inner)
    if not m:
        raise ConfigError(f"{where}: unknown template {{{{{inner}}}}}; supported: {{{{date}}}} and "
                          "{{date:FORMAT}} with FORMAT made of %Y %y %m %d %H %M %S and - / _ .")
    fmt = (m.group(1) or DEFAULT_DATE_FORMAT).strip()
    # Only codes with a Go equivalent and plain separators: other literal text (a digit, "Jan", "PM")
    # would be read by Go's time layout as a field of its own.
    tokens = _FORMAT_TOKEN.findall(fmt)
    if "".join(tokens) != fmt or any(t.startswith("%") and t not in _STRFTIME_TO_GO for t in tokens):
        raise ConfigError(f"{where}: date format {fmt!r}: use only %Y %y %m %d %H %M %S and the separators "
                          "- / _ . (put other text outside the {{...}})")
    return fmt


def expand_dates(value: str, when: datetime, where: str = "parameter") -> str:
    """`{{date}}` / `{{date:FORMAT}}` replaced by `when` (UTC)."""
    when = when.astimezone(timezone.utc)
    return _TEMPLATE.sub(lambda m: when.strftime(_date_format(m.group(1), where)), value)


def to_scheduled_time_macro(value: str, where: str = "parameter") -> str:
    """`{{date:FORMAT}}` -> KFP's `[[ScheduledTime.<Go layout>]]`, filled in by KFP's scheduler per run."""
    def go(m: re.Match[str]) -> str:
        fmt = _date_format(m.group(1), where)
        return "[[ScheduledTime." + "".join(_STRFTIME_TO_GO.get(t, t) for t in _FORMAT_TOKEN.findall(fmt)) + "]]"

    return _TEMPLATE.sub(go, value)


_CRON_FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
                ("day of week", 0, 6))
_CRON_NAMES = {
    "month": {n: i + 1 for i, n in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())},
    "day of week": {n: i for i, n in enumerate("SUN MON TUE WED THU FRI SAT".split())},
}
_CRON_DESCRIPTORS = {"@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
                     "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *",
                     "@hourly": "0 0 * * * *"}


def _cron_value(text: str, field: str, lo: int, hi: int, expr: str) -> int:
    names = _CRON_NAMES.get(field, {})
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ConfigError(f"cron {expr!r}: {field} {text!r} is not a number"
                          + (f" or one of {', '.join(names)}" if names else ""))
    value = int(text)
    if not lo <= value <= hi:
        hint = " (Sunday is 0 in KFP's cron)" if field == "day of week" and value == 7 else ""
        raise ConfigError(f"cron {expr!r}: {field} {value} is outside {lo}-{hi}{hint}")
    return value


def _check_cron_field(text: str, field: str, lo: int, hi: int, expr: str) -> None:
    for item in text.split(","):
        base, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) < 1):
            raise ConfigError(f"cron {expr!r}: {field} step {step!r} must be a positive integer")
        if base in ("*", "?"):
            if base == "?" and field not in ("day of month", "day of week"):
                raise ConfigError(f"cron {expr!r}: '?' is allowed only in day of month and day of week")
            continue
        first, dash, last = base.partition("-")
        a = _cron_value(first, field, lo, hi, expr)
        if dash and a > _cron_value(last, field, lo, hi, expr):
            raise ConfigError(f"cron {expr!r}: {field} range {base!r} runs backwards")


def kfp_cron(expr: str) -> str:
    """KFP's 6-field cron (seconds first) from a 5-field crontab line, a 6-field line or @daily & co."""
    text = expr.strip()
    if text.startswith("@"):
        if text.lower() not in _CRON_DESCRIPTORS:
            raise ConfigError(f"cron {expr!r}: unknown descriptor; use one of {', '.join(_CRON_DESCRIPTORS)} "
                              "or a crontab line such as '0 3 * * *'")
        return _CRON_DESCRIPTORS[text.lower()]
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields]  # crontab has no seconds; KFP's (robfig/cron) starts with them
    elif len(fields) != 6:
        raise ConfigError(f"cron {expr!r}: expected 5 fields (minute hour day-of-month month day-of-week) "
                          f"or 6 with seconds first, got {len(fields)}")
    for value, (field, lo, hi) in zip(fields, _CRON_FIELDS, strict=True):
        _check_cron_field(value, field, lo, hi, expr)
    return " ".join(fields)


# --- parameters ------------------------------------------------------------------------------------


def pipeline_function(graph: str, profile_path: str | None = None) -> Any:
    from kubealign.graphs import pipeline

    return pipeline(graph, profile_path)


def _raw_inputs(config_file: str | None, sets: list[str]) -> list[tuple[str, dict[str, Any]]]:
    from kubealign.pipeline_params import load_config_file

    sources = [(config_file, load_config_file(config_file))] if config_file else []
    pairs = {}
    for item in sets:
        key, _, value = item.partition("=")
        pairs[key.strip()] = value
    return [*sources, ("--set", pairs)]


def prepare_parameters(graph: str, config_file: str | None, sets: list[str], *, scheduled: bool,
                       now: datetime | None = None, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Parameters for a run (`scheduled=False`) or a recurring run, checked before anything is sent.

    Order matters: the credential check runs on the raw text first, so no later error message can
    echo a secret value back.
    """
    from kubealign import pipeline_params

    for where, values in _raw_inputs(config_file, sets):
        check_no_secrets(values, where, env)
    params = pipeline_params.resolve(pipeline_function(graph), {}, config_file, sets)
    now = now or datetime.now(timezone.utc)
    concrete = {k: expand_dates(v, now, f"parameter {k}") if isinstance(v, str) else v for k, v in params.items()}
    pipeline_params.check_stage_settings(concrete, graph)
    if not scheduled:
        return concrete
    return {k: to_scheduled_time_macro(v, f"parameter {k}") if isinstance(v, str) else v for k, v in params.items()}


# --- upload, submit, schedule ----------------------------------------------------------------------


def compile_graph(graph: str, profile_path: str | None, out: Path) -> Path:
    from kfp import compiler

    compiler.Compiler().compile(pipeline_function(graph, profile_path), str(out))
    return out


def _pipeline_name(path: Path) -> str:
    with path.open() as f:
        return next(yaml.safe_load_all(f))["pipelineInfo"]["name"]


def _utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dt%H%M%Sz")


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_label() -> str:
    """`<git short sha>` of the source tree, `-dirty-<UTC time>` added when it has uncommitted changes;
    `<UTC time>` alone when kubealign is not running from a git checkout."""
    sha = _git("rev-parse", "--short", "HEAD")
    if not sha:
        return _utc_stamp()
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{sha}-dirty-{_utc_stamp()}" if dirty else sha


def default_version_name(profile_name: str | None = None) -> str:
    """`<kubealign version>-<git short sha or UTC time>[-<profile>]`."""
    from kubealign import __version__

    return f"{__version__}-{source_label()}" + (f"-{profile_name}" if profile_name else "")


def _profile_name(profile_path: str | None) -> str | None:
    if not profile_path:
        return None
    from kubealign.profiles import load_profile

    return load_profile(profile_path).name


@dataclass
class UploadResult:
    pipeline_id: str
    pipeline_name: str
    version_id: str | None  # None when this upload created the pipeline (and its first version)
    version_name: str
    created: bool


def upload(conn: Connection, graph: str, *, profile: str | None = None, name: str | None = None,
           version_name: str | None = None, description: str | None = None) -> UploadResult:
    """Compile `graph` and upload it: a new pipeline the first time, a new version of it afterwards."""
    version_name = version_name or default_version_name(_profile_name(profile))
    with tempfile.TemporaryDirectory(prefix="kubealign-upload-") as tmp:
        path = compile_graph(graph, profile, Path(tmp) / "pipeline.yaml")
        name = name or _pipeline_name(path)
        text = description or f"kubealign {graph} graph, {version_name}"
        with server_errors(conn.host):
            pipeline_id = conn.client.get_pipeline_id(name)
            if pipeline_id is None:
                p = conn.client.upload_pipeline(str(path), pipeline_name=name, description=text)
                return UploadResult(p.pipeline_id, name, None, version_name, created=True)
            v = conn.client.upload_pipeline_version(str(path), version_name, pipeline_id=pipeline_id,
                                                    description=text)
    return UploadResult(pipeline_id, name, v.pipeline_version_id, version_name, created=False)


@dataclass
class RunOptions:
    experiment: str = DEFAULT_EXPERIMENT
    namespace: str | None = None
    profile: str | None = None
    pipeline_root: str | None = None
    service_account: str | None = None
    enable_caching: bool | None = None  # None keeps each task's compiled setting


def _pipeline_root(opts: RunOptions) -> str | None:
    if opts.pipeline_root:
        return opts.pipeline_root
    if opts.profile:
        from kubealign.profiles import load_profile

        return load_profile(opts.profile).pipeline_root
    return None


@contextlib.contextmanager
def _compiled(conn: Connection, graph: str, opts: RunOptions) -> Iterator[tuple[str, dict[str, Any]]]:
    """(pipeline name, run arguments for kfp.Client) with the graph compiled into a temporary YAML.

    The spec is sent with the run, so the run executes exactly the code on this machine. The
    experiment comes from kfp.Client.create_experiment, which returns an existing one of that name.
    """
    with tempfile.TemporaryDirectory(prefix="kubealign-") as tmp:
        path = compile_graph(graph, opts.profile, Path(tmp) / "pipeline.yaml")
        with server_errors(conn.host):
            experiment = conn.client.create_experiment(opts.experiment, namespace=opts.namespace)
        yield _pipeline_name(path), {
            "experiment_id": experiment.experiment_id, "pipeline_package_path": str(path),
            "pipeline_root": _pipeline_root(opts), "enable_caching": opts.enable_caching,
            "service_account": opts.service_account}


def submit(conn: Connection, graph: str, params: dict[str, Any], opts: RunOptions,
           run_name: str | None = None) -> Any:
    """Start one run of `graph`; returns the V2beta1Run."""
    with _compiled(conn, graph, opts) as (pipeline, run_args), server_errors(conn.host):
        return conn.client.run_pipeline(job_name=run_name or f"{pipeline}-{_utc_stamp()}", params=params,
                                        **run_args)


def schedule(conn: Connection, graph: str, params: dict[str, Any], cron: str, opts: RunOptions,
             name: str | None = None, description: str | None = None) -> Any:
    """A recurring run: KFP cron (seconds first), at most one run at a time, no catch-up after a pause."""
    with _compiled(conn, graph, opts) as (pipeline, run_args), server_errors(conn.host):
        return conn.client.create_recurring_run(
            job_name=name or f"{pipeline}-retrain", description=description or f"kubealign {graph}, cron {cron}",
            cron_expression=cron, max_concurrency=1, no_catchup=True, params=params, enabled=True, **run_args)
