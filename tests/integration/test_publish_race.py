"""Two publishers of one version at once: exactly one wins, the version verifies, the loser leaves nothing.

Real: threads released together by a `threading.Barrier` running `publish.run` concurrently, the local
filesystem (link(2)/rename), and s3fs speaking HTTP to moto in server mode on 127.0.0.1 (`s3_bucket` in
conftest.py), whose conditional PUT (`If-None-Match: *`) decides the claim. The two "models" are small
folders (a config.json, a weights file, a nested tokenizer file) with different bytes: publish copies
folders and never loads them, so their size does not matter, only that each one's hashes differ.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from kubealign import storage
from kubealign.config import PublishConfig
from kubealign.stages import publish

TRIALS = 20


def _model(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    (path / "tok").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "seed": seed}))
    (path / "model.safetensors").write_bytes(rng.randbytes(200_000 + seed))
    (path / "tok" / "tokenizer.json").write_text(json.dumps({"seed": seed, "vocab": rng.sample(range(999), 50)}))
    return path


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def _race(cfg: PublishConfig, models: list[Path]) -> list[dict[str, Any] | Exception]:
    """Both publishers start at the same instant; returns each one's result or exception."""
    barrier = threading.Barrier(len(models))
    results: list[dict[str, Any] | Exception] = [RuntimeError("did not run")] * len(models)

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = publish.run(cfg, str(models[i]))
        except Exception as err:  # noqa: BLE001 - the outcome is what the test checks
            results[i] = err

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(models))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _check_trial(cfg: PublishConfig, models: list[Path], results: list[Any], outcomes: dict[str, int]) -> None:
    dest = publish.version_uri(cfg)
    winners = [i for i, r in enumerate(results) if isinstance(r, dict)]
    losers = [r for r in results if not isinstance(r, dict)]
    assert len(winners) == 1, f"{dest}: {results}"
    (loser,) = losers
    assert isinstance(loser, publish.VersionExists) and "exists" in str(loser) and dest in str(loser), repr(loser)
    outcomes["already published" if "already published" in str(loser) else "claimed by another"] += 1

    assert publish.verify(dest) == []  # every file's sha256 and size match MANIFEST.json
    manifest = storage.read_json(storage.join(dest, publish.MANIFEST))
    winner = models[winners[0]]
    assert manifest["source"] == str(winner)
    # the weights are the winner's, not a mix of both publishers' files
    assert {e["path"]: e["sha256"] for e in manifest["files"]} == _hashes(winner)
    outcomes[f"model {winners[0]} won"] += 1


def _run_trials(root: str, models: list[Path], at_once: int = 1) -> dict[str, int]:
    """TRIALS races, each on its own version; `at_once` of them run side by side (to keep S3 trials fast)."""
    from concurrent.futures import ThreadPoolExecutor

    outcomes: dict[str, int] = {"model 0 won": 0, "model 1 won": 0, "claimed by another": 0, "already published": 0}
    cfgs = [PublishConfig(root=root, model_name="m", version=f"v{trial}") for trial in range(TRIALS)]
    with ThreadPoolExecutor(at_once) as pool:
        results = list(pool.map(lambda cfg: _race(cfg, models), cfgs))
    for cfg, result in zip(cfgs, results, strict=True):
        _check_trial(cfg, models, result, outcomes)
    return outcomes


def test_concurrent_publish_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = [_model(tmp_path / "a", 1), _model(tmp_path / "b", 2)]
    root = tmp_path / "registry"
    seen_incomplete: list[str] = []
    checks = [0]
    stop = threading.Event()

    def reader() -> None:  # a reader polling every version meanwhile never sees a half-published one
        while not stop.is_set():
            try:
                for version in publish.published_versions(str(root), "m"):
                    problems = publish.verify(str(root / "m" / version))
                    checks[0] += 1
                    if problems:
                        seen_incomplete.append(f"{version}: {problems}")
            except Exception as err:  # noqa: BLE001 - a reader that fails is a finding too
                seen_incomplete.append(repr(err))

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        outcomes = _run_trials(str(root), models)
    finally:
        stop.set()
        watcher.join()
    assert seen_incomplete == [] and checks[0] > 0
    assert outcomes["model 0 won"] + outcomes["model 1 won"] == TRIALS
    # nothing staged is left behind, and each version holds its files, the manifest and the claim only
    assert sorted(p.name for p in (root / "m").iterdir()) == sorted(f"v{t}" for t in range(TRIALS))
    assert publish.published_versions(str(root), "m") == sorted(f"v{t}" for t in range(TRIALS))
    for t in range(TRIALS):
        names = sorted(str(p.relative_to(root / "m" / f"v{t}")) for p in (root / "m" / f"v{t}").rglob("*")
                       if p.is_file())
        assert names == sorted(["config.json", "model.safetensors", "tok/tokenizer.json", "MANIFEST.json",
                                publish.CLAIM])
    with capsys.disabled():
        print(f"\nconcurrent publish, local, {TRIALS} trials: {outcomes}")


def test_both_staged_then_claim_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Locally a publish is so quick that the loser often meets the winner's manifest at the early check.
    Here a barrier in front of the claim releases both create-if-absent writes together, after both have
    staged: exactly one claim succeeds in every trial. (On S3 the natural race already meets at the claim.)"""
    models = [_model(tmp_path / "a", 1), _model(tmp_path / "b", 2)]
    root = str(tmp_path / "registry")
    gate: list[threading.Barrier] = []
    claims: list[bool] = []
    real_claim, real_create = publish._claim, storage.create_exclusive

    def claim_together(*args: Any) -> None:
        gate[-1].wait(timeout=30)
        real_claim(*args)

    def create(uri: str, *args: Any) -> bool:
        created = real_create(uri, *args)
        if uri.endswith(publish.CLAIM):
            claims.append(created)
        return created

    monkeypatch.setattr(publish, "_claim", claim_together)
    monkeypatch.setattr(storage, "create_exclusive", create)
    outcomes: dict[str, int] = {"model 0 won": 0, "model 1 won": 0, "claimed by another": 0, "already published": 0}
    for trial in range(TRIALS):
        gate.append(threading.Barrier(2))
        cfg = PublishConfig(root=root, model_name="m", version=f"v{trial}")
        _check_trial(cfg, models, _race(cfg, models), outcomes)
    assert sorted(claims) == [False] * TRIALS + [True] * TRIALS  # both tried to claim, one got it, every trial
    assert sorted(p.name for p in (tmp_path / "registry" / "m").iterdir()) == sorted(f"v{t}" for t in range(TRIALS))
    with capsys.disabled():
        print(f"\nclaims at once, local, {TRIALS} trials: {outcomes}")


def test_concurrent_publish_s3(tmp_path: Path, s3_bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    models = [_model(tmp_path / "a", 1), _model(tmp_path / "b", 2)]
    root = f"{s3_bucket}/registry"
    outcomes = _run_trials(root, models, at_once=5)
    assert outcomes["model 0 won"] + outcomes["model 1 won"] == TRIALS
    fs, path = storage.fs_and_path(f"{root}/m")
    fs.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)) == sorted(f"v{t}" for t in range(TRIALS))
    assert len(fs.find(path)) == TRIALS * 5  # 3 model files + manifest + claim per version, no staging
    with capsys.disabled():
        print(f"\nconcurrent publish, s3 (moto), {TRIALS} trials: {outcomes}")


def test_a_failed_publish_releases_its_claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish that fails after claiming removes what it moved, then the claim: the version is free again."""
    model = _model(tmp_path / "a", 1)
    cfg = PublishConfig(root=str(tmp_path / "reg"), model_name="m", version="1")

    def broken(*args: Any) -> None:
        raise OSError("disk full")

    real = publish._move_in
    monkeypatch.setattr(publish, "_move_in", broken)
    with pytest.raises(OSError, match="disk full"):
        publish.run(cfg, str(model))
    assert [p for p in (tmp_path / "reg" / "m").rglob("*") if p.is_file()] == []
    monkeypatch.setattr(publish, "_move_in", real)
    publish.run(cfg, str(model))
    assert publish.verify(publish.version_uri(cfg)) == []


def test_a_killed_publish_blocks_others_but_not_its_own_retry(tmp_path: Path) -> None:
    """A claim without a manifest (the publisher was killed) is refused to other runs, taken over by its owner."""
    model = _model(tmp_path / "a", 1)
    cfg = PublishConfig(root=str(tmp_path / "reg"), model_name="m", version="1")
    dest = Path(publish.version_uri(cfg))
    dest.mkdir(parents=True)
    (dest / publish.CLAIM).write_text(json.dumps({"owner": "run-7", "host": "pod-a", "pid": 12,
                                                  "claimed_utc": "2026-01-01T00:00:00Z"}))
    (dest / "config.json").write_text("{half")  # what it had moved in before it died
    with pytest.raises(publish.VersionExists) as err:
        publish.run(cfg, str(model), owner="run-8")
    msg = str(err.value)
    assert msg.startswith(f"{dest}: version '1' of 'm' exists: claimed by another publish (pod-a, pid 12, ")
    assert f"remove {dest} and publish again" in msg
    assert [p.name for p in (tmp_path / "reg" / "m").iterdir()] == ["1"]  # the refused one left no staging
    publish.run(cfg, str(model), owner="run-7")  # the same run's retried task finishes the version
    assert publish.verify(str(dest)) == [] and json.loads((dest / "config.json").read_text())["seed"] == 1


def test_the_publish_component_names_its_run_as_the_claims_owner(tmp_path: Path) -> None:
    """The KFP component passes the run's name, so a retried attempt of the same run takes over its claim."""
    from types import SimpleNamespace

    from kubealign.components.release import publish as component

    model = SimpleNamespace(path=str(_model(tmp_path / "a", 1)))
    dest = tmp_path / "reg" / "m" / "v1"
    dest.mkdir(parents=True)
    (dest / publish.CLAIM).write_text(json.dumps({"owner": "dpo-run-1", "host": "pod-a", "pid": 1,
                                                  "claimed_utc": "2026-01-01T00:00:00Z"}))
    args = {"model": model, "registry_root": str(tmp_path / "reg"), "model_name": "m", "version": "v1"}
    with pytest.raises(publish.VersionExists, match="claimed by another publish"):
        component.python_func(**args, run_name="dpo-run-2")
    assert component.python_func(**args, run_name="dpo-run-1") == str(dest)
    assert publish.verify(str(dest)) == []


def test_a_store_without_atomic_create_is_refused_not_raced(tmp_path: Path) -> None:
    """fsspec's in-memory store has only check-then-write: publishing there fails by name and leaves nothing."""
    cfg = PublishConfig(root="memory://registry", model_name="m", version="1")
    with pytest.raises(storage.StorageError, match="^memory://registry/m/1/.publish-claim: this store offers no "
                       "atomic create-if-absent write"):
        publish.run(cfg, str(_model(tmp_path / "a", 1)))
    fs, path = storage.fs_and_path("memory://registry")
    assert fs.find(path) == []
