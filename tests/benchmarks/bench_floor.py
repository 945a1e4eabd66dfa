"""The floor for the battle benchmark: raw aiohttp, in a process of its own, streaming N
requests at once from the benchmark's upstream (tests/benchmarks/bench_upstream.py).

    python tests/benchmarks/bench_floor.py --url http://127.0.0.1:PORT/v1 --requests 100

Warms N connections first (one request each), then sends N requests in the same instant and
reads each to its end. Prints one JSON object: per request the prompt, model, when it was sent
and when its first content token was read (``time.monotonic()``, the upstream's clock too), and
this process's CPU seconds for the measured burst. The battle benchmark subtracts the
upstream's own time to first token, as it does for the arena: what is left is what a client as
lean as aiohttp adds on this machine at this moment.
"""

import argparse
import asyncio
import json
import time

import aiohttp

MODELS = ("bench-alpha", "bench-beta")


async def one(session, url: str, prompt: str, model: str) -> dict:
    body = {
        "model": model,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    row = {"prompt": prompt, "model": model, "sent_at": time.monotonic(), "first_at": None}
    async with session.post(url + "/chat/completions", json=body) as response:
        async for line in response.content:
            if row["first_at"] is None and b'"content": "word' in line:
                row["first_at"] = time.monotonic()
    return row


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--tag", default="floor")
    args = parser.parse_args()
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:
        n = args.requests
        await asyncio.gather(
            *[one(session, args.url, f"{args.tag} warm {i}", MODELS[i % 2]) for i in range(n)]
        )
        cpu = time.process_time()
        rows = await asyncio.gather(
            *[one(session, args.url, f"{args.tag} {i}", MODELS[i % 2]) for i in range(n)]
        )
        cpu = time.process_time() - cpu
    print(json.dumps({"rows": rows, "cpu_s": cpu}))


if __name__ == "__main__":
    asyncio.run(main())
