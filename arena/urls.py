"""Every URL of the site: each domain keeps its own ``urls.py``."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from arena.accounts.views import LoginView
from arena.core.views import healthz, index

urlpatterns = [
    path("", index, name="index"),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("arena.accounts.urls")),
    path("", include("arena.battles.urls")),
    path("", include("arena.evalsets.urls")),
    path("", include("arena.leaderboards.urls")),
    path("", include("arena.judging.urls")),
    path("", include("arena.calibration.urls")),
    path("", include("arena.api.urls")),
    path("", include("arena.quality.urls")),
]
