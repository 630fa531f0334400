"""Record validation, the train/eval split, the rejection gate and `kubealign validate`.

Real: files on the local disk (JSONL written byte by byte, Parquet through pyarrow), the tiny
byte-level BPE tokenizer with a ChatML template (tests/conftest.py) for the tokenizer-aware checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kubealign.config import DataPrepConfig
from kubealign.data.io import DataInputError, iter_rows
from kubealign.data.records import Reason, Rejection
from kubealign.data.validate import KINDS, format_rejection, validate
from kubealign.stages import data_prep
from kubealign.stages.data_prep import DataPrepError, remove_overlap, split, validate_command

LONG = " ".join(["the capital city of france is paris"] * 12)  # ~80+ tokens with the tiny BPE


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def pref(prompt: object, chosen: object = "Paris.", rejected: object = "London.") -> dict:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


# One JSONL file with one example of every reason code: (line bytes, expected reason or None if accepted).
EVERY_REASON: list[tuple[bytes, str | None]] = [
    (line(pref("What is the capital of France?")), None),  # 1
    (b"\n", None),  # 2: blank, skipped but counted
    (b'{"prompt": "caf\xe9?", "chosen": "a", "rejected": "b"}\n', "invalid_utf8"),  # 3: latin-1 byte
    (b'{"prompt": "Hi?", "chosen": "Hello", \n', "unparseable_line"),  # 4
    (line(["not", "an", "object"]), "wrong_type"),  # 5
    (line({"prompt": "Hi?", "rejected": "No."}), "missing_field"),  # 6
    (line(pref("Hi?", rejected="   ")), "empty_field"),  # 7
    (line(pref([user("Hi?"), user("Hello?")])), "bad_roles"),  # 8: user twice
    (line(pref([user("Hi?"), assistant("Hello.")])), "prompt_not_user_last"),  # 9
    (line(pref("Say yes.", "Yes.", "Yes.")), "identical_chosen_rejected"),  # 10
    (line(pref("What is the capital of France?")), "duplicate"),  # 11: same as line 1
    (line(pref(LONG + "?")), "no_room_for_response"),  # 12: the prompt fills max_length
    (line(pref("Write a long story.", LONG + " yes", LONG + " no")), "identical_chosen_rejected"),  # 13
    (line(pref("Why is the sky blue?", "Light scatters.")), None),  # 14
    (line(pref("why is the  SKY blue?", "Rayleigh scattering.")), "train_eval_overlap"),  # 15
    (line(pref("How do I sort a list in Python?", "Use sorted().")), None),  # 16
    (line(pref("What is 2+2?", "4.")), None),  # 17
    (line(pref("Name a bird.", "A robin.")), None),  # 18
    (line(pref("\\ud800?")), None),  # 19: literally backslash-u text, which is fine
    (b'{"prompt": "\\ud800?", "chosen": "a", "rejected": "b"}\n', "invalid_utf8"),  # 20: lone surrogate
    (line(pref("Hi?", chosen=7)), "wrong_type"),  # 21
]
MAX_LENGTH = 64
# The split hashes each prompt with the seed (sha256), so it is fixed for a given seed: with this one,
# line 14's prompt lands in eval and its case/space variant on line 15 would have been in train.
SEED = 1


@pytest.fixture
def every_reason_file(tmp_path: Path) -> Path:
    path = tmp_path / "prefs.jsonl"
    path.write_bytes(b"".join(raw for raw, _ in EVERY_REASON))
    return path


def test_every_reason_code_with_rows(every_reason_file: Path, tiny_tokenizer, tmp_path: Path) -> None:
    cfg = DataPrepConfig(kind="preference", seed=SEED, eval_fraction=0.2, max_reject_fraction=1.0,
                         max_length=MAX_LENGTH)
    report = data_prep.run(cfg, str(every_reason_file), str(tmp_path / "out"), tokenizer=tiny_tokenizer)

    expected = [(row, reason) for row, (_, reason) in enumerate(EVERY_REASON, 1) if reason]
    assert [(r["row"], r["reason"]) for r in report["rejected"]] == expected
    # every sft/preference code is exercised (bad_label and unknown_category are safety-only: test_safety_*;
    # duplicate_key and template_mismatch, the latter with a tokenizer that merges whitespace: test_bad_records)
    others = {"bad_label", "unknown_category", "duplicate_key", "template_mismatch"}
    assert {r.value for r in Reason} - others == {reason for _, reason in expected}
    accepted_rows = sorted(report["source_rows"]["train"] + report["source_rows"]["eval"])
    assert accepted_rows == [1, 14, 16, 17, 18, 19]
    assert report["source_rows"]["eval"] == [14]
    assert report["accepted"] == 6 and report["total"] == 20 and report["counts"]["invalid_utf8"] == 2
    by_row = {r["row"]: r for r in report["rejected"]}
    assert by_row[6]["field"] == "chosen" and "'chosen' is missing" in by_row[6]["message"]
    assert by_row[8]["field"] == "prompt[1].role"
    assert by_row[11]["message"] == "same record as line 1"
    assert "after tokenization and truncation" in by_row[13]["message"]
    assert by_row[15]["message"].startswith("same prompt (ignoring case and whitespace) as eval line 14")

    train = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert len(train) == len(report["source_rows"]["train"])
    assert train[0] == {
        "prompt": [user("What is the capital of France?")],
        "chosen": [assistant("Paris.")],
        "rejected": [assistant("London.")],
    }


def test_without_tokenizer_only_schema_checks(every_reason_file: Path) -> None:
    result = validate(str(every_reason_file), "preference")
    reasons = {r.row: r.reason for r in result.rejected}
    assert 12 not in reasons and 13 not in reasons  # need a tokenizer
    assert reasons[10] == "identical_chosen_rejected" and reasons[11] == "duplicate"


def test_parquet_rows_are_record_indices(tmp_path: Path, tiny_tokenizer) -> None:
    msg = pa.struct([("role", pa.string()), ("content", pa.string())])
    rows = [
        ([("user", "What is the capital of France?")], "Paris.", "London."),  # 1
        ([("user", "Hi?")], None, "No."),  # 2: null -> missing
        ([("user", "Hi?")], "Hello.", ""),  # 3
        ([("system", "Be brief."), ("assistant", "Hi.")], "a", "b"),  # 4: assistant before user
        ([("user", "Hi?"), ("assistant", "Hello.")], "a", "b"),  # 5
        ([("user", "Say yes.")], "Yes.", "Yes."),  # 6
        ([("user", "What is the capital of France?")], "Paris.", "London."),  # 7: duplicate of 1
        ([("user", LONG)], "a", "b"),  # 8
        ([("tool", "Hi?")], "a", "b"),  # 9: unknown role
        ([("user", "Name a bird.")], "A robin.", "A cat."),  # 10
    ]
    table = pa.table({
        "prompt": pa.array([[{"role": r, "content": c} for r, c in p] for p, _, _ in rows], pa.list_(msg)),
        "chosen": pa.array([c for _, c, _ in rows], pa.string()),
        "rejected": pa.array([r for _, _, r in rows], pa.string()),
    })
    path = tmp_path / "prefs.parquet"
    pq.write_table(table, path, row_group_size=4)  # several row groups: indices run on across them

    result = validate(str(path), "preference", tiny_tokenizer, MAX_LENGTH)
    assert [(r.row, r.reason) for r in result.rejected] == [
        (2, "missing_field"),
        (3, "empty_field"),
        (4, "bad_roles"),
        (5, "prompt_not_user_last"),
        (6, "identical_chosen_rejected"),
        (7, "duplicate"),
        (8, "no_room_for_response"),
        (9, "bad_roles"),
    ]
    assert [row for row, _ in result.accepted] == [1, 10]
    assert result.row_unit == "record" and result.rejected[5].message == "same record as record 1"


def test_sft_schema(tmp_path: Path) -> None:
    good = {"messages": [{"role": "system", "content": "Be brief."}, user("Hi?"), assistant("Hello.")]}
    lines = [
        line(good),  # 1
        line({"messages": [user("Hi?")]}),  # 2: does not end with assistant
        line({"messages": [user("Hi?"), assistant("a"), assistant("b")]}),  # 3: not alternating
        line({"messages": []}),  # 4
        line({"messages": "Hi?"}),  # 5
        line({"messages": [user("Hi?"), {"role": "assistant"}]}),  # 6
        line({"msgs": []}),  # 7
        line({"messages": [user("Hi?"), assistant("a"), {"role": "system", "content": "x"}]}),  # 8
    ]
    path = tmp_path / "sft.jsonl"
    path.write_bytes(b"".join(lines))
    result = validate(str(path), "sft")
    assert [(r.row, r.reason, r.field) for r in result.rejected] == [
        (2, "bad_roles", "messages[0].role"),
        (3, "bad_roles", "messages[2].role"),
        (4, "empty_field", "messages"),
        (5, "wrong_type", "messages"),
        (6, "missing_field", "messages[1].content"),
        (7, "missing_field", "messages"),
        (8, "bad_roles", "messages[2].role"),
    ]
    assert result.accepted == [(1, good)]


def test_format_rejection() -> None:
    r = Rejection(3, "missing_field", "chosen", "field 'chosen' is missing")
    assert format_rejection("s3://b/p.jsonl", r) == "s3://b/p.jsonl:3: missing_field: chosen: field 'chosen' is missing"
    assert format_rejection("p.jsonl", Rejection(4, "unparseable_line", None, "x")) == "p.jsonl:4: unparseable_line: x"


def _good_and_bad_file(tmp_path: Path, n_good: int, n_missing: int, n_dup: int) -> Path:
    rows = [line(pref(f"Question number {i}?", f"Answer {i}.", f"Wrong {i}.")) for i in range(n_good)]
    for i in range(n_missing):
        rows.insert(1 + 2 * i, line({"prompt": f"Q{i}?", "rejected": "No."}))
    rows += [rows[0]] * n_dup
    path = tmp_path / "prefs.jsonl"
    path.write_bytes(b"".join(rows))
    return path


def test_reject_fraction_gate_fails_with_clear_message_and_writes_only_report(tmp_path: Path) -> None:
    path = _good_and_bad_file(tmp_path, n_good=6, n_missing=3, n_dup=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.jsonl").write_text("stale\n")  # from an earlier run: must not survive a failed one
    cfg = DataPrepConfig(kind="preference", max_reject_fraction=0.2)
    with pytest.raises(DataPrepError) as err:
        data_prep.run(cfg, str(path), str(out))
    assert str(err.value) == (
        f"{path}: 4 of 10 records rejected (40.0%) > max_reject_fraction 20%: missing_field 3, duplicate 1; "
        "first: line 2 field 'chosen': field 'chosen' is missing; expected a string or one assistant message "
        "(missing_field); "
        f"every rejected row is in {out}/report.json"
    )
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is False and [r["row"] for r in report["rejected"]] == [2, 4, 6, 10]


def test_gate_passes_at_the_threshold(tmp_path: Path) -> None:
    path = _good_and_bad_file(tmp_path, n_good=8, n_missing=2, n_dup=0)  # exactly 20%
    report = data_prep.run(DataPrepConfig(kind="preference", max_reject_fraction=0.2), str(path), str(tmp_path / "o"))
    assert report["ok"] and report["train"] + report["eval"] == 8


def _accepted(prompts: list[str]) -> list[tuple[int, dict]]:
    return [(i + 1, {"prompt": [user(p)], "chosen": [assistant("a")], "rejected": [assistant("b")]})
            for i, p in enumerate(prompts)]


def test_split_is_deterministic_and_keeps_prompt_groups_together() -> None:
    prompts = [f"Prompt {i // 2}" for i in range(100)]  # 50 prompts, two pairs each
    accepted = _accepted(prompts)
    prompt_of = KINDS["preference"].prompt_of
    train, held = split(accepted, 0.2, seed=1, prompt_of=prompt_of)
    assert (train, held) == split(accepted, 0.2, seed=1, prompt_of=prompt_of)
    assert len(held) == 20 and len(train) == 80
    assert [r for r, _ in held] != [r for r, _ in split(accepted, 0.2, seed=2, prompt_of=prompt_of)[1]]
    eval_prompts = {rec["prompt"][0]["content"] for _, rec in held}
    assert not eval_prompts & {rec["prompt"][0]["content"] for _, rec in train}
    assert [r for r, _ in train] == sorted(r for r, _ in train)  # source order kept


def test_split_edge_cases() -> None:
    prompt_of = KINDS["preference"].prompt_of
    two = _accepted(["A?", "B?"])
    train, held = split(two, 0.01, seed=0, prompt_of=prompt_of)
    assert len(held) == 1 and len(train) == 1  # at least one eval record when eval_fraction > 0
    assert split(two, 0.0, seed=0, prompt_of=prompt_of) == (two, [])
    assert split(two[:1], 0.5, seed=0, prompt_of=prompt_of) == (two[:1], [])


def test_overlap_is_detected_ignoring_case_and_whitespace() -> None:
    prompt_of = KINDS["preference"].prompt_of
    held = _accepted(["Why is the sky blue?"])
    train = [(r + 1, rec) for r, rec in _accepted(["why is  the sky BLUE? ", "Why is grass green?"])]
    kept, dropped = remove_overlap(train, held, prompt_of, "prompt", "line")
    assert [r for r, _ in kept] == [3]
    assert dropped == [Rejection(2, "train_eval_overlap", "prompt",
                                 "same prompt (ignoring case and whitespace) as eval line 1; kept out of train")]


def test_validate_command_exit_codes_and_report(every_reason_file: Path, tmp_path: Path, capsys) -> None:
    report_path = tmp_path / "report.json"
    assert validate_command("preference", str(every_reason_file), str(report_path)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{every_reason_file}:3: invalid_utf8: expected UTF-8 text; byte 16 of the line (0xe9) is not valid UTF-8"
    )
    assert out[-1].startswith(f"{every_reason_file}: 20 records, 9 accepted, 11 rejected (55.0%): ")
    report = json.loads(report_path.read_text())
    assert report["accepted"] == 9
    assert all({"row", "reason"} <= set(r) for r in report["rejected"]) and len(report["rejected"]) == 11

    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(line(pref("Hi?")))
    assert validate_command("preference", str(clean)) == 0
    assert validate_command("preference", str(tmp_path / "missing.jsonl")) == 2
    assert validate_command("preference", str(tmp_path / "data.csv")) == 2
    assert validate_command("nonsense", str(clean)) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing.jsonl'}: no such file" in err and "unknown file type" in err


def test_file_level_errors_name_the_uri(tmp_path: Path) -> None:
    with pytest.raises(DataInputError, match="missing.parquet: no such file"):
        iter_rows(str(tmp_path / "missing.parquet"))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataInputError, match="bad.parquet: not a readable Parquet file"):
        list(iter_rows(str(bad)))
    with pytest.raises(DataPrepError, match="no such file"):
        data_prep.run(DataPrepConfig(kind="preference"), str(tmp_path / "none.jsonl"), str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_json_array_and_gzip(tmp_path: Path) -> None:
    import gzip

    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([pref("Hi?"), 3, pref("Hi?")]))
    result = validate(str(arr), "preference")
    assert [(r.row, r.reason) for r in result.rejected] == [(2, "wrong_type"), (3, "duplicate")]
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(line(pref("Hi?")) + b"\n" + b"{oops\n"))
    result = validate(str(gz), "preference")
    assert [(r.row, r.reason) for r in result.rejected] == [(3, "unparseable_line")]
