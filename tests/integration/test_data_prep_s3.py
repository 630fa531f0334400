"""data_prep reading from and writing to S3.

Real: s3fs/aiobotocore/botocore sending signed HTTP requests to moto in server mode (a real S3
protocol server on 127.0.0.1, see `s3_server` in tests/conftest.py). Stand-in: moto's in-memory
storage instead of AWS.
"""

from __future__ import annotations

import json

import fsspec
import pytest

from kubealign.config import DataPrepConfig
from kubealign.data.io import read_jsonl
from kubealign.stages import data_prep
from kubealign.stages.data_prep import DataPrepError


def _pref(i: int) -> dict:
    return {"prompt": f"Question {i}?", "chosen": f"Good answer {i}.", "rejected": f"Bad answer {i}."}


def test_data_prep_reads_and_writes_s3(s3_bucket: str) -> None:
    records = [_pref(i) for i in range(20)] + [_pref(3), {"prompt": "Hi?", "chosen": "Hello."}]
    src = f"{s3_bucket}/raw/prefs.jsonl"
    with fsspec.open(src, "wb") as f:
        f.write(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    out = f"{s3_bucket}/prepared"

    report = data_prep.run(DataPrepConfig(kind="preference", eval_fraction=0.2, seed=0), src, out)

    assert [(r["row"], r["reason"]) for r in report["rejected"]] == [(21, "duplicate"), (22, "missing_field")]
    train, held = read_jsonl(f"{out}/train.jsonl"), read_jsonl(f"{out}/eval.jsonl")
    assert (len(train), len(held)) == (16, 4) == (report["train"], report["eval"])
    assert train[0]["chosen"] == [{"role": "assistant", "content": f"Good answer {report['source_rows']['train'][0] - 1}."}]
    with fsspec.open(f"{out}/report.json", "rb") as f:
        assert json.load(f)["ok"] is True
    fs = fsspec.filesystem("s3")
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(out.removeprefix("s3://"), refresh=True)) == [
        "eval.jsonl", "report.json", "train.jsonl",
    ]


def test_missing_s3_input_is_one_clear_error(s3_bucket: str) -> None:
    with pytest.raises(DataPrepError, match=f"^{s3_bucket}/nope.jsonl: no such file$"):
        data_prep.run(DataPrepConfig(kind="preference"), f"{s3_bucket}/nope.jsonl", f"{s3_bucket}/out")


def test_validate_parquet_on_s3(s3_bucket: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kubealign.data.validate import validate

    table = pa.table({"prompt": ["Hi?", "Hi?", "Bye?"], "chosen": ["Hello.", "Hello.", None], "rejected": ["Go.", "Go.", "No."]})
    uri = f"{s3_bucket}/prefs.parquet"
    with fsspec.open(uri, "wb") as f:
        pq.write_table(table, f)
    result = validate(uri, "preference")
    assert [(r.row, r.reason) for r in result.rejected] == [(2, "duplicate"), (3, "missing_field")]
