"""`kubealign upload|submit|schedule` against a stand-in for the Kubeflow Pipelines API server.

What is real: the `kubealign` command, the compiled pipeline YAML, `kfp.Client` (kfp 2.17) and its
generated REST client `kfp_server_api`, real HTTP over 127.0.0.1, the bearer token in the
Authorization header, and the kube config reading.
What stands in: the KFP API server. `KFPStandIn` is a small ThreadingHTTPServer that implements just
the v2beta1 endpoints kfp.Client calls for these commands (healthz, pipelines list/upload/
upload_version, experiments list/create, runs create, recurringruns create), keeps what was created
in memory, and RECORDS every request (method, path, query, headers, body) so the tests can assert on
exactly what a real server would have received. It does not run anything.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from kubealign import cli, kfp_client
from kubealign.config import ConfigError

API = "/apis/v2beta1"
REQUIRED = ["--set", "base_model=s3://models/smollm2-135m", "--set", "sft_data=s3://data/sft.jsonl"]
GKE_PROFILE = str(Path(__file__).resolve().parents[2] / "manifests" / "profiles" / "gke-gpu.yaml")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body and not self.files else None


class KFPStandIn(ThreadingHTTPServer):
    """Stands in for the KFP API server (v2beta1 REST) on 127.0.0.1; records every request."""

    daemon_threads = True

    def __init__(self, expected_token: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.expected_token = expected_token  # when set, any other Authorization is answered 401
        self.requests: list[Request] = []
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: list[dict[str, Any]] = []
        self.recurring_runs: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == API + path]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _filter_value(query: dict[str, list[str]]) -> str | None:
    """The display_name an EQUALS filter asks for (what kfp.Client sends to look up by name)."""
    raw = query.get("filter", [None])[0]
    if not raw:
        return None
    for p in json.loads(raw).get("predicates", []):
        if p.get("key") in ("display_name", "name"):
            return p.get("stringValue", p.get("string_value"))
    return None


class _Handler(BaseHTTPRequestHandler):
    server: KFPStandIn

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message, "message": message, "code": status})

    def _record(self) -> Request:
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        req = Request(self.command, parts.path, parse_qs(parts.query),
                      {k.lower(): v for k, v in self.headers.items()}, body)
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            req.files = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                         for part in msg.iter_parts()}
        with self.server.lock:
            self.server.requests.append(req)
        return req

    def do_GET(self) -> None:
        self._handle(self._record())

    def do_POST(self) -> None:
        self._handle(self._record())

    def _handle(self, req: Request) -> None:
        s = self.server
        if s.expected_token is not None and req.headers.get("authorization") != f"Bearer {s.expected_token}":
            return self._error(401, "Unauthenticated: the request has no valid bearer token")
        route = (req.method, req.path.removeprefix(API))
        with s.lock:
            if route == ("GET", "/healthz"):
                return self._send(200, {"multi_user": False})
            if route == ("GET", "/pipelines"):
                name = _filter_value(req.query)
                found = [p for p in s.pipelines.values() if name is None or p["display_name"] == name]
                return self._send(200, {"pipelines": found, "total_size": len(found)} if found else {})
            if route == ("POST", "/pipelines/upload"):
                return self._upload(req)
            if route == ("POST", "/pipelines/upload_version"):
                return self._upload_version(req)
            if route == ("GET", "/experiments"):
                name = _filter_value(req.query)
                found = [e for e in s.experiments.values() if name is None or e["display_name"] == name]
                return self._send(200, {"experiments": found, "total_size": len(found)} if found else {})
            if route == ("POST", "/experiments"):
                exp = {**req.json, "experiment_id": str(uuid.uuid4()), "created_at": _now()}
                s.experiments[exp["experiment_id"]] = exp
                return self._send(200, exp)
            if route == ("POST", "/runs"):
                if req.json.get("experiment_id") not in s.experiments:
                    return self._error(404, "experiment not found")
                run = {**req.json, "run_id": str(uuid.uuid4()), "created_at": _now()}
                s.runs.append(run)
                return self._send(200, run)
            if route == ("POST", "/recurringruns"):
                rr = {**req.json, "recurring_run_id": str(uuid.uuid4()), "created_at": _now()}
                s.recurring_runs.append(rr)
                return self._send(200, rr)
        return self._error(404, f"the stand-in does not implement {req.method} {req.path}")

    def _upload(self, req: Request) -> None:
        s = self.server
        name = req.query["name"][0]
        if any(p["display_name"] == name for p in s.pipelines.values()):
            return self._error(409, f"pipeline {name} already exists")
        pid = str(uuid.uuid4())
        s.pipelines[pid] = {"pipeline_id": pid, "display_name": name, "created_at": _now(),
                            "description": req.query.get("description", [""])[0]}
        # A real server also creates the first version, named after the pipeline.
        s.versions[pid] = [{"pipeline_id": pid, "pipeline_version_id": str(uuid.uuid4()), "display_name": name}]
        return self._send(200, s.pipelines[pid])

    def _upload_version(self, req: Request) -> None:
        s = self.server
        pid, name = req.query.get("pipelineid", [""])[0], req.query["name"][0]
        if pid not in s.pipelines:
            return self._error(404, f"pipeline {pid} not found")
        if any(v["display_name"] == name for v in s.versions[pid]):
            return self._error(409, f"pipeline version {name} already exists in pipeline {pid}")
        version = {"pipeline_id": pid, "pipeline_version_id": str(uuid.uuid4()), "display_name": name,
                   "created_at": _now()}
        s.versions[pid].append(version)
        return self._send(200, version)


def start_standin(expected_token: str | None = None) -> KFPStandIn:
    server = KFPStandIn(expected_token)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No token, host or kube config from the developer's machine; kfp's context file out of reach."""
    import kfp

    for name in (*kfp_client.TOKEN_ENV, kfp_client.HOST_ENV, "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(home / ".config" / "kfp" / "context.json"))
    return home


@pytest.fixture
def kfp_server(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KFPStandIn]:
    server = start_standin(expected_token="test-token-0001")
    monkeypatch.setenv("KUBEALIGN_KFP_TOKEN", "test-token-0001")
    yield server
    server.shutdown()
    server.server_close()


def kubealign(*argv: str) -> int:
    return cli.main(list(argv))


# ---------------------------------------------------------------------------------------------- upload


def test_upload_creates_pipeline_then_versions(kfp_server: KFPStandIn, capsys: pytest.CaptureFixture) -> None:
    assert kubealign("upload", "dpo", "--host", kfp_server.url) == 0
    first = kfp_server.calls("POST", "/pipelines/upload")
    assert len(first) == 1 and first[0].query["name"] == ["kubealign-dpo"]
    spec = yaml.safe_load(first[0].files["uploadfile"])  # the compiled pipeline YAML itself
    assert spec["pipelineInfo"]["name"] == "kubealign-dpo" and "base_model" in spec["root"]["inputDefinitions"][
        "parameters"]
    assert not kfp_server.calls("POST", "/pipelines/upload_version")
    assert "created pipeline kubealign-dpo" in capsys.readouterr().out

    assert kubealign("upload", "dpo", "--host", kfp_server.url, "--profile", GKE_PROFILE) == 0
    versions = kfp_server.calls("POST", "/pipelines/upload_version")
    pid = next(iter(kfp_server.pipelines))
    assert len(versions) == 1 and versions[0].query["pipelineid"] == [pid]
    name = versions[0].query["name"][0]
    assert re.fullmatch(r"0\.1\.0-([0-9a-f]{7,}(-dirty-\d{8}t\d{6}z)?|\d{8}t\d{6}z)-gke-gpu", name), name
    docs = list(yaml.safe_load_all(versions[0].files["uploadfile"]))
    assert len(docs) == 2 and "kubernetes" in docs[1]["platforms"]  # the profile's platform spec went along
    assert len(kfp_server.pipelines) == 1 and len(kfp_server.versions[pid]) == 2
    assert f"uploaded version {name}" in capsys.readouterr().out

    assert kubealign("upload", "dpo", "--host", kfp_server.url, "--version-name", "v2") == 0
    assert kfp_server.calls("POST", "/pipelines/upload_version")[-1].query["name"] == ["v2"]
    # The same version name twice: the server refuses, the command says what to change.
    assert kubealign("upload", "dpo", "--host", kfp_server.url, "--version-name", "v2") == 2
    err = capsys.readouterr().err
    assert "409" in err and "already exists" in err and "--version-name" in err


# ---------------------------------------------------------------------------------------------- submit


def test_submit_sends_validated_parameters_and_spec(kfp_server: KFPStandIn, capsys: pytest.CaptureFixture) -> None:
    before = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    code = kubealign("submit", "dpo", "--host", kfp_server.url, "--experiment", "nightly", *REQUIRED,
                     "--set", "preference_data=s3://bucket/prefs/{{date}}/prefs.jsonl",
                     "--set", "dpo_beta=0.2", "--set", "lora_rank=8", "--run-name", "first")
    after = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert code == 0, capsys.readouterr().err
    created = kfp_server.calls("POST", "/experiments")
    assert len(created) == 1 and created[0].json["display_name"] == "nightly"
    (run,) = kfp_server.calls("POST", "/runs")
    body = run.json
    assert body["display_name"] == "first" and body["experiment_id"] == next(iter(kfp_server.experiments))
    params = body["runtime_config"]["parameters"]
    assert params["preference_data"] in (f"s3://bucket/prefs/{d}/prefs.jsonl" for d in (before, after))
    assert params["dpo_beta"] == 0.2 and params["lora_rank"] == 8  # typed as the pipeline declares them
    assert params["base_model"] == "s3://models/smollm2-135m" and len(params) == 5  # only what was given
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "kubealign-dpo"
    assert "submitted run first" in capsys.readouterr().out

    # A second run in the same experiment finds it instead of creating another; a profile's platform spec
    # and --no-cache travel with the run.
    assert kubealign("submit", "dpo", "--host", kfp_server.url, "--experiment", "nightly", *REQUIRED,
                     "--set", "preference_data=s3://bucket/p.jsonl", "--profile", GKE_PROFILE, "--no-cache",
                     "--service-account", "kubealign-pipeline-runner") == 0
    assert len(kfp_server.calls("POST", "/experiments")) == 1
    second = kfp_server.calls("POST", "/runs")[-1].json
    assert second["service_account"] == "kubealign-pipeline-runner"
    spec = second["pipeline_spec"]
    assert spec["platform_spec"]["platforms"]["kubernetes"] and all(
        not t["cachingOptions"].get("enableCache") for t in spec["pipeline_spec"]["root"]["dag"]["tasks"].values())


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "dpo_beta=-1"], "parameters (dpo_*): beta: Input should be greater than 0"),
    (["--set", "dpo_loss_type=sigmod"], "loss_type"),
    (["--set", "lora_rnk=8"], "unknown parameter 'lora_rnk'"),
    (["--set", "preference_data=s3://b/{{today}}/p.jsonl"], "unknown template {{today}}"),
])
def test_submit_rejects_bad_parameters_before_any_request(kfp_server: KFPStandIn, capsys: pytest.CaptureFixture,
                                                          args: list[str], message: str) -> None:
    code = kubealign("submit", "dpo", "--host", kfp_server.url, *REQUIRED, "--set", "preference_data=s3://b/p.jsonl",
                     *args)
    assert code == 2 and message in capsys.readouterr().err
    assert kfp_server.requests == []


def test_submit_requires_the_data_parameters(kfp_server: KFPStandIn, capsys: pytest.CaptureFixture) -> None:
    assert kubealign("submit", "dpo", "--host", kfp_server.url, *REQUIRED) == 2
    assert "missing required parameter(s): preference_data" in capsys.readouterr().err


@pytest.mark.parametrize(("setting", "message"), [
    ("wandb_api_key=abc", "looks like a credential"),
    ("sft_data=s3://data/{SECRET}/sft.jsonl", "contains the value of $WANDB_API_KEY"),
    ("sft_data=s3://user:hunter2hunter2@minio:9000/sft.jsonl", "carries a password"),
    ("sft_data=hf_abcdefghijklmnopqrstuvwxyz0123456789", "looks like a Hugging Face token"),
])
def test_secret_looking_parameters_are_refused(kfp_server: KFPStandIn, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch, setting: str, message: str) -> None:
    secret = "planted-wandb-key-5c1d9e"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    code = kubealign("submit", "dpo", "--host", kfp_server.url, *REQUIRED, "--set", "preference_data=s3://b/p.jsonl",
                     "--set", setting.replace("{SECRET}", secret))
    err = capsys.readouterr().err
    assert code == 2 and message in err and "secret_env" in err
    assert secret not in err and "hunter2" not in err  # the error never repeats the value
    assert kfp_server.requests == []


def test_secret_name_check_reads_whole_words() -> None:
    kfp_client.check_no_secrets({"eval_max_new_tokens": 48, "ppo_max_new_tokens": 32, "tokenizer_uri": "x"}, env={})
    for name in ("hf_token", "wandb_api_key", "aws_secret", "db_password", "openai_apikey"):
        with pytest.raises(ConfigError, match="looks like a credential"):
            kfp_client.check_no_secrets({name: "x"}, env={})


# ---------------------------------------------------------------------------------------------- schedule


def test_schedule_sends_cron_with_seconds_one_at_a_time_no_catchup(kfp_server: KFPStandIn,
                                                                  capsys: pytest.CaptureFixture) -> None:
    code = kubealign("schedule", "dpo", "--host", kfp_server.url, "--cron", "30 2 * * 1-5", "--experiment", "retrain",
                     *REQUIRED, "--set", "preference_data=s3://bucket/prefs/{{date}}/prefs.jsonl",
                     "--set", "checkpoint_root=s3://ckpt/{{date:%Y/%m/%d}}")
    assert code == 0, capsys.readouterr().err
    (req,) = kfp_server.calls("POST", "/recurringruns")
    body = req.json
    assert body["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * 1-5"
    assert int(body["max_concurrency"]) == 1 and body["no_catchup"] is True and body["mode"] == "ENABLE"
    params = body["runtime_config"]["parameters"]
    assert params["preference_data"] == "s3://bucket/prefs/[[ScheduledTime.2006-01-02]]/prefs.jsonl"
    assert params["checkpoint_root"] == "s3://ckpt/[[ScheduledTime.2006/01/02]]"
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "kubealign-dpo"
    assert body["experiment_id"] == next(iter(kfp_server.experiments)) and body["display_name"] == "kubealign-dpo-retrain"
    assert "at most 1 run at a time, no catch-up" in capsys.readouterr().out


def test_schedule_rejects_a_bad_cron_before_any_request(kfp_server: KFPStandIn, capsys: pytest.CaptureFixture) -> None:
    assert kubealign("schedule", "dpo", "--host", kfp_server.url, "--cron", "0 25 * * *", *REQUIRED,
                     "--set", "preference_data=s3://b/p.jsonl") == 2
    assert "hour 25 is outside 0-23" in capsys.readouterr().err and kfp_server.requests == []


@pytest.mark.parametrize(("expr", "kfp"), [
    ("0 3 * * *", "0 0 3 * * *"),
    ("*/15 * * * *", "0 */15 * * * *"),
    ("0 9 ? * MON-FRI", "0 0 9 ? * MON-FRI"),
    ("0 0 6 1,15 * *", "0 0 6 1,15 * *"),
    ("@daily", "0 0 0 * * *"),
    ("@weekly", "0 0 0 * * 0"),
])
def test_cron_to_kfp(expr: str, kfp: str) -> None:
    assert kfp_client.kfp_cron(expr) == kfp


@pytest.mark.parametrize(("expr", "message"), [
    ("0 3 * *", "expected 5 fields"),
    ("60 3 * * *", "minute 60 is outside 0-59"),
    ("0 3 * * 7", "Sunday is 0"),
    ("0 3 0 * *", "day of month 0 is outside 1-31"),
    ("0 3 * FOO *", "month 'FOO' is not a number or one of JAN"),
    ("0 18-9 * * *", "runs backwards"),
    ("*/0 * * * *", "step '0' must be a positive integer"),
    ("? 3 * * *", "'?' is allowed only in day of month"),
    ("@sometimes", "unknown descriptor"),
])
def test_cron_errors(expr: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        kfp_client.kfp_cron(expr)


def test_date_templates() -> None:
    when = datetime(2025, 3, 7, 23, 30, tzinfo=timezone.utc)
    assert kfp_client.expand_dates("s3://b/{{date}}/p.jsonl", when) == "s3://b/2025-03-07/p.jsonl"
    assert kfp_client.expand_dates("gs://b/{{ date:%Y/%m/%d }}/x", when) == "gs://b/2025/03/07/x"
    assert kfp_client.expand_dates("{{date:%Y%m%d_%H}}", when) == "20250307_23"
    assert kfp_client.to_scheduled_time_macro("{{date:%Y%m%d_%H}}") == "[[ScheduledTime.20060102_15]]"
    assert kfp_client.expand_dates("no template", when) == "no template"
    with pytest.raises(ConfigError, match="use only %Y"):
        kfp_client.expand_dates("{{date:v1-%Y}}", when)  # Go would read the 1 as a month


# ---------------------------------------------------------------------------------------------- auth


def _submit(server: KFPStandIn, *extra: str) -> int:
    return kubealign("submit", "dpo", "--host", server.url, *REQUIRED, "--set", "preference_data=s3://b/p.jsonl",
                     *extra)


def test_bearer_token_from_env(kfp_server: KFPStandIn) -> None:
    assert _submit(kfp_server) == 0
    assert kfp_server.requests and all(r.headers.get("authorization") == "Bearer test-token-0001"
                                       for r in kfp_server.requests)


def _kubeconfig(path: Path, user: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kfp",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "other", "context": {"cluster": "c", "user": "nobody"}},
                     {"name": "kfp", "context": {"cluster": "c", "user": "platform"}}],
        "users": [{"name": "nobody", "user": {"token": "wrong-token"}}, {"name": "platform", "user": user}],
    }))
    return path


@pytest.mark.parametrize("kind", ["token", "tokenFile"])
def test_bearer_token_from_kube_config(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture, kind: str) -> None:
    server = start_standin(expected_token="kubeconfig-token-42")
    try:
        if kind == "token":
            user = {"token": "kubeconfig-token-42"}
        else:
            (tmp_path / "sa-token").write_text("kubeconfig-token-42\n")
            user = {"tokenFile": "sa-token"}  # relative to the kube config's folder
        monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "config", user)))
        assert _submit(server) == 0, capsys.readouterr().err
        assert all(r.headers["authorization"] == "Bearer kubeconfig-token-42" for r in server.requests)
        out = capsys.readouterr().out
        assert f"kube config {tmp_path / 'config'} (user platform" in out and "kubeconfig-token-42" not in out
    finally:
        server.shutdown()
        server.server_close()


def test_default_kube_config_location(clean_env: Path) -> None:
    (clean_env / ".kube").mkdir()
    _kubeconfig(clean_env / ".kube" / "config", {"token": "from-home-config"})
    assert kfp_client.find_token() == ("from-home-config", f"kube config {clean_env / '.kube' / 'config'} "
                                                           "(user platform)")


def test_no_token_anywhere_names_the_file(clean_env: Path, capsys: pytest.CaptureFixture) -> None:
    server = start_standin()
    try:
        assert _submit(server) == 2
        err = capsys.readouterr().err
        assert str(clean_env / ".kube" / "config") in err and "KUBEALIGN_KFP_TOKEN" in err
        assert server.requests == []
    finally:
        server.shutdown()
        server.server_close()


def test_kube_config_user_without_token(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "config", {"exec": {"command": "gke-gcloud-auth-plugin",
                                                        "apiVersion": "client.authentication.k8s.io/v1beta1"}})
    monkeypatch.setenv("KUBECONFIG", str(config))
    with pytest.raises(ConfigError, match=re.escape(f"{config}: user 'platform' of context 'kfp' has no token or "
                                                    "tokenFile (it uses an exec plugin)")):
        kfp_client.find_token()


def test_refused_token_is_one_line_without_retries(kfp_server: KFPStandIn, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("KUBEALIGN_KFP_TOKEN", "stale-token")
    assert _submit(kfp_server) == 2
    err = capsys.readouterr().err
    assert "answered 401" in err and "stale-token" not in err
    assert len(kfp_server.requests) == 1  # one healthz probe, not kfp.Client's 5 retries 5 s apart


def test_no_auth_sends_no_authorization(clean_env: Path) -> None:
    server = start_standin()
    try:
        assert _submit(server, "--no-auth") == 0
        assert server.requests and not any("authorization" in r.headers for r in server.requests)
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_server(clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    server = start_standin()
    url = server.url
    server.shutdown()
    server.server_close()
    monkeypatch.setenv("KUBEALIGN_KFP_TOKEN", "t0k3n-for-nothing")
    assert kubealign("upload", "dpo", "--host", url) == 2
    assert f"cannot reach the KFP API at {url}" in capsys.readouterr().err
