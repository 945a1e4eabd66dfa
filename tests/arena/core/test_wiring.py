import json
import os
import uuid

import pytest
from celery import Celery
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from arena.asgi import application
from arena.core.tasks import ping
from tests.factories import make_user

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")


@database_sync_to_async
def _cookie() -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(make_user("pinger"))
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def _ping_round_trip() -> None:
    headers = [ORIGIN, HOST, await _cookie()]
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    try:
        token = uuid.uuid4().hex
        await communicator.send_to(json.dumps({"type": "ping", "token": token}))
        reply = json.loads(await communicator.receive_from(timeout=5))
        assert reply == {"type": "pong", "token": token}
        # A malformed message gets an error and the socket stays usable.
        await communicator.send_to("not json")
        assert json.loads(await communicator.receive_from())["type"] == "error"
        await communicator.send_to(json.dumps({"type": "ping", "token": "again"}))
        assert json.loads(await communicator.receive_from(timeout=5))["token"] == "again"
        assert await communicator.receive_nothing()
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_round_trip_through_the_in_memory_layer(_db_thread_closed):
    await _ping_round_trip()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_websocket_round_trip_through_the_real_redis_layer(
    redis_settings, redis_url, _db_thread_closed
):
    from channels.layers import get_channel_layer

    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    await _ping_round_trip()


async def test_a_socket_from_a_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/ping/", headers=[(b"origin", b"http://evil.example"), HOST]
    )
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


def test_a_task_runs_eagerly_in_process_without_redis():
    result = ping.delay("eager").get(timeout=5)
    assert result["token"] == "eager"
    assert result["pid"] == os.getpid()


@pytest.mark.redis
@pytest.mark.celery_worker
def test_a_task_runs_on_a_real_worker_process(redis_url, celery_worker_pid):
    client = Celery("test-client", broker=redis_url, backend=redis_url, set_as_current=False)
    try:
        token = uuid.uuid4().hex
        result = client.send_task("arena.ping", args=[token]).get(timeout=60)
    finally:
        client.close()
    assert result["token"] == token
    assert result["pid"] == celery_worker_pid
