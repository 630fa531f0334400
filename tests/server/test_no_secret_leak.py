"""No secret value ever appears in a pipeline parameter, the compiled YAML, a request to KFP or a log.

Fake secrets are planted in WANDB_API_KEY and AWS_SECRET_ACCESS_KEY (the two credentials the cluster
profiles hand to pods through Kubernetes Secrets). Then, for real: the DPO graph is compiled with and
without the GKE profile; `kubealign submit` talks to the KFP stand-in (see test_kfp_client.py: a
loopback HTTP server that stands in for the KFP API server and records every request); and two real
stages (data prep, SFT on the tiny model with W&B in offline mode) run in this process. Every byte
of stdout/stderr (file-descriptor level, so wandb-core's own output too), every recorded request and
every file written (outputs, W&B run files and logs, HOME and temp dirs) is searched for the values.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubealign import cli
from kubealign.config import DataPrepConfig, SFTConfig
from kubealign.stages import data_prep, sft
from tests.server.test_kfp_client import GKE_PROFILE, KFPStandIn, start_standin

WANDB_SECRET = "wandb-planted-7f3e9c1a2b4d6e8f0a1c3e5f7a9b1d3e5f7a9c1b"
AWS_SECRET = "aws-planted-Q9xK2mP7vL4nR8tY1wZ5cB3dF6gH0jS"
SECRETS = (WANDB_SECRET, AWS_SECRET)


def assert_no_secret(data: bytes | str, where: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    for secret in SECRETS:
        assert secret.encode() not in raw, f"a planted secret leaked into {where}"


def assert_tree_clean(root: Path) -> int:
    """Search every file under root; returns how many were read."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    for path in files:
        assert_no_secret(path.read_bytes(), str(path))
    return len(files)


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Secrets in the environment; HOME, temp dir and W&B dirs under tmp_path so every file is searched."""
    import kfp

    monkeypatch.setenv("WANDB_API_KEY", WANDB_SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "planted-access-key-id")
    for name in ("KUBEALIGN_KFP_TOKEN", "KF_PIPELINES_TOKEN", "KF_PIPELINES_ENDPOINT", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    for sub in ("home", "tmp", "wandb-config", "wandb-cache", "wandb-data"):
        (tmp_path / sub).mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(home / ".config" / "kfp" / "context.json"))
    return tmp_path


@pytest.fixture
def kfp_server(planted: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KFPStandIn]:
    server = start_standin(expected_token="kfp-token-for-the-stand-in")
    monkeypatch.setenv("KUBEALIGN_KFP_TOKEN", "kfp-token-for-the-stand-in")
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("profile", [None, GKE_PROFILE], ids=["no-profile", "gke-gpu"])
def test_compiled_yaml_holds_no_secret(planted: Path, profile: str | None) -> None:
    out = planted / "dpo.yaml"
    assert cli.main(["compile", "dpo", "-o", str(out), *(["--profile", profile] if profile else [])]) == 0
    text = out.read_text()
    assert_no_secret(text, out.name)
    if profile:  # the secret reaches pods by Secret name and key only
        assert "kubealign-wandb" in text and "WANDB_API_KEY" in text


def test_submit_sends_no_secret(kfp_server: KFPStandIn, planted: Path, capfd: pytest.CaptureFixture) -> None:
    base = ["submit", "dpo", "--host", kfp_server.url, "--profile", GKE_PROFILE,
            "--set", "base_model=s3://models/base", "--set", "sft_data=s3://data/sft.jsonl"]
    assert cli.main([*base, "--set", "preference_data=s3://data/prefs/{{date}}/prefs.jsonl"]) == 0
    # A person pasting the key into a parameter is stopped before anything is sent.
    sent = len(kfp_server.requests)
    for setting in (f"preference_data=s3://data/{AWS_SECRET}/p.jsonl", f"wandb_entity={WANDB_SECRET}"):
        assert cli.main([*base, "--set", setting]) == 2
    assert len(kfp_server.requests) == sent

    (run,) = [r for r in kfp_server.requests if r.path.endswith("/runs")]
    assert run.json["pipeline_spec"]["platform_spec"]  # the whole spec with its Secret references went along
    for r in kfp_server.requests:
        assert_no_secret(r.path + json.dumps(r.query) + json.dumps(r.headers), f"{r.method} {r.path} (line/headers)")
        assert_no_secret(r.body, f"{r.method} {r.path} (body)")
    out, err = capfd.readouterr()
    assert_no_secret(out + err, "the command's output")
    assert "secret_env" in err
    assert_tree_clean(planted)


def test_stages_log_and_write_no_secret(planted: Path, tiny_model_dir: Path, capfd: pytest.CaptureFixture) -> None:
    rows = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                          {"role": "assistant", "content": f"The answer is {2 * i}."}]} for i in range(8)]
    raw = planted / "sft.jsonl"
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = planted / "splits"
    data_prep.run(DataPrepConfig(kind="sft", eval_fraction=0.25), str(raw), str(splits))

    wandb_dir = planted / "wb"
    cfg = SFTConfig.model_validate({
        "learning_rate": 1e-3, "max_steps": 2, "batch_size": 4, "max_length": 64, "warmup_ratio": 0.0,
        "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "tracking": {"mode": "offline", "dir": str(wandb_dir), "project": "leak-test", "group": "run-1"},
    })
    summary = sft.run(cfg, str(tiny_model_dir), str(splits / "train.jsonl"), str(planted / "model"),
                      eval_uri=str(splits / "eval.jsonl"))
    assert summary["steps"] == 2

    run_files = list((wandb_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 1  # W&B really ran (offline) and wrote its event log
    from tests.wandb_files import wait_for_exit

    wait_for_exit(run_files[0])  # wandb-core writes asynchronously: search the finished file
    out, err = capfd.readouterr()
    assert "data_prep (sft)" in out
    assert_no_secret(out + err, "stdout/stderr of the stages")
    assert assert_tree_clean(planted) > 10  # outputs, W&B run files and logs, anything in HOME or TMPDIR
