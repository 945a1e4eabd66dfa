from django.urls import path

from arena.battles.consumers import BattleConsumer
from arena.core.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/battle/", BattleConsumer.as_asgi()),
]
