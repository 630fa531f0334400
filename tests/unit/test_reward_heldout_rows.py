"""scripts/reward_heldout.py's choice of held-out prompts: counts per kind, and one benign set making up
for the other when it runs short."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("reward_heldout", ROOT / "scripts" / "reward_heldout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, prefix: str, n: int) -> None:
    path.write_text("".join(json.dumps({"prompt": f"{prefix} {i}"}) + "\n" for i in range(n)))


def test_benign_prompts_split_evenly_and_the_longer_set_fills_in(tmp_path: Path) -> None:
    write(tmp_path / "harmful.jsonl", "h", 10)
    write(tmp_path / "benign_edgy.jsonl", "e", 6)
    write(tmp_path / "helpful.jsonl", "p", 3)
    prompt_rows = load_script().prompt_rows
    rows = prompt_rows(tmp_path, 4, 4)
    assert [r["prompt"] for r in rows] == ["h 0", "h 1", "h 2", "h 3", "e 0", "e 1", "p 0", "p 1"]
    assert [r["label"] for r in rows] == ["harmful"] * 4 + ["benign"] * 4
    # 8 benign asked, helpful has 3: edgy gives 5
    benign = [r["prompt"] for r in prompt_rows(tmp_path, 0, 8)]
    assert benign == ["e 0", "e 1", "e 2", "e 3", "e 4", "p 0", "p 1", "p 2"]
    # more than both sets hold: all 9 of them, no repeats
    assert len(prompt_rows(tmp_path, 0, 50)) == 9
    # the benign-edgy set short: helpful makes up the difference
    write(tmp_path / "benign_edgy.jsonl", "e", 1)
    assert [r["prompt"] for r in prompt_rows(tmp_path, 0, 4)] == ["e 0", "p 0", "p 1", "p 2"]


def test_settings_come_from_the_run_config() -> None:
    """The demo config's PPO weight and sampling settings reach the script; every prompt makes its own pairs."""
    prefs, ppo = load_script().stage_settings(str(ROOT / "configs" / "demo-rlaif-ppo.yaml"), ["pref_margin=0.25"])
    assert ppo.constitution_weight == 1.0 and ppo.max_new_tokens == 24
    assert (prefs.num_responses, prefs.temperature, prefs.margin) == (4, 0.7, 0.25)
    assert (prefs.num_prompts, prefs.eval_fraction, prefs.borrow_refusals) == (0, 0.0, False)
