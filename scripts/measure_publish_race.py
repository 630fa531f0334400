"""Issue #13 item 3: two publishers of one version at once, N trials on a local folder and on S3 (moto).

    python scripts/measure_publish_race.py [PUBLISH_PY] [--trials 20]
    git show dd5f962:src/kubealign/stages/publish.py > /tmp/old_publish.py
    python scripts/measure_publish_race.py /tmp/old_publish.py        # the same against the old module

PUBLISH_PY defaults to this checkout's `kubealign/stages/publish.py`; only its `run`, `verify` and
`version_uri` are used, so an older file works too. Per trial two threads released together by a
barrier publish two different small model folders to one new version; then the version is checked:
how many publishers were accepted, whether it verifies (every sha256 and size as in MANIFEST.json),
whether the manifest's files are the named model's, what the loser got, and staging leftovers. S3 is
moto in server mode on 127.0.0.1 (needs the `moto[server]` test extra); s3fs speaks real HTTP to it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import os
import random
import socket
import tempfile
import threading
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

from kubealign import storage
from kubealign.config import PublishConfig


def _module(path: str | None) -> ModuleType:
    if path is None:
        from kubealign.stages import publish

        return publish
    spec = importlib.util.spec_from_file_location("publish_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(path: Path, seed: int) -> Path:
    rng = random.Random(seed)
    (path / "tok").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"seed": seed}))
    (path / "model.safetensors").write_bytes(rng.randbytes(200_000 + seed))
    (path / "tok" / "tokenizer.json").write_text(json.dumps({"seed": seed}))
    return path


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def _race(publish: ModuleType, cfg: PublishConfig, models: list[Path]) -> list[Any]:
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = publish.run(cfg, str(models[i]))
        except Exception as err:  # noqa: BLE001 - the outcome is what is counted
            results[i] = err

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def trials(publish: ModuleType, root: str, models: list[Path], n: int) -> dict[str, int]:
    out: Counter[str] = Counter()
    for trial in range(n):
        cfg = PublishConfig(root=root, model_name="m", version=f"v{trial}")
        results = _race(publish, cfg, models)
        out[f"{sum(isinstance(r, dict) for r in results)} accepted"] += 1
        for r in results:
            if not isinstance(r, dict):
                out[f"loser got {type(r).__name__}" + (" saying 'exists'" if "exists" in str(r) else "")] += 1
        dest = publish.version_uri(cfg)
        if storage.exists(storage.join(dest, "MANIFEST.json")):
            manifest = storage.read_json(storage.join(dest, "MANIFEST.json"))
            own = {e["path"]: e["sha256"] for e in manifest["files"]} == _hashes(Path(manifest["source"]))
            out["verifies" if not publish.verify(dest) and own else "corrupt (verify fails or files of the other model)"] += 1
    fs, path = storage.fs_and_path(f"{root}/m")
    fs.invalidate_cache()
    out["staging leftovers"] = sum(p.rstrip("/").rsplit("/", 1)[-1].startswith(".") for p in fs.ls(path, detail=False))
    return dict(out)


def _moto(tmp: Path) -> Any:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL_S3=endpoint, AWS_ENDPOINT_URL=endpoint, AWS_CONFIG_FILE=str(tmp / "none"),
                      AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"))
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("race-bucket")
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("publish_py", nargs="?")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    publish = _module(args.publish_py)
    tmp = Path(tempfile.mkdtemp(prefix="publish-race-"))
    models = [_model(tmp / "a", 1), _model(tmp / "b", 2)]
    local = trials(publish, str(tmp / "registry"), models, args.trials)
    server = _moto(tmp)
    try:
        s3 = trials(publish, "s3://race-bucket/registry", models, args.trials)
    finally:
        server.stop()
    print(f"local, {args.trials} trials: {local}")
    print(f"s3 (moto), {args.trials} trials: {s3}")


if __name__ == "__main__":
    main()
