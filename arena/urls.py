from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from arena import views

urlpatterns = [
    path("", views.index, name="index"),
    path("battle/", views.battle, name="battle"),
    path("battles/<int:battle_id>/", views.battle_result, name="battle_result"),
    path("evalsets/", views.evalset_list, name="evalset_list"),
    path("evalsets/<int:set_id>/vote/", views.evalset_vote, name="evalset_vote"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("arena.leaderboard_views")),
    path("", include("arena.judging_views")),
    path("", include("arena.calibration_views")),
    path("", include("arena.generation_views")),
]
