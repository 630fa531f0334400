"""Shared by the two graphs' tests: a small SFT + preference dataset."""

from __future__ import annotations

import pytest

from tests.pipeline.kfp_outputs import write_tiny_pipeline_data


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """12 SFT conversations and 12 preference pairs (chosen: an answer; rejected: a refusal) as JSONL."""
    return write_tiny_pipeline_data(tmp_path_factory.mktemp("e2e-data"))
