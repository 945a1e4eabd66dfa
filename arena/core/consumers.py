"""A WebSocket wiring check: a token echoed through the channel layer in use."""

import json
import uuid
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer


class PingConsumer(AsyncWebsocketConsumer):
    """Echo a token back through the channel layer: a wiring check for the layer in use.

    The reply travels consumer -> channel layer group -> consumer -> client, so it only
    arrives when the configured layer (in-memory or Redis) really works.
    """

    async def connect(self) -> None:
        self.group = f"ping-{uuid.uuid4().hex}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except json.JSONDecodeError:
            await self._error("Message is not valid JSON.")
            return
        if not isinstance(message, dict) or message.get("type") != "ping":
            await self._error('Expected {"type": "ping", "token": "..."}.')
            return
        token = message.get("token")
        if not isinstance(token, str) or len(token) > 200:
            await self._error("token must be a string of at most 200 characters.")
            return
        await self.channel_layer.group_send(self.group, {"type": "pong.relay", "token": token})

    async def pong_relay(self, event: dict[str, Any]) -> None:
        await self.send(json.dumps({"type": "pong", "token": event["token"]}))

    async def _error(self, message: str) -> None:
        await self.send(json.dumps({"type": "error", "message": message}))
