"""Resumable state is keyed on content, never on where a run put its inputs.

Real: model folders of real files (safetensors weights, config and tokenizer JSON) on disk, sha256,
the stages' pydantic settings. Nothing stands in.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from kubealign import loop, models
from kubealign.config import DPOConfig


def _model_folder(path: Path, weight: float = 1.0) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4}))
    (path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    save_file({"w": torch.full((2, 2), weight)}, str(path / "model.safetensors"))
    (path / "kubealign.json").write_text(json.dumps({"merged_from": str(path)}))  # run-specific, not hashed
    return path


def _data(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_same_content_under_two_run_folders_gives_one_key(tmp_path: Path) -> None:
    a = _model_folder(tmp_path / "run-1" / "merge-lora" / "merged")
    b = tmp_path / "run-2" / "merge-lora" / "merged"
    shutil.copytree(a, b)
    (b / "kubealign.json").write_text(json.dumps({"merged_from": str(b)}))
    da, db = _data(tmp_path / "run-1.jsonl", '{"x": 1}\n'), _data(tmp_path / "run-2.jsonl", '{"x": 1}\n')
    cfg = DPOConfig()
    assert models.content_digest(a) == models.content_digest(b)
    assert loop.run_key("dpo", cfg, data=[da], model_dirs=[a]) == loop.run_key("dpo", cfg, data=[db], model_dirs=[b])


def test_changed_weights_data_or_settings_change_the_key(tmp_path: Path) -> None:
    model = _model_folder(tmp_path / "m")
    other = _model_folder(tmp_path / "m2", weight=1.0 + 2**-20)  # same size, one bit of each weight differs
    data = _data(tmp_path / "d.jsonl", '{"x": 1}\n')
    cfg = DPOConfig()
    key = loop.run_key("dpo", cfg, data=[data], model_dirs=[model])
    assert loop.run_key("dpo", cfg, data=[data], model_dirs=[other]) != key
    assert loop.run_key("dpo", cfg, data=[_data(tmp_path / "e.jsonl", '{"x": 2}\n')], model_dirs=[model]) != key
    assert loop.run_key("dpo", cfg.model_copy(update={"beta": 0.2}), data=[data], model_dirs=[model]) != key
    assert loop.run_key("reward", cfg, data=[data], model_dirs=[model]) != key
    # knobs that change neither the weights nor the data order keep the key: such a rerun resumes
    quiet = cfg.model_copy(update={"log_every": 7, "save_every": 3, "checkpoint_uri": "/elsewhere"})
    assert loop.run_key("dpo", quiet, data=[data], model_dirs=[model]) == key


def test_digest_is_cached_beside_the_model_and_refreshed_when_a_file_changes(tmp_path: Path) -> None:
    model = _model_folder(tmp_path / "m")
    first = models.content_digest(model)
    cache = json.loads((model / models.DIGEST_CACHE).read_text())
    assert cache["digest"] == first and set(cache["files"]) == {"config.json", "tokenizer_config.json",
                                                                "model.safetensors"}
    # the cache answers while sizes and mtimes hold (a planted value proves it was read, not recomputed)
    (model / models.DIGEST_CACHE).write_text(json.dumps({**cache, "digest": "from-cache"}))
    assert models.content_digest(model) == "from-cache"
    save_file({"w": torch.full((2, 2), 3.0)}, str(model / "model.safetensors"))
    st = (model / "model.safetensors").stat()
    os.utime(model / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert models.content_digest(model) not in {"from-cache", first}


def test_digest_of_a_folder_without_model_files_names_it(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelError, match="empty: no config, weight or tokenizer files"):
        models.content_digest(tmp_path / "empty")


def test_data_digest_reads_content_and_names_a_missing_file(tmp_path: Path) -> None:
    a, b = _data(tmp_path / "a.jsonl", "same\n"), _data(tmp_path / "b.jsonl", "same\n")
    assert loop.data_digest(a) == loop.data_digest(f"file://{b}")
    with pytest.raises(OSError, match="missing.jsonl: no such file"):
        loop.data_digest(str(tmp_path / "missing.jsonl"))
