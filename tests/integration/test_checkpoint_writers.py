"""Two runs sharing one checkpoint root and the same inputs: both finish, neither corrupts the other.

Real: separate OS processes (multiprocessing, spawn), the local filesystem, the tiny model and the
SFT stage. Two runs with different inputs never meet (their content keys differ, see
tests/unit/test_run_key.py); two with the same inputs write the same store, which these tests race.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import torch
from safetensors.torch import load_file

from kubealign import storage

STEPS = 20
FILES = 12
WRITERS = ("a", "b", "c")


def _writer(uri: str, name: str, errors: Path) -> None:
    """Save steps 1..STEPS as fast as possible, reading the latest back now and then."""
    import tempfile

    store = storage.CheckpointStore(uri, keep=2)
    try:
        for step in range(1, STEPS + 1):
            with tempfile.TemporaryDirectory() as tmp:
                Path(tmp, "state.txt").write_text(f"step {step}\n")
                Path(tmp, "sub").mkdir()
                for i in range(FILES):  # many files: a long window for another writer to cut in
                    Path(tmp, "sub", f"more-{i:02d}.txt").write_text(f"more {step}\n")
                store.save(step, tmp, meta={"writer": name})
            if step % 5 == 0:
                with tempfile.TemporaryDirectory() as tmp:
                    got, text = store.load_latest(lambda s: (store.load(s, Path(tmp) / str(s)) / "state.txt").read_text())
                    assert text == f"step {got}\n", (got, text)
    except BaseException as err:  # noqa: BLE001  (reported to the parent, which fails the test)
        errors.joinpath(name).write_text(f"{type(err).__name__}: {err}")
        raise


def _race(target, args_of, names: tuple[str, ...] = ("a", "b")) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=args_of(name)) for name in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)


def test_writers_of_one_store_all_finish(tmp_path: Path) -> None:
    uri, errors = str(tmp_path / "ckpt" / "same-key"), tmp_path / "errors"
    errors.mkdir()
    for _ in range(2):  # two races: one clean pass could be luck
        storage.remove(uri)
        _race(_writer, lambda name: (uri, name, errors), WRITERS)
        assert {p.name: p.read_text() for p in errors.iterdir()} == {}
        store = storage.CheckpointStore(uri)
        steps = store.complete_steps()
        assert steps and steps[-1] == STEPS and len(steps) <= 2 * len(WRITERS)  # pruned as it went
        for step in steps:  # every checkpoint left is whole and its own
            folder = Path(store.step_uri(step))
            assert (folder / "state.txt").read_text() == f"step {step}\n"
            names = ["state.txt", *(f"sub/more-{i:02d}.txt" for i in range(FILES))]
            assert json.loads((folder / "COMPLETE").read_text())["files"] == names
            assert all((folder / n).read_text() == f"more {step}\n" for n in names[1:])
        assert sorted(p.name for p in Path(uri).iterdir()) == [f"step-{s:08d}" for s in steps]  # no debris


def _sft_writer(model_dir: str, data: str, ckpt: str, out: str, errors: Path) -> None:
    from kubealign.config import SFTConfig
    from kubealign.stages import sft

    torch.set_num_threads(1)
    cfg = SFTConfig.model_validate({"learning_rate": 1e-2, "max_steps": 8, "batch_size": 2, "save_every": 1,
                                    "max_length": 64, "checkpoint_uri": ckpt, "tracking": {"mode": "disabled"},
                                    "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}})
    try:
        sft.run(cfg, model_dir, data, out)
    except BaseException as err:  # noqa: BLE001
        errors.joinpath(Path(out).name).write_text(f"{type(err).__name__}: {err}")
        raise


def test_two_sft_runs_with_one_checkpoint_root(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": f"Say {w}."}, {"role": "assistant", "content": f"{w}."}]}
            for w in ("cat", "dog", "sun", "moon", "tree", "river")]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    errors = tmp_path / "errors"
    errors.mkdir()
    ckpt = str(tmp_path / "ckpt")
    _race(_sft_writer, lambda name: (str(tiny_model_dir), str(data), ckpt, str(tmp_path / name), errors))
    assert {p.name: p.read_text() for p in errors.iterdir()} == {}
    a = load_file(tmp_path / "a" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same inputs, same weights
    assert len(list(Path(ckpt).iterdir())) == 1  # one content key for both


def test_debris_of_a_writer_killed_mid_save_is_cleared_once_stale(tmp_path: Path) -> None:
    import os
    import time

    store = storage.CheckpointStore(str(tmp_path / "key"))
    stale, fresh = tmp_path / "key" / "step-00000003.partial-dead", tmp_path / "key" / "step-00000004.partial-live"
    trash = tmp_path / "key" / ".step-00000001.deleting-dead"
    for folder in (stale, fresh, trash):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "state.txt").write_text("x")
    hours_ago = time.time() - 2 * store.STALE_S
    for folder in (stale, trash):
        os.utime(folder, (hours_ago, hours_ago))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "state.txt").write_text("step 5\n")
    store.save(5, tmp_path / "src")
    # the killed writer's folders go; one that may belong to a writer saving right now stays
    assert sorted(p.name for p in (tmp_path / "key").iterdir()) == ["step-00000004.partial-live", "step-00000005"]


def test_a_step_pruned_while_its_rename_failed_is_saved_again(tmp_path: Path, monkeypatch) -> None:
    """The window the race above can hit (seen once in `make test`: ENOTEMPTY, then no COMPLETE): this
    writer's rename finds the step already there, and its writer prunes it before this one looks. The
    save tries again and leaves its own complete step, instead of raising."""
    import os

    store = storage.CheckpointStore(str(tmp_path / "ckpt"), keep=2)
    src = tmp_path / "src"
    src.mkdir()
    (src / "state.txt").write_text("step 3\n")
    real_rename, calls = os.rename, []

    def rename(a, b):
        calls.append(Path(b).name)
        if len(calls) == 1 and ".partial-" in Path(a).name:  # the other writer's step 3, pruned at once
            raise OSError(39, "Directory not empty", str(a))
        return real_rename(a, b)

    monkeypatch.setattr(storage.os, "rename", rename)
    store.save(3, src)
    assert [c for c in calls if not c.startswith(".")] == ["step-00000003", "step-00000003"]  # tried twice
    assert store.complete_steps() == [3]
    assert (Path(store.step_uri(3)) / "state.txt").read_text() == "step 3\n"
