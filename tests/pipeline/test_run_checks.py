"""`kubealign run` checks every parameter before the first task: one line per problem, exit code 2.

Real: the `kubealign` command, the knob table and pydantic settings, files on disk. A folder with a
config.json stands in for a model (the up-front check only looks for it). Nothing may start: the
pipeline root must not even be created.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kubealign.cli import main


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (tmp_path / "empty.jsonl").write_text("\n  \n")
    (tmp_path / "folder").mkdir()
    record = {"prompt": "p", "chosen": "a", "rejected": "b"}
    (tmp_path / "pref.jsonl").write_text(json.dumps(record) + "\n")
    (tmp_path / "sft.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    return {"base_model": str(model), "sft_data": str(tmp_path / "sft.jsonl"),
            "preference_data": str(tmp_path / "pref.jsonl"), "dir": str(tmp_path)}


CASES = {
    # --set value -> what the one line for it says
    "lora_rank=1e400": "parameter lora_rank: expected a finite number, got '1e400'",
    "dpo_beta=inf": "parameter dpo_beta: expected a finite number, got 'inf'",
    "sft_epochs=inf": "parameter sft_epochs: expected a finite number, got 'inf'",
    "dpo_beta=nan": "parameter dpo_beta: expected a finite number, got 'nan'",
    "lora_rank=1.5e0": "parameter lora_rank: expected an integer, got '1.5e0'",
    "batch_size=2.9e0": "parameter batch_size: expected an integer, got '2.9e0'",
    "lora_rank=1.5": "parameter lora_rank: expected an integer, got '1.5'",
    "wandb_mode=bogus": "tracking.mode: Input should be 'auto', 'online', 'offline' or 'disabled' (got \"bogus\") "
                        "[parameter wandb_mode]",
    "model_version=bad/version": "parameters (publish): version: String should match pattern",
    "gate_min_win_rate=2": "parameters (gate_*): min_win_rate: Input should be less than or equal to 1 (got 2.0) "
                           "[parameter gate_min_win_rate]",
    "safety_model=/missing": "parameter safety_model: /missing does not exist",
    "preference_data={dir}/nope.jsonl": "parameter preference_data: {dir}/nope.jsonl does not exist",
    "preference_data={dir}/folder": "parameter preference_data: {dir}/folder is a folder; expected a JSONL/Parquet",
    "preference_data={dir}/empty.jsonl": "parameter preference_data: {dir}/empty.jsonl is empty",
    "preference_data=": "parameter preference_data: required, got an empty value",
    "eval_harmful_prompts={dir}/nope.jsonl": "parameter eval_harmful_prompts: {dir}/nope.jsonl does not exist",
    "use_lora=maybe": "parameter use_lora: expected true or false, got 'maybe'",
}


def _run(inputs: dict[str, str], tmp_path: Path, *sets: str) -> list[str]:
    args = ["run", "dpo", "--pipeline-root", str(tmp_path / "root")]
    for key in ("base_model", "sft_data", "preference_data"):
        args += ["--set", f"{key}={inputs[key]}"]
    for item in sets:
        args += ["--set", item.format(dir=inputs["dir"])]
    assert main(args) == 2
    return []


@pytest.mark.parametrize("setting", list(CASES))
def test_bad_value_is_one_line_naming_the_parameter_before_anything_runs(
        setting: str, inputs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(inputs, tmp_path, setting)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    expected = CASES[setting].format(dir=inputs["dir"])
    assert [line for line in lines if expected in line], captured.err
    assert all(line.startswith("kubealign run: error: ") for line in lines), captured.err
    assert len(lines) == 1, captured.err  # exactly one problem, one line
    assert "Traceback" not in captured.out + captured.err
    assert not (tmp_path / "root").exists()  # nothing started


def test_every_problem_is_listed_at_once(inputs: dict[str, str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _run(inputs, tmp_path, "lora_rank=1e400", "dpo_beta=inf", "wandb_mode=bogus", "gate_min_win_rate=2",
         "safety_model=/missing")
    err = capsys.readouterr().err
    # coercion problems first; settings and inputs are checked once the values are numbers
    assert "lora_rank" in err and "dpo_beta" in err and len(err.splitlines()) == 2
    _run(inputs, tmp_path, "wandb_mode=bogus", "gate_min_win_rate=2", "safety_model=/missing", "model_version=a/b")
    err = capsys.readouterr().err
    for name in ("wandb_mode", "gate_min_win_rate", "safety_model", "version"):
        assert name in err, err
    assert "Traceback" not in err and not (tmp_path / "root").exists()


def test_validate_without_object_store_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """No network needed: botocore refuses to sign the request before sending it."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import s3fs

    # fsspec caches clients by their arguments: neither an earlier test's (moto credentials) nor this
    # test's credential-less one may be reused across the boundary.
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        assert main(["validate", "sft", "s3://bucket/x.jsonl"]) == 2
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    captured = capsys.readouterr()
    assert captured.err.strip() == ("kubealign validate: error: object store (s3://bucket/x.jsonl): "
                                    "NoCredentialsError: Unable to locate credentials")
    assert "Traceback" not in captured.out + captured.err


def test_config_file_values_get_the_same_checks(inputs: dict[str, str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("dpo_beta: .inf\nlora_rank: 1.5\nbatch_size: 4.0\nsft_max_steps: true\n")
    args = ["run", "dpo", "--config", str(config), "--pipeline-root", str(tmp_path / "root")]
    for key in ("base_model", "sft_data", "preference_data"):
        args += ["--set", f"{key}={inputs[key]}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "kubealign run: error: parameter dpo_beta: expected a finite number, got inf",
        "kubealign run: error: parameter lora_rank: expected an integer, got 1.5",
        "kubealign run: error: parameter sft_max_steps: expected an integer, got True",
    ]  # batch_size 4.0 is a whole number: accepted as 4
    config.write_text("lora_rank: " + "9" * 5000 + "\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kubealign run: error: {config}: not valid YAML: Exceeds the limit (4300 digits)")
    assert "Traceback" not in err and not (tmp_path / "root").exists()


def test_object_store_inputs_are_checked_before_the_run(inputs: dict[str, str], tmp_path: Path, s3_bucket: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Real S3 protocol: moto's server on 127.0.0.1 (tests/conftest.py)."""
    import fsspec

    with fsspec.open(f"{s3_bucket}/empty.jsonl", "wb"):
        pass
    with fsspec.open(f"{s3_bucket}/prefs/part.jsonl", "wb") as f:
        f.write(b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    args = ["run", "dpo", "--pipeline-root", str(tmp_path / "root"), "--set", f"base_model={inputs['base_model']}",
            "--set", f"sft_data={s3_bucket}/empty.jsonl", "--set", f"preference_data={s3_bucket}/prefs",
            "--set", f"eval_harmful_prompts={s3_bucket}/nope.jsonl", "--set", f"safety_model={s3_bucket}/clf"]
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"kubealign run: error: parameter safety_model: {s3_bucket}/clf is not a model folder (no config.json there, "
        "or no such folder)",
        f"kubealign run: error: parameter sft_data: {s3_bucket}/empty.jsonl is empty; expected at least one record",
        f"kubealign run: error: parameter preference_data: {s3_bucket}/prefs is a folder; expected a JSONL/Parquet file",
        f"kubealign run: error: parameter eval_harmful_prompts: {s3_bucket}/nope.jsonl does not exist",
    ]
    assert not (tmp_path / "root").exists()
