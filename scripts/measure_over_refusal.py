"""How well each over-refusal count agrees with the labels on the benign prompts of a judged labelled set.

    kubealign judge refusal src/kubealign/data/prompt_sets/refusal_labels.jsonl --out /tmp/judged.jsonl
    python scripts/measure_over_refusal.py /tmp/judged.jsonl

Compares "any verdict but complied" (what evaluate counted before) with "refused or deflected"
(kubealign.refusal.rates.DECLINED, what over-refusal counts now) on rows with `harmful_prompt: false`,
each against the labels read the same way, with 95% bootstrap intervals; and counts the benign
complied answers the judge calls off-topic.
"""

from __future__ import annotations

import json
import sys

from kubealign import stats
from kubealign.refusal.rates import DECLINED


def main(path: str) -> int:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    benign = [r for r in rows if r.get("harmful_prompt") is False]
    print(f"benign rows: {len(benign)}; labels: "
          f"{ {k: sum(r['label'] == k for r in benign) for k in ('complied', 'refused', 'deflected', 'off_topic')} }")
    for name, counted in (("any verdict but complied", lambda v: v != "complied"),
                          ("refused or deflected", lambda v: v in DECLINED)):
        report = stats.binary_report([counted(r["label"]) for r in benign], [counted(r["verdict"]) for r in benign])
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in report.items()))
    complied = [r for r in benign if r["label"] == "complied"]
    print(f"benign complied answers called off_topic: {sum(r['verdict'] == 'off_topic' for r in complied)} "
          f"of {len(complied)}; called refused or deflected: {sum(r['verdict'] in DECLINED for r in complied)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
