from django.conf import settings
from django.urls import include, path

from arena.accounts.views import invite_accept, invites_page, signup

urlpatterns = [
    path("accounts/invite/<str:token>/", invite_accept, name="invite_accept"),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/invites/", invites_page, name="invites"),
]

if settings.ARENA_OIDC:  # /oidc/authenticate/ and /oidc/callback/ (mozilla-django-oidc)
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
