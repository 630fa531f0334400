"""LLM-as-judge pairwise comparison, against a stand-in endpoint.

What is real: the HTTP client (requests), real HTTP on a loopback socket, the request/response JSON of
the OpenAI chat completions API. What stands in: the judge model. A small `http.server` on 127.0.0.1
answers `POST /v1/chat/completions` with a verdict computed by a rule (a fair judge that prefers the
response containing "GOOD", or a position-biased judge that always answers "[[A]]"), and records
every request it receives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubealign import judge

KEY = "sk-test-0123456789abcdef"


class StandIn:
    """A loopback chat-completions server; `rule(user_text) -> reply text`, `fail_first` 503s before answering."""

    def __init__(self, rule: Callable[[str], str], fail_first: int = 0, status: int = 200) -> None:
        self.rule, self.fail_first, self.status = rule, fail_first, status
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, **body})
                outer.headers.append(dict(self.headers))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    return self._send(503, {"error": "overloaded"})
                if outer.status != 200:  # an error body that echoes the key back
                    return self._send(outer.status, {"error": f"bad key {self.headers['Authorization']}"})
                text = outer.rule(body["messages"][-1]["content"])
                self._send(200, {"id": "x", "object": "chat.completion",
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

            def _send(self, code: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fair(user_text: str) -> str:
    a = user_text.split("[Response A]")[1].split("[Response B]")[0]
    b = user_text.split("[Response B]")[1]
    verdict = "C" if ("GOOD" in a) == ("GOOD" in b) else ("A" if "GOOD" in a else "B")
    return f"Reasoning... [[{verdict}]]"


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., StandIn]]:
    monkeypatch.setenv("JUDGE_KEY", KEY)
    servers: list[StandIn] = []

    def start(rule: Callable[[str], str], **kw: int) -> StandIn:
        servers.append(StandIn(rule, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


PROMPTS = ["q1", [{"role": "system", "content": "sys"}, {"role": "user", "content": "q2"}], "q3", "q4"]
A = ["GOOD answer", "meh", "GOOD", "meh"]
B = ["meh", "GOOD answer", "GOOD too", "meh"]


def test_fair_judge_both_orders(serve: Callable[..., StandIn]) -> None:
    server = serve(fair)
    result = judge.pairwise(server.url, "judge-model", PROMPTS, A, B, api_key_env="JUDGE_KEY", workers=2)
    assert [p["outcome"] for p in result["per_pair"]] == ["win", "loss", "tie", "tie"]
    assert [p["verdicts"] for p in result["per_pair"]] == [["A", "B"], ["B", "A"], ["C", "C"], ["C", "C"]]
    assert (result["wins"], result["ties"], result["losses"], result["inconsistent"]) == (1, 2, 1, 0)
    assert result["win_rate"] == pytest.approx((1 + 2 / 2) / 4)
    assert judge.metrics(result)["winrate/judge"] == pytest.approx(0.5)

    # every pair was asked twice, once with each response first, as real chat-completions requests
    assert len(server.requests) == 8 and {r["path"] for r in server.requests} == {"/v1/chat/completions"}
    assert all(r["model"] == "judge-model" and r["temperature"] == 0.0 for r in server.requests)
    shown = {(r["messages"][-1]["content"].split("[Response A]\n")[1].split("\n\n[Response B]")[0],
              r["messages"][-1]["content"].split("[Response B]\n")[1]) for r in server.requests}
    assert ("GOOD answer", "meh") in shown and ("meh", "GOOD answer") in shown
    assert any(r["messages"][-1]["content"].startswith("[User request]\nq2\n") for r in server.requests)
    assert all(h["Authorization"] == f"Bearer {KEY}" for h in server.headers)


def test_position_bias_cancels(serve: Callable[..., StandIn]) -> None:
    server = serve(lambda text: "Response A is clearly better. [[A]]")  # always the first position
    result = judge.pairwise(server.url, "m", PROMPTS, A, B, api_key_env="JUDGE_KEY")
    assert [p["outcome"] for p in result["per_pair"]] == ["tie"] * 4  # 1 in one order, 0 in the other
    assert result["win_rate"] == 0.5 and result["inconsistent"] == 4


def test_unreadable_verdict_counts_half(serve: Callable[..., StandIn]) -> None:
    server = serve(lambda text: "[[A]]" if "GOOD answer" in text.split("[Response B]")[0] else "no verdict")
    result = judge.pairwise(server.url, "m", ["q"], ["GOOD answer"], ["meh"], api_key_env="JUDGE_KEY")
    assert result["per_pair"][0] == {"outcome": "win", "score": 0.75, "verdicts": ["A", None]}
    assert result["unparsed"] == 1


def test_retries_then_succeeds(serve: Callable[..., StandIn]) -> None:
    server = serve(fair, fail_first=2)
    result = judge.pairwise(server.url, "m", ["q"], ["GOOD"], ["meh"], api_key_env="JUDGE_KEY", workers=1,
                            retry_wait=0.0)
    assert result["wins"] == 1 and len(server.requests) == 4  # 2 x 503, then both orders


def test_errors_never_show_the_key(serve: Callable[..., StandIn], capsys: pytest.CaptureFixture[str]) -> None:
    server = serve(fair, status=401)
    with pytest.raises(judge.JudgeError) as err:
        judge.pairwise(server.url, "m", ["q"], ["a"], ["b"], api_key_env="JUDGE_KEY")
    assert "HTTP 401" in str(err.value) and "***" in str(err.value) and KEY not in str(err.value)
    out = capsys.readouterr()
    assert KEY not in out.out + out.err


def test_missing_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(judge.JudgeError, match="NO_SUCH_KEY is not set"):
        judge.pairwise("http://127.0.0.1:9/v1", "m", ["q"], ["a"], ["b"], api_key_env="NO_SUCH_KEY")


def test_url_and_verdict_parsing() -> None:
    assert judge.chat_url("https://api.example.com/v1/") == "https://api.example.com/v1/chat/completions"
    assert judge.chat_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert judge.parse_verdict("A is better [[A]] ... final: [[B]]") == "B"  # the last one counts
    assert judge.combine("C", "C") == ("tie", 0.5) and judge.combine("A", "B") == ("win", 1.0)
    with pytest.raises(ValueError, match="same length"):
        judge.pairwise("http://x/v1", "m", ["q"], ["a"], [], api_key_env="")
