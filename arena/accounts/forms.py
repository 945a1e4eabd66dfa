from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from arena.accounts.services import signup_allows


class AccountForm(UserCreationForm):
    """Username and password (Django's validators), for an invite link."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


class SignupForm(AccountForm):
    """As above, plus an email address in one of the allowed domains."""

    email = forms.EmailField()

    class Meta(AccountForm.Meta):
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if not signup_allows(email):
            raise forms.ValidationError("Sign-up is open only to addresses of this organisation.")
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this address exists; sign in instead.")
        return email


class InviteForm(forms.Form):
    note = forms.CharField(max_length=200, required=False)
    max_uses = forms.IntegerField(min_value=1, max_value=10_000, initial=1)
    days = forms.IntegerField(min_value=1, max_value=365)
