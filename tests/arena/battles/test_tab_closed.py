"""A tab closed while both answers stream: the server logs the disconnect, not a traceback, and
the battle is not left votable."""

import asyncio
import json

import websockets

from tests.benchmarks.bench_battles import SESSIONS
from tests.support import daphne_process, manage, server_env
from tests.upstream import FakeUpstream

MODELS = """
[[model]]
name = "Slow A"
kind = "openai"
base_url = "{url}"
model_id = "slow:delay=0.2"

[[model]]
name = "Slow B"
kind = "openai"
base_url = "{url}"
model_id = "slow:delay=0.2"
"""


def test_closing_the_tab_mid_stream_logs_no_traceback(tmp_path):
    with FakeUpstream() as upstream:
        env = server_env(tmp_path)
        manage(env, "migrate", "--verbosity", "0")
        (tmp_path / "models.toml").write_text(MODELS.format(url=upstream.url))
        manage(env, "models", "sync", str(tmp_path / "models.toml"))
        out = manage(env, "shell", "-c", SESSIONS.format(n=1)).stdout.strip().splitlines()[-1]
        session = json.loads(out)
        cookie = f"{session['cookie']}={session['keys'][0]}"
        log = tmp_path / "daphne.log"
        with daphne_process(env, log) as (base, _proc):

            async def play_then_leave():
                ws = await websockets.connect(
                    base.replace("http", "ws") + "/ws/battle/",
                    origin=base,
                    additional_headers={"Cookie": cookie},
                )
                await ws.send(json.dumps({"type": "prompt", "text": "hello there"}))
                seen = [json.loads(await ws.recv())["type"] for _ in range(3)]
                assert seen == ["start", "chunk", "chunk"]
                ws.transport.abort()  # a closed or killed tab: no closing handshake
                await asyncio.sleep(2)  # the upstream streams on for a while

            asyncio.run(play_then_leave())
            status = manage(
                env,
                "shell",
                "-c",
                "from arena.models import Battle; print(Battle.objects.get().status)",
            )
        text = log.read_text()
        assert "WSDISCONNECT /ws/battle/" in text
        assert "Traceback" not in text, text
        assert status.stdout.strip().splitlines()[-1] != "ready"
