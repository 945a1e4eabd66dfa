"""A lean OpenAI-streaming upstream for the battle benchmark, run in its own process.

    python tests/benchmarks/bench_upstream.py --port 0 --ttft 0.2 --delay 0.01 --tokens 50

Why not tests/upstream.py (the tests' server): that one runs a thread per connection inside
the benchmark's own process, parses requests with http.server, and so notes a request as
received only once a thread got the GIL from the benchmark's 50 WebSocket clients; at a burst
its own queueing was counted as the arena's. This one is one asyncio loop in a process of its
own: it notes ``received_at`` (``time.monotonic()``, the same clock in every process) as soon
as the request's body is complete, answers the headers at once, waits ``ttft`` seconds, notes
``first_token_at`` and writes ``tokens`` words ``delay`` seconds apart as chat-completion
chunks, then the finish reason, usage (when ``stream_options.include_usage``) and ``[DONE]``.

``GET /_requests`` answers every request so far as JSON (model, last user message,
received_at, first_token_at, tokens_sent). The first line on stdout is ``port N``.
"""

import argparse
import asyncio
import json
import time

REQUESTS: list[dict] = []


def _event(payload) -> bytes:
    data = (
        "data: " + (payload if isinstance(payload, str) else json.dumps(payload)) + "\n\n"
    ).encode()
    return b"%X\r\n%s\r\n" % (len(data), data)


def _chunk(model: str, delta: dict, finish=None) -> dict:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def _stream(writer, body: dict, record: dict, args) -> None:
    model = str(body.get("model", ""))
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    writer.write(_event(_chunk(model, {"role": "assistant", "content": ""})))
    await asyncio.sleep(args.ttft)
    words = [f"word{i}" for i in range(args.tokens)]
    for i, word in enumerate(words):
        if i:
            await asyncio.sleep(args.delay)
        if record["first_token_at"] is None:
            record["first_token_at"] = time.monotonic()
        writer.write(_event(_chunk(model, {"content": word + (" " if i < len(words) - 1 else "")})))
        record["tokens_sent"] += 1
    writer.write(_event(_chunk(model, {}, "stop")))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 10, "completion_tokens": args.tokens}
        usage["total_tokens"] = usage["prompt_tokens"] + args.tokens
        writer.write(_event({**_chunk(model, {}), "choices": [], "usage": usage}))
    writer.write(_event("[DONE]") + b"0\r\n\r\n")
    await writer.drain()


async def _handle(reader, writer, args) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            raw = await reader.readexactly(length) if length else b""
            received_at = time.monotonic()
            if method == "GET" and path == "/_requests":
                data = json.dumps(REQUESTS).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(data), data)
                )
                await writer.drain()
                continue
            body = json.loads(raw or b"{}")
            users = [m for m in body.get("messages", []) if m.get("role") == "user"]
            record = {
                "model": str(body.get("model", "")),
                "prompt": users[-1]["content"] if users else "",
                "received_at": received_at,
                "first_token_at": None,
                "tokens_sent": 0,
            }
            REQUESTS.append(record)
            await _stream(writer, body, record, args)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft", type=float, default=0.2)
    parser.add_argument("--delay", type=float, default=0.01)
    parser.add_argument("--tokens", type=int, default=50)
    args = parser.parse_args()
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, args), "127.0.0.1", args.port, backlog=1024
    )
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
