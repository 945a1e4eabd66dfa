from django.urls import path

from arena.leaderboards.views import (
    api_leaderboard,
    api_snapshots,
    compare_page,
    leaderboard_page,
    leaderboard_status,
    snapshot_download,
)

urlpatterns = [
    path("leaderboard/", leaderboard_page, name="leaderboard"),
    path("leaderboard/compare/", compare_page, name="compare"),
    path("leaderboard/status.json", leaderboard_status, name="leaderboard_status"),
    path(
        "leaderboard/snapshots/<int:snapshot_id>.<str:fmt>",
        snapshot_download,
        name="snapshot_download",
    ),
    path("api/leaderboards/", api_leaderboard, name="api_leaderboard"),
    path("api/leaderboards/snapshots/", api_snapshots, name="api_snapshots"),
]
