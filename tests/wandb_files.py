"""Read an offline W&B run file (`run-*.wandb`) the way `wandb sync` does, for assertions.

The file is a LevelDB-style log: a 7-byte header (":W&B", magic 0xBEE1, version 0), then 32 KiB
blocks of chunks, each with a 7-byte header (crc32, little-endian length, type: 1 full, 2 first,
3 middle, 4 last) carrying serialized `wandb_internal_pb2.Record` protobufs.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

BLOCK = 32768


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B run file"
    pos, out, pending = 7, [], b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            out.append(rec)
    return out


def wait_for_exit(path: Path, timeout: float = 20.0) -> list[Any]:
    """The run's records once its `exit` record is on disk (wandb-core writes the file asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in recs) or time.monotonic() > deadline:
            return recs
        time.sleep(0.2)


def history_and_run(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows, run = [], {}
    for rec in wait_for_exit(path):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "run":
            run = {"group": rec.run.run_group, "job_type": rec.run.job_type, "project": rec.run.project}
        elif kind == "summary":
            run.setdefault("summary", {}).update(
                {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.summary.update})
    return rows, run
