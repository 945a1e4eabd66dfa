"""A real local HTTP server that speaks the OpenAI and Anthropic streaming protocols.

Not a mock: it listens on a free loopback port in a background thread and answers over real
sockets, so timeouts, retries, cut connections and cancellation are exercised end to end.

    POST {url}/chat/completions   OpenAI chat completions, ``stream: true`` (SSE, ``[DONE]``,
                                  final usage chunk when ``stream_options.include_usage``)
    POST {url}/messages           Anthropic Messages, ``stream: true`` (message_start ...
                                  content_block_delta ... message_delta ... message_stop)

The behaviour of a request is chosen by its model id, ``name`` or ``name:key=value,...``, or
by ``upstream.set_behaviour(model_id, spec)`` for realistic model ids. Unknown names answer
normally. Behaviours:

    normal              a fixed sentence, then usage (``tokens=N`` for N words instead)
    echo                "Echo: <last user message>" so tests can check what was sent
    fixed               exactly the text ``fixed_spec(text)`` encodes (``b64=`` URL-safe base64
                        of its UTF-8), streamed a few characters at a time, so any text
                        (Markdown, HTML, commas) can be an answer
    slow                ``delay=S`` seconds between tokens (0.05), ``ttft=S`` before the first
    error               HTTP ``status`` (500) before any token
    flaky               HTTP 500 for the first ``fails`` (1) requests of this model id, then normal
    unauthorized        HTTP 401 whose body quotes the key it was sent, as some providers do
    cut                 ``after`` (2) tokens, then the TCP connection is dropped mid-stream
    malformed           one token, then an event whose data is not JSON
    hang                reads the request and never answers
    stall               ``after`` (1) tokens, then nothing more (the connection stays open)
    stream_error        ``after`` (0) tokens, then an error event inside the stream (Anthropic
                        ``event: error`` overloaded_error; OpenAI ``data: {"error": ...}``)
    no_usage            normal, but never reports token usage
    finish              normal, but the finish reason (OpenAI ``finish_reason``, Anthropic
                        ``stop_reason``) is ``reason=`` (any name an upstream likes)
    json                a plain JSON completion, as from a server that ignores ``stream``
    judge               a pairwise judge (see ``judge_output``): reads the two answers fenced
                        between ``<<<ANSWER A nonce>>>`` markers in the last user message and
                        ends with a verdict line decided by each answer's hidden quality
                        (``quality=+1.50`` anywhere in it), a length preference ``length=L``
                        (log-odds per unit of ``(words_a - words_b) / (words_a + words_b + 1)``)
                        and a first-position bias ``first=P`` (with probability P it picks the
                        answer shown first, whatever they say). Draws are seeded by the two
                        answers in their order (and ``seed=``), so a rerun gives the same verdicts.
                        ``quote=1`` quotes both answers in its reasoning; ``fails=N`` answers
                        HTTP 500 to this model id's first N requests; ``delay=S`` waits before
                        answering. The verdict is five-level, or three-level when the prompt
                        offers no ``[[A>>B]]``.

Every request is recorded in ``upstream.requests`` (path, lower-cased headers, JSON body); its
``disconnected`` event is set when the client went away before the answer was complete. For
benchmarks it also notes ``received_at`` (``time.monotonic()`` once the body was read),
``first_token_at`` (just before the first token was written) and ``tokens_sent``.
``upstream.max_in_flight(model_id)`` is the most requests for one model id answered at once.
"""

import base64
import contextlib
import hashlib
import json
import math
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

NORMAL_TEXT = "Hello! I am a fake model, streaming one word at a time."


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict
    client_port: int
    disconnected: threading.Event = field(default_factory=threading.Event)
    completed: threading.Event = field(default_factory=threading.Event)
    received_at: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None  # time.monotonic(), just before the first token's write
    tokens_sent: int = 0

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))


class _ClientGone(Exception):
    """The client closed the connection (or the server is stopping)."""


def parse_behaviour(spec: str) -> tuple[str, dict[str, str]]:
    name, _, raw = spec.partition(":")
    options = {}
    for part in raw.split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            options[key.strip()] = value.strip()
    return name.strip(), options


def fixed_spec(text: str) -> str:
    """The behaviour spec of a model that answers exactly ``text``."""
    return "fixed:b64=" + base64.urlsafe_b64encode(text.encode()).decode()


def _pieces(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


class FakeUpstream:
    """The server; use ``with FakeUpstream() as upstream:`` or the ``upstream`` fixture."""

    def __init__(self):
        self.requests: list[Received] = []
        self._behaviours: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._max_in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL to put in an endpoint: ``http://127.0.0.1:PORT/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def set_behaviour(self, model_id: str, spec: str) -> None:
        self._behaviours[model_id] = spec

    def requests_for(self, model_id: str) -> list[Received]:
        return [r for r in self.requests if r.model == model_id]

    def max_in_flight(self, model_id: str) -> int:
        return self._max_in_flight.get(model_id, 0)

    def start(self) -> "FakeUpstream":
        upstream = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        class Handler(_Handler):
            owner = upstream

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def __enter__(self) -> "FakeUpstream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- bookkeeping used by the handler -------------------------------------------------
    def _behaviour_for(self, model_id: str) -> tuple[str, dict[str, str], int]:
        spec = self._behaviours.get(model_id, model_id)
        with self._lock:
            self._counts[model_id] = self._counts.get(model_id, 0) + 1
            count = self._counts[model_id]
        return (*parse_behaviour(spec), count)

    def _enter(self, model_id: str) -> None:
        with self._lock:
            now = self._in_flight.get(model_id, 0) + 1
            self._in_flight[model_id] = now
            self._max_in_flight[model_id] = max(now, self._max_in_flight.get(model_id, 0))

    def _leave(self, model_id: str) -> None:
        with self._lock:
            self._in_flight[model_id] -= 1


class _Handler(BaseHTTPRequestHandler):
    owner: FakeUpstream
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like real providers
    disable_nagle_algorithm = True  # each event leaves at once, as from a real SSE server

    def log_message(self, *args):  # quiet in tests
        pass

    def setup(self):
        super().setup()
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self):
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    # -- request -------------------------------------------------------------------------
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        received = Received(
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body if isinstance(body, dict) else {},
            client_port=self.client_address[1],
        )
        self.owner.requests.append(received)
        if self.path.endswith("/chat/completions"):
            protocol = _OpenAI(self)
        elif self.path.endswith("/messages"):
            protocol = _Anthropic(self)
        else:
            return self._json_error(404, "not found")
        self.owner._enter(received.model)
        try:
            self._answer(protocol, received)
            received.completed.set()
        except _ClientGone:
            received.disconnected.set()
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            received.disconnected.set()
            self.close_connection = True
        finally:
            self.owner._leave(received.model)

    def _answer(self, protocol, received: Received) -> None:
        body = received.body
        if body.get("stream") is not True:
            return self._json_error(400, "this fake upstream only streams")
        problem = protocol.invalid(body)
        if problem:
            return self._json_error(400, problem)
        name, options, count = self.owner._behaviour_for(received.model)
        tokens = _words(NORMAL_TEXT)
        if "tokens" in options:
            tokens = _words(" ".join(f"word{i}" for i in range(int(options["tokens"]))))
        if name == "echo":
            tokens = _words("Echo: " + protocol.last_user_text(body))
        if name == "fixed":
            tokens = _pieces(base64.urlsafe_b64decode(options.get("b64", "")).decode())
        if name == "judge":
            if count <= int(options.get("fails", 0)):
                return self._json_error(500, "scripted failure")
            self._pause(float(options.get("delay", 0)))
            tokens = _words(judge_output(protocol.last_user_text(body), options))
        if name == "error":
            return self._json_error(int(options.get("status", 500)), "scripted failure")
        if name == "flaky" and count <= int(options.get("fails", 1)):
            return self._json_error(500, "scripted failure")
        if name == "unauthorized":
            presented = received.headers.get("authorization") or received.headers.get("x-api-key")
            return self._json_error(401, f"Incorrect API key provided: {presented}")
        if name == "json":
            return self._json(200, {"choices": [{"message": {"content": NORMAL_TEXT}}]})
        if name == "hang":
            self._pause(float("inf"))

        self._start_stream()
        protocol.begin(body, usage_known=name != "no_usage")
        if name == "slow":
            self._pause(float(options.get("ttft", 0)))
        for i, token in enumerate(tokens):
            if name == "cut" and i == int(options.get("after", 2)):
                self._cut()
            if name == "stall" and i == int(options.get("after", 1)):
                self._pause(float("inf"))
            if name == "stream_error" and i == int(options.get("after", 0)):
                self._event(protocol.error())
                self._pause(float("inf"))
            if name == "malformed" and i == 1:
                self._event(protocol.malformed())
                self._pause(float("inf"))
            if name == "slow" and i:
                self._pause(float(options.get("delay", 0.05)))
            if received.first_token_at is None:
                received.first_token_at = time.monotonic()
            self._event(protocol.token(token))
            received.tokens_sent += 1
        usage = None if name == "no_usage" else (_count_words(body), len(tokens))
        reason = {"finish_reason": options["reason"]} if name == "finish" else {}
        for event in protocol.end(body, usage, **reason):
            self._event(event)
        self._write_chunk(b"")

    # -- wire helpers --------------------------------------------------------------------
    def _json_error(self, status: int, message: str) -> None:
        self._json(status, {"error": {"type": "scripted", "message": message}})

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _event(self, text: str) -> None:
        self._write_chunk(text.encode())
        self._pause(0)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")

    def _cut(self) -> None:
        """Drop the connection mid-stream, without the chunked terminator."""
        self.connection.shutdown(socket.SHUT_RDWR)
        raise _CutDone

    def _pause(self, seconds: float) -> None:
        """Sleep, but notice at once when the client closes the connection."""
        deadline = time.monotonic() + seconds
        while True:
            if self.owner._stopping.is_set():
                raise _ClientGone
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self.connection], [], [], max(0, min(remaining, 0.05)))
            if readable:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if not data:
                    raise _ClientGone
            if remaining <= 0:
                return

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except _CutDone:
            self.close_connection = True


class _CutDone(Exception):
    pass


_FENCE = r"<<<{label} (?P<nonce>\w+)>>>\n(?P<text>.*?)\n<<<END {label} (?P=nonce)>>>"
_QUALITY = re.compile(r"quality=([+-]?\d+(?:\.\d+)?)")


def fenced(prompt: str) -> tuple[str, str, str]:
    """The prompt and the two answers a judge prompt fences, as (prompt, first, second)."""
    parts = []
    for label in ("PROMPT", "ANSWER A", "ANSWER B"):
        match = re.search(_FENCE.format(label=label), prompt, re.DOTALL)
        parts.append(match.group("text") if match else "")
    return parts[0], parts[1], parts[2]


def _uniform(*parts: str) -> float:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def judge_output(prompt: str, options: dict[str, str]) -> str:
    """What the fake judge answers to a judge prompt: a line of reasoning, then the verdict.

    P(first wins) = expit(q_first - q_second + length * (w_first - w_second) / (w_first +
    w_second + 1)) with q the answer's hidden ``quality=`` (0 without one) and w its words;
    with probability ``first`` the judge picks the first answer without reading. "Much better"
    when the log-odds exceed 2 in absolute value.
    """
    _, first, second = fenced(prompt)
    seed = options.get("seed", "0")
    lazy = _uniform(seed, "lazy", first, second) < float(options.get("first", 0))
    quality = [float(m.group(1)) if (m := _QUALITY.search(t)) else 0.0 for t in (first, second)]
    words = [len(t.split()) for t in (first, second)]
    logit = quality[0] - quality[1]
    logit += float(options.get("length", 0)) * (words[0] - words[1]) / (sum(words) + 1)
    first_wins = lazy or _uniform(seed, "pick", first, second) < 1 / (1 + math.exp(-logit))
    strong = not lazy and abs(logit) > 2
    if "[[A>>B]]" in prompt:
        label = ("A>>B" if strong else "A>B") if first_wins else ("B>>A" if strong else "B>A")
    else:
        label = "A" if first_wins else "B"
    reasoning = "I compared both answers for correctness and helpfulness."
    if options.get("quote") == "1":
        reasoning += f' The first says: "{first}". The second says: "{second}".'
    return f"{reasoning}\nVerdict: [[{label}]]"


def _count_words(body: dict) -> int:
    texts = [m.get("content", "") for m in body.get("messages", []) if isinstance(m, dict)]
    texts.append(body.get("system", "") if isinstance(body.get("system"), str) else "")
    return sum(len(str(t).split()) for t in texts)


def _sse(data: dict | str, event: str | None = None) -> str:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


class _OpenAI:
    def __init__(self, handler):
        self.handler = handler

    def invalid(self, body):
        if not body.get("model") or not isinstance(body.get("messages"), list):
            return "model and messages are required"
        return None

    def last_user_text(self, body):
        users = [m for m in body["messages"] if m.get("role") == "user"]
        return users[-1]["content"] if users else ""

    def _chunk(self, delta, finish_reason=None, **extra):
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }

    def begin(self, body, usage_known):
        self.model = body["model"]
        self.handler._event(_sse(self._chunk({"role": "assistant", "content": ""})))

    def token(self, text):
        return _sse(self._chunk({"content": text}))

    def malformed(self):
        return 'data: {"choices": [{"index": 0, "delta": {"content": "brok\n\n'

    def error(self):
        return _sse({"error": {"message": "The server is overloaded", "type": "server_error"}})

    def end(self, body, usage, finish_reason="stop"):
        events = [_sse(self._chunk({}, finish_reason))]
        include = (body.get("stream_options") or {}).get("include_usage") is True
        if usage and include:
            prompt, completion = usage
            events.append(
                _sse(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "model": self.model,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                        },
                    }
                )
            )
        events.append(_sse("[DONE]"))
        return events


class _Anthropic:
    def __init__(self, handler):
        self.handler = handler

    def invalid(self, body):
        if not body.get("model") or not isinstance(body.get("messages"), list):
            return "model and messages are required"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        if any(m.get("role") == "system" for m in body["messages"]):
            return "system prompts go in the top-level system field"
        return None

    def last_user_text(self, body):
        users = [m for m in body["messages"] if m.get("role") == "user"]
        return users[-1]["content"] if users else ""

    def begin(self, body, usage_known):
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": body["model"],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if usage_known:
            message["usage"] = {"input_tokens": _count_words(body), "output_tokens": 1}
        self.handler._event(_sse({"type": "message_start", "message": message}, "message_start"))
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
        self.handler._event(_sse(block, "content_block_start"))
        self.handler._event(_sse({"type": "ping"}, "ping"))

    def token(self, text):
        delta = {"type": "content_block_delta", "index": 0}
        delta["delta"] = {"type": "text_delta", "text": text}
        return _sse(delta, "content_block_delta")

    def malformed(self):
        return 'event: content_block_delta\ndata: {"type": "content_block_delta", "del\n\n'

    def error(self):
        error = {"type": "overloaded_error", "message": "Overloaded"}
        return _sse({"type": "error", "error": error}, "error")

    def end(self, body, usage, finish_reason="end_turn"):
        delta = {"type": "message_delta", "delta": {"stop_reason": finish_reason}}
        if usage:
            delta["usage"] = {"output_tokens": usage[1]}
        return [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(delta, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]


@pytest.fixture(name="upstream")
def upstream_fixture():
    """A running FakeUpstream for one test; stopped (and its connections closed) after it.

    Import ``upstream_fixture`` (the fixture is named ``upstream``), so that test parameters
    called ``upstream`` do not shadow the imported name.
    """
    with FakeUpstream() as server:
        yield server


upstream = upstream_fixture  # the same fixture, for ``from tests.upstream import upstream``
