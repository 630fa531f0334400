"""Several training processes in one pod: the same result as one process on the same global batch.

Real: torch's launcher (`python -m torch.distributed.run`, i.e. torchrun) starting worker processes,
torch.distributed with the gloo backend, accelerate's DDP (and accelerate's FSDP2 with
`distributed: fsdp`), the stages' relaunch, the shared training loop, the tiny transformers model and
peft adapters. Stands in: CPU processes for GPUs (one process per GPU on a cluster, with nccl).
accelerate 1.15 enables FSDP only for accelerators and would run CPU processes as DDP; kubealign asks
for FSDP explicitly there (`distributed.accelerator`), so the FSDP test runs torch's real FSDP2
(`fully_shard`, DTensor shards, reduce-scatter over gloo) on CPU.

Equal-length examples: DDP averages per-rank mean losses, which equals the one-process token mean
over the global batch only when every rank holds the same number of loss tokens.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kubealign.config import ConfigError, DPOConfig, SFTConfig, build
from kubealign.data.chat import tokenize_sft
from kubealign.distributed import shard
from kubealign.loop import DataOrder
from kubealign.stages import dpo, sft
from tests.conftest import _WORDS

LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}


def test_shard_takes_every_nth_example_of_the_global_batch() -> None:
    order = DataOrder(10, batch_size=2 * 3, seed=0)  # global micro-batch for 3 ranks x 2 examples
    batch = order.indices(0)
    parts = [shard(batch, r, 3) for r in range(3)]
    assert parts == [batch[0::3], batch[1::3], batch[2::3]] and all(len(p) == 2 for p in parts)
    assert sorted(i for p in parts for i in p) == sorted(batch)  # disjoint, nothing dropped
    assert shard(batch, 0, 1) == batch  # one process: the whole batch
    tail = order.indices(1)  # epoch tail: 10 - 6 = 4 examples for 3 ranks
    assert [shard(tail, r, 3) for r in range(3)] == [[tail[0], tail[3]], [tail[1]], [tail[2]]]
    # fewer examples than ranks: repeated so that no rank sits out the gradient all-reduce
    assert [shard([7], r, 2) for r in range(2)] == [[7], [7]]


def test_config_accepts_ddp_and_fsdp() -> None:
    assert SFTConfig().distributed == "ddp" and SFTConfig().num_processes == 0
    assert SFTConfig(distributed="fsdp", num_processes=4).distributed == "fsdp"  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="distributed"):
        build(SFTConfig, {"distributed": "deepspeed"})


@pytest.fixture(scope="module")
def equal_length_data(tiny_tokenizer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """12 conversations whose templated length and response-token count are all the same."""
    rng = random.Random(0)
    by_shape: dict[tuple[int, int], list[dict]] = {}
    for _ in range(600):
        q = " ".join(rng.choice(_WORDS) for _ in range(4)).capitalize() + "?"
        a = " ".join(rng.choice(_WORDS) for _ in range(3)).capitalize() + "."
        messages = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        ids = tokenize_sft(tiny_tokenizer, messages, max_length=64)
        shape = (len(ids["input_ids"]), sum(t != -100 for t in ids["labels"]))
        by_shape.setdefault(shape, []).append({"messages": messages})
    rows = max(by_shape.values(), key=len)[:12]
    assert len(rows) == 12
    path = tmp_path_factory.mktemp("dist") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _cfg(**kw) -> SFTConfig:
    base = {"learning_rate": 3e-2, "max_steps": 3, "warmup_ratio": 0.0, "max_length": 64, "lora": LORA,
            "tracking": {"mode": "disabled"}}
    return SFTConfig.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def one_process(tiny_model_dir: Path, equal_length_data: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "model"
    sft.run(_cfg(batch_size=4, num_processes=1), str(tiny_model_dir), equal_length_data, str(out))
    return out


def _two_processes(kind: str, tiny_model_dir: Path, data: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two cores here: more threads only contend
    assert "LOCAL_RANK" not in os.environ
    return sft.run(_cfg(batch_size=2, num_processes=2, distributed=kind), str(tiny_model_dir), data, str(out))


def _assert_same_adapter(got_dir: Path, want_dir: Path) -> None:
    got = load_file(got_dir / "adapter_model.safetensors")
    want = load_file(want_dir / "adapter_model.safetensors")
    assert got.keys() == want.keys()
    assert any(v.abs().sum() > 0 for k, v in want.items() if "lora_B" in k)  # it trained (B starts at 0)
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("kind", "engine"), [("ddp", "MULTI_CPU"), ("fsdp", "FSDP")])
def test_two_processes_match_one(kind: str, engine: str, one_process: Path, tiny_model_dir: Path,
                                 equal_length_data: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capfd: pytest.CaptureFixture[str]) -> None:
    """2 processes x batch 2 == 1 process x batch 4: same examples per step, same adapter."""
    summary = _two_processes(kind, tiny_model_dir, equal_length_data, tmp_path / "model", monkeypatch)
    assert f"data parallel over 2 processes ({engine}, gloo); global batch 4" in capfd.readouterr().out
    assert summary["steps"] == 3.0  # rank 0's summary, handed back to the parent
    _assert_same_adapter(tmp_path / "model", one_process)
    history = json.loads((tmp_path / "model" / "summary.json").read_text())["history"]
    want = json.loads((one_process / "summary.json").read_text())["history"]
    # rank 0 logged the mean over ranks: the one-process loss on the same global batch
    assert [h["loss"] for h in history] == pytest.approx([h["loss"] for h in want], abs=1e-5)


@pytest.mark.slow  # two launches: 30-40 s on the shared two-core machine
def test_fsdp_resumes_from_rank0_checkpoint(one_process: Path, tiny_model_dir: Path, equal_length_data: str,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 0 writes checkpoints gathered from the shards; every rank loads them and keeps its shard.

    FSDP only: under DDP the checkpoint code is the single-process one (test_stages resumes it) plus
    the rank-0 gate, which this test covers too.
    """
    import shutil

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = _cfg(batch_size=2, num_processes=2, distributed="fsdp", save_every=1,
               checkpoint_uri=str(tmp_path / "ckpt"))
    sft.run(cfg, str(tiny_model_dir), equal_length_data, str(tmp_path / "first"))
    (run_dir,) = (tmp_path / "ckpt").iterdir()  # one writer, one run folder, named for the world size
    assert run_dir.name.endswith("-ws2")
    assert sorted(p.name for p in run_dir.iterdir()) == ["step-00000002", "step-00000003"]  # the last two kept
    shutil.rmtree(run_dir / "step-00000003")  # as if preempted before the last step's checkpoint

    sft.run(cfg, str(tiny_model_dir), equal_length_data, str(tmp_path / "resumed"))
    history = json.loads((tmp_path / "resumed" / "summary.json").read_text())["history"]
    assert [h["step"] for h in history] == [1, 2, 3]  # steps 1-2 from the checkpoint, step 3 trained again
    _assert_same_adapter(tmp_path / "resumed", one_process)  # optimizer state and position restored too


def test_dpo_two_processes_match_one(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DPO under DDP: the reference pass switches the adapter off inside the DDP wrapper.

    The DPO loss is a mean over pairs, so any even split of the global batch matches one process.
    """
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rows = [{"prompt": [{"role": "user", "content": f"What is {w}?"}],
             "chosen": [{"role": "assistant", "content": f"It is {w}."}],
             "rejected": [{"role": "assistant", "content": "Sorry, I cannot help."}]}
            for w in ["the sun", "a cat", "water", "blue", "a tree", "the moon", "a dog", "red"]]
    data = tmp_path / "pref.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = {"learning_rate": 1e-2, "max_steps": 2, "warmup_ratio": 0.0, "max_length": 64, "beta": 0.5, "lora": LORA,
            "tracking": {"mode": "disabled"}}
    runs = {}
    for name, kw in {"one": {"batch_size": 4, "num_processes": 1}, "two": {"batch_size": 2, "num_processes": 2}}.items():
        cfg = DPOConfig.model_validate({**base, **kw})
        runs[name] = dpo.run(cfg, str(tiny_model_dir), str(data), str(tmp_path / name), eval_uri=str(data))
    _assert_same_adapter(tmp_path / "two", tmp_path / "one")
    for key in ("train/loss", "eval/rewards/margins", "eval/logps/chosen"):  # rank 0 evaluated the same model
        assert runs["two"][key] == pytest.approx(runs["one"][key], abs=1e-4)
