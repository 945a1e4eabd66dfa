from django.urls import path

from arena.accounts.views import invite_accept, invites_page, signup

urlpatterns = [
    path("accounts/invite/<str:token>/", invite_accept, name="invite_accept"),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/invites/", invites_page, name="invites"),
]
