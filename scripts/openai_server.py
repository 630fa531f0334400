"""A small OpenAI-compatible chat server for one local causal LM, for kubealign's `endpoint` judges.

    python scripts/openai_server.py --model DIR [--port 8000] [--host 127.0.0.1] [--max-new-tokens-cap 256]
                                    [--name NAME] [--device cpu|cuda] [--threads 1]

Serves `POST /v1/chat/completions` and `GET /v1/models`, the two routes `kubealign.judge.ChatClient`
and its callers use (the refusal judge's `endpoint` backend, the preferences stage's `endpoint` judge
and critique-and-revise): point them at `http://HOST:PORT/v1#NAME` with no API key (`--api-key-env ''`
on the CLI, `judge_api_key_env: ''` in the preferences settings). An Authorization header is accepted
and ignored: this is a loopback tool, not a service to expose.

One model per server, so the request's `model` is not checked; replies name the served model. A
request: `messages` (system / user / assistant turns, content a string or a list of text parts),
optional `max_tokens` (or `max_completion_tokens`; capped at --max-new-tokens-cap), `temperature`
(0 or absent = greedy), `top_p`, `seed`. Unsupported or malformed fields get HTTP 400 with an OpenAI
style `{"error": {"message", "type", "param"}}`. The conversation is rendered with the tokenizer's
chat template. Requests are served one at a time (one model, one lock); each is logged to stderr as
one line with its token counts. `--port 0` binds a free port; the first log line names it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

from kubealign import models

ROLES = ("system", "user", "assistant")
MAX_BODY_BYTES = 4 * 1024 * 1024


class BadRequest(ValueError):
    """A request body that cannot be served; `param` names the field (OpenAI's error shape)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class Request:
    messages: list[dict[str, str]]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None


def _content(value: Any, where: str) -> str:
    """A message's content: a string, or OpenAI's list of `{"type": "text", "text": ...}` parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                       and isinstance(p.get("text"), str) for p in value):
        return "".join(p["text"] for p in value)
    raise BadRequest(f"{where}: expected a string or a list of text parts, got {json.dumps(value)[:80]}", where)


def _number(body: dict[str, Any], field: str, default: float, low: float, high: float) -> float:
    value = body.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"{field}: expected a number from {low} to {high}, got {json.dumps(value)[:40]}", field)
    return float(value)


def parse_request(body: Any, cap: int) -> Request:
    """Check a chat-completions body; BadRequest names the first field that is wrong."""
    if not isinstance(body, dict):
        raise BadRequest(f"body: expected a JSON object, got {type(body).__name__}")
    if body.get("stream"):
        raise BadRequest("stream: streaming is not supported; send stream=false or leave it out", "stream")
    if body.get("n", 1) != 1:
        raise BadRequest(f"n: only n=1 is supported, got {json.dumps(body['n'])[:40]}", "n")
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise BadRequest("messages: expected a non-empty list of {role, content}", "messages")
    messages = []
    for i, turn in enumerate(turns):
        where = f"messages[{i}]"
        if not isinstance(turn, dict) or turn.get("role") not in ROLES:
            got = turn.get("role") if isinstance(turn, dict) else type(turn).__name__
            raise BadRequest(f"{where}.role: expected one of {', '.join(ROLES)}, got {json.dumps(got)[:40]}",
                             f"{where}.role")
        messages.append({"role": turn["role"], "content": _content(turn.get("content"), f"{where}.content")})
    field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    wanted = body.get(field, cap)
    wanted = cap if wanted is None else wanted
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
        raise BadRequest(f"{field}: expected a positive integer, got {json.dumps(wanted)[:40]}", field)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest(f"seed: expected an integer, got {json.dumps(seed)[:40]}", "seed")
    return Request(messages, min(wanted, cap), _number(body, "temperature", 0.0, 0.0, 2.0),
                   _number(body, "top_p", 1.0, 1e-6, 1.0), seed)


class ChatModel:
    """The served model and tokenizer; `complete` is called under one lock (one forward at a time)."""

    def __init__(self, model_dir: str, name: str, device: torch.device) -> None:
        path = models.resolve_model_dir(model_dir)
        self.name, self.device = name, device
        self.tokenizer = models.load_tokenizer(path)
        self.model = models.load_causal_lm(path, models.pick_dtype("auto", device), device).eval()
        self.lock = threading.Lock()

    @torch.inference_mode()
    def complete(self, req: Request) -> tuple[str, int, int, str, float]:
        """(text, prompt tokens, completion tokens, finish reason "stop" | "length", seconds generating)."""
        options: dict[str, Any] = {"do_sample": req.temperature > 0}
        if req.temperature > 0:
            options.update(temperature=req.temperature, top_p=req.top_p, top_k=0)
        else:  # a model's generation_config may ask for sampling; greedy must mean greedy
            options.update(temperature=None, top_p=None, top_k=None)
        # the tokenizer too is used under the lock: a fast tokenizer shared across threads can fail
        # ("Already borrowed")
        with self.lock:
            start = time.perf_counter()
            # the template renders text; tokenizing it separately keeps special tokens from being added twice
            text = self.tokenizer.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)
            ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(self.device)
            if req.seed is not None:
                torch.manual_seed(req.seed)
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=req.max_new_tokens,
                                      eos_token_id=self.tokenizer.eos_token_id,
                                      pad_token_id=self.tokenizer.pad_token_id, **options)
            new = out[0, ids.shape[1]:].tolist()
            reply = self.tokenizer.decode(new, skip_special_tokens=True)
            seconds = time.perf_counter() - start
        stopped = bool(new) and new[-1] == self.tokenizer.eos_token_id
        finish = "stop" if stopped or len(new) < req.max_new_tokens else "length"
        return reply, ids.shape[1], len(new), finish, seconds


def handler_for(chat: ChatModel, cap: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses one connection per session

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, param: str | None = None,
                   kind: str = "invalid_request_error") -> None:
            self._send(status, {"error": {"message": message, "type": kind, "param": param, "code": None}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": chat.name, "object": "model", "created": 0,
                                                             "owned_by": "local"}]})
            else:
                self._error(404, f"{self.path}: not found; routes: GET /v1/models, POST /v1/chat/completions")

        def do_POST(self) -> None:  # noqa: N802
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or not 0 < int(length) <= MAX_BODY_BYTES:
                self.close_connection = True  # the body was not read: the connection cannot be reused
                self._error(400, f"body: expected a JSON object of 1 to {MAX_BODY_BYTES} bytes with its "
                                 f"Content-Length, got Content-Length {length or '(none)'}")
                return
            raw = self.rfile.read(int(length))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"{self.path}: not found; POST goes to /v1/chat/completions")
                return
            start = time.perf_counter()
            try:
                req = parse_request(json.loads(raw), cap)
            except json.JSONDecodeError as err:
                self._error(400, f"body: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})")
                return
            except BadRequest as err:
                self._error(400, str(err), err.param)
                return
            try:
                reply, prompt_tokens, completion_tokens, finish, seconds = chat.complete(req)
            except Exception as err:  # noqa: BLE001 - the client gets the reason, the server keeps serving
                self._error(500, f"generation failed: {type(err).__name__}: {err}", kind="server_error")
                return
            # logged before the reply is sent, so a client that has its reply also finds the line
            log(f"POST /v1/chat/completions 200 prompt_tokens={prompt_tokens} completion_tokens={completion_tokens} "
                f"finish={finish} generate={seconds:.2f}s total={time.perf_counter() - start:.2f}s")
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": chat.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}})

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if code != 200:  # a served completion is logged once, with its token counts
                super().log_request(code, size)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            log(format % args)

    return Handler


def log(line: str) -> None:
    print(f"openai_server: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="local folder (or fsspec URI) of a causal LM with a chat template")
    ap.add_argument("--port", type=int, default=8000, help="0 = any free port (named in the first log line)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--max-new-tokens-cap", type=int, default=256,
                    help="most tokens one reply may have, whatever max_tokens asks (also the default)")
    ap.add_argument("--name", help="model name in replies and /v1/models (default: the folder's name)")
    ap.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.max_new_tokens_cap < 1:
        ap.error("--max-new-tokens-cap: expected a positive integer")
    torch.set_num_threads(max(1, args.threads))
    device = torch.device(args.device) if args.device else models.pick_device()
    name = args.name or Path(args.model.rstrip("/")).name
    chat = ChatModel(args.model, name, device)
    server = ThreadingHTTPServer((args.host, args.port), handler_for(chat, args.max_new_tokens_cap))
    host, port = server.server_address[:2]
    log(f"serving {name} ({args.model}, {device}) at http://{host}:{port}/v1#{name}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
