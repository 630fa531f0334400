"""One bad record costs one row, never the file (issue #13 items 4, 7 and 9).

Table-driven: each case is a JSONL file of good records around one bad line; `kubealign validate` (the
real CLI entry point, in process and once as a subprocess) and data prep must both reject exactly that
row, name file, row, reason and field, keep every other record, and never raise a traceback.

Real: files on the local disk, Python's json parser, the CLI's argument parsing and exit codes, and a
real byte-level BPE tokenizer (`tokenizers`) trained here on text with blank lines and indented
replies, so that it merges "\\n\\n" and "\\n " the way SmolLM2's tokenizer does (the session's tiny
tokenizer never saw such text, so it cannot show the prefix-property break).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubealign import cli
from kubealign.config import DataPrepConfig
from kubealign.data.io import iter_rows
from kubealign.data.validate import validate
from kubealign.stages import data_prep
from kubealign.stages.data_prep import DataPrepError
from tests.conftest import CHATML_TEMPLATE, SPECIAL_TOKENS, _synthetic_chat_lines


def pref(prompt: str, chosen: str = "Paris.", rejected: str = "London.") -> bytes:
    return json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}).encode()


GOOD_1, GOOD_3 = pref("What is the capital of France?"), pref("Why is the sky blue?", "Light scatters.")


@dataclass(frozen=True)
class Case:
    name: str
    bad: bytes  # line 2, between two good records
    reason: str
    field: str | None
    says: str  # a fragment of the message


CASES = [
    Case("5000-digit number", b'{"prompt": "Hi?", "chosen": "a", "rejected": "b", "n": ' + b"7" * 5000 + b"}",
         "unparseable_line", None, "a number is too long (Exceeds the limit (4300 digits)"),
    Case("nested 100,000 deep", b'{"prompt": "Hi?", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         "unparseable_line", None, "nested deeper than the parser allows"),
    Case("duplicate key", b'{"prompt": "A?", "prompt": "B?", "chosen": "a", "rejected": "b"}',
         "duplicate_key", "prompt", "'prompt' appears twice"),
    Case("duplicate key nested", b'{"prompt": [{"role": "user", "content": "A?", "content": "B?"}], '
         b'"chosen": "a", "rejected": "b"}', "duplicate_key", "content", "'content' appears twice"),
]


def _file(tmp_path: Path, bad: bytes, sep: bytes = b"\n") -> Path:
    path = tmp_path / "records.jsonl"
    path.write_bytes(GOOD_1 + sep + bad + sep + GOOD_3 + sep)
    return path


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)  # an uncaught exception here would be the traceback a user sees
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_rejects_only_the_bad_row(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, case.bad)
    code, out, err = _cli(["validate", "preference", str(path)], capsys)
    assert code == 1 and err == ""
    lines = out.splitlines()
    field = f" {case.field}:" if case.field else ""
    assert lines[0].startswith(f"{path}:2: {case.reason}:{field} ") and case.says in lines[0]
    assert lines[1] == f"{path}: 3 records, 2 accepted, 1 rejected (33.3%): {case.reason} 1"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_data_prep_keeps_the_rest(case: Case, tmp_path: Path) -> None:
    path = _file(tmp_path, case.bad)
    cfg = DataPrepConfig(kind="preference", eval_fraction=0.0, max_reject_fraction=0.5)
    report = data_prep.run(cfg, str(path), str(tmp_path / "out"))
    assert [(r["row"], r["reason"], r["field"]) for r in report["rejected"]] == [(2, case.reason, case.field)]
    assert report["source_rows"]["train"] == [1, 3]
    assert len((tmp_path / "out" / "train.jsonl").read_text().splitlines()) == 2


def test_the_whole_table_through_the_installed_command(tmp_path: Path) -> None:
    """One file with every bad case, run as a user runs it: exit 1, one line per bad row, no traceback."""
    path = tmp_path / "all.jsonl"
    path.write_bytes(b"\n".join([GOOD_1, *(c.bad for c in CASES), GOOD_3]) + b"\n")
    proc = subprocess.run([sys.executable, "-m", "kubealign.cli", "validate", "preference", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    rows = [line.split(":")[1] for line in proc.stdout.splitlines()[:-1]]
    assert rows == [str(2 + i) for i in range(len(CASES))]
    assert proc.stdout.splitlines()[-1].startswith(f"{path}: {len(CASES) + 2} records, 2 accepted, {len(CASES)} rejected")


# --- line breaks: a lone CR ends a line, as in editors ---------------------------------------------------

@pytest.mark.parametrize("sep", [b"\r", b"\r\n", b"\n"], ids=["CR", "CRLF", "LF"])
def test_every_line_ending_keeps_both_records_with_their_rows(sep: bytes, tmp_path: Path) -> None:
    path = _file(tmp_path, pref("Name a bird."), sep)
    assert [row for row, _ in iter_rows(str(path))] == [1, 2, 3]
    result = validate(str(path), "preference")
    assert result.rejected == [] and [row for row, _ in result.accepted] == [1, 2, 3]


def test_a_lone_cr_between_a_bad_and_a_good_record(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(GOOD_1 + b"\r{oops\r\n" + GOOD_3 + b"\n\r" + pref("Name a bird.") + b"\n")
    result = validate(str(path), "preference")
    assert [(r.row, r.reason) for r in result.rejected] == [(2, "unparseable_line")]
    assert [row for row, _ in result.accepted] == [1, 3, 5]  # line 4 is blank (between LF and CR)


# --- no records at all: validate and data prep agree ----------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\n  \n\r\n\t\n"], ids=["empty", "blank-only"])
def test_no_records_is_an_error_in_validate_and_in_data_prep(content: bytes, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    code, out, err = _cli(["validate", "sft", str(path)], capsys)
    assert code == 2 and out == ""
    assert err == f"error: {path}: no records (the file is empty or has only blank lines); expected at least one record\n"
    with pytest.raises(DataPrepError, match=f"^{path}: no records"):
        data_prep.run(DataPrepConfig(kind="sft"), str(path), str(tmp_path / "out"))
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_a_json_array_that_cannot_be_parsed_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    code, _, err = _cli(["validate", "preference", str(path)], capsys)
    assert code == 2 and err.startswith(f"error: {path}: not a readable JSON array: ")
    arr = tmp_path / "dup.json"
    arr.write_text('[{"prompt": "A?", "chosen": "a", "rejected": "b"}, {"prompt": "A?", "prompt": "B?"}]')
    assert [(r.row, r.reason, r.field) for r in validate(str(arr), "preference").rejected] == [
        (2, "duplicate_key", "prompt")]


# --- with --tokenizer: a reply the chat template re-tokenizes is rejected, not fatal --------------------

@pytest.fixture(scope="module")
def merging_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE that has learnt "\\n\\n" and "\\n " as tokens (as real chat tokenizers have)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = _synthetic_chat_lines(300) + ["Para one.\n\n\nPara two.\n\n  indented\n  code\n"] * 200
    tok.train_from_iterator(text, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                      additional_special_tokens=["<|im_start|>"])
    wrapped.chat_template = CHATML_TEMPLATE
    path = tmp_path_factory.mktemp("merging_tokenizer")
    wrapped.save_pretrained(path)
    return path


TEMPLATE_CASES = [
    ("preference", pref("Say hi?", "\n\nHi."), "chosen[0].content"),
    ("preference", pref("Say yo?", "Yo.", "  No."), "rejected[0].content"),
    ("sft", json.dumps({"messages": [{"role": "user", "content": "Say hi?"},
                                     {"role": "assistant", "content": "\n\nHi."}]}).encode(), "messages[1].content"),
    ("sft", json.dumps({"messages": [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "B."},
                                     {"role": "user", "content": "C?"}, {"role": "assistant", "content": "  D."}]}
                       ).encode(), "messages[3].content"),
]


@pytest.mark.parametrize(("kind", "bad", "field"), TEMPLATE_CASES, ids=["pref-chosen-nn", "pref-rejected-2sp",
                                                                        "sft-nn", "sft-turn2-2sp"])
def test_a_reply_that_breaks_the_prefix_property_is_one_rejected_row(
    kind: str, bad: bytes, field: str, merging_tokenizer_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kubealign.data.chat import assistant_spans, tokenize_preference

    good = [GOOD_1, GOOD_3] if kind == "preference" else [
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "Yes."}]}).encode()
        for q in ("Is water wet?", "Is fire hot?")]
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join([good[0], bad, good[1]]) + b"\n")

    # the training code itself would stop on this record: that is what the check protects against
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merging_tokenizer_dir)
    record = json.loads(bad)
    with pytest.raises(ValueError, match="breaks the prefix property"):
        if kind == "sft":
            assistant_spans(tokenizer, record["messages"])
        else:
            as_msgs = [{"role": "assistant", "content": record[k]} for k in ("chosen", "rejected")]
            tokenize_preference(tokenizer, [{"role": "user", "content": record["prompt"]}], [as_msgs[0]],
                                [as_msgs[1]], 64)

    code, out, err = _cli(["validate", kind, str(path), "--tokenizer", str(merging_tokenizer_dir)], capsys)
    assert code == 1 and err == ""
    first = out.splitlines()[0]
    assert first.startswith(f"{path}:2: template_mismatch: {field}: expected the chat template to render this turn")
    assert "leading whitespace" in first
    assert out.splitlines()[1] == f"{path}: 3 records, 2 accepted, 1 rejected (33.3%): template_mismatch 1"

    cfg = DataPrepConfig(kind=kind, eval_fraction=0.0, max_reject_fraction=0.5, max_length=64)
    report = data_prep.run(cfg, str(path), str(tmp_path / "out"), tokenizer=tokenizer)
    assert [(r["row"], r["reason"], r["field"]) for r in report["rejected"]] == [(2, "template_mismatch", field)]
    assert report["source_rows"]["train"] == [1, 3]
