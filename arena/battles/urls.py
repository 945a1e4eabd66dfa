from django.urls import path

from arena.battles.views import battle, battle_result

urlpatterns = [
    path("battle/", battle, name="battle"),
    path("battles/<int:battle_id>/", battle_result, name="battle_result"),
]
