"""Pages that let people in: an invite link, domain sign-up, the staff's invite list."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from arena.accounts.forms import AccountForm, InviteForm, SignupForm
from arena.accounts.services import invite_create, invite_redeem, signup_open
from arena.core.access import staff_page
from arena.models.invites import Invite

BACKEND = "django.contrib.auth.backends.ModelBackend"


def _signed_in(request, user):
    login(request, user, backend=BACKEND)
    messages.success(request, f"Welcome, {user.get_username()}.")
    return redirect("index")


@require_http_methods(["GET", "POST"])
def invite_accept(request, token: str):
    invite = Invite.objects.filter(token=token).first()
    problem = "This invite link is not valid." if invite is None else invite.problem()
    form = AccountForm(request.POST or None)
    if not problem and request.method == "POST" and form.is_valid():
        try:
            user = invite_redeem(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as exc:
            problem = " ".join(exc.messages)
        else:
            return _signed_in(request, user)
    status = 410 if problem else 200
    return render(
        request, "accounts/invite.html", {"form": form, "problem": problem}, status=status
    )


@require_http_methods(["GET", "POST"])
def signup(request):
    if not signup_open():
        raise Http404("Sign-up is not open here; ask for an invite link.")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return _signed_in(request, form.save())
    return render(request, "accounts/signup.html", {"form": form})


@staff_page("Only staff can invite people.")
@require_http_methods(["GET", "POST"])
def invites_page(request):
    form = InviteForm(request.POST or None, initial={"days": settings.ARENA_INVITE_DAYS})
    if request.method == "POST" and form.is_valid():
        invite = invite_create(created_by=request.user, **form.cleaned_data)
        messages.success(request, f"Invite link: {invite_url(request, invite)}")
        return redirect("invites")
    invites = [(i, invite_url(request, i)) for i in Invite.objects.all()[:200]]
    return render(request, "accounts/invites.html", {"form": form, "invites": invites})


def invite_url(request, invite: Invite) -> str:
    return request.build_absolute_uri(reverse("invite_accept", args=[invite.token]))


class LoginView(auth_views.LoginView):
    """Django's sign-in page, with company sign-in and sign-up when they are on."""

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            signup_open=signup_open(),
            oidc_name=settings.ARENA_OIDC_NAME if settings.ARENA_OIDC else "",
            oidc_refused=settings.ARENA_OIDC and self.request.GET.get("oidc") == "refused",
            **kwargs,
        )
