"""Issue #13 items 4, 7, 9: feed bad record files to `kubealign validate` and count the outcomes.

    python scripts/measure_bad_records.py [--workdir DIR]
    PYTHONPATH=/tmp/old/src python scripts/measure_bad_records.py   # the same against an older checkout

Each case is a file of good records around one bad one (or a file-level case), validated by a fresh
`python -m kubealign.cli validate` subprocess, as a user runs it. Verdicts:
clear (exit code as expected, the bad row or the file named, every other record kept, no traceback),
trace (a Python traceback reached the user), silent (exit 0 and the bad input accepted), other.
The --tokenizer cases use a byte-level BPE trained here on text with blank lines and indented replies,
so that it merges "\\n\\n" and "\\n " as real chat tokenizers do (tests/unit/test_bad_records.py builds
the same one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tokenizer(path: Path) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    sys.path.insert(0, str(REPO))
    from tests.conftest import CHATML_TEMPLATE, SPECIAL_TOKENS, _synthetic_chat_lines

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_synthetic_chat_lines(300) + ["Para one.\n\n\nPara two.\n\n  indented\n  code\n"] * 200,
                            trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                      additional_special_tokens=["<|im_start|>"])
    wrapped.chat_template = CHATML_TEMPLATE
    wrapped.save_pretrained(path)
    return str(path)


def pref(p: str, c: str = "Paris.", r: str = "London.") -> bytes:
    return json.dumps({"prompt": p, "chosen": c, "rejected": r}).encode()


def sft(q: str, a: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}).encode()


def cases(tok: str) -> list[tuple[str, str, bytes, list[str], str]]:
    """(name, kind, file bytes, extra CLI args, expectation: 'row2' | 'all3' | 'file')."""
    g1, g3 = pref("What is the capital of France?"), pref("Why is the sky blue?", "Light.")
    s1, s3 = sft("Say hi?", "Hi."), sft("Is fire hot?", "Yes.")
    t = ["--tokenizer", tok]

    def around(bad: bytes, good: tuple[bytes, bytes] = (g1, g3)) -> bytes:
        return good[0] + b"\n" + bad + b"\n" + good[1] + b"\n"

    return [
        ("5000-digit number", "preference",
         around(b'{"prompt": "Hi?", "chosen": "a", "rejected": "b", "n": ' + b"7" * 5000 + b"}"), [], "row2"),
        ("nested 100,000 deep", "preference", around(b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), [], "row2"),
        ("duplicate key", "preference", around(b'{"prompt": "A?", "prompt": "B?", "chosen": "a", "rejected": "b"}'),
         [], "row2"),
        ("duplicate nested key", "preference", around(
            b'{"prompt": [{"role": "user", "content": "A?", "content": "B?"}], "chosen": "a", "rejected": "b"}'),
         [], "row2"),
        ("lone CR between records", "preference", g1 + b"\r" + pref("Name a bird.") + b"\n" + g3 + b"\n", [], "all3"),
        ("empty file", "preference", b"", [], "file"),
        ("blank-only file", "sft", b"\n \n\t\n", [], "file"),
        ("pref reply starts with \\n\\n, --tokenizer", "preference", around(pref("Say hi?", "\n\nHi.")), t, "row2"),
        ("pref reply starts with two spaces, --tokenizer", "preference", around(pref("Say yo?", "Yo.", "  No.")),
         t, "row2"),
        ("sft reply starts with \\n\\n, --tokenizer", "sft", around(sft("Say hey?", "\n\nHey."), (s1, s3)), t, "row2"),
        ("sft reply starts with two spaces, --tokenizer", "sft", around(sft("Say hey?", "  Hey."), (s1, s3)), t, "row2"),
    ]


def verdict(proc: subprocess.CompletedProcess[str], path: Path, expect: str) -> str:
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    if "Traceback" in proc.stdout + proc.stderr:
        return "trace"
    if expect == "row2":
        ok = proc.returncode == 1 and f"{path}:2: " in proc.stdout and "3 records, 2 accepted, 1 rejected" in last
    elif expect == "all3":
        ok = proc.returncode == 0 and "3 records, 3 accepted, 0 rejected" in last
    else:
        ok = proc.returncode == 2 and str(path) in proc.stderr and "no records" in proc.stderr
    return "clear" if ok else ("silent" if proc.returncode == 0 and expect != "all3" else "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None)
    workdir = Path(parser.parse_args().workdir or tempfile.mkdtemp(prefix="bad-records-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(workdir / "tokenizer")
    tally: Counter[str] = Counter()
    for i, (name, kind, data, extra, expect) in enumerate(cases(tok)):
        path = workdir / f"case{i}.jsonl"
        path.write_bytes(data)
        proc = subprocess.run([sys.executable, "-m", "kubealign.cli", "validate", kind, str(path), *extra],
                              capture_output=True, text=True, timeout=300)
        v = verdict(proc, path, expect)
        tally[v] += 1
        said = (proc.stdout.strip().splitlines() or [proc.stderr.strip()])[0]
        print(f"{v:6} exit {proc.returncode}  {name}: {said.replace(str(workdir) + '/', '')[:120]}")
    print(f"{sum(tally.values())} bad inputs: " + ", ".join(f"{k} {tally[k]}" for k in ("clear", "trace", "silent", "other")))


if __name__ == "__main__":
    main()
