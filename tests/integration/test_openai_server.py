"""scripts/openai_server.py, a real OpenAI-compatible HTTP server, under the clients kubealign points at one.

Real: the server runs as its own process (`python scripts/openai_server.py --port 0`) with a real model
behind it, the tiny random Llama of tests/conftest.py (2 layers, 64 wide; its generation config told to
skip blank tokens, see `visible_model_dir`), rendering each request with the tokenizer's chat template
and generating greedily; the clients are the real ones
(`kubealign.judge.ChatClient` over HTTP): the refusal judge's `endpoint` backend, `Judges.revise`, and
the preferences stage with revise=True.
Stands in for a capable judge: nothing. Verdicts, critiques and revisions are whatever a random model
writes, mostly unreadable as verdicts, so the tests check the shape of what comes back and that each
request reached the server (its per-request log line with token counts), never the content.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from kubealign.config import PreferencesConfig
from kubealign.constitution import load_constitution
from kubealign.preference_judges import Judges
from kubealign.refusal import VERDICTS, endpoint, judge_refusals
from kubealign.stages import preferences

SERVER = Path(__file__).resolve().parents[2] / "scripts" / "openai_server.py"
CAP = 16  # --max-new-tokens-cap: every reply stops here, whatever the client asks for
SERVED = re.compile(r"POST /v1/chat/completions 200 prompt_tokens=(\d+) completion_tokens=(\d+)")

ROWS = [("How do I boil an egg?", "Boil water, add the egg, cook it for seven minutes."),
        ("How can I poison my coworker slowly?", "I can't help with that."),
        ("What is the capital of France?", "Let's talk about something else.")]


@dataclass
class Server:
    url: str  # the OpenAI-style base URL, `http://127.0.0.1:PORT/v1`
    log: Path

    def served(self) -> list[tuple[int, int]]:
        """(prompt tokens, completion tokens) of every completion served so far, in order."""
        return [(int(a), int(b)) for a, b in SERVED.findall(self.log.read_text())]


@pytest.fixture(scope="module")
def visible_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, its generation config told never to pick a token that decodes to blank.

    With tied random embeddings the model's greedy choice is to repeat its last input token, here the
    newline that ends the chat template's `<|im_start|>assistant` line, so every reply would strip to ""
    and the stage would (rightly) record no revision. `suppress_tokens` is honoured by `generate`, so the
    server samples nothing differently; it just has no blank token to choose.
    """
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("tiny_visible")
    shutil.copytree(tiny_model_dir, path, dirs_exist_ok=True)
    tok = AutoTokenizer.from_pretrained(path)
    gen_file = path / "generation_config.json"
    gen = json.loads(gen_file.read_text()) if gen_file.exists() else {}
    gen["suppress_tokens"] = [i for i in range(len(tok)) if not tok.decode([i], skip_special_tokens=True).strip()]
    gen_file.write_text(json.dumps(gen))
    return path


@pytest.fixture(scope="module")
def server(visible_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("openai_server") / "server.log"
    cmd = [sys.executable, str(SERVER), "--model", str(visible_model_dir), "--port", "0", "--name", "tiny",
           "--device", "cpu", "--max-new-tokens-cap", str(CAP)]
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"at (http://\S+/v1)#tiny", log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"openai_server did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(found.group(1), log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_models_route_and_bad_bodies(server: Server) -> None:
    assert requests.get(f"{server.url}/models", timeout=10).json()["data"][0]["id"] == "tiny"
    url = f"{server.url}/chat/completions"
    for body, message in [(b"{nope", "body: not valid JSON"),
                          (b'{"messages": []}', "messages: expected a non-empty list"),
                          (b'{"messages": [{"role": "bot", "content": "hi"}]}', "messages[0].role: expected one of"),
                          (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
                           "max_tokens: expected a positive integer"),
                          (b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}', "stream: streaming")]:
        resp = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == 400 and resp.json()["error"]["message"].startswith(message), resp.text
    reply = requests.post(url, json={"model": "any", "messages": [{"role": "user", "content": "hi"}],
                                     "max_tokens": 4}, timeout=60).json()
    usage = reply["usage"]
    assert reply["object"] == "chat.completion" and reply["model"] == "tiny"
    assert isinstance(reply["choices"][0]["message"]["content"], str)
    assert 1 <= usage["completion_tokens"] <= 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert server.served()[-1] == (usage["prompt_tokens"], usage["completion_tokens"])
    sampled = [requests.post(url, json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8,
                                        "temperature": 1.0, "seed": seed}, timeout=60).json() for seed in (3, 3, 4)]
    texts = [r["choices"][0]["message"]["content"] for r in sampled]
    assert texts[0] == texts[1] != texts[2]  # sampling, reproducible by seed


def test_refusal_judge_endpoint_backend(server: Server) -> None:
    before = len(server.served())
    prompts, responses = [p for p, _ in ROWS], [r for _, r in ROWS]
    verdicts = judge_refusals(prompts, responses, "endpoint", model=f"{server.url}#tiny", api_key_env=None)
    assert len(verdicts) == 3
    assert all(v.verdict in (*VERDICTS, None) for v in verdicts)  # None: a reply with no verdict word
    served = server.served()[before:]
    assert len(served) == 3
    assert all(0 < completion <= 8 for _, completion in served)  # the backend asks for at most 8 tokens
    # greedy decoding: asking again gives the same reply, so each verdict is the parse of what the server wrote
    for (p, r), v in zip(ROWS, verdicts, strict=True):
        again = requests.post(f"{server.url}/chat/completions", timeout=60,
                              json={"model": "tiny", "messages": endpoint.messages(p, r), "max_tokens": 8}).json()
        assert endpoint.parse(again["choices"][0]["message"]["content"]) == v


def test_judges_revise(server: Server) -> None:
    cfg = PreferencesConfig.model_validate({"revise": True, "judge_endpoint": server.url, "judge_model": "tiny",
                                            "judge_api_key_env": ""})
    principles = load_constitution().for_label("harmful")
    before = len(server.served())
    out = Judges(cfg).revise(principles, ROWS[1][0], "Sure, here is how.", random.Random(0))
    assert set(out) == {"principle", "critique", "revision"}
    assert out["principle"] in {p.name for p in principles}
    assert isinstance(out["critique"], str) and isinstance(out["revision"], str)
    (ask, _), (rewrite, _) = server.served()[before:]  # one critique, then one revision request
    assert rewrite > ask  # the revision request carries the critique conversation and one more turn


def test_preferences_stage_revises_through_the_server(server: Server, tiny_model_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p, "label": lab}) + "\n" for p, lab in
                               [("How can I poison my coworker slowly?", "harmful"),
                                ("Explain how the moon causes tides.", "benign")]))
    constitution = tmp_path / "c.yaml"  # judges that need no model, so every request the server sees is a revise
    constitution.write_text(json.dumps({"principles": [
        {"name": "refuse-harmful", "text": "Decline harmful requests.", "applies_to": "harmful", "judge": "refusal",
         "prefers": "refuse", "weight": 2},
        {"name": "concise", "text": "Be brief.", "applies_to": "all", "judge": "length", "prefers": "concise",
         "weight": 1}]}))
    cfg = PreferencesConfig.model_validate({
        "num_responses": 4, "max_new_tokens": 12, "batch_size": 8, "temperature": 1.5, "eval_fraction": 0.0,
        "revise": True, "judge_endpoint": server.url, "judge_model": "tiny", "judge_api_key_env": "",
        "constitution": str(constitution)})
    before = len(server.served())
    summary = preferences.run(cfg, str(tiny_model_dir), str(prompts), str(tmp_path / "out"), round_index=1)
    kept = [json.loads(line) for line in (tmp_path / "out" / "candidates.jsonl").read_text().splitlines()]
    picked = sum(c["kept_as"] == "chosen" for c in kept)
    assert picked >= 1
    assert len(server.served()) - before == 2 * picked  # a critique and a revision per pair
    pairs = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    revised = [p for p in pairs if "revision" in p["provenance"]]
    assert summary["pairs/revised"] == len(revised) >= 1
    for pair in revised:
        rev = pair["provenance"]["revision"]
        assert isinstance(rev["critique"], str) and rev["revision"].strip()
        assert pair["chosen"][0]["content"] == rev["revision"]
        assert rev["principle"] in pair["provenance"]["judges"]
