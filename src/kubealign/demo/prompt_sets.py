"""Locate the demo data files; the evaluation prompt sets, through the library's loader.

* :data:`DATA_DIR` - folder holding ``sft.jsonl``, ``preference.jsonl`` and ``safety.jsonl``.
* :data:`EVAL_DIR` - the packaged evaluation prompt sets (``kubealign/data/prompt_sets``).
* :func:`demo_sft_path` / :func:`demo_preference_path` - paths of the demo
  training sets (as ``str`` so they can go straight into configs and CLIs).
* :func:`load_prompt_set` - the packaged ``harmful``, ``benign_edgy`` and ``helpful``
  evaluation prompts, optionally as a deterministic stratified sample
  (:func:`kubealign.data.prompts.load_prompt_set`, which also reads a team's own files).
"""

from __future__ import annotations

from pathlib import Path

from kubealign.data import prompts

__all__ = [
    "DATA_DIR",
    "EVAL_DIR",
    "PROMPT_SETS",
    "demo_preference_path",
    "demo_sft_path",
    "load_prompt_set",
]

DATA_DIR: Path = Path(__file__).resolve().parent / "data"
"""Folder with the demo data files (inside the installed package)."""

EVAL_DIR: Path = prompts.PACKAGED_DIR

PROMPT_SETS = prompts.PROMPT_SETS


def demo_sft_path() -> str:
    """Path of the demo SFT set (``{"messages": [...]}`` per line)."""
    return str(DATA_DIR / "sft.jsonl")


def demo_preference_path() -> str:
    """Path of the demo preference set (``{"prompt", "chosen", "rejected"}``)."""
    return str(DATA_DIR / "preference.jsonl")


def load_prompt_set(name: str, limit: int | None = None, seed: int = 0) -> list[dict]:
    """A packaged evaluation prompt set; see :func:`kubealign.data.prompts.load_prompt_set`."""
    return prompts.load_prompt_set(name, None, limit, seed)
